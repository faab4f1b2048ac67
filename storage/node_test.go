package storage

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

func TestPartitionTableChanges(t *testing.T) {
	const s1, s2 = proto.NodeID(1), proto.NodeID(2)
	pt := &ptable{}
	if err := pt.reset(1, 1, [][]ptCell{{{s1, proto.UP_TO_DATE}}, {}}); !errors.Is(err, proto.ErrProtocol) {
		t.Fatalf("table with an empty row: %v", err)
	}
	if err := pt.reset(1, 1, [][]ptCell{
		{{s1, proto.UP_TO_DATE}, {s2, proto.UP_TO_DATE}},
		{{s1, proto.UP_TO_DATE}},
	}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		changes  []cellChange
		readable []uint32 // of s2 after the change
		assigned []uint32
	}{
		{"outdate", []cellChange{{0, s2, proto.OUT_OF_DATE}}, nil, []uint32{0}},
		{"add", []cellChange{{1, s2, proto.OUT_OF_DATE}}, nil, []uint32{0, 1}},
		{"up to date", []cellChange{{0, s2, proto.UP_TO_DATE}, {1, s2, proto.UP_TO_DATE}}, []uint32{0, 1}, []uint32{0, 1}},
		{"discard", []cellChange{{0, s2, proto.DISCARDED}}, []uint32{1}, []uint32{1}},
	} {
		if err := pt.apply(pt.ptid+1, 1, tc.changes); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := pt.partitions(s2, readableState); !slices.Equal(got, tc.readable) {
			t.Errorf("%s: readable %v, want %v", tc.name, got, tc.readable)
		}
		if got := pt.partitions(s2, assignedState); !slices.Equal(got, tc.assigned) {
			t.Errorf("%s: assigned %v, want %v", tc.name, got, tc.assigned)
		}
	}
	if pt.ptid != 5 {
		t.Fatalf("ptid = %d", pt.ptid)
	}
	if err := pt.apply(6, 1, []cellChange{{7, s1, proto.UP_TO_DATE}}); !errors.Is(err, proto.ErrProtocol) {
		t.Fatalf("change of a partition out of range: %v", err)
	}
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
	n.mu.notified = 10
	n.mu.peers[c1] = &peer{Type: proto.CLIENT, State: proto.NODE_RUNNING, IDTimestamp: proto.Some(9.5)}
	ctx := t.Context()
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
