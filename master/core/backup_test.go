package core

import (
	"slices"
	"testing"

	"github.com/neogo/neo/proto"
)

func upAddr(port uint16) proto.Addr { return proto.Addr{Host: "127.0.0.2", Port: port} }

// replicates returns the Replicate packets sent to cn.
func replicates(effects []Effect, cn ConnID) []*proto.Replicate {
	var out []*proto.Replicate
	for _, e := range effects {
		if m, ok := e.Msg.(*proto.Replicate); ok && e.Conn == cn && e.Kind == Send {
			out = append(out, m)
		}
	}
	return out
}

// backupHarness starts an empty backup cluster of 2 storages (4
// partitions, 1 replica) with --backup, up to BACKINGUP, connected to
// an upstream of 2 storages (partition p on upstream storage p%2) whose
// last tid is last. It returns the harness, the storage links and the
// upstream link.
func backupHarness(t *testing.T, last proto.Tid) (*harness, []ConnID, ConnID) {
	t.Helper()
	h := newHarness(t, func(c *Config) {
		c.Autostart = 2
		c.Backup = true
		c.UpstreamCluster = "up"
		c.UpstreamMasters = []proto.Addr{upAddr(10000)}
	})
	storages, _ := h.startCluster(2)
	if st := h.c.ClusterState(); st != proto.STARTING_BACKUP {
		t.Fatalf("state %v, want STARTING_BACKUP", st)
	}
	var up ConnID
	for _, e := range h.all {
		if e.Kind == DialUpstream {
			up = e.Conn
		}
	}
	if up == 0 {
		t.Fatalf("no upstream dial:\n%s", dump(h.all))
	}
	for _, s := range storages {
		if so := mustFind[*proto.StartOperation](t, h.all, s); !so.Backup {
			t.Fatalf("StartOperation without backup to c%d", s)
		}
		h.recv(s, &proto.NotifyReady{})
	}
	if st := h.c.ClusterState(); st != proto.STARTING_BACKUP {
		t.Fatalf("state %v before the upstream is reached", st)
	}
	h.step(UpstreamAccepted{Conn: up})
	if st := h.c.ClusterState(); st != proto.BACKINGUP {
		t.Fatalf("state %v, want BACKINGUP", st)
	}
	ask := asks[*proto.AskLastTransaction](h.out)[up]
	if ask.Msg == nil {
		t.Fatalf("no AskLastTransaction upstream:\n%s", dump(h.out))
	}
	h.recv(up, &proto.NotifyNodeInformation{NodeList: []proto.NodeInfo{
		{Type: proto.STORAGE, NID: proto.NewNodeID(proto.STORAGE, 1), Addr: upAddr(30000), State: proto.NODE_RUNNING},
		{Type: proto.STORAGE, NID: proto.NewNodeID(proto.STORAGE, 2), Addr: upAddr(30001), State: proto.NODE_RUNNING},
	}})
	rows := make([][]proto.CellInfo, 4)
	for p := range rows {
		rows[p] = []proto.CellInfo{{NID: proto.NewNodeID(proto.STORAGE, uint32(1+p%2)), State: proto.UP_TO_DATE}}
	}
	h.recv(up, &proto.SendPartitionTable{PTid: 1, NumReplicas: 0, Rows: rows})
	h.recv(up, &proto.InvalidatePartitions{Tid: last - 1, PartitionList: []uint32{0}}) // before the answer: ignored
	h.step(Answer{Conn: up, Tag: ask.Tag, Msg: &proto.AnswerLastTransaction{Tid: last}})
	return h, storages, up
}

func TestBackupFollowsUpstream(t *testing.T) {
	const t0 = proto.Tid(100)
	h, storages, up := backupHarness(t, t0)
	c := h.c
	// Each partition: its primary replicates from the upstream storage
	// holding it, up to the upstream last tid.
	primaries := map[uint32]ConnID{}
	for _, s := range storages {
		for _, r := range replicates(h.out, s) {
			if r.Tid != t0 || r.UpstreamName != "up" {
				t.Fatalf("replicate %+v, want from up to %v", r, t0)
			}
			for _, src := range r.SourceDict {
				if want := upAddr(30000 + uint16(src.Partition%2)); src.Addr != want {
					t.Fatalf("partition %d from %v, want %v", src.Partition, src.Addr, want)
				}
				primaries[src.Partition] = s
			}
		}
	}
	if len(primaries) != 4 {
		t.Fatalf("primaries %v:\n%s", primaries, dump(h.out))
	}
	if c.backupTid != proto.ZeroTid {
		t.Fatalf("backup tid %v before any replication", c.backupTid)
	}
	// A commit upstream touching partition 1 (tid 110: partition 2 too).
	h.recv(up, &proto.InvalidatePartitions{Tid: 110, PartitionList: []uint32{1}})
	// Primaries report; their partners replicate from them.
	for p := uint32(0); p < 4; p++ {
		h.recv(primaries[p], &proto.NotifyReplicationDone{Offset: p, Tid: t0})
		other := storages[0]
		if other == primaries[p] {
			other = storages[1]
		}
		rs := replicates(h.out, other)
		want := proto.Tid(110)
		if p == 1 || p == 2 {
			want = 109 // 110 is not replicated yet
		}
		if len(rs) != 1 || rs[0].Tid != want || rs[0].UpstreamName != "" || len(rs[0].SourceDict) != 1 ||
			rs[0].SourceDict[0].Partition != p {
			t.Fatalf("partition %d: to the secondary %s", p, dump(h.out))
		}
		// Partitions touched by 110 are ordered again from upstream.
		if rs := replicates(h.out, primaries[p]); (p == 1 || p == 2) != (len(rs) == 1) || len(rs) == 1 && rs[0].Tid != 110 {
			t.Fatalf("partition %d: to the primary %s", p, dump(h.out))
		}
	}
	if c.backupTid != 109 {
		t.Fatalf("cluster backup tid %v, want 109", c.backupTid)
	}
	// What the backup lag metric reads: the upstream's commit, and
	// what every partition has.
	if st := c.Stats(); !st.Backup || st.UpstreamTid != 110 || st.BackupTid != 109 {
		t.Fatalf("Stats: backup %v, upstream tid %v, backup tid %v; want true, 110, 109", st.Backup, st.UpstreamTid, st.BackupTid)
	}
	// Read-only clients see min/min: the secondaries did nothing yet.
	cl, _ := h.identify(proto.CLIENT, 0, 0, proto.Dict{{Key: "read_only", Value: true}})
	h.recv(cl, &proto.AskLastTransaction{})
	if a := mustFind[*proto.AnswerLastTransaction](t, h.out, cl); a.Tid != 0 {
		t.Fatalf("client sees %v, want 0", a.Tid)
	}
	// A read-write client is refused.
	h.next++
	h.recv(h.next, &proto.RequestIdentification{NodeType: proto.CLIENT, ClusterName: "test"})
	if e := mustFind[*proto.Error](t, h.out, h.next); e.Code != proto.READ_ONLY_ACCESS {
		t.Fatalf("read-write client: %v", e)
	}
	// Secondaries done; primaries of 1, 2 done with 110.
	for p := uint32(0); p < 4; p++ {
		other := storages[0]
		if other == primaries[p] {
			other = storages[1]
		}
		tid := proto.Tid(110)
		if p == 1 || p == 2 {
			tid = 109
			h.recv(primaries[p], &proto.NotifyReplicationDone{Offset: p, Tid: 110})
		}
		h.recv(other, &proto.NotifyReplicationDone{Offset: p, Tid: tid})
	}
	// Secondaries of 1, 2 replicate 110 from their primary.
	for p := uint32(1); p <= 2; p++ {
		other := storages[0]
		if other == primaries[p] {
			other = storages[1]
		}
		h.recv(other, &proto.NotifyReplicationDone{Offset: p, Tid: 110})
	}
	if c.backupTid != 110 || c.readOnlyTid() != 110 {
		t.Fatalf("backup tids %v %v, want 110", c.backupTid, c.readOnlyTid())
	}
	// A commit touching partition 3 only (tid 111: partition 3): cells
	// of other partitions are told there is nothing new.
	h.recv(up, &proto.InvalidatePartitions{Tid: 111, PartitionList: []uint32{3}})
	for _, s := range storages {
		var nothing []uint32
		for _, r := range replicates(h.out, s) {
			if r.UpstreamName == "" && r.Tid == 111 {
				for _, src := range r.SourceDict {
					if src.Addr.IsZero() {
						nothing = append(nothing, src.Partition)
					}
				}
			}
		}
		slices.Sort(nothing)
		if !slices.Equal(nothing, []uint32{0, 1, 2}) {
			t.Fatalf("c%d told nothing new for %v:\n%s", s, nothing, dump(h.out))
		}
	}
	if rs := replicates(h.out, primaries[3]); len(rs) != 2 || rs[1].Tid != 111 || rs[1].UpstreamName != "up" {
		t.Fatalf("partition 3 primary:\n%s", dump(h.out))
	}
	// Leaving backup mode: the cluster backup tid is 110 (partition 3
	// lags), below the last tid ordered (111): truncation at 110.
	h.recv(cl, &proto.AskLastIDs{}) // refused to clients, link kept
	adm, _ := h.identify(proto.ADMIN, 0, 9999, nil)
	h.recv(adm, &proto.SetClusterState{State: proto.STOPPING_BACKUP})
	if e := mustFind[*proto.Error](t, h.out, adm); e.Code != proto.ACK {
		t.Fatalf("STOPPING_BACKUP: %v", e)
	}
	if st := c.ClusterState(); st != proto.RECOVERING {
		t.Fatalf("state %v, want RECOVERING (every cell at 110 already)", st)
	}
	for _, s := range storages {
		if tr := mustFind[*proto.Truncate](t, h.out, s); tr.Tid != 110 {
			t.Fatalf("truncate at %v, want 110", tr.Tid)
		}
	}
	aborted := false
	for _, e := range h.out {
		aborted = aborted || e.Kind == Abort && e.Conn == up
	}
	if !aborted {
		t.Fatalf("upstream link kept:\n%s", dump(h.out))
	}
}

// Losing the upstream master goes back to STARTING_BACKUP and
// disconnects clients; the new link re-checks every partition.
func TestBackupUpstreamLost(t *testing.T) {
	h, storages, up := backupHarness(t, 100)
	cl, _ := h.identify(proto.CLIENT, 0, 0, proto.Dict{{Key: "read_only", Value: true}})
	h.step(Closed{Conn: up})
	if st := h.c.ClusterState(); st != proto.STARTING_BACKUP {
		t.Fatalf("state %v", st)
	}
	var up2 ConnID
	for _, e := range h.out {
		if e.Kind == DialUpstream {
			up2 = e.Conn
		}
		if e.Kind == Abort && e.Conn == cl {
			cl = 0
		}
	}
	if up2 == 0 || up2 == up || cl != 0 {
		t.Fatalf("no redial or client kept:\n%s", dump(h.out))
	}
	h.step(UpstreamAccepted{Conn: up2})
	ask := asks[*proto.AskLastTransaction](h.out)[up2]
	h.recv(up2, &proto.NotifyNodeInformation{NodeList: []proto.NodeInfo{
		{Type: proto.STORAGE, NID: proto.NewNodeID(proto.STORAGE, 1), Addr: upAddr(30000), State: proto.NODE_RUNNING},
	}})
	rows := make([][]proto.CellInfo, 4)
	for p := range rows {
		rows[p] = []proto.CellInfo{{NID: proto.NewNodeID(proto.STORAGE, 1), State: proto.UP_TO_DATE}}
	}
	h.recv(up2, &proto.SendPartitionTable{PTid: 1, Rows: rows})
	h.step(Answer{Conn: up2, Tag: ask.Tag, Msg: &proto.AnswerLastTransaction{Tid: 120}})
	n := 0
	for _, s := range storages {
		for _, r := range replicates(h.out, s) {
			if r.Tid != 120 || r.UpstreamName != "up" {
				t.Fatalf("replicate %+v", r)
			}
			n += len(r.SourceDict)
		}
	}
	if n != 4 {
		t.Fatalf("%d partitions ordered, want 4:\n%s", n, dump(h.out))
	}
}

// An upstream whose last tid is below ours was truncated: backup mode
// is left.
func TestBackupUpstreamTruncated(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Autostart = 1
		c.UpstreamCluster = "up"
		c.UpstreamMasters = []proto.Addr{upAddr(10000)}
	})
	storages, _ := h.startCluster(1)
	h.c.lastTransaction = 200 // as if recovered from the storages
	h.recv(storages[0], &proto.NotifyReady{})
	adm, _ := h.identify(proto.ADMIN, 0, 9999, nil)
	h.recv(adm, &proto.SetClusterState{State: proto.STARTING_BACKUP})
	if e := mustFind[*proto.Error](t, h.out, adm); e.Code != proto.ACK || h.c.ClusterState() != proto.STARTING_BACKUP {
		t.Fatalf("STARTING_BACKUP: %v, state %v", e, h.c.ClusterState())
	}
	if so := mustFind[*proto.StartOperation](t, h.out, storages[0]); !so.Backup {
		t.Fatal("storage not restarted in backup mode")
	}
	var up ConnID
	for _, e := range h.out {
		if e.Kind == DialUpstream {
			up = e.Conn
		}
	}
	h.recv(storages[0], &proto.NotifyReady{})
	h.step(UpstreamAccepted{Conn: up})
	ask := asks[*proto.AskLastTransaction](h.out)[up]
	h.step(Answer{Conn: up, Tag: ask.Tag, Msg: &proto.AnswerLastTransaction{Tid: 150}})
	// Every cell is at 200 already: leaving is immediate, nothing to cut.
	if st := h.c.ClusterState(); st != proto.RECOVERING {
		t.Fatalf("state %v, want RECOVERING", st)
	}
	if tr := mustFind[*proto.Truncate](t, h.out, storages[0]); tr.Tid != 200 || !h.c.startupAllowed {
		t.Fatalf("truncate %v, startup allowed %v", tr.Tid, h.c.startupAllowed)
	}
}

// Backup mode without an upstream: refused by neoctl, and --backup exits.
func TestBackupWithoutUpstream(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Autostart = 1 })
	h.startCluster(1)
	adm, _ := h.identify(proto.ADMIN, 0, 9999, nil)
	h.recv(adm, &proto.SetClusterState{State: proto.STARTING_BACKUP})
	if e := mustFind[*proto.Error](t, h.out, adm); e.Code != proto.DENIED {
		t.Fatalf("STARTING_BACKUP without upstream: %v", e)
	}
	h = newHarness(t, func(c *Config) { c.Autostart = 1; c.Backup = true })
	h.startCluster(1)
	if !h.c.Exited() {
		t.Fatalf("--backup without upstream did not exit, state %v", h.c.ClusterState())
	}
}

// A storage lost while backing up: its partitions get a new primary,
// which replicates from upstream; the node's cells are out of date and,
// once it is back, replicate internally up to the min/min backup tid.
func TestBackupNodeLost(t *testing.T) {
	h, storages, _ := backupHarness(t, 100)
	lost := storages[0]
	var lostParts []uint32
	for _, r := range replicates(h.out, lost) {
		for _, s := range r.SourceDict {
			lostParts = append(lostParts, s.Partition)
		}
	}
	if len(lostParts) == 0 {
		t.Fatalf("no partition on c%d", lost)
	}
	h.step(Closed{Conn: lost})
	if st := h.c.ClusterState(); st != proto.BACKINGUP {
		t.Fatalf("state %v", st)
	}
	got := map[uint32]bool{}
	for _, r := range replicates(h.out, storages[1]) {
		if r.Tid != 100 || r.UpstreamName != "up" {
			t.Fatalf("replicate %+v", r)
		}
		for _, s := range r.SourceDict {
			got[s.Partition] = true
		}
	}
	for _, p := range lostParts {
		if !got[p] {
			t.Fatalf("partition %d not ordered to the surviving cell:\n%s", p, dump(h.out))
		}
	}
	// Every partition done on the survivor.
	for p := uint32(0); p < 4; p++ {
		h.recv(storages[1], &proto.NotifyReplicationDone{Offset: p, Tid: 100})
	}
	if h.c.backupTid != 100 {
		t.Fatalf("backup tid %v", h.c.backupTid)
	}
	// The node comes back: out of date, it replicates up to 100.
	s, _ := h.identify(proto.STORAGE, h.c.conns[storages[1]].node.NID-1, 20000, nil)
	mustFind[*proto.StartOperation](t, h.out, s)
	h.recv(s, &proto.NotifyReady{})
	h.recv(s, &proto.AskUnfinishedTransactions{Offsets: []uint32{0, 1, 2, 3}})
	if a := mustFind[*proto.AnswerUnfinishedTransactions](t, h.out, s); a.MaxTid != 100 || len(a.TTidList) != 0 {
		t.Fatalf("unfinished transactions: %+v", a)
	}
	for p := uint32(0); p < 4; p++ {
		h.recv(s, &proto.NotifyReplicationDone{Offset: p, Tid: 100})
		if cl, _ := h.c.pt.Cell(p, h.c.conns[s].node.NID); cl.State != proto.UP_TO_DATE {
			t.Fatalf("partition %d: cell %v", p, cl.State)
		}
	}
	if _, lo := h.c.clusterBackupTids(); lo != 100 {
		t.Fatalf("min/min %v", lo)
	}
}

// Pack orders of the upstream: learnt from the upstream master, their
// signatures relayed to our storages, which then ask us for them.
func TestBackupPackOrders(t *testing.T) {
	h, storages, up := backupHarness(t, 100)
	ask := asks[*proto.AskPackOrders](h.all)[up]
	if ask.Msg == nil || ask.Msg.(*proto.AskPackOrders).PackID != 0 {
		t.Fatalf("no AskPackOrders(backup tid) upstream:\n%s", dump(h.all))
	}
	order := proto.PackOrder{ID: 90, PackTid: 80, Approved: proto.Some(true)}
	h.step(Answer{Conn: up, Tag: ask.Tag, Msg: &proto.AnswerPackOrders{PackOrderList: []proto.PackOrder{order}}})
	for _, s := range storages {
		if m := mustFind[*proto.NotifyPackSigned](t, h.out, s); !slices.Equal(m.Approved, []proto.Tid{90}) {
			t.Fatalf("relayed %+v", m)
		}
	}
	h.recv(storages[0], &proto.AskPackOrders{PackID: 1})
	if a := mustFind[*proto.AnswerPackOrders](t, h.out, storages[0]); len(a.PackOrderList) != 1 || a.PackOrderList[0].PackTid != 80 {
		t.Fatalf("storage asked pack orders: %+v", a)
	}
	// A new order signed upstream: learnt before it is relayed.
	h.recv(up, &proto.NotifyPackSigned{Approved: []proto.Tid{120}, Rejected: []proto.Tid{}})
	ask = asks[*proto.AskPackOrders](h.out)[up]
	if ask.Msg == nil || ask.Msg.(*proto.AskPackOrders).PackID != 120 {
		t.Fatalf("new order not asked upstream:\n%s", dump(h.out))
	}
	if _, ok := find[*proto.NotifyPackSigned](h.out, storages[0]); ok {
		t.Fatal("relayed before the order is known")
	}
	// Another one while asking: asked again after the answer.
	h.recv(up, &proto.NotifyPackSigned{Approved: []proto.Tid{130}, Rejected: []proto.Tid{}})
	if _, ok := asks[*proto.AskPackOrders](h.out)[up]; ok {
		t.Fatal("asked twice at once")
	}
	o120 := proto.PackOrder{ID: 120, PackTid: 110, Approved: proto.Some(true)}
	h.step(Answer{Conn: up, Tag: ask.Tag, Msg: &proto.AnswerPackOrders{PackOrderList: []proto.PackOrder{o120}}})
	if m := mustFind[*proto.NotifyPackSigned](t, h.out, storages[0]); !slices.Equal(m.Approved, []proto.Tid{120}) {
		t.Fatalf("relayed %+v", m)
	}
	if a := asks[*proto.AskPackOrders](h.out)[up]; a.Msg == nil || a.Msg.(*proto.AskPackOrders).PackID != 130 {
		t.Fatalf("not asked again for 130:\n%s", dump(h.out))
	}
}

// A backup cluster restarting resumes backup mode: the storages report
// their backup tid, each cell starts from its node's.
func TestBackupRestartResumes(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Partitions = 2
		c.UpstreamCluster = "up"
		c.UpstreamMasters = []proto.Addr{upAddr(10000)}
	})
	nid1, nid2 := proto.NewNodeID(proto.STORAGE, 1), proto.NewNodeID(proto.STORAGE, 2)
	rows := [][]proto.CellInfo{
		{{NID: nid1, State: proto.UP_TO_DATE}, {NID: nid2, State: proto.UP_TO_DATE}},
		{{NID: nid1, State: proto.UP_TO_DATE}, {NID: nid2, State: proto.UP_TO_DATE}},
	}
	backupTids := map[proto.NodeID]proto.Tid{nid1: 50, nid2: 40}
	var effects []Effect
	for i, nid := range []proto.NodeID{nid1, nid2} {
		_, got := h.identify(proto.STORAGE, nid, uint16(20000+i), nil)
		effects = append(effects, h.answerAll(h.out, func(ConnID, proto.Msg) proto.Msg {
			return &proto.AnswerRecovery{PTid: 3, BackupTid: backupTids[got], TruncateTid: proto.InvalidTid}
		})...)
	}
	effects = h.answerAll(effects, func(_ ConnID, req proto.Msg) proto.Msg {
		if _, ok := req.(*proto.AskPartitionTable); ok {
			return &proto.AnswerPartitionTable{PTid: 3, NumReplicas: 1, Rows: rows}
		}
		return nil
	})
	for range 4 {
		effects = h.answerAll(effects, func(_ ConnID, req proto.Msg) proto.Msg {
			if _, ok := req.(*proto.AskLockedTransactions); ok {
				t.Fatal("a backup cluster verifies locked transactions")
			}
			if _, ok := req.(*proto.AskLastIDs); ok {
				return &proto.AnswerLastIDs{LastTid: 60, LastOid: 1, FirstTid: 1}
			}
			return emptyStorage(0, req)
		})
	}
	if st := h.c.ClusterState(); st != proto.STARTING_BACKUP {
		t.Fatalf("state %v, want STARTING_BACKUP", st)
	}
	if bt, lo := h.c.clusterBackupTids(); bt != 50 || lo != 40 {
		t.Fatalf("backup tids %v %v, want 50 40", bt, lo)
	}
}

// neoctl check of a backup cluster: against an upstream cell, up to what
// every cell of the partitions has.
func TestBackupCheckReplicas(t *testing.T) {
	h, storages, _ := backupHarness(t, 100)
	for _, s := range storages {
		for p := uint32(0); p < 4; p++ {
			h.recv(s, &proto.NotifyReplicationDone{Offset: p, Tid: 100})
		}
	}
	adm, _ := h.identify(proto.ADMIN, 0, 9999, nil)
	h.recv(adm, &proto.CheckReplicas{PartitionDict: []proto.CheckSource{{Partition: 1}}, MinTid: 0, MaxTid: proto.InvalidTid})
	var got *proto.CheckPartition
	for _, s := range storages {
		if m, ok := find[*proto.CheckPartition](h.out, s); ok {
			got = m
		}
	}
	if got == nil || got.Partition != 1 || got.Source.UpstreamName != "up" || got.Source.Addr != upAddr(30001) || got.MaxTid != 100 {
		t.Fatalf("check order %+v:\n%s", got, dump(h.out))
	}
}

// The upstream admin monitoring this backup is told to our admin.
func TestBackupUpstreamAdmin(t *testing.T) {
	h, _, up := backupHarness(t, 100)
	adm, _ := h.identify(proto.ADMIN, 0, 9999, nil)
	if _, ok := find[*proto.NotifyUpstreamAdmin](h.out, adm); ok {
		t.Fatal("told of an upstream admin before there is one")
	}
	h.recv(up, &proto.NotifyNodeInformation{NodeList: []proto.NodeInfo{
		{Type: proto.ADMIN, NID: proto.NewNodeID(proto.ADMIN, 1), Addr: upAddr(9999), State: proto.NODE_RUNNING}}})
	if m := mustFind[*proto.NotifyUpstreamAdmin](t, h.out, adm); m.Addr != upAddr(9999) {
		t.Fatalf("upstream admin %v", m.Addr)
	}
	h.recv(up, &proto.NotifyNodeInformation{NodeList: []proto.NodeInfo{
		{Type: proto.STORAGE, NID: proto.NewNodeID(proto.STORAGE, 1), Addr: upAddr(30000), State: proto.NODE_RUNNING}}})
	if _, ok := find[*proto.NotifyUpstreamAdmin](h.out, adm); ok {
		t.Fatal("told again with nothing new")
	}
}

// A cell replicating from a primary that is lost is ordered again, from
// upstream now that it is the primary.
func TestBackupSourceLost(t *testing.T) {
	h, storages, up := backupHarness(t, 100)
	primaries := map[uint32]ConnID{}
	for _, s := range storages {
		for _, r := range replicates(h.out, s) {
			for _, src := range r.SourceDict {
				primaries[src.Partition] = s
			}
		}
	}
	h.recv(up, &proto.InvalidatePartitions{Tid: 110, PartitionList: []uint32{0}})
	h.recv(primaries[0], &proto.NotifyReplicationDone{Offset: 0, Tid: 100})
	other := storages[0]
	if other == primaries[0] {
		other = storages[1]
	}
	if rs := replicates(h.out, other); len(rs) != 1 || rs[0].UpstreamName != "" || rs[0].SourceDict[0].Addr.IsZero() {
		t.Fatalf("secondary not ordered from the primary:\n%s", dump(h.out))
	}
	h.step(Closed{Conn: primaries[0]})
	found := false
	for _, r := range replicates(h.out, other) {
		for _, src := range r.SourceDict {
			found = found || src.Partition == 0 && r.UpstreamName == "up" && r.Tid == 110
		}
	}
	if !found {
		t.Fatalf("partition 0 not ordered from upstream to the survivor:\n%s", dump(h.out))
	}
}
