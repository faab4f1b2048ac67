package storage

// Transaction manager: the storage side of the two-phase commit (cluster.md
// §6.3, §6.4, §6.6). It keeps, per transaction being committed, what was
// stored and checked, and, for the node, the write locks (oid -> ttid), the
// read locks (oid -> ttid between lock and unlock) and the queues of
// requests that cannot be answered yet.
//
// Locking rules, in short:
//
//	younger waits for older:      T2 (bigger ttid) asks oid held by T1 -> delayed
//	everybody waits for voted:    holder has voted                     -> delayed
//	older vs. younger unvoted:    T1 asks oid held by T2 -> T2's client gets
//	                              NotifyDeadlock(T2, oid) once, T1 is delayed;
//	                              T2 answers with AskRelockObject, which releases
//	                              the lock and queues T2 again behind T1.
//
// Delayed requests are re-run in ttid order each time some lock is released
// (unlock, abort, relock, discarded partition), exactly as if they had just
// arrived; reads delayed by read locks are re-run after every unlock/abort.
//
// The manager does not talk to the network: answers and NotifyDeadlock
// are returned through callbacks that run after the manager's mutex is
// released. Callbacks of successive critical sections run in the order of
// those sections (see deliver), so a client receives answers and
// notifications in the order the lock table decided them; they must not
// block (links' non-blocking Post) nor call the manager.

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/neogo/neo/proto"
)

// dataID identifies a row of the data table. noData stands for "no data"
// (a deletion, or an undo of an object creation).
type dataID int64

const noData dataID = -1

// Hash is a SHA-1 checksum as carried by AskStoreObject / AnswerObject.
type Hash = [20]byte

// ZeroHash is the checksum of "no data".
var ZeroHash Hash

// objectData is a record's data as it travels on the wire.
type objectData struct {
	Compression uint8
	Checksum    Hash
	Data        []byte
}

// tempObject is an object revision stored by a transaction, as written to
// the temporary object table at vote.
type tempObject struct {
	Oid        proto.Oid
	Data       dataID
	DataSerial proto.Tid // proto.InvalidTid if not an undo back-pointer
}

// txnMeta is the transaction metadata received with AskStoreTransaction.
type txnMeta struct {
	User, Description, Extension []byte
	Oids                         []proto.Oid
	// Pack is the pack order carried by the transaction, nil if none.
	Pack *packOrder
}

// packOrder is a pack request attached to a transaction (§8.7).
type packOrder struct {
	Oids    []proto.Oid // nil: full pack
	Partial bool
	PackTid proto.Tid
}

// errNonReadable is returned by [txnDB.lastObjectTID] when the partition of
// the oid is not readable on this node.
var errNonReadable = errors.New("storage: partition not readable")

// txnDB is what the transaction manager needs from the database. It is
// safe for concurrent use. storeTransaction, lockTransaction,
// unlockTransaction and abortTransaction write to disk and may wait for
// it (a sync): the manager calls them without its mutex held, so that a
// slow disk delays the transactions that write, not every request.
type txnDB interface {
	// lastObjectTID returns the greatest committed serial of oid, ok=false
	// if oid has no record, errNonReadable if its partition is not
	// readable here.
	lastObjectTID(oid proto.Oid) (tid proto.Tid, ok bool, err error)
	// holdData writes a data row (not committed) and returns its id, or
	// noData for an empty record. dataSerial (or InvalidTid) is the undo
	// target whose data is reused; proto.ErrUndoPack if it was packed away.
	holdData(oid proto.Oid, d objectData, empty bool, dataSerial proto.Tid) (dataID, error)
	// loadData reads a data row back (relock conflict answers).
	loadData(id dataID) (objectData, error)
	// releaseData drops in-memory references to data rows taken by
	// holdData, deleting rows that nothing references any more.
	releaseData(ids []dataID) error
	// storeTransaction writes the temporary object rows and, if meta is
	// not nil, the temporary transaction row (tid unset) and its pack order.
	storeTransaction(ttid proto.Tid, objs []tempObject, meta *txnMeta) error
	// lockTransaction records the final tid of a voted transaction whose
	// metadata is on this node, approving its pack order if asked.
	lockTransaction(tid, ttid proto.Tid, approvePack bool) error
	// unlockTransaction moves the temporary rows of ttid to the committed
	// tables with the final tid; metadata tells if the transaction row is here.
	unlockTransaction(tid, ttid proto.Tid, metadata bool, oids []proto.Oid, pack bool) error
	// abortTransaction deletes the temporary rows of ttid.
	abortTransaction(ttid proto.Tid) error
	// finalTID looks a committed transaction up by its ttid.
	finalTID(ttid proto.Tid) (proto.Tid, bool, error)
}

// txn is a transaction being committed, keyed by its ttid.
type txn struct {
	ttid   proto.Tid
	client proto.NodeID
	// serials: oid -> base serial, for every store and check.
	serials map[proto.Oid]proto.Tid
	// stores: oid -> what was stored (absent for checks).
	stores map[proto.Oid]tempObject
	// lockless: oids accepted without a write lock (replicating partition).
	lockless map[proto.Oid]bool
	// deadlock: oids for which NotifyDeadlock was sent to our client.
	deadlock map[proto.Oid]bool
	voted    int       // 0: not voted, 1: vote only, 2: vote with metadata
	tid      proto.Tid // final tid once locked, 0 before
	pack     bool      // carries a pack order
	born     time.Time
	// writing: the vote's rows are being written (without mu);
	// aborted: the transaction was aborted meanwhile, and the vote
	// deletes its rows once written.
	writing, aborted bool
}

func (t *txn) String() string {
	state := "not voted"
	switch {
	case t.tid != 0:
		state = "tid=" + t.tid.String()
	case t.voted != 0:
		state = "voted"
	}
	return fmt.Sprintf("txn %v (%v, %s)", t.ttid, t.client, state)
}

// lockResult is the outcome of lockObject when there is no conflict.
type lockResult int

const (
	lockTaken    lockResult = iota // write lock held by the transaction
	lockLockless                   // accepted without lock
	lockDelayed                    // must wait: retry when locks are released
)

// conflictError reports that the base serial is not the current one.
type conflictError struct{ current proto.Tid }

func (e *conflictError) Error() string { return "conflict with " + e.current.String() }

// errNotRegistered: the transaction is unknown (aborted meanwhile).
var errNotRegistered = errors.New("storage: transaction not registered")

// delayed is a request waiting for a lock to be released.
type delayed struct {
	key       proto.Tid   // ttid for write requests; 0 for reads
	run       func() bool // re-run under mu; true when answered
	cancelled func() bool // true when nobody waits for the answer any more
	since     time.Time
}

// Relocked is the answer to a relock that found a conflict.
type Relocked struct {
	Serial, Conflict proto.Tid
	Data             *objectData // nil for a check or a no-data store
}

// txnManager is owned by a mutex: every method locks mu, and answers are
// collected while it is held and delivered after it is released.
type txnManager struct {
	db             txnDB
	log            *slog.Logger
	partition      func(oid proto.Oid) uint32
	readable       func(partition uint32) bool
	notifyDeadlock func(client proto.NodeID, ttid proto.Tid, oid proto.Oid)
	now            func() time.Time
	conflicts      *atomic.Uint64 // counts conflicts found, if not nil

	mu struct {
		sync.Mutex
		txns        map[proto.Tid]*txn
		writeLocks  map[proto.Oid]proto.Tid
		readLocks   map[proto.Oid]proto.Tid
		replicating map[uint32]bool
		replicated  map[uint32]bool // replicated, cell not readable yet
		queue       []*delayed      // write requests, sorted by key (stable)
		readQueue   []*delayed      // read requests, FIFO
		executing   int             // >0 while running queued requests
		post        []func()        // run after mu is released
		closed      bool
	}
	// deliver is taken before mu is released and held while the
	// callbacks of that critical section run: the client of a
	// transaction must see the answer that gave it a lock before the
	// NotifyDeadlock about that lock, and a relock's conflict before the
	// answer to the store that follows it, although different goroutines
	// decided them (neoppod's client asserts both).
	deliver sync.Mutex
}

// txnConfig configures a [txnManager].
type txnConfig struct {
	DB  txnDB
	Log *slog.Logger
	// Partition maps an oid to its partition.
	Partition func(oid proto.Oid) uint32
	// Readable tells whether this node has a readable cell of a partition.
	Readable func(partition uint32) bool
	// NotifyDeadlock sends NotifyDeadlock(ttid, oid) to a client. Called
	// without the manager's mutex held.
	NotifyDeadlock func(client proto.NodeID, ttid proto.Tid, oid proto.Oid)
	// Now is the clock used to report slow requests (time.Now if nil).
	Now func() time.Time
	// Conflicts, if not nil, counts the conflicts found (metrics).
	Conflicts *atomic.Uint64
}

func newTxnManager(cfg txnConfig) *txnManager {
	m := &txnManager{
		db:             cfg.DB,
		log:            cfg.Log,
		partition:      cfg.Partition,
		readable:       cfg.Readable,
		notifyDeadlock: cfg.NotifyDeadlock,
		now:            cfg.Now,
		conflicts:      cfg.Conflicts,
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.now == nil {
		m.now = time.Now
	}
	m.mu.txns = make(map[proto.Tid]*txn)
	m.mu.writeLocks = make(map[proto.Oid]proto.Tid)
	m.mu.readLocks = make(map[proto.Oid]proto.Tid)
	m.mu.replicating = make(map[uint32]bool)
	m.mu.replicated = make(map[uint32]bool)
	return m
}

func (m *txnManager) lock() { m.mu.Lock() }

// unlock releases mu then runs the callbacks collected meanwhile, after
// those of the critical sections before.
func (m *txnManager) unlock() {
	post := m.mu.post
	if len(post) == 0 {
		m.mu.Unlock()
		return
	}
	m.mu.post = nil
	m.deliver.Lock()
	m.mu.Unlock()
	for _, f := range post {
		f()
	}
	m.deliver.Unlock()
}

// later schedules f to run once mu is released.
func (m *txnManager) later(f func()) { m.mu.post = append(m.mu.post, f) }

// register creates the transaction if unknown.
func (m *txnManager) register(client proto.NodeID, ttid proto.Tid) *txn {
	t := m.mu.txns[ttid]
	if t == nil {
		t = &txn{
			ttid:     ttid,
			client:   client,
			serials:  make(map[proto.Oid]proto.Tid),
			stores:   make(map[proto.Oid]tempObject),
			lockless: make(map[proto.Oid]bool),
			deadlock: make(map[proto.Oid]bool),
			born:     m.now(),
		}
		m.mu.txns[ttid] = t
	}
	return t
}

// lockObject takes the write lock of oid for t, checking that serial is the
// current serial (§6.4). It returns a *conflictError on conflict and
// errNonReadable if the partition is neither readable nor replicating.
func (m *txnManager) lockObject(t *txn, serial proto.Tid, oid proto.Oid) (lockResult, error) {
	if m.mu.replicating[m.partition(oid)] {
		// We may lack data to check conflicts and may have missed locks:
		// a readable cell of the partition does the checking.
		t.lockless[oid] = true
		return lockLockless, nil
	}
	var current proto.Tid
	var haveCurrent bool
	if holder, ok := m.mu.writeLocks[oid]; ok {
		h := m.mu.txns[holder]
		if holder < t.ttid || h.voted != 0 {
			// Younger waits for older; everybody waits for a voted
			// holder (no deadlock possible, it will not store again).
			return lockDelayed, nil
		}
		if t.lockless[oid] {
			// Lockless store retried after a conflict: the current lock
			// only delays new transactions; a readable cell checks us.
			return lockLockless, nil
		}
		if h != t {
			// We are older than an unvoted holder: possible deadlock.
			if h.lockless[oid] {
				t.lockless[oid] = true
				return lockLockless, nil
			}
			if !h.deadlock[oid] {
				h.deadlock[oid] = true
				m.log.Info("deadlock avoidance", "oid", oid, "ttid", t.ttid, "holder", holder)
				client, ttid := h.client, h.ttid
				m.later(func() { m.notifyDeadlock(client, ttid, oid) })
			}
			return lockDelayed, nil
		}
		// Same transaction storing oid again: if the previous store was
		// an undo, the new one is based on its target.
		prev := t.stores[oid].DataSerial
		if _, stored := t.stores[oid]; !stored || prev == proto.InvalidTid {
			return lockTaken, nil
		}
		current, haveCurrent = prev, true
	} else {
		if p := m.partition(oid); !m.readable(p) && !m.mu.replicated[p] {
			// Not assigned to us yet, or discarded: a readable cell
			// of the partition does the checking.
			return 0, errNonReadable
		}
		var err error
		current, haveCurrent, err = m.db.lastObjectTID(oid)
		if err != nil {
			return 0, err
		}
	}
	if haveCurrent && current != serial {
		m.log.Info("conflict", "oid", oid, "ttid", t.ttid, "serial", serial, "current", current)
		if m.conflicts != nil {
			m.conflicts.Add(1)
		}
		return 0, &conflictError{current}
	}
	m.mu.writeLocks[oid] = t.ttid
	return lockTaken, nil
}

// storeReq is an AskStoreObject.
type storeReq struct {
	Client     proto.NodeID
	TTID       proto.Tid
	Oid        proto.Oid
	Serial     proto.Tid
	Data       objectData
	Empty      bool      // no data: ZERO_HASH and empty bytes
	DataSerial proto.Tid // InvalidTid if none
}

// storeObject processes an AskStoreObject. done receives the answer:
// InvalidTid (stored and locked), ZeroTid (stored without lock, or
// ignored) or the conflicting serial; or an error (proto.ErrUndoPack, DB
// failure). done runs without the manager's mutex, possibly later from
// another goroutine; cancelled tells when the request's link is gone.
func (m *txnManager) storeObject(r storeReq, cancelled func() bool, done func(proto.Tid, error)) {
	m.lock()
	defer m.unlock()
	m.register(r.Client, r.TTID)
	m.attempt(r.TTID, cancelled, func() (bool, proto.Tid, error) {
		return m.tryStore(r)
	}, done)
}

// attempt runs try now, and again each time locks are released while it
// reports a delay. Must be called with mu held.
func (m *txnManager) attempt(key proto.Tid, cancelled func() bool, try func() (bool, proto.Tid, error), done func(proto.Tid, error)) {
	run := func() bool {
		ok, res, err := try()
		if !ok {
			return false
		}
		m.later(func() { done(res, err) })
		return true
	}
	if run() {
		return
	}
	m.enqueue(&delayed{key: key, run: run, cancelled: cancelled, since: m.now()})
}

func (m *txnManager) enqueue(d *delayed) {
	if m.mu.closed {
		return
	}
	// Stable insertion after every request with a key <= d.key.
	i := sort.Search(len(m.mu.queue), func(i int) bool { return m.mu.queue[i].key > d.key })
	m.mu.queue = slices.Insert(m.mu.queue, i, d)
}

// tryStore returns ok=false when the store must be delayed.
func (m *txnManager) tryStore(r storeReq) (ok bool, res proto.Tid, err error) {
	t := m.mu.txns[r.TTID]
	if t == nil {
		m.log.Info("forget store of aborted transaction", "oid", r.Oid, "ttid", r.TTID)
		return true, proto.ZeroTid, nil
	}
	lr, err := m.lockObject(t, r.Serial, r.Oid)
	var cerr *conflictError
	switch {
	case errors.As(err, &cerr):
		return true, cerr.current, nil
	case errors.Is(err, errNonReadable):
		m.log.Info("ignore store: unassigned partition", "oid", r.Oid, "ttid", r.TTID)
		return true, proto.ZeroTid, nil
	case err != nil:
		return true, 0, err
	case lr == lockDelayed:
		return false, 0, nil
	}
	if _, ok := t.serials[r.Oid]; ok {
		// Stored before (lockless, or an undo followed by a resolution).
		if _, err := m.unstore(t, r.Oid); err != nil {
			return true, 0, err
		}
	}
	id, err := m.db.holdData(r.Oid, r.Data, r.Empty, r.DataSerial)
	if err != nil {
		// The lock, if just taken, stays until abort, like any other.
		return true, 0, err
	}
	t.serials[r.Oid] = r.Serial
	t.stores[r.Oid] = tempObject{Oid: r.Oid, Data: id, DataSerial: r.DataSerial}
	if lr == lockLockless {
		return true, proto.ZeroTid, nil
	}
	return true, proto.InvalidTid, nil
}

// checkCurrentSerial processes an AskCheckCurrentSerial; answers as storeObject.
func (m *txnManager) checkCurrentSerial(client proto.NodeID, ttid proto.Tid, oid proto.Oid, serial proto.Tid, cancelled func() bool, done func(proto.Tid, error)) {
	m.lock()
	defer m.unlock()
	m.register(client, ttid)
	m.attempt(ttid, cancelled, func() (bool, proto.Tid, error) {
		t := m.mu.txns[ttid]
		if t == nil {
			return true, proto.ZeroTid, nil
		}
		lr, err := m.lockObject(t, serial, oid)
		var cerr *conflictError
		switch {
		case errors.As(err, &cerr):
			return true, cerr.current, nil
		case errors.Is(err, errNonReadable):
			return true, proto.ZeroTid, nil
		case err != nil:
			return true, 0, err
		case lr == lockDelayed:
			return false, 0, nil
		}
		t.serials[oid] = serial
		if lr == lockLockless {
			return true, proto.ZeroTid, nil
		}
		return true, proto.InvalidTid, nil
	}, done)
}

// relockObject processes an AskRelockObject (§6.6): release the lock the
// transaction holds on oid, let older transactions go, then take it again.
// done gets nil (relocked, or nothing to relock) or the conflict with the
// data the client had stored.
func (m *txnManager) relockObject(ttid proto.Tid, oid proto.Oid, cancelled func() bool, done func(*Relocked, error)) {
	m.lock()
	defer m.unlock()
	t := m.mu.txns[ttid]
	if t == nil {
		m.log.Info("forget relock of aborted transaction", "oid", oid, "ttid", ttid)
		m.later(func() { done(nil, nil) })
		return
	}
	if _, ok := t.serials[oid]; !ok {
		m.log.Info("nothing to relock", "oid", oid, "ttid", ttid)
		m.later(func() { done(nil, nil) })
		return
	}
	if t.deadlock[oid] && m.mu.writeLocks[oid] == ttid {
		delete(t.deadlock, oid)
		delete(m.mu.writeLocks, oid)
		m.executeQueued()
	}
	var answer *Relocked
	var ansErr error
	run := func() bool {
		t := m.mu.txns[ttid]
		if t == nil {
			answer, ansErr = nil, nil
			return true
		}
		serial, ok := t.serials[oid]
		if !ok {
			answer, ansErr = nil, nil
			return true
		}
		lr, err := m.lockObject(t, serial, oid)
		var cerr *conflictError
		switch {
		case errors.As(err, &cerr):
			data, err := m.unstore(t, oid)
			answer, ansErr = &Relocked{Serial: serial, Conflict: cerr.current, Data: data}, err
		case errors.Is(err, errNonReadable):
			answer, ansErr = nil, nil
		case err != nil:
			answer, ansErr = nil, err
		case lr == lockDelayed:
			return false
		default:
			answer, ansErr = nil, nil
		}
		return true
	}
	wrapped := func() bool {
		if !run() {
			return false
		}
		a, e := answer, ansErr
		m.later(func() { done(a, e) })
		return true
	}
	if wrapped() {
		return
	}
	m.enqueue(&delayed{key: ttid, run: wrapped, cancelled: cancelled, since: m.now()})
}

// unstore forgets what t stored/checked for oid and returns the stored
// data (nil for a check or a no-data store).
func (m *txnManager) unstore(t *txn, oid proto.Oid) (*objectData, error) {
	delete(t.serials, oid)
	o, ok := t.stores[oid]
	if !ok {
		return nil, nil
	}
	delete(t.stores, oid)
	if o.Data == noData {
		return nil, nil
	}
	d, err := m.db.loadData(o.Data)
	if err != nil {
		return nil, fmt.Errorf("unstore oid %v of %v: %w", oid, t.ttid, err)
	}
	if err := m.db.releaseData([]dataID{o.Data}); err != nil {
		return nil, fmt.Errorf("unstore oid %v of %v: %w", oid, t.ttid, err)
	}
	return &d, nil
}

// executeQueued re-runs the delayed write requests in ttid order. It is not
// reentrant: a nested call makes the running one restart from the beginning.
func (m *txnManager) executeQueued() {
	if len(m.mu.queue) == 0 {
		return
	}
	m.mu.executing++
	if m.mu.executing > 1 {
		return
	}
	for {
		restart := false
		for i := 0; i < len(m.mu.queue); {
			d := m.mu.queue[i]
			if d.cancelled != nil && d.cancelled() {
				m.mu.queue = slices.Delete(m.mu.queue, i, i+1)
				continue
			}
			if d.run() {
				m.mu.queue = slices.Delete(m.mu.queue, i, i+1)
				if dt := m.now().Sub(d.since); dt > 2*time.Second {
					m.log.Info("slow store", "ttid", d.key, "delay", dt)
				}
			} else {
				i++
			}
			if m.mu.executing > 1 {
				restart = true
				break
			}
		}
		if !restart {
			break
		}
		m.mu.executing = 1
	}
	m.mu.executing = 0
}

// executeReads re-runs the delayed reads.
func (m *txnManager) executeReads() {
	q := m.mu.readQueue
	m.mu.readQueue = nil
	for _, d := range q {
		if d.cancelled != nil && d.cancelled() {
			continue
		}
		if !d.run() {
			m.mu.readQueue = append(m.mu.readQueue, d)
		}
	}
}

// whenReadable runs read (without the mutex) once oid is not read-locked
// by a transaction between lock and unlock (§6.4 reads).
func (m *txnManager) whenReadable(oid proto.Oid, cancelled func() bool, read func()) {
	m.whenRead(func() bool { _, locked := m.mu.readLocks[oid]; return !locked }, cancelled, read)
}

// whenTidUnlocked runs read once no locked transaction has tid <= maxTid
// (AskTIDsFrom, AskOIDsFrom, replication sources).
func (m *txnManager) whenTidUnlocked(maxTid proto.Tid, cancelled func() bool, read func()) {
	m.whenRead(func() bool { return !m.isLockedTid(maxTid) }, cancelled, read)
}

func (m *txnManager) whenRead(ready func() bool, cancelled func() bool, read func()) {
	m.lock()
	if ready() {
		m.unlock()
		read() // may block on the database: not a callback
		return
	}
	defer m.unlock()
	// Once delayed, the read runs in its own goroutine: the goroutine
	// releasing the locks (the master link's) must not do client I/O.
	run := func() bool {
		if !ready() {
			return false
		}
		m.later(func() { go read() })
		return true
	}
	if !m.mu.closed {
		m.mu.readQueue = append(m.mu.readQueue, &delayed{run: run, cancelled: cancelled, since: m.now()})
	}
}

func (m *txnManager) isLockedTid(tid proto.Tid) bool {
	for _, t := range m.mu.txns {
		if t.tid != 0 && t.tid <= tid {
			return true
		}
	}
	return false
}

// maxOids is the limit of oids per transaction (MySQL MEDIUMBLOB).
const maxOids = 1 << 21

// startVote processes AskStoreTransaction (meta != nil: this node holds
// the metadata) and AskVoteTransaction: the transaction is voted for the
// lock table at once, and write writes its temporary rows; the caller
// answers the client once write returns. write may run in another
// goroutine: an abort meanwhile is handled.
func (m *txnManager) startVote(client proto.NodeID, ttid proto.Tid, meta *txnMeta) (write func() error, err error) {
	m.lock()
	if meta != nil {
		m.register(client, ttid)
	}
	t := m.mu.txns[ttid]
	if t == nil {
		m.unlock()
		return nil, fmt.Errorf("%w: unknown ttid %v", proto.ErrProtocol, ttid)
	}
	if meta != nil {
		if len(meta.Oids) >= maxOids || (meta.Pack != nil && len(meta.Pack.Oids) >= maxOids) {
			m.unlock()
			return nil, fmt.Errorf("%w: Too many modified OIDs (the default storage backend has a limitation of 2^21-1)", proto.ErrProtocol)
		}
		t.voted = 2
		t.pack = meta.Pack != nil
	} else {
		t.voted = 1
	}
	objs := make([]tempObject, 0, len(t.stores))
	for _, o := range t.stores {
		objs = append(objs, o)
	}
	slices.SortFunc(objs, func(a, b tempObject) int { return cmp.Compare(a.Oid, b.Oid) })
	// Requests delayed behind us were delayed because we had not voted;
	// they still wait (voted holders are waited for), nothing to re-run.
	t.writing = true
	m.unlock()
	return func() error {
		err := m.db.storeTransaction(ttid, objs, meta) // names the vote and its ttid on error
		m.lock()
		t.writing = false
		aborted := t.aborted
		m.unlock()
		if aborted {
			return m.dropRows(ttid, dataIDs(objs))
		}
		return err
	}, nil
}

// lockTxn processes AskLockInformation at once: beginLock, then persist.
func (m *txnManager) lockTxn(ttid, tid proto.Tid, approvePack bool) error {
	persist, err := m.beginLock(ttid, tid, approvePack)
	if err != nil || persist == nil {
		return err
	}
	return persist()
}

// beginLock processes AskLockInformation: the transaction gets its final
// tid and its stored oids are read-locked at once; if this node holds its
// metadata, the returned persist (else nil) commits the final tid to disk,
// which the caller awaits before it answers. Until persist returns, the
// caller must not hand the manager anything but other locks and unlocks
// of locks answered.
func (m *txnManager) beginLock(ttid, tid proto.Tid, approvePack bool) (persist func() error, err error) {
	m.lock()
	t := m.mu.txns[ttid]
	switch {
	case t == nil:
		err = fmt.Errorf("%w: unknown ttid %v", proto.ErrProtocol, ttid)
	case t.tid != 0:
		err = fmt.Errorf("%w: %v already locked with tid %v", proto.ErrProtocol, ttid, t.tid)
	case tid < ttid:
		err = fmt.Errorf("%w: final tid %v < ttid %v", proto.ErrProtocol, tid, ttid)
	}
	if err != nil {
		m.unlock()
		return nil, err
	}
	t.tid = tid
	for oid := range t.stores {
		m.mu.readLocks[oid] = ttid
	}
	metadata := t.voted == 2
	m.unlock()
	if !metadata {
		return nil, nil
	}
	// Locked: nothing else changes t until its unlock, which the master
	// sends after our answer.
	return func() error {
		if err := m.db.lockTransaction(tid, ttid, approvePack); err != nil {
			// Not durable (a database server gone away): the transaction
			// is not locked here, and AskFinalTID must not say it is, or a
			// client would take as committed what verification drops.
			m.lock()
			t.tid = 0
			for oid := range t.stores {
				if m.mu.readLocks[oid] == ttid {
					delete(m.mu.readLocks, oid)
				}
			}
			m.executeReads()
			m.unlock()
			return fmt.Errorf("lock %v: %w", ttid, err)
		}
		return nil
	}, nil
}

// unlockTxn processes NotifyUnlockInformation: the transaction is committed
// by the cluster; its rows become committed (commit deferred <= 1 s, the
// metadata in ttrans makes it recoverable) and its locks are released.
func (m *txnManager) unlockTxn(ttid proto.Tid) error {
	m.lock()
	t := m.mu.txns[ttid]
	if t == nil {
		m.unlock()
		return fmt.Errorf("%w: unknown ttid %v", proto.ErrProtocol, ttid)
	}
	if t.tid == 0 {
		m.unlock()
		return fmt.Errorf("%w: unlock of %v which is not locked", proto.ErrProtocol, ttid)
	}
	oids := make([]proto.Oid, 0, len(t.stores))
	objs := make([]tempObject, 0, len(t.stores))
	for oid, o := range t.stores {
		oids = append(oids, oid)
		objs = append(objs, o)
	}
	slices.Sort(oids)
	tid, metadata, pack := t.tid, t.voted == 2, t.pack
	m.unlock()
	// The transaction keeps its locks while its rows are committed: a
	// read of its oids waits for them.
	if err := m.db.unlockTransaction(tid, ttid, metadata, oids, pack); err != nil {
		return fmt.Errorf("unlock %v: %w", ttid, err)
	}
	// The committed rows now reference the data: drop our holds only.
	if err := m.db.releaseData(dataIDs(objs)); err != nil {
		return fmt.Errorf("unlock %v: %w", ttid, err)
	}
	m.lock()
	defer m.unlock()
	m.forget(t)
	return nil
}

// dataIDs lists the data rows that objs hold.
func dataIDs(objs []tempObject) []dataID {
	ids := make([]dataID, 0, len(objs))
	for _, o := range objs {
		if o.Data != noData {
			ids = append(ids, o.Data)
		}
	}
	return ids
}

// abort processes AbortTransaction: a transaction that is not locked loses
// its temporary rows and locks. Aborting a locked or unknown one is a no-op.
func (m *txnManager) abort(ttid proto.Tid) error {
	m.lock()
	drop := m.abortLocked(ttid)
	m.unlock()
	return drop()
}

// abortLocked forgets a transaction that is not locked, releasing its
// locks at once; it returns what deletes its rows, to call once mu is
// released. Rows that a vote is writing are deleted by that vote.
func (m *txnManager) abortLocked(ttid proto.Tid) (drop func() error) {
	t := m.mu.txns[ttid]
	if t == nil || t.tid != 0 {
		return func() error { return nil }
	}
	m.log.Debug("abort", "ttid", ttid)
	objs := make([]tempObject, 0, len(t.stores))
	for _, o := range t.stores {
		objs = append(objs, o)
	}
	m.forget(t)
	if t.writing {
		t.aborted = true
		return func() error { return nil }
	}
	return func() error { return m.dropRows(ttid, dataIDs(objs)) }
}

// dropRows deletes the temporary rows of an aborted transaction and its
// holds on data. Called without mu.
func (m *txnManager) dropRows(ttid proto.Tid, ids []dataID) error {
	if err := m.db.abortTransaction(ttid); err != nil {
		return fmt.Errorf("abort %v: %w", ttid, err)
	}
	if err := m.db.releaseData(ids); err != nil {
		return fmt.Errorf("abort %v: %w", ttid, err)
	}
	return nil
}

// forget releases t's locks, removes it and re-runs delayed requests.
func (m *txnManager) forget(t *txn) {
	for oid := range t.serials {
		if m.mu.readLocks[oid] == t.ttid {
			delete(m.mu.readLocks, oid)
		}
		// A lock held by another transaction (lockless stores) stays.
		if h, ok := m.mu.writeLocks[oid]; ok && h == t.ttid {
			delete(m.mu.writeLocks, oid)
		}
	}
	delete(m.mu.txns, t.ttid)
	m.executeReads()
	m.executeQueued()
}

// abortFor aborts the transactions of a client: non-voted ones when its
// connection closed, every non-locked one when the master says it is gone.
func (m *txnManager) abortFor(client proto.NodeID, evenIfVoted bool) error {
	m.lock()
	var ttids []proto.Tid
	for ttid, t := range m.mu.txns {
		if t.client == client && (evenIfVoted || t.voted == 0) {
			ttids = append(ttids, ttid)
		}
	}
	slices.Sort(ttids)
	drops := make([]func() error, 0, len(ttids))
	for _, ttid := range ttids {
		drops = append(drops, m.abortLocked(ttid))
	}
	m.unlock()
	var errs []error
	for _, drop := range drops {
		errs = append(errs, drop())
	}
	return errors.Join(errs...)
}

// finalTID answers AskFinalTID: the in-memory final tid if the transaction
// is still known (InvalidTid if not locked yet), else the committed one.
func (m *txnManager) finalTID(ttid proto.Tid) (proto.Tid, error) {
	m.lock()
	defer m.unlock()
	if t := m.mu.txns[ttid]; t != nil {
		if t.tid == 0 {
			return proto.InvalidTid, nil
		}
		return t.tid, nil
	}
	tid, ok, err := m.db.finalTID(ttid)
	if err != nil {
		return 0, err
	}
	if !ok {
		return proto.InvalidTid, nil
	}
	return tid, nil
}

// discarded drops what pending transactions hold in partitions this node
// no longer has (cell DISCARDED), then lets delayed requests go.
func (m *txnManager) discarded(partitions []uint32) error {
	m.lock()
	defer m.unlock()
	drop := make(map[uint32]bool, len(partitions))
	for _, p := range partitions {
		drop[p] = true
		delete(m.mu.replicating, p)
		delete(m.mu.replicated, p)
	}
	for oid := range m.mu.writeLocks {
		if drop[m.partition(oid)] {
			delete(m.mu.writeLocks, oid)
		}
	}
	for oid := range m.mu.readLocks {
		if drop[m.partition(oid)] {
			delete(m.mu.readLocks, oid)
		}
	}
	var ids []dataID
	for _, t := range m.mu.txns {
		for oid := range t.serials {
			if !drop[m.partition(oid)] {
				continue
			}
			delete(t.serials, oid)
			delete(t.lockless, oid)
			if o, ok := t.stores[oid]; ok {
				delete(t.stores, oid)
				if o.Data != noData {
					ids = append(ids, o.Data)
				}
			}
		}
	}
	// Their temporary rows stay until the transactions end
	// (DropUnfinishedData at the next operation start at the latest).
	if err := m.db.releaseData(ids); err != nil {
		return err
	}
	m.executeQueued()
	m.executeReads()
	return nil
}

// setReplicating marks partitions whose cell is being replicated here:
// stores to them are accepted without lock (§8.5).
func (m *txnManager) setReplicating(partitions []uint32) {
	m.lock()
	defer m.unlock()
	for _, p := range partitions {
		m.mu.replicating[p] = true
		delete(m.mu.replicated, p)
	}
}

// replicated tells that partition p is replicated (§8.5 step 6): stores to
// it take locks and check conflicts again, and the lockless stores of
// pending transactions become real write locks, so that a transaction
// storing after them waits for their unlock instead of checking against a
// serial this node has not committed yet. It reports whether the master
// may be told (NotifyReplicationDone): not while two pending transactions
// stored the same oid locklessly; call it again when transactions end.
func (m *txnManager) replicated(p uint32) bool {
	m.lock()
	defer m.unlock()
	delete(m.mu.replicating, p)
	m.mu.replicated[p] = true
	// In ttid order: an oid stored locklessly by several transactions is
	// locked by the youngest, which delays new transactions.
	ready := true
	for _, ttid := range slices.Sorted(maps.Keys(m.mu.txns)) {
		t := m.mu.txns[ttid]
		for oid := range t.lockless {
			if m.partition(oid) != p {
				continue
			}
			if h, ok := m.mu.writeLocks[oid]; ok && h != ttid {
				ready = false
			}
			m.mu.writeLocks[oid] = ttid
		}
	}
	if !ready {
		return false
	}
	// Each lockless store is now checked against the replicated data;
	// one that conflicts is dropped: a readable cell reported it.
	for _, ttid := range slices.Sorted(maps.Keys(m.mu.txns)) {
		t := m.mu.txns[ttid]
		for _, oid := range slices.Sorted(maps.Keys(t.lockless)) {
			if m.partition(oid) != p {
				continue
			}
			delete(t.lockless, oid)
			if m.mu.writeLocks[oid] == ttid {
				delete(m.mu.writeLocks, oid)
			}
			_, err := m.lockObject(t, t.serials[oid], oid)
			var cerr *conflictError
			switch {
			case errors.As(err, &cerr):
				m.log.Info("replicated: drop conflicting lockless store", "oid", oid, "ttid", ttid, "current", cerr.current)
				if _, err := m.unstore(t, oid); err != nil {
					m.log.Error("replicated: drop lockless store", "oid", oid, "ttid", ttid, "err", err)
				}
			case err != nil:
				m.log.Error("replicated: lock lockless store", "oid", oid, "ttid", ttid, "err", err)
			}
		}
	}
	m.executeQueued()
	return true
}

// lockedTransactions lists the transactions this manager knows with their
// final tid (InvalidTid if not locked), for debugging and tests.
func (m *txnManager) pending() map[proto.Tid]proto.Tid {
	m.lock()
	defer m.unlock()
	r := make(map[proto.Tid]proto.Tid, len(m.mu.txns))
	for ttid, t := range m.mu.txns {
		if t.tid == 0 {
			r[ttid] = proto.InvalidTid
		} else {
			r[ttid] = t.tid
		}
	}
	return r
}

// close drops every delayed request: their answers will never come (the
// node leaves operation and closes client connections).
func (m *txnManager) close() {
	m.lock()
	defer m.unlock()
	m.mu.closed = true
	m.mu.queue = nil
	m.mu.readQueue = nil
}

// storedInTxn returns, for each oid stored by transaction ttid, the serial
// an undo in that transaction sees as current: the undo target of its own
// undo store, else the ttid (AskObjectUndoSerial).
func (m *txnManager) storedInTxn(ttid proto.Tid) map[proto.Oid]proto.Tid {
	m.lock()
	defer m.unlock()
	t := m.mu.txns[ttid]
	if t == nil {
		return nil
	}
	r := make(map[proto.Oid]proto.Tid, len(t.stores))
	for oid, o := range t.stores {
		if o.DataSerial != proto.InvalidTid {
			r[oid] = o.DataSerial
		} else {
			r[oid] = ttid
		}
	}
	return r
}

// maxLockedTid returns the greatest final tid of the transactions locked
// now (ZeroTid if none): waiting for it with whenTidUnlocked waits for
// them only, not for transactions locked later.
func (m *txnManager) maxLockedTid() proto.Tid {
	m.lock()
	defer m.unlock()
	var r proto.Tid
	for _, t := range m.mu.txns {
		r = max(r, t.tid)
	}
	return r
}

// isLockedTidNow reports whether a locked transaction has tid <= tid.
func (m *txnManager) isLockedTidNow(tid proto.Tid) bool {
	m.lock()
	defer m.unlock()
	return m.isLockedTid(tid)
}

// TxnInfo is a transaction being committed on the node, for its state
// dump (SIGRTMIN+2).
type TxnInfo struct {
	TTid   proto.Tid
	Tid    proto.Tid // final tid once locked, 0 before
	Client proto.NodeID
	// State: "storing" (before the vote), "voted", "locked" (final tid
	// known, waiting for the unlock).
	State string
	Born  time.Time
	// Objects counts the objects stored or checked, Locks the write
	// locks held.
	Objects, Locks int
}

// snapshot returns the transactions being committed, by ttid.
func (m *txnManager) snapshot() []TxnInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	locks := map[proto.Tid]int{}
	for _, ttid := range m.mu.writeLocks {
		locks[ttid]++
	}
	out := make([]TxnInfo, 0, len(m.mu.txns))
	for _, t := range m.mu.txns {
		i := TxnInfo{TTid: t.ttid, Tid: t.tid, Client: t.client, State: "storing", Born: t.born,
			Objects: len(t.serials), Locks: locks[t.ttid]}
		switch {
		case t.tid != 0:
			i.State = "locked"
		case t.voted != 0:
			i.State = "voted"
		}
		out = append(out, i)
	}
	slices.SortFunc(out, func(a, b TxnInfo) int { return cmp.Compare(a.TTid, b.TTid) })
	return out
}
