package storage

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/parttab"
	"github.com/neogo/neo/proto"
)

// A client that identifies while the master already announced us RUNNING
// but StartOperation is not handled yet waits for it rather than getting
// NOT_READY (neoppod's client would then wait 1 s before dialling us
// again, stalling its transaction); when the master did not say we are
// RUNNING, or StartOperation does not come in time, it gets NOT_READY.
func TestIdentifyWaitsForOperation(t *testing.T) {
	const self = proto.NodeID(1)
	const client = proto.NodeID(-0x20<<24 + 1)
	tests := []struct {
		name     string
		state    proto.NodeState // ours, as the master says
		late     bool            // the master's notification comes after the client
		start    bool            // StartOperation comes
		want     error
		atLeast  time.Duration
		atMost   time.Duration
		blocking bool
	}{
		{"announced RUNNING, then StartOperation", proto.NODE_RUNNING, false, true, nil, 0, waitDeadline, true},
		{"client first, then notification and StartOperation", proto.NODE_RUNNING, true, true, nil, 0, waitDeadline, true},
		{"announced RUNNING, StartOperation late", proto.NODE_RUNNING, false, false, proto.ErrNotReady, operationalWait, waitDeadline, true},
		{"PENDING", proto.PENDING, false, false, proto.ErrNotReady, 0, operationalWait * 3 / 4, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 4*waitDeadline)
			defer cancel()
			n := newTestNode(t, ctx, self, 0, parttab.Cell{NID: self, State: proto.UP_TO_DATE})
			notify := func() {
				err := n.notifyNodeInformation(ctx, &proto.NotifyNodeInformation{Timestamp: 10, NodeList: []proto.NodeInfo{
					{Type: proto.STORAGE, NID: self, Addr: proto.Addr{Host: "127.0.0.1", Port: 2}, State: tc.state, IDTimestamp: proto.Some(9.0)},
					{Type: proto.CLIENT, NID: client, State: proto.NODE_RUNNING, IDTimestamp: proto.Some(9.5)},
				}}, true)
				if err != nil {
					t.Fatal(err)
				}
			}
			if !tc.late {
				notify()
			}
			link := &neonet.Link{}
			req := &proto.RequestIdentification{NodeType: proto.CLIENT, NID: client, ClusterName: "c", IDTimestamp: proto.Some(9.5)}
			start := time.Now()
			done := make(chan error, 1)
			go func() {
				_, _, err := n.identify(ctx, link, req)
				done <- err
			}()
			if tc.blocking {
				select {
				case err := <-done:
					t.Fatalf("identification answered before StartOperation: %v", err)
				case <-time.After(50 * time.Millisecond):
				}
			}
			if tc.late {
				notify()
			}
			if tc.start {
				if err := n.startOperation(ctx); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case err := <-done:
				if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
					t.Fatalf("identification: %v, want %v", err, tc.want)
				}
			case <-ctx.Done():
				t.Fatal("identification still waiting")
			}
			if d := time.Since(start); d < tc.atLeast || d > tc.atMost {
				t.Errorf("identification answered after %v, want within [%v, %v]", d, tc.atLeast, tc.atMost)
			}
		})
	}
}
