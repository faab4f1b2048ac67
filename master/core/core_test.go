package core

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/neogo/neo/proto"
)

// fakeClock advances by 1 ms on each reading, so that tids and
// timestamps are deterministic.
type fakeClock struct{ t time.Time }

func (f *fakeClock) now() time.Time {
	f.t = f.t.Add(time.Millisecond)
	return f.t
}

// harness drives a Machine with scripted peers, without sockets.
type harness struct {
	t     testing.TB
	c     *Machine
	clock *fakeClock
	all   []Effect // every effect so far
	next  ConnID
	msgID uint32
	out   []Effect // effects of the last step
}

func newHarness(t testing.TB, mod func(*Config)) *harness {
	t.Helper()
	clock := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	cfg := Config{Cluster: "test", Bind: proto.Addr{Host: "127.0.0.1", Port: 10000},
		Partitions: 4, Replicas: 1, Now: clock.now}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, c: c, clock: clock}
}

func (h *harness) step(ev Event) []Effect {
	h.out = h.c.Step(ev)
	h.all = append(h.all, h.out...)
	return h.out
}

// recv sends a packet from conn and returns the effects.
func (h *harness) recv(cn ConnID, m proto.Msg) []Effect {
	h.msgID++
	return h.step(Recv{Conn: cn, MsgID: h.msgID, Msg: m})
}

// identify opens a new link and identifies a node on it.
func (h *harness) identify(t proto.NodeType, nid proto.NodeID, port uint16, extra proto.Dict) (ConnID, proto.NodeID) {
	h.t.Helper()
	h.next++
	cn := h.next
	var addr proto.Addr
	if port != 0 {
		addr = proto.Addr{Host: "127.0.0.1", Port: port}
	}
	h.recv(cn, &proto.RequestIdentification{NodeType: t, NID: nid, Addr: addr, ClusterName: "test", Extra: extra})
	acc, ok := find[*proto.AcceptIdentification](h.out, cn)
	if !ok {
		h.t.Fatalf("identification of %v refused: %v", t, h.out)
	}
	return cn, acc.YourNID
}

// find returns the first message of type T sent to conn in effects.
func find[T proto.Msg](effects []Effect, cn ConnID) (T, bool) {
	for _, e := range effects {
		if m, ok := e.Msg.(T); ok && e.Conn == cn {
			return m, true
		}
	}
	var zero T
	return zero, false
}

// asks returns the Ask effects of type T, by conn.
func asks[T proto.Msg](effects []Effect) map[ConnID]Effect {
	out := map[ConnID]Effect{}
	for _, e := range effects {
		if _, ok := e.Msg.(T); ok && e.Kind == Ask {
			out[e.Conn] = e
		}
	}
	return out
}

func mustFind[T proto.Msg](t testing.TB, effects []Effect, cn ConnID) T {
	t.Helper()
	m, ok := find[T](effects, cn)
	if !ok {
		var zero T
		t.Fatalf("no %T to c%d in:\n%s", zero, cn, dump(effects))
	}
	return m
}

func dump(effects []Effect) string {
	var b strings.Builder
	for _, e := range effects {
		fmt.Fprintf(&b, "  %v\n", e)
	}
	return b.String()
}

// answerAll answers every Ask of type Req with the answer made by f.
func (h *harness) answerAll(effects []Effect, f func(cn ConnID, req proto.Msg) proto.Msg) []Effect {
	var out []Effect
	for _, e := range effects {
		if e.Kind == Ask {
			if a := f(e.Conn, e.Msg); a != nil {
				out = append(out, h.step(Answer{Conn: e.Conn, Tag: e.Tag, Msg: a})...)
			}
		}
	}
	return out
}

// emptyStorage answers the master's requests like a new storage.
func emptyStorage(_ ConnID, req proto.Msg) proto.Msg {
	switch req.(type) {
	case *proto.AskRecovery:
		return &proto.AnswerRecovery{BackupTid: proto.InvalidTid, TruncateTid: proto.InvalidTid}
	case *proto.AskLockedTransactions:
		return &proto.AnswerLockedTransactions{}
	case *proto.AskLastIDs:
		return &proto.AnswerLastIDs{LastTid: proto.InvalidTid, LastOid: proto.InvalidOid, FirstTid: proto.MaxTid}
	case *proto.AskPackOrders:
		return &proto.AnswerPackOrders{}
	}
	return nil
}

// startCluster identifies n storages and runs the cluster to RUNNING with
// autostart (or neoctl start when autostart is 0, using an admin).
func (h *harness) startCluster(n int) (storages []ConnID, nids []proto.NodeID) {
	h.t.Helper()
	var effects []Effect
	for i := range n {
		cn, nid := h.identify(proto.STORAGE, 0, uint16(20000+i), proto.Dict{{Key: "devpath", Value: []proto.Value{}}})
		storages = append(storages, cn)
		nids = append(nids, nid)
		mustFind[*proto.AskRecovery](h.t, h.out, cn)
		effects = append(effects, h.answerAll(h.out, emptyStorage)...)
	}
	// Verification, last ids, pack orders, each phase asking in turn.
	for range 5 {
		effects = h.answerAll(effects, emptyStorage)
	}
	return storages, nids
}

func TestIdentificationAllocatesNIDs(t *testing.T) {
	h := newHarness(t, nil)
	if got := h.c.NID(); got != proto.NewNodeID(proto.MASTER, 1) {
		t.Fatalf("master nid = %v, want M1", got)
	}
	s1, nid1 := h.identify(proto.STORAGE, 0, 20000, nil)
	_, nid2 := h.identify(proto.STORAGE, 0, 20001, nil)
	if nid1.String() != "S1" || nid2.String() != "S2" {
		t.Fatalf("storage nids = %v %v, want S1 S2", nid1, nid2)
	}
	// A storage proposing a persistent id keeps it.
	_, nid7 := h.identify(proto.STORAGE, proto.NewNodeID(proto.STORAGE, 7), 20007, nil)
	if nid7.String() != "S7" {
		t.Fatalf("proposed S7, got %v", nid7)
	}
	// The first NotifyNodeInformation lists the node itself first.
	h.next++
	h.recv(h.next, &proto.RequestIdentification{NodeType: proto.ADMIN, ClusterName: "test", Addr: proto.Addr{Host: "127.0.0.1", Port: 9999}})
	ni := mustFind[*proto.NotifyNodeInformation](t, h.out, h.next)
	if ni.NodeList[0].NID.String() != "A1" || !ni.NodeList[0].IDTimestamp.Valid {
		t.Fatalf("first entry = %+v, want A1 with id_timestamp", ni.NodeList[0])
	}
	// Storages see the new admin? No: admins are not announced to storages.
	if _, ok := find[*proto.NotifyNodeInformation](h.out, s1); ok {
		t.Fatalf("storage told about an admin:\n%s", dump(h.out))
	}
	// Same address while identified: refused.
	h.next++
	h.recv(h.next, &proto.RequestIdentification{NodeType: proto.STORAGE, ClusterName: "test", Addr: proto.Addr{Host: "127.0.0.1", Port: 20000}})
	e := mustFind[*proto.Error](t, h.out, h.next)
	if e.Code != proto.PROTOCOL_ERROR || h.out[len(h.out)-1].Kind != Abort {
		t.Fatalf("duplicate address: %v", h.out)
	}
	// Wrong cluster name.
	h.next++
	h.recv(h.next, &proto.RequestIdentification{NodeType: proto.CLIENT, ClusterName: "other"})
	if e := mustFind[*proto.Error](t, h.out, h.next); e.Message != "invalid cluster name" {
		t.Fatalf("wrong cluster: %v", e)
	}
	// Clients are held while RECOVERING, then refused.
	h.next++
	client := h.next
	h.recv(client, &proto.RequestIdentification{NodeType: proto.CLIENT, ClusterName: "test"})
	if len(h.out) != 0 {
		t.Fatalf("client in RECOVERING answered at once: %s", dump(h.out))
	}
	h.clock.t = h.clock.t.Add(holdTime)
	h.step(Tick{})
	if e := mustFind[*proto.Error](t, h.out, client); e.Code != proto.NOT_READY {
		t.Fatalf("client in RECOVERING: %v", e)
	}
}

// A client that identifies while the cluster starts is answered when it
// is RUNNING, not told NOT_READY: neoppod's client would wait a second.
func TestClientHeldUntilRunning(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Autostart = 1 })
	h.next++
	client := h.next
	h.recv(client, &proto.RequestIdentification{NodeType: proto.CLIENT, ClusterName: "test"})
	if len(h.out) != 0 {
		t.Fatalf("client answered in RECOVERING: %s", dump(h.out))
	}
	h.startCluster(1)
	if st := h.c.ClusterState(); st != proto.RUNNING {
		t.Fatalf("cluster state %v", st)
	}
	if _, ok := find[*proto.Error](h.all, client); ok {
		t.Fatalf("client refused: %s", dump(h.all))
	}
	if a := mustFind[*proto.AcceptIdentification](t, h.all, client); a.YourNID.String() != "C1" {
		t.Fatalf("client accepted as %v", a.YourNID)
	}
}

// A secondary that lost its primary holds identifications until the
// election ends: here it becomes primary and then accepts the storage.
func TestSecondaryHoldsIdentificationDuringElection(t *testing.T) {
	s := newSimNet(t, 10001, 10002)
	s.start(10001)
	s.start(10002)
	s.settle(2)
	s.check(10001)
	s.kill(10001)
	s.run() // the secondary saw the primary go and redials it
	cn, effects := s.inject(10002, &proto.RequestIdentification{NodeType: proto.STORAGE, Addr: simAddr(20000),
		ClusterName: "test", Extra: proto.Dict{}})
	if len(effects) != 0 {
		t.Fatalf("answered during the election: %s", dump(effects))
	}
	s.tick() // the redial fails: 10002 plays primary
	if c := s.cores[simAddr(10002)]; c.isSecondary() {
		t.Fatalf("no new primary:\n%s", s.describe())
	}
	seen := s.seen[simAddr(10002)]
	if _, ok := find[*proto.NotPrimaryMaster](seen, cn); ok {
		t.Fatalf("storage told NotPrimaryMaster: %s", dump(seen))
	}
	mustFind[*proto.AcceptIdentification](t, seen, cn)
}

// Held past the bound, the answer is that of the moment.
func TestSecondaryHoldIsBounded(t *testing.T) {
	s := newSimNet(t, 10001, 10002)
	s.start(10001)
	s.start(10002)
	s.settle(2)
	s.kill(10001)
	s.run()
	c := s.cores[simAddr(10002)]
	cn, _ := s.inject(10002, &proto.RequestIdentification{NodeType: proto.CLIENT, ClusterName: "test", Extra: proto.Dict{}})
	s.clock.t = s.clock.t.Add(holdTime)
	// A tick with the dial still pending (not delivered): the election
	// has not ended, the bound has.
	effects := c.Step(Tick{})
	if npm := mustFind[*proto.NotPrimaryMaster](t, effects, cn); npm.Primary.Valid {
		t.Fatalf("NotPrimaryMaster names a primary: %+v", npm)
	}
}

func TestAutostartToRunning(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Autostart = 2 })
	storages, _ := h.startCluster(2)
	if st := h.c.ClusterState(); st != proto.RUNNING {
		t.Fatalf("cluster state %v, want RUNNING", st)
	}
	// Partition table made: 4 partitions, 2 cells each (replicas 1).
	if h.c.pt.PTid() != 1 || len(h.c.pt.Rows()) != 4 || len(h.c.pt.Rows()[3]) != 2 {
		t.Fatalf("pt = %+v", h.c.pt.Rows())
	}
	for _, s := range storages {
		if n := h.c.conns[s].node; n.State != proto.NODE_RUNNING || !h.c.starting[n.NID] {
			t.Fatalf("storage %v: state %v, starting %v", n, n.State, h.c.starting[n.NID])
		}
	}
}

func TestStartWithNeoctl(t *testing.T) {
	h := newHarness(t, nil)
	s, _ := h.identify(proto.STORAGE, 0, 20000, nil)
	h.answerAll(h.out, emptyStorage)
	a, _ := h.identify(proto.ADMIN, 0, 9999, nil)
	if h.c.ClusterState() != proto.RECOVERING {
		t.Fatal("started without autostart nor neoctl start")
	}
	effects := h.recv(a, &proto.SetClusterState{State: proto.VERIFYING})
	if e := mustFind[*proto.Error](t, effects, a); e.Code != proto.ACK {
		t.Fatalf("start: %v", e)
	}
	if h.c.ClusterState() != proto.VERIFYING {
		t.Fatalf("state %v after start", h.c.ClusterState())
	}
	mustFind[*proto.SendPartitionTable](t, effects, s)
	// Admin got the new table (ptid 1) and the state changes.
	if pt := mustFind[*proto.SendPartitionTable](t, effects, a); pt.PTid != 1 {
		t.Fatalf("admin pt %v", pt)
	}
	for range 4 {
		effects = h.answerAll(effects, emptyStorage)
	}
	if h.c.ClusterState() != proto.RUNNING {
		t.Fatalf("state %v", h.c.ClusterState())
	}
	// start is refused outside RECOVERING.
	effects = h.recv(a, &proto.SetClusterState{State: proto.VERIFYING})
	if e := mustFind[*proto.Error](t, effects, a); e.Code != proto.DENIED {
		t.Fatalf("start in RUNNING: %v", e)
	}
}

// runningCluster returns a RUNNING cluster with 2 ready storages and one
// client.
func runningCluster(t testing.TB) (h *harness, storages []ConnID, client ConnID) {
	h = newHarness(t, func(c *Config) { c.Autostart = 2 })
	storages, _ = h.startCluster(2)
	for _, s := range storages {
		h.recv(s, &proto.NotifyReady{})
	}
	client, _ = h.identify(proto.CLIENT, 0, 0, nil)
	mustFind[*proto.SendPartitionTable](t, h.out, client)
	return h, storages, client
}

func TestCommit(t *testing.T) {
	h, storages, client := runningCluster(t)
	other, _ := h.identify(proto.CLIENT, 0, 0, nil)

	effects := h.recv(client, &proto.AskNewOIDs{NumOids: 3})
	oids := mustFind[*proto.AnswerNewOIDs](t, effects, client).OidList
	if len(oids) != 3 || oids[0] != 1 || oids[2] != 3 {
		t.Fatalf("oids %v", oids)
	}
	effects = h.recv(client, &proto.AskBeginTransaction{Tid: proto.InvalidTid})
	ttid := mustFind[*proto.AnswerBeginTransaction](t, effects, client).TTid

	effects = h.recv(client, &proto.AskFinishTransaction{TTid: ttid, OidList: []proto.Oid{1, 2}})
	locks := asks[*proto.AskLockInformation](effects)
	if len(locks) != 2 {
		t.Fatalf("lock requests: %s", dump(effects))
	}
	tid := locks[storages[0]].Msg.(*proto.AskLockInformation).Tid
	if tid <= ttid || uint64(tid)%4 != uint64(ttid)%4 {
		t.Fatalf("final tid %v for ttid %v: not > ttid or not congruent mod 4", tid, ttid)
	}
	// Nothing is answered until every storage locked.
	effects = h.step(Answer{Conn: storages[0], Tag: locks[storages[0]].Tag, Msg: &proto.AnswerInformationLocked{TTid: ttid}})
	if len(effects) != 0 {
		t.Fatalf("effects after one lock: %s", dump(effects))
	}
	effects = h.step(Answer{Conn: storages[1], Tag: locks[storages[1]].Tag, Msg: &proto.AnswerInformationLocked{TTid: ttid}})
	fin := mustFind[*proto.AnswerTransactionFinished](t, effects, client)
	if fin.Tid != tid {
		t.Fatalf("finished %v want %v", fin.Tid, tid)
	}
	if inv := mustFind[*proto.InvalidateObjects](t, effects, other); inv.Tid != tid || len(inv.OidList) != 2 {
		t.Fatalf("invalidation %+v", inv)
	}
	if _, ok := find[*proto.InvalidateObjects](effects, client); ok {
		t.Fatal("committer invalidated")
	}
	for _, s := range storages {
		mustFind[*proto.NotifyUnlockInformation](t, effects, s)
	}
	// The storages are told to unlock before the client hears of its
	// commit: neoppod's storage answers the client's next AskTIDs (an
	// undoLog) without waiting for an unlock still on its way.
	answered := slices.IndexFunc(effects, func(e Effect) bool { _, ok := e.Msg.(*proto.AnswerTransactionFinished); return ok })
	if last := slices.IndexFunc(effects, func(e Effect) bool {
		_, ok := e.Msg.(*proto.NotifyUnlockInformation)
		return ok && e.Conn == storages[1]
	}); last > answered {
		t.Fatalf("NotifyUnlockInformation after AnswerTransactionFinished:\n%s", dump(effects))
	}
	effects = h.recv(client, &proto.AskLastTransaction{})
	if lt := mustFind[*proto.AnswerLastTransaction](t, effects, client); lt.Tid != tid {
		t.Fatalf("last transaction %v want %v", lt.Tid, tid)
	}
	// AskFinalTID of a committed ttid: "ask storages".
	effects = h.recv(client, &proto.AskFinalTID{TTid: ttid})
	if a := mustFind[*proto.AnswerFinalTID](t, effects, client); a.Tid != proto.MaxTid {
		t.Fatalf("final tid of committed: %v", a.Tid)
	}
	// Of a future ttid: nil.
	effects = h.recv(client, &proto.AskFinalTID{TTid: proto.AddTid(tid, 1000)})
	if a := mustFind[*proto.AnswerFinalTID](t, effects, client); a.Tid != proto.InvalidTid {
		t.Fatalf("final tid of unknown: %v", a.Tid)
	}
}

func TestCommitOrderByFinalTid(t *testing.T) {
	h, storages, client := runningCluster(t)
	c2, _ := h.identify(proto.CLIENT, 0, 0, nil)
	e1 := h.recv(client, &proto.AskBeginTransaction{Tid: proto.InvalidTid})
	t1 := mustFind[*proto.AnswerBeginTransaction](t, e1, client).TTid
	e2 := h.recv(c2, &proto.AskBeginTransaction{Tid: proto.InvalidTid})
	t2 := mustFind[*proto.AnswerBeginTransaction](t, e2, c2).TTid
	if t2 <= t1 {
		t.Fatalf("ttids not increasing: %v %v", t1, t2)
	}
	l1 := asks[*proto.AskLockInformation](h.recv(client, &proto.AskFinishTransaction{TTid: t1, OidList: []proto.Oid{1}}))
	l2 := asks[*proto.AskLockInformation](h.recv(c2, &proto.AskFinishTransaction{TTid: t2, OidList: []proto.Oid{2}}))
	// The second transaction locks first: it must wait for the first.
	for _, s := range storages {
		if effects := h.step(Answer{Conn: s, Tag: l2[s].Tag, Msg: &proto.AnswerInformationLocked{TTid: t2}}); len(effects) != 0 {
			t.Fatalf("second committed before first: %s", dump(effects))
		}
	}
	var all []Effect
	for _, s := range storages {
		all = append(all, h.step(Answer{Conn: s, Tag: l1[s].Tag, Msg: &proto.AnswerInformationLocked{TTid: t1}})...)
	}
	a1 := mustFind[*proto.AnswerTransactionFinished](t, all, client)
	a2 := mustFind[*proto.AnswerTransactionFinished](t, all, c2)
	if a1.Tid >= a2.Tid {
		t.Fatalf("final tids %v %v not in commit order", a1.Tid, a2.Tid)
	}
	i1, i2 := -1, -1
	for i, e := range all {
		switch e.Msg {
		case a1:
			i1 = i
		case a2:
			i2 = i
		}
	}
	if i1 > i2 {
		t.Fatalf("answers out of order:\n%s", dump(all))
	}
}

func TestAbortAndFailedVote(t *testing.T) {
	h, storages, client := runningCluster(t)
	snids := []proto.NodeID{h.c.conns[storages[0]].node.NID, h.c.conns[storages[1]].node.NID}
	ttid := mustFind[*proto.AnswerBeginTransaction](t, h.recv(client, &proto.AskBeginTransaction{Tid: proto.InvalidTid}), client).TTid
	effects := h.recv(client, &proto.AbortTransaction{TTid: ttid, NIDList: snids[:1]})
	if a := mustFind[*proto.AbortTransaction](t, effects, storages[0]); a.TTid != ttid {
		t.Fatalf("abort relayed %v", a)
	}
	if _, ok := find[*proto.AbortTransaction](effects, storages[1]); ok {
		t.Fatal("abort relayed to a node not listed")
	}
	// Unknown ttid now (e.g. begun on a previous primary): ignored, as an
	// Error answering a notification can break neoppod's client.
	if effects = h.recv(client, &proto.AbortTransaction{TTid: ttid, NIDList: snids}); len(effects) != 0 {
		t.Fatalf("abort of an unknown ttid: %s", dump(effects))
	}

	client, _ = h.identify(proto.CLIENT, 0, 0, nil)
	ttid = mustFind[*proto.AnswerBeginTransaction](t, h.recv(client, &proto.AskBeginTransaction{Tid: proto.InvalidTid}), client).TTid
	// With replicas=1 and 2 storages, losing one keeps the table operational.
	effects = h.recv(client, &proto.FailedVote{TTid: ttid, NIDList: snids[1:]})
	if e := mustFind[*proto.Error](t, effects, client); e.Code != proto.ACK {
		t.Fatalf("failed vote of one replica: %v", e)
	}
	// At finish, the failed storage is disconnected and its cells outdated.
	effects = h.recv(client, &proto.AskFinishTransaction{TTid: ttid})
	var aborted bool
	for _, e := range effects {
		if e.Kind == Abort && e.Conn == storages[1] {
			aborted = true
		}
	}
	if !aborted {
		t.Fatalf("failed storage not disconnected:\n%s", dump(effects))
	}
	mustFind[*proto.NotifyPartitionChanges](t, effects, storages[0])
	locks := asks[*proto.AskLockInformation](effects)
	if len(locks) != 1 {
		t.Fatalf("locks %s", dump(effects))
	}
	effects = h.step(Answer{Conn: storages[0], Tag: locks[storages[0]].Tag, Msg: &proto.AnswerInformationLocked{TTid: ttid}})
	mustFind[*proto.AnswerTransactionFinished](t, effects, client)
	// Both failing: incomplete.
	ttid = mustFind[*proto.AnswerBeginTransaction](t, h.recv(client, &proto.AskBeginTransaction{Tid: proto.InvalidTid}), client).TTid
	effects = h.recv(client, &proto.FailedVote{TTid: ttid, NIDList: snids})
	if e := mustFind[*proto.Error](t, effects, client); e.Code != proto.INCOMPLETE_TRANSACTION {
		t.Fatalf("failed vote of all: %v", e)
	}
}

func TestStorageLossDuringCommit(t *testing.T) {
	h, storages, client := runningCluster(t)
	ttid := mustFind[*proto.AnswerBeginTransaction](t, h.recv(client, &proto.AskBeginTransaction{Tid: proto.InvalidTid}), client).TTid
	locks := asks[*proto.AskLockInformation](h.recv(client, &proto.AskFinishTransaction{TTid: ttid, OidList: []proto.Oid{5}}))
	h.step(Answer{Conn: storages[0], Tag: locks[storages[0]].Tag, Msg: &proto.AnswerInformationLocked{TTid: ttid}})
	// The other storage dies before locking: the master stops waiting.
	effects := h.step(Closed{Conn: storages[1]})
	mustFind[*proto.AnswerTransactionFinished](t, effects, client)
	if _, ok := find[*proto.NotifyUnlockInformation](effects, storages[1]); ok {
		t.Fatal("unlock sent to a lost storage")
	}
	if h.c.ClusterState() != proto.RUNNING {
		t.Fatalf("state %v: one replica left should stay RUNNING", h.c.ClusterState())
	}
	// Losing the last one: back to RECOVERING, clients stopped.
	effects = h.step(Closed{Conn: storages[0]})
	if h.c.ClusterState() != proto.RECOVERING {
		t.Fatalf("state %v after losing every storage", h.c.ClusterState())
	}
	mustFind[*proto.StopOperation](t, effects, client)
}

// Every storage of a transaction lost before it locked: the cluster
// leaves operation and the transaction is not committed (nobody has it);
// neoppod leaves operation before it stops waiting for the storage. Seen
// with MySQL storages whose server restarted: both failed their lock
// write, and the client was told the commit was done.
func TestAllStoragesLostBeforeLocking(t *testing.T) {
	h, storages, client := runningCluster(t)
	ttid := mustFind[*proto.AnswerBeginTransaction](t, h.recv(client, &proto.AskBeginTransaction{Tid: proto.InvalidTid}), client).TTid
	if locks := asks[*proto.AskLockInformation](h.recv(client, &proto.AskFinishTransaction{TTid: ttid, OidList: []proto.Oid{5}})); len(locks) != 2 {
		t.Fatalf("lock requests: %v", locks)
	}
	// The first loss leaves a replica of every partition: the master
	// waits for the other storage's lock.
	effects := h.step(Closed{Conn: storages[1]})
	if _, ok := find[*proto.AnswerTransactionFinished](effects, client); ok {
		t.Fatalf("finished with a storage still to lock:\n%s", dump(effects))
	}
	effects = h.step(Closed{Conn: storages[0]})
	if _, ok := find[*proto.AnswerTransactionFinished](effects, client); ok {
		t.Fatalf("finished although no storage locked:\n%s", dump(effects))
	}
	if h.c.ClusterState() != proto.RECOVERING {
		t.Fatalf("state %v after losing every storage", h.c.ClusterState())
	}
}

func TestStopping(t *testing.T) {
	h, storages, client := runningCluster(t)
	admin, _ := h.identify(proto.ADMIN, 0, 9999, nil)
	ttid := mustFind[*proto.AnswerBeginTransaction](t, h.recv(client, &proto.AskBeginTransaction{Tid: proto.InvalidTid}), client).TTid
	locks := asks[*proto.AskLockInformation](h.recv(client, &proto.AskFinishTransaction{TTid: ttid}))
	effects := h.recv(admin, &proto.SetClusterState{State: proto.STOPPING})
	if e := mustFind[*proto.Error](t, effects, admin); e.Code != proto.ACK {
		t.Fatalf("stop: %v", e)
	}
	if h.c.ClusterState() != proto.STOPPING || h.c.Exited() {
		t.Fatalf("state %v exited %v", h.c.ClusterState(), h.c.Exited())
	}
	// New transactions wait forever.
	if effects := h.recv(client, &proto.AskBeginTransaction{Tid: proto.InvalidTid}); len(effects) != 0 {
		t.Fatalf("begin during STOPPING: %s", dump(effects))
	}
	for _, s := range storages {
		effects = h.step(Answer{Conn: s, Tag: locks[s].Tag, Msg: &proto.AnswerInformationLocked{TTid: ttid}})
	}
	mustFind[*proto.AnswerTransactionFinished](t, effects, client)
	if !h.c.Exited() {
		t.Fatalf("not exited after last commit:\n%s", dump(effects))
	}
	for _, s := range storages {
		ni := mustFind[*proto.NotifyNodeInformation](t, effects, s)
		if ni.NodeList[0].State != proto.DOWN {
			t.Fatalf("storage told %v", ni.NodeList[0])
		}
	}
	last := effects[len(effects)-1]
	if last.Kind != Exit || last.Err != nil {
		t.Fatalf("last effect %v", last)
	}
	if h.c.pt.PTid() != 1 {
		t.Fatalf("ptid changed by shutdown: %v", h.c.pt.PTid())
	}
}

func TestBeginDelayedUntilReady(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Autostart = 1 })
	storages, _ := h.startCluster(1)
	client, _ := h.identify(proto.CLIENT, 0, 0, nil)
	if effects := h.recv(client, &proto.AskBeginTransaction{Tid: proto.InvalidTid}); len(effects) != 0 {
		t.Fatalf("begin answered before NotifyReady: %s", dump(effects))
	}
	effects := h.recv(storages[0], &proto.NotifyReady{})
	mustFind[*proto.AnswerBeginTransaction](t, effects, client)
}

func TestRecoveryLoadsNewestPT(t *testing.T) {
	h := newHarness(t, nil)
	s1, nid1 := h.identify(proto.STORAGE, proto.NewNodeID(proto.STORAGE, 1), 20000, nil)
	rows := [][]proto.CellInfo{{{NID: nid1, State: proto.UP_TO_DATE}, {NID: proto.NewNodeID(proto.STORAGE, 2), State: proto.UP_TO_DATE}}}
	effects := h.answerAll(h.out, func(ConnID, proto.Msg) proto.Msg {
		return &proto.AnswerRecovery{PTid: 5, BackupTid: proto.InvalidTid, TruncateTid: proto.InvalidTid}
	})
	a := asks[*proto.AskPartitionTable](effects)[s1]
	effects = h.step(Answer{Conn: s1, Tag: a.Tag, Msg: &proto.AnswerPartitionTable{PTid: 5, NumReplicas: 1, Rows: rows}})
	// S2 is missing: every readable cell's node must be there before an
	// automatic start after the table was loaded.
	if h.c.ClusterState() != proto.RECOVERING {
		t.Fatalf("started with S2 missing: %v", h.c.ClusterState())
	}
	if h.c.byNID(proto.NewNodeID(proto.STORAGE, 2)).State != proto.DOWN {
		t.Fatal("S2 from the loaded table is not DOWN")
	}
	s2, _ := h.identify(proto.STORAGE, proto.NewNodeID(proto.STORAGE, 2), 20001, nil)
	effects = h.answerAll(h.out, func(ConnID, proto.Msg) proto.Msg {
		return &proto.AnswerRecovery{PTid: 5, BackupTid: proto.InvalidTid, TruncateTid: proto.InvalidTid}
	})
	if h.c.ClusterState() != proto.VERIFYING {
		t.Fatalf("state %v once both storages are back", h.c.ClusterState())
	}
	if pt := mustFind[*proto.SendPartitionTable](t, effects, s2); pt.PTid != 5 {
		t.Fatalf("pt sent %v", pt.PTid)
	}
}

func TestVerificationValidatesLockedTransactions(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Partitions = 1; c.Autostart = 1 })
	s1, nid1 := h.identify(proto.STORAGE, proto.NewNodeID(proto.STORAGE, 1), 20000, nil)
	rows := [][]proto.CellInfo{{{NID: nid1, State: proto.UP_TO_DATE}}}
	effects := h.answerAll(h.out, func(ConnID, proto.Msg) proto.Msg {
		return &proto.AnswerRecovery{PTid: 3, BackupTid: proto.InvalidTid, TruncateTid: proto.InvalidTid}
	})
	effects = h.answerAll(effects, func(ConnID, proto.Msg) proto.Msg {
		return &proto.AnswerPartitionTable{PTid: 3, NumReplicas: 0, Rows: rows}
	})
	const ttid, tid = proto.Tid(0x100), proto.Tid(0x101)
	effects = h.answerAll(effects, func(_ ConnID, req proto.Msg) proto.Msg {
		if _, ok := req.(*proto.AskLockedTransactions); ok {
			return &proto.AnswerLockedTransactions{TidDict: []proto.LockedTxn{{TTid: ttid, Tid: tid}}}
		}
		return nil
	})
	v := mustFind[*proto.ValidateTransaction](t, effects, s1)
	if v.TTid != ttid || v.Tid != tid {
		t.Fatalf("validate %+v", v)
	}
	effects = h.answerAll(effects, func(_ ConnID, req proto.Msg) proto.Msg {
		if _, ok := req.(*proto.AskLastIDs); ok {
			return &proto.AnswerLastIDs{LastTid: tid, LastOid: 42, FirstTid: 1}
		}
		return nil
	})
	h.answerAll(effects, emptyStorage)
	if h.c.ClusterState() != proto.RUNNING || h.c.lastTransaction != tid || h.c.tm.lastOid != 42 {
		t.Fatalf("state %v last tid %v last oid %v", h.c.ClusterState(), h.c.lastTransaction, h.c.tm.lastOid)
	}
}

func TestAddNodeAndTweak(t *testing.T) {
	h, storages, client := runningCluster(t)
	admin, _ := h.identify(proto.ADMIN, 0, 9999, nil)
	s3, nid3 := h.identify(proto.STORAGE, 0, 20002, nil)
	if st := h.c.byNID(nid3).State; st != proto.PENDING {
		t.Fatalf("new storage in RUNNING is %v, want PENDING", st)
	}
	mustFind[*proto.SendPartitionTable](t, h.out, s3)
	effects := h.recv(admin, &proto.AddPendingNodes{NIDList: []proto.NodeID{nid3}})
	if e := mustFind[*proto.Error](t, effects, admin); e.Message != "Nodes added: S3" {
		t.Fatalf("add: %v", e)
	}
	mustFind[*proto.StartOperation](t, effects, s3)
	h.recv(s3, &proto.NotifyReady{})
	ptid := h.c.pt.PTid()
	effects = h.recv(admin, &proto.TweakPartitionTable{})
	a := mustFind[*proto.AnswerTweakPartitionTable](t, effects, admin)
	if !a.Changed {
		t.Fatalf("tweak changed nothing: %+v", a)
	}
	for _, cn := range []ConnID{storages[0], s3, client} {
		if pc := mustFind[*proto.NotifyPartitionChanges](t, effects, cn); pc.PTid != ptid+1 {
			t.Fatalf("ptid %v, want %v", pc.PTid, ptid+1)
		}
	}
	// S3 got OUT_OF_DATE cells; replication done makes one UP_TO_DATE once
	// S3 asked the unfinished transactions of that partition.
	var p uint32 = 99
	for i, row := range h.c.pt.Rows() {
		for _, cl := range row {
			if cl.NID == nid3 && cl.State == proto.OUT_OF_DATE && p == 99 {
				p = uint32(i)
			}
		}
	}
	if p == 99 {
		t.Fatalf("no OUT_OF_DATE cell for S3: %v", h.c.pt.Rows())
	}
	effects = h.recv(s3, &proto.AskUnfinishedTransactions{Offsets: []uint32{p}})
	mustFind[*proto.AnswerUnfinishedTransactions](t, effects, s3)
	effects = h.recv(s3, &proto.NotifyReplicationDone{Offset: p, Tid: h.c.lastTransaction})
	pc := mustFind[*proto.NotifyPartitionChanges](t, effects, admin)
	if pc.CellList[0] != (proto.CellChange{Offset: p, NID: nid3, State: proto.UP_TO_DATE}) {
		t.Fatalf("changes %+v", pc.CellList)
	}
	// Kill of a running storage with replicas elsewhere: DOWN, cells outdated.
	nid1 := h.c.conns[storages[0]].node.NID
	effects = h.recv(admin, &proto.SetNodeState{NID: nid1, State: proto.DOWN})
	if e := mustFind[*proto.Error](t, effects, admin); e.Code != proto.ACK {
		t.Fatalf("kill: %v", e)
	}
	if ni := mustFind[*proto.NotifyNodeInformation](t, effects, storages[0]); ni.NodeList[0].State != proto.DOWN {
		t.Fatalf("killed storage told %+v", ni.NodeList)
	}
	if h.c.ClusterState() != proto.RUNNING {
		t.Fatalf("state %v after kill", h.c.ClusterState())
	}
}

func TestCheckReplicas(t *testing.T) {
	h, storages, _ := runningCluster(t)
	admin, _ := h.identify(proto.ADMIN, 0, 9999, nil)
	effects := h.recv(admin, &proto.CheckReplicas{PartitionDict: []proto.CheckSource{{Partition: 0}, {Partition: 1}}, MaxTid: proto.InvalidTid})
	if e := mustFind[*proto.Error](t, effects, admin); e.Code != proto.ACK {
		t.Fatalf("check: %v", e)
	}
	var checks []*proto.CheckPartition
	var conns []ConnID
	for _, e := range effects {
		if m, ok := e.Msg.(*proto.CheckPartition); ok {
			checks = append(checks, m)
			conns = append(conns, e.Conn)
		}
	}
	// Both partitions go to one node (one check per node at a time is
	// not required, but neoppod groups them on a node already checking).
	if len(checks) != 2 || conns[0] != conns[1] || conns[0] != storages[1] {
		t.Fatalf("checks %v on %v:\n%s", checks, conns, dump(effects))
	}
	if checks[0].MaxTid != h.c.lastTransaction || checks[0].Source.Addr != (proto.Addr{}) {
		t.Fatalf("check %+v", checks[0])
	}
}

// A client finishing a transaction the master does not know (begun on a
// previous primary) gets PROTOCOL_ERROR, as from neoppod, but keeps its
// link: neoppod's client would wait a second before reconnecting.
func TestFinishUnknownTTIDKeepsLink(t *testing.T) {
	h, _, client := runningCluster(t)
	effects := h.recv(client, &proto.AskFinishTransaction{TTid: 0x1234})
	if e := mustFind[*proto.Error](t, effects, client); e.Code != proto.PROTOCOL_ERROR {
		t.Fatalf("finish of an unknown ttid: %v", e)
	}
	for _, e := range effects {
		if e.Kind == Abort {
			t.Fatalf("link aborted: %s", dump(effects))
		}
	}
	// The link serves the next transaction.
	mustFind[*proto.AnswerBeginTransaction](t, h.recv(client, &proto.AskBeginTransaction{Tid: proto.InvalidTid}), client)
}

// A Ping is answered by the core, as an effect queued behind those of
// earlier steps (the server performs a link's effects in order), not by
// the link layer ahead of them: neoppod's client relies on it as a
// barrier for invalidations.
func TestPingAnsweredByCore(t *testing.T) {
	h, _, client := runningCluster(t)
	effects := h.recv(client, &proto.Ping{})
	if len(effects) != 1 || effects[0].Kind != Reply || effects[0].Conn != client {
		t.Fatalf("ping: %s", dump(effects))
	}
	if _, ok := effects[0].Msg.(*proto.Pong); !ok {
		t.Fatalf("ping answered with %T", effects[0].Msg)
	}
	// Before identification too.
	h.next++
	if effects := h.recv(h.next, &proto.Ping{}); len(effects) != 1 || effects[0].Kind != Reply {
		t.Fatalf("ping before identification: %s", dump(effects))
	}
}
