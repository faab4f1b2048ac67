package storage

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/parttab"
	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

func TestPartitionTableAdapter(t *testing.T) {
	const s1, s2 = proto.NodeID(1), proto.NodeID(2)
	if _, err := loadPTable(1, 1, [][]parttab.Cell{{{NID: s1, State: proto.UP_TO_DATE}}, {}}); !errors.Is(err, proto.ErrProtocol) {
		t.Fatalf("table with an empty row: %v", err)
	}
	pt, err := loadPTable(1, 1, [][]parttab.Cell{
		{{NID: s1, State: proto.UP_TO_DATE}, {NID: s2, State: proto.UP_TO_DATE}},
		{{NID: s1, State: proto.UP_TO_DATE}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pt.next(3, 1, nil); !errors.Is(err, proto.ErrProtocol) {
		t.Fatalf("ptid jump: %v", err)
	}
	npt, err := pt.next(2, 1, []parttab.Change{{Offset: 0, NID: s2, State: proto.OUT_OF_DATE}, {Offset: 1, NID: s2, State: proto.UP_TO_DATE}})
	if err != nil {
		t.Fatal(err)
	}
	if !pt.readable(0, s2) || pt.readable(1, s2) {
		t.Fatal("next modified the original table")
	}
	if npt.readable(0, s2) || !npt.readable(1, s2) {
		t.Fatal("changes not applied")
	}
	if _, ok := npt.state(7, s1); ok || npt.readable(7, s1) || npt.row(7) != nil {
		t.Fatal("partition out of range must have no cell")
	}
	if got := npt.OutdatedOffsets(s2); !slices.Equal(got, []uint32{0}) {
		t.Fatalf("outdated offsets of S2: %v", got)
	}
}

// newTestNode returns node self of cluster "c", whose master is not
// reachable, on a new SQLite database closed when t ends: its partition
// table (ptid 1, nr replicas) has one partition, of cells.
func newTestNode(t *testing.T, ctx context.Context, self proto.NodeID, nr int, cells ...parttab.Cell) *Node {
	t.Helper()
	db, err := backend.Open(ctx, filepath.Join(t.TempDir(), "db.sqlite"), backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	n, err := New(Config{Cluster: "c", Masters: []string{"127.0.0.1:1"}, Backend: db})
	if err != nil {
		t.Fatal(err)
	}
	n.mu.nid = self
	if n.mu.pt, err = loadPTable(1, nr, [][]parttab.Cell{cells}); err != nil {
		t.Fatal(err)
	}
	return n
}

// nopBackend satisfies Config validation; identification never reaches it.
type nopBackend struct{ backend.Backend }

// The id_timestamp rule (protocol.md §4.10): a peer known with the same
// timestamp is accepted; one newer than our last notification waits for
// the next one; otherwise NOT_READY.
func TestIdentifyIDTimestamp(t *testing.T) {
	n, err := New(Config{Cluster: "c", Masters: []string{"127.0.0.1:1"}, Backend: nopBackend{}})
	if err != nil {
		t.Fatal(err)
	}
	const c1 = proto.NodeID(-0x20<<24 + 1)
	n.mu.nid = 1
	n.mu.operational = true
	n.mu.tm = newTxnManager(txnConfig{DB: newFakeDB()})
	ctx := t.Context()
	err = n.notifyNodeInformation(ctx, &proto.NotifyNodeInformation{Timestamp: 10, NodeList: []proto.NodeInfo{
		{Type: proto.STORAGE, NID: 1, Addr: proto.Addr{Host: "127.0.0.1", Port: 2}, State: proto.NODE_RUNNING, IDTimestamp: proto.Some(9.0)},
		{Type: proto.CLIENT, NID: c1, State: proto.NODE_RUNNING, IDTimestamp: proto.Some(9.5)},
	}}, true)
	if err != nil {
		t.Fatal(err)
	}
	link := &neonet.Link{}
	req := func(ts float64) *proto.RequestIdentification {
		return &proto.RequestIdentification{NodeType: proto.CLIENT, NID: c1, ClusterName: "c", IDTimestamp: proto.Some(ts)}
	}
	if nid, _, err := n.identify(ctx, link, req(9.5)); err != nil || nid != c1 {
		t.Fatalf("known client: %v %v", nid, err)
	}
	if _, _, err := n.identify(ctx, link, req(9.0)); !errors.Is(err, proto.ErrNotReady) {
		t.Fatalf("stale timestamp: %v", err)
	}
	bad := req(9.5)
	bad.ClusterName = "other"
	if _, _, err := n.identify(ctx, link, bad); !errors.Is(err, proto.ErrProtocol) {
		t.Fatalf("wrong cluster: %v", err)
	}
	self := req(9.5)
	self.NID = 1
	if _, _, err := n.identify(ctx, link, self); !errors.Is(err, proto.ErrProtocol) {
		t.Fatalf("own nid: %v", err)
	}

	// Newer than the last notification: delayed until the master tells.
	done := make(chan error, 1)
	go func() {
		_, _, err := n.identify(ctx, link, req(11))
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("identification not delayed: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	err = n.notifyNodeInformation(ctx, &proto.NotifyNodeInformation{Timestamp: 12, NodeList: []proto.NodeInfo{
		{Type: proto.CLIENT, NID: c1, State: proto.NODE_RUNNING, IDTimestamp: proto.Some(11.0)},
	}}, false)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("delayed identification: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("delayed identification not resumed by the notification")
	}
}
