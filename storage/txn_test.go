package storage

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/neogo/neo/proto"
)

// fakeDB is an in-memory txnDB: committed serials per oid, data rows with
// reference counts, temporary rows per ttid. A write blocks while the
// channel of its ttid in stall is open (a slow disk).
type fakeDB struct {
	mu        sync.Mutex
	stall     map[proto.Tid]chan struct{}
	writing   chan proto.Tid            // told the ttid of each write that stalls
	serials   map[proto.Oid][]proto.Tid // committed, ascending
	data      map[dataID]objectData
	refs      map[dataID]int
	nextID    dataID
	temp      map[proto.Tid][]tempObject
	meta      map[proto.Tid]*txnMeta
	locked    map[proto.Tid]proto.Tid // ttid -> tid (ttrans.tid)
	committed map[proto.Tid]proto.Tid // ttid -> tid of trans rows
	undoPack  bool
	lockErr   error // returned by lockTransaction
}

// write waits for the disk when ttid's writes stall, then locks db.
func (db *fakeDB) write(ttid proto.Tid) {
	db.mu.Lock()
	ch := db.stall[ttid]
	db.mu.Unlock()
	if ch != nil {
		db.writing <- ttid
		<-ch
	}
	db.mu.Lock()
}

func newFakeDB() *fakeDB {
	return &fakeDB{
		serials:   map[proto.Oid][]proto.Tid{},
		data:      map[dataID]objectData{},
		refs:      map[dataID]int{},
		temp:      map[proto.Tid][]tempObject{},
		meta:      map[proto.Tid]*txnMeta{},
		locked:    map[proto.Tid]proto.Tid{},
		committed: map[proto.Tid]proto.Tid{},
		stall:     map[proto.Tid]chan struct{}{},
		writing:   make(chan proto.Tid, 16),
	}
}

func (db *fakeDB) lastObjectTID(oid proto.Oid) (proto.Tid, bool, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	s := db.serials[oid]
	if len(s) == 0 {
		return 0, false, nil
	}
	return s[len(s)-1], true, nil
}

func (db *fakeDB) holdData(oid proto.Oid, d objectData, empty bool, dataSerial proto.Tid) (dataID, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.undoPack && dataSerial != proto.InvalidTid {
		return 0, proto.ErrUndoPack
	}
	if empty {
		return noData, nil
	}
	id := db.nextID
	db.nextID++
	db.data[id] = d
	db.refs[id]++
	return id, nil
}

func (db *fakeDB) loadData(id dataID) (objectData, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	d, ok := db.data[id]
	if !ok {
		return d, fmt.Errorf("no data %d", id)
	}
	return d, nil
}

func (db *fakeDB) releaseData(ids []dataID) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	db.release(ids)
	return nil
}

func (db *fakeDB) release(ids []dataID) {
	for _, id := range ids {
		db.refs[id]--
		if db.refs[id] == 0 {
			delete(db.refs, id)
			delete(db.data, id)
		}
	}
}

func (db *fakeDB) storeTransaction(ttid proto.Tid, objs []tempObject, meta *txnMeta) error {
	db.write(ttid)
	defer db.mu.Unlock()
	db.temp[ttid] = objs
	if meta != nil {
		db.meta[ttid] = meta
	}
	for _, o := range objs {
		if o.Data != noData {
			db.refs[o.Data]++ // referenced by tobj
		}
	}
	return nil
}

func (db *fakeDB) lockTransaction(tid, ttid proto.Tid, approvePack bool) error {
	db.write(ttid)
	defer db.mu.Unlock()
	if db.lockErr != nil {
		return db.lockErr
	}
	db.locked[ttid] = tid
	return nil
}

func (db *fakeDB) unlockTransaction(tid, ttid proto.Tid, metadata bool, oids []proto.Oid, pack bool) error {
	db.write(ttid)
	defer db.mu.Unlock()
	for _, o := range db.temp[ttid] {
		db.serials[o.Oid] = append(db.serials[o.Oid], tid)
	}
	delete(db.temp, ttid)
	if metadata {
		db.committed[ttid] = tid
	}
	delete(db.locked, ttid)
	delete(db.meta, ttid)
	return nil
}

func (db *fakeDB) abortTransaction(ttid proto.Tid) error {
	db.write(ttid)
	defer db.mu.Unlock()
	for _, o := range db.temp[ttid] {
		if o.Data != noData {
			db.release([]dataID{o.Data})
		}
	}
	delete(db.temp, ttid)
	delete(db.meta, ttid)
	return nil
}

func (db *fakeDB) finalTID(ttid proto.Tid) (proto.Tid, bool, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	tid, ok := db.committed[ttid]
	return tid, ok, nil
}

// vote is startVote and its write, in the caller's goroutine.
func (m *txnManager) vote(client proto.NodeID, ttid proto.Tid, meta *txnMeta) error {
	write, err := m.startVote(client, ttid, meta)
	if err != nil {
		return err
	}
	return write()
}

// harness drives a txnManager and records answers and notifications.
type harness struct {
	t        *testing.T
	db       *fakeDB
	m        *txnManager
	deadlock []string
	notRead  map[uint32]bool
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, db: newFakeDB(), notRead: map[uint32]bool{}}
	h.m = newTxnManager(txnConfig{
		DB:        h.db,
		Partition: func(oid proto.Oid) uint32 { return uint32(oid % 4) },
		Readable:  func(p uint32) bool { return !h.notRead[p] },
		NotifyDeadlock: func(c proto.NodeID, ttid proto.Tid, oid proto.Oid) {
			h.deadlock = append(h.deadlock, fmt.Sprintf("%v:%d:%d", c, ttid, oid))
		},
	})
	return h
}

// answer is a store/check answer slot: set once.
type answer struct {
	done bool
	tid  proto.Tid
	err  error
}

func (a *answer) String() string {
	switch {
	case !a.done:
		return "delayed"
	case a.err != nil:
		return "error " + a.err.Error()
	case a.tid == proto.InvalidTid:
		return "locked"
	case a.tid == proto.ZeroTid:
		return "lockless"
	}
	return fmt.Sprintf("conflict %d", a.tid)
}

const client1, client2 = proto.NodeID(-0x20<<24 + 1), proto.NodeID(-0x20<<24 + 2)

func (h *harness) store(c proto.NodeID, ttid proto.Tid, oid proto.Oid, serial proto.Tid, data string) *answer {
	a := &answer{}
	h.m.storeObject(storeReq{
		Client: c, TTID: ttid, Oid: oid, Serial: serial,
		Data:       objectData{Data: []byte(data)},
		DataSerial: proto.InvalidTid,
	}, nil, func(tid proto.Tid, err error) {
		if a.done {
			h.t.Errorf("store %d/%d answered twice", ttid, oid)
		}
		a.done, a.tid, a.err = true, tid, err
	})
	return a
}

func (h *harness) check(c proto.NodeID, ttid proto.Tid, oid proto.Oid, serial proto.Tid) *answer {
	a := &answer{}
	h.m.checkCurrentSerial(c, ttid, oid, serial, nil, func(tid proto.Tid, err error) {
		a.done, a.tid, a.err = true, tid, err
	})
	return a
}

type relockAnswer struct {
	done bool
	r    *Relocked
	err  error
}

func (h *harness) relock(ttid proto.Tid, oid proto.Oid) *relockAnswer {
	a := &relockAnswer{}
	h.m.relockObject(ttid, oid, nil, func(r *Relocked, err error) { a.done, a.r, a.err = true, r, err })
	return a
}

func (h *harness) commit(ttid, tid proto.Tid) {
	h.t.Helper()
	if err := h.m.vote(client1, ttid, &txnMeta{}); err != nil {
		h.t.Fatal(err)
	}
	if err := h.m.lockTxn(ttid, tid, false); err != nil {
		h.t.Fatal(err)
	}
	if err := h.m.unlockTxn(ttid); err != nil {
		h.t.Fatal(err)
	}
}

func expect(t *testing.T, what string, a fmt.Stringer, want string) {
	t.Helper()
	if got := a.String(); got != want {
		t.Errorf("%s: got %s, want %s", what, got, want)
	}
}

func TestStoreNewObjectTakesLock(t *testing.T) {
	h := newHarness(t)
	expect(t, "first store", h.store(client1, 10, 1, 0, "a"), "locked")
	h.commit(10, 11)
	if got := h.db.serials[1]; !slices.Equal(got, []proto.Tid{11}) {
		t.Fatalf("committed serials = %v", got)
	}
	expect(t, "store on current serial", h.store(client1, 20, 1, 11, "b"), "locked")
	expect(t, "store on old serial", h.store(client2, 30, 2, 0, "c"), "locked")
}

func TestConflictWithCommittedSerial(t *testing.T) {
	h := newHarness(t)
	h.store(client1, 10, 1, 0, "a")
	h.commit(10, 11)
	a := h.store(client2, 20, 1, 0, "b")
	expect(t, "stale serial", a, "conflict 11")
	if _, locked := h.m.mu.writeLocks[1]; locked {
		t.Fatal("a conflict must not take the lock")
	}
}

func TestYoungerWaitsForOlderThenConflicts(t *testing.T) {
	h := newHarness(t)
	expect(t, "T10", h.store(client1, 10, 1, 0, "a"), "locked")
	younger := h.store(client2, 20, 1, 0, "b")
	expect(t, "T20 while T10 holds the lock", younger, "delayed")
	if len(h.deadlock) != 0 {
		t.Fatalf("no deadlock notification expected, got %v", h.deadlock)
	}
	h.commit(10, 15)
	expect(t, "T20 after T10 committed", younger, "conflict 15")
}

func TestYoungerGetsLockWhenOlderAborts(t *testing.T) {
	h := newHarness(t)
	h.store(client1, 10, 1, 0, "a")
	younger := h.store(client2, 20, 1, 0, "b")
	if err := h.m.abort(10); err != nil {
		t.Fatal(err)
	}
	expect(t, "T20 after abort of T10", younger, "locked")
	if len(h.db.data) != 1 {
		t.Fatalf("aborted data not released: %d rows", len(h.db.data))
	}
}

func TestEverybodyWaitsForVotedHolder(t *testing.T) {
	h := newHarness(t)
	h.store(client2, 20, 1, 0, "b")
	if err := h.m.vote(client2, 20, nil); err != nil {
		t.Fatal(err)
	}
	older := h.store(client1, 10, 1, 0, "a")
	expect(t, "older vs voted younger", older, "delayed")
	if len(h.deadlock) != 0 {
		t.Fatalf("voted holder must not get NotifyDeadlock: %v", h.deadlock)
	}
	if err := h.m.lockTxn(20, 21, false); err != nil {
		t.Fatal(err)
	}
	expect(t, "still delayed after lock", older, "delayed")
	if err := h.m.unlockTxn(20); err != nil {
		t.Fatal(err)
	}
	expect(t, "older after younger committed", older, "conflict 21")
}

// The relock scenario of cluster.md §6.6: the older transaction needs a
// lock the younger unvoted one holds.
func TestDeadlockAvoidanceRelock(t *testing.T) {
	for _, tc := range []struct {
		name      string
		olderEnds func(h *harness)
		want      string
	}{
		{"older aborts: relocked", func(h *harness) { h.m.abort(10) }, "nil"},
		{"older commits: conflict with data", func(h *harness) { h.commit(10, 30) }, "serial 0 conflict 30 data younger"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			expect(t, "T20 stores A", h.store(client2, 20, 1, 0, "younger"), "locked")
			expect(t, "T10 stores B", h.store(client1, 10, 2, 0, "b"), "locked")
			older := h.store(client1, 10, 1, 0, "older")
			expect(t, "T10 stores A held by unvoted T20", older, "delayed")
			if want := []string{"C2:20:1"}; !slices.Equal(h.deadlock, want) {
				t.Fatalf("NotifyDeadlock = %v, want %v", h.deadlock, want)
			}
			// Another store of T10 re-runs the queue: no second notification.
			h.store(client1, 10, 3, 0, "c")
			h.m.lock()
			h.m.executeQueued()
			h.m.unlock()
			if len(h.deadlock) != 1 {
				t.Fatalf("NotifyDeadlock sent again: %v", h.deadlock)
			}
			re := h.relock(20, 1)
			expect(t, "T10 after relock", older, "locked")
			if re.done {
				t.Fatalf("relock answered before T10 ended: %+v", re.r)
			}
			tc.olderEnds(h)
			if !re.done || re.err != nil {
				t.Fatalf("relock: done=%v err=%v", re.done, re.err)
			}
			got := "nil"
			if re.r != nil {
				got = fmt.Sprintf("serial %d conflict %d data %s", re.r.Serial, re.r.Conflict, re.r.Data.Data)
			}
			if got != tc.want {
				t.Fatalf("relock answer %s, want %s", got, tc.want)
			}
		})
	}
}

func TestRelockOfAbortedTransaction(t *testing.T) {
	h := newHarness(t)
	re := h.relock(99, 1)
	if !re.done || re.r != nil || re.err != nil {
		t.Fatalf("relock of unknown ttid: %+v", re)
	}
}

func TestDelayedStoreOfAbortedTransactionIsForgotten(t *testing.T) {
	h := newHarness(t)
	h.store(client1, 10, 1, 0, "a")
	younger := h.store(client2, 20, 1, 0, "b")
	if err := h.m.abortFor(client2, false); err != nil {
		t.Fatal(err)
	}
	// The abort re-runs the queue: the store of the aborted transaction
	// is answered as ignored, and T10 keeps its lock.
	expect(t, "delayed store of aborted txn", younger, "lockless")
	if h.m.mu.writeLocks[1] != 10 {
		t.Fatalf("write lock of oid 1 = %v", h.m.mu.writeLocks[1])
	}
}

func TestStoresToReplicatingPartitionAreLockless(t *testing.T) {
	h := newHarness(t)
	h.m.setReplicating([]uint32{1})
	expect(t, "store to replicating partition", h.store(client1, 10, 1, 0, "a"), "lockless")
	expect(t, "other store same oid", h.store(client2, 20, 1, 0, "b"), "lockless")
	expect(t, "store to readable partition", h.store(client1, 10, 2, 0, "c"), "locked")
}

func TestStoreToNonReadablePartitionIsIgnored(t *testing.T) {
	h := newHarness(t)
	h.notRead[1] = true
	expect(t, "store to unassigned partition", h.store(client1, 10, 1, 0, "a"), "lockless")
	if len(h.db.data) != 0 {
		t.Fatal("ignored store must not write data")
	}
}

func TestCheckCurrentSerial(t *testing.T) {
	h := newHarness(t)
	h.store(client1, 10, 1, 0, "a")
	h.commit(10, 11)
	expect(t, "check current", h.check(client1, 20, 1, 11), "locked")
	expect(t, "check stale", h.check(client2, 30, 1, 5), "delayed")
	h.m.abort(20)
	h.m.lock()
	h.m.unlock()
}

func TestStoreSameOidTwiceReleasesPreviousData(t *testing.T) {
	h := newHarness(t)
	h.store(client1, 10, 1, 0, "a")
	expect(t, "second store", h.store(client1, 10, 1, 0, "a2"), "locked")
	if len(h.db.data) != 1 {
		t.Fatalf("data rows = %d, want 1", len(h.db.data))
	}
}

func TestReadDelayedWhileLocked(t *testing.T) {
	h := newHarness(t)
	h.store(client1, 10, 1, 0, "a")
	if err := h.m.vote(client1, 10, &txnMeta{Oids: []proto.Oid{1}}); err != nil {
		t.Fatal(err)
	}
	readNow := false
	h.m.whenReadable(1, nil, func() { readNow = true })
	if !readNow {
		t.Fatal("read of a voted-but-unlocked oid must not wait")
	}
	if err := h.m.lockTxn(10, 12, false); err != nil {
		t.Fatal(err)
	}
	// Delayed reads run in their own goroutine once released.
	read, late := make(chan struct{}), make(chan struct{})
	tids := false
	h.m.whenReadable(1, nil, func() { close(read) })
	h.m.whenTidUnlocked(11, nil, func() { tids = true })
	if !tids {
		t.Fatal("AskTIDsFrom below the locked tid must not wait")
	}
	h.m.whenTidUnlocked(12, nil, func() { close(late) })
	for _, ch := range []chan struct{}{read, late} {
		select {
		case <-ch:
			t.Fatal("read not delayed by the read lock")
		default:
		}
	}
	if err := h.m.unlockTxn(10); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []chan struct{}{read, late} {
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatal("reads not released by unlock")
		}
	}
}

func TestVoteErrors(t *testing.T) {
	h := newHarness(t)
	if err := h.m.vote(client1, 10, nil); !errors.Is(err, proto.ErrProtocol) {
		t.Fatalf("vote of unknown ttid: %v", err)
	}
	big := &txnMeta{Oids: make([]proto.Oid, maxOids)}
	if err := h.m.vote(client1, 10, big); !errors.Is(err, proto.ErrProtocol) {
		t.Fatalf("vote with 2^21 oids: %v", err)
	}
	if err := h.m.lockTxn(99, 100, false); !errors.Is(err, proto.ErrProtocol) {
		t.Fatalf("lock of unknown ttid: %v", err)
	}
}

func TestVoteAndLockAreWritten(t *testing.T) {
	h := newHarness(t)
	h.store(client1, 10, 1, 0, "a")
	if err := h.m.vote(client1, 10, &txnMeta{Oids: []proto.Oid{1}}); err != nil {
		t.Fatal(err)
	}
	if len(h.db.temp[10]) != 1 || h.db.meta[10] == nil {
		t.Fatalf("vote: temp %v meta %v", h.db.temp[10], h.db.meta[10])
	}
	if err := h.m.lockTxn(10, 11, false); err != nil {
		t.Fatal(err)
	}
	if h.db.locked[10] != 11 {
		t.Fatalf("lock: locked %v", h.db.locked)
	}
	if tid, _ := h.m.finalTID(10); tid != 11 {
		t.Fatalf("finalTID in memory = %v", tid)
	}
	if err := h.m.unlockTxn(10); err != nil {
		t.Fatal(err)
	}
	if len(h.db.serials[1]) != 1 || h.db.serials[1][0] != 11 {
		t.Fatalf("unlock: serials of oid 1 %v", h.db.serials[1])
	}
	if tid, _ := h.m.finalTID(10); tid != 11 {
		t.Fatalf("finalTID from db = %v", tid)
	}
	if tid, _ := h.m.finalTID(12); tid != proto.InvalidTid {
		t.Fatalf("finalTID of unknown = %v", tid)
	}
}

// A lock that could not be written (the database server went away) leaves
// the transaction unlocked: AskFinalTID must not report the tid a client
// would take as committed, and its oids are readable again.
func TestFailedLockIsNotLocked(t *testing.T) {
	h := newHarness(t)
	h.store(client1, 10, 1, 0, "a")
	if err := h.m.vote(client1, 10, &txnMeta{Oids: []proto.Oid{1}}); err != nil {
		t.Fatal(err)
	}
	h.db.lockErr = errors.New("server gone")
	if err := h.m.lockTxn(10, 11, false); !errors.Is(err, h.db.lockErr) {
		t.Fatalf("lock: %v", err)
	}
	if tid, err := h.m.finalTID(10); tid != proto.InvalidTid || err != nil {
		t.Errorf("finalTID after a failed lock = %v, %v; want none", tid, err)
	}
	h.m.lock()
	_, readLocked := h.m.mu.readLocks[1]
	h.m.unlock()
	if readLocked {
		t.Error("oid 1 still read-locked after a failed lock")
	}
	h.db.lockErr = nil
	if err := h.m.lockTxn(10, 11, false); err != nil {
		t.Fatalf("lock again: %v", err)
	}
}

func TestAbortOfLockedTransactionIsNoop(t *testing.T) {
	h := newHarness(t)
	h.store(client1, 10, 1, 0, "a")
	h.m.vote(client1, 10, &txnMeta{})
	h.m.lockTxn(10, 11, false)
	if err := h.m.abortFor(client1, true); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.m.pending()[10]; !ok {
		t.Fatal("locked transaction was aborted")
	}
}

func TestUndoPackError(t *testing.T) {
	h := newHarness(t)
	h.db.undoPack = true
	a := &answer{}
	h.m.storeObject(storeReq{Client: client1, TTID: 10, Oid: 1, Empty: true, DataSerial: 5}, nil,
		func(tid proto.Tid, err error) { a.done, a.tid, a.err = true, tid, err })
	if !errors.Is(a.err, proto.ErrUndoPack) {
		t.Fatalf("got %v", a)
	}
}

func TestCancelledDelayedRequestIsDropped(t *testing.T) {
	h := newHarness(t)
	h.store(client1, 10, 1, 0, "a")
	gone := false
	a := &answer{}
	h.m.storeObject(storeReq{Client: client2, TTID: 20, Oid: 1, DataSerial: proto.InvalidTid},
		func() bool { return gone }, func(tid proto.Tid, err error) { a.done = true })
	gone = true
	h.m.abort(10)
	if a.done || len(h.m.mu.queue) != 0 {
		t.Fatalf("cancelled request answered=%v queue=%d", a.done, len(h.m.mu.queue))
	}
}

// BenchmarkCommitCycle measures the lock manager's share of one commit of
// one object: store, vote, lock, unlock (in-memory database).
func BenchmarkCommitCycle(b *testing.B) {
	db := newFakeDB()
	m := newTxnManager(txnConfig{
		DB:             db,
		Partition:      func(oid proto.Oid) uint32 { return uint32(oid % 4) },
		Readable:       func(uint32) bool { return true },
		NotifyDeadlock: func(proto.NodeID, proto.Tid, proto.Oid) {},
	})
	b.ReportAllocs()
	serials := map[proto.Oid]proto.Tid{}
	done := func(proto.Tid, error) {}
	for i := 0; b.Loop(); i++ {
		ttid := proto.Tid(2*i + 2)
		oid := proto.Oid(i % 100)
		m.storeObject(storeReq{Client: client1, TTID: ttid, Oid: oid, Serial: serials[oid],
			Data: objectData{Data: []byte("x")}, DataSerial: proto.InvalidTid}, nil, done)
		if err := m.vote(client1, ttid, &txnMeta{Oids: []proto.Oid{oid}}); err != nil {
			b.Fatal(err)
		}
		if err := m.lockTxn(ttid, ttid+1, false); err != nil {
			b.Fatal(err)
		}
		if err := m.unlockTxn(ttid); err != nil {
			b.Fatal(err)
		}
		serials[oid] = ttid + 1
	}
}

// A client must receive the answer that gave its transaction a lock before
// the NotifyDeadlock about that lock, although the two are decided on
// different goroutines: neoppod's client asserts it. The answer's delivery
// is held until the notification is sent, or 200 ms: with the order
// enforced, the notification waits for the answer.
func TestAnswerBeforeDeadlockNotification(t *testing.T) {
	var mu sync.Mutex
	var events []string
	record := func(e string) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}
	notified := make(chan struct{})
	m := newTxnManager(txnConfig{
		DB:        newFakeDB(),
		Partition: func(oid proto.Oid) uint32 { return uint32(oid % 4) },
		Readable:  func(uint32) bool { return true },
		NotifyDeadlock: func(c proto.NodeID, ttid proto.Tid, oid proto.Oid) {
			record(fmt.Sprintf("NotifyDeadlock(%d, %d)", ttid, oid))
			close(notified)
		},
	})
	answering := make(chan struct{})
	younger := make(chan struct{})
	go func() {
		defer close(younger)
		m.storeObject(storeReq{Client: client2, TTID: 20, Oid: 1, DataSerial: proto.InvalidTid}, nil,
			func(tid proto.Tid, err error) {
				close(answering)
				select {
				case <-notified:
				case <-time.After(200 * time.Millisecond):
				}
				record(fmt.Sprintf("answer T20 store %v", tid))
			})
	}()
	<-answering
	m.storeObject(storeReq{Client: client1, TTID: 10, Oid: 1, DataSerial: proto.InvalidTid}, nil,
		func(proto.Tid, error) {})
	<-younger
	<-notified
	want := []string{"answer T20 store " + proto.InvalidTid.String(), "NotifyDeadlock(20, 1)"}
	if !slices.Equal(events, want) {
		t.Fatalf("client receives %q, want %q", events, want)
	}
}

// Once its partition is replicated, a pending lockless store holds a real
// write lock (§8.5 step 6): a younger store of the same oid waits for the
// commit, then conflicts with it, instead of being checked against a
// serial this node has not committed yet (which made neoppod's client
// resolve against an older revision under storage kills).
func TestReplicatedLocklessStoresBecomeLocks(t *testing.T) {
	h := newHarness(t)
	h.notRead[1] = true
	h.m.setReplicating([]uint32{1})
	expect(t, "T10 while replicating", h.store(client1, 10, 1, 0, "a"), "lockless")
	if !h.m.replicated(1) {
		t.Fatal("replicated: not ready with a single lockless store")
	}
	younger := h.store(client2, 20, 1, 0, "b")
	expect(t, "T20 after replication", younger, "delayed")
	h.commit(10, 15)
	expect(t, "T20 after T10 committed", younger, "conflict 15")
}

// Two pending transactions stored an oid locklessly: replication is not
// reported until one of them ends; then the survivor's store is checked and,
// conflicting, dropped.
func TestReplicatedWaitsForSharedLocklessStores(t *testing.T) {
	h := newHarness(t)
	h.notRead[1] = true
	h.m.setReplicating([]uint32{1})
	h.store(client1, 10, 1, 0, "a")
	h.store(client2, 20, 1, 0, "b")
	if h.m.replicated(1) {
		t.Fatal("replicated: ready while two transactions share a lockless oid")
	}
	h.commit(10, 15)
	if !h.m.replicated(1) {
		t.Fatal("replicated: not ready once one transaction is left")
	}
	if _, ok := h.m.mu.txns[20].stores[1]; ok {
		t.Fatal("T20's lockless store based on a stale serial was kept")
	}
	if _, locked := h.m.mu.writeLocks[1]; locked {
		t.Fatal("dropped store still holds the lock")
	}
}

// stallWrites makes the writes of ttid wait until the returned func is
// called, and returns once one such write has begun.
func (h *harness) stallWrites(ttid proto.Tid) (release func()) {
	ch := make(chan struct{})
	h.db.mu.Lock()
	h.db.stall[ttid] = ch
	h.db.mu.Unlock()
	return func() { close(ch) }
}

// waitWriting waits until a stalled write of ttid has begun.
func (h *harness) waitWriting(ttid proto.Tid) {
	h.t.Helper()
	select {
	case got := <-h.db.writing:
		if got != ttid {
			h.t.Fatalf("write of %v stalled, want %v", got, ttid)
		}
	case <-time.After(10 * time.Second):
		h.t.Fatalf("no write of %v began", ttid)
	}
}

// within runs f and fails if it does not return in time: a request that
// waits for another transaction's disk write.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s blocked behind another transaction's disk write", what)
	}
}

// A vote waiting for the disk delays neither the stores, checks and votes
// of other transactions nor the abort of its own (a slow fsync froze every
// client of the node while the manager's mutex was held across it).
func TestSlowVoteWriteBlocksNobodyElse(t *testing.T) {
	h := newHarness(t)
	h.store(client1, 10, 1, 0, "a")
	release := h.stallWrites(10)
	voted := make(chan error, 1)
	go func() { voted <- h.m.vote(client1, 10, &txnMeta{Oids: []proto.Oid{1}}) }()
	h.waitWriting(10)

	var a2, c3, a1 *answer
	within(t, "a store", func() { a2 = h.store(client2, 20, 2, 0, "b") })
	within(t, "a check", func() { c3 = h.check(client2, 20, 3, 0) })
	within(t, "a store of the voting transaction's oid", func() { a1 = h.store(client2, 30, 1, 0, "c") })
	within(t, "another vote", func() {
		if err := h.m.vote(client2, 20, &txnMeta{Oids: []proto.Oid{2}}); err != nil {
			t.Error(err)
		}
	})
	if a2.String() != "locked" || c3.String() != "locked" {
		t.Fatalf("store %v, check %v; want both locked", a2, c3)
	}
	if a1.done {
		t.Fatalf("store of oid 1 answered %v while its voted holder is not unlocked", a1)
	}
	release()
	if err := <-voted; err != nil {
		t.Fatal(err)
	}
	if len(h.db.temp[10]) != 1 {
		t.Fatalf("vote rows %v", h.db.temp[10])
	}
}

// An abort arriving while the vote writes releases the locks at once; the
// rows written by the vote are deleted when the write ends.
func TestAbortDuringVoteWrite(t *testing.T) {
	h := newHarness(t)
	h.store(client1, 10, 1, 0, "a")
	release := h.stallWrites(10)
	voted := make(chan error, 1)
	go func() { voted <- h.m.vote(client1, 10, &txnMeta{Oids: []proto.Oid{1}}) }()
	h.waitWriting(10)
	within(t, "the abort", func() {
		if err := h.m.abort(10); err != nil {
			t.Error(err)
		}
	})
	var a *answer
	within(t, "a store of the aborted transaction's oid", func() { a = h.store(client2, 20, 1, 0, "b") })
	if a.String() != "locked" {
		t.Fatalf("store after abort: %v, want locked", a)
	}
	release()
	if err := <-voted; err != nil {
		t.Fatal(err)
	}
	h.db.mu.Lock()
	defer h.db.mu.Unlock()
	if _, ok := h.db.temp[10]; ok {
		t.Fatalf("rows of the aborted vote left: %v", h.db.temp[10])
	}
	if _, ok := h.db.meta[10]; ok {
		t.Fatal("metadata of the aborted vote left")
	}
}

// While a lock or an unlock waits for the disk, other transactions go on;
// reads of the locked oids wait for the unlock to be written.
func TestSlowLockAndUnlockWrites(t *testing.T) {
	h := newHarness(t)
	h.store(client1, 10, 1, 0, "a")
	if err := h.m.vote(client1, 10, &txnMeta{Oids: []proto.Oid{1}}); err != nil {
		t.Fatal(err)
	}
	release := h.stallWrites(10)
	locked := make(chan error, 1)
	go func() { locked <- h.m.lockTxn(10, 11, false) }()
	h.waitWriting(10)
	within(t, "a store during a lock write", func() { h.store(client2, 20, 2, 0, "b") })
	release()
	if err := <-locked; err != nil {
		t.Fatal(err)
	}

	release = h.stallWrites(10)
	unlocked := make(chan error, 1)
	go func() { unlocked <- h.m.unlockTxn(10) }()
	h.waitWriting(10)
	read := make(chan struct{})
	within(t, "a store during an unlock write", func() { h.store(client2, 20, 3, 0, "c") })
	within(t, "a read request during an unlock write", func() {
		h.m.whenReadable(1, nil, func() { close(read) })
	})
	select {
	case <-read:
		t.Fatal("oid 1 read before its unlock was written")
	default:
	}
	release()
	if err := <-unlocked; err != nil {
		t.Fatal(err)
	}
	select {
	case <-read:
	case <-time.After(10 * time.Second):
		t.Fatal("read of oid 1 not run after the unlock")
	}
}
