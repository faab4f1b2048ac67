package storage

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
)

func TestStorageDialsArbitrate(t *testing.T) {
	const small, big, other = proto.NodeID(1), proto.NodeID(2), proto.NodeID(3)
	tests := []struct {
		name         string
		self, peer   proto.NodeID
		dialTo       proto.NodeID // 0: no dial
		wantErr      error
		wantReplaced bool
	}{
		{"no dial", small, big, 0, nil, false},
		{"dial to another storage", small, big, other, nil, false},
		{"our id smaller: ours replaced", small, big, big, nil, true},
		{"our id greater: refused", big, small, small, errAlreadyConnected, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s storageDials
			var d *storageDial
			ctx, cancel := context.WithCancelCause(t.Context())
			defer cancel(nil)
			if tc.dialTo != 0 {
				d = s.add(tc.dialTo, cancel)
			}
			if err := s.arbitrate(tc.self, tc.peer); err != tc.wantErr {
				t.Fatalf("arbitrate(%v, %v) = %v, want %v", tc.self, tc.peer, err, tc.wantErr)
			}
			if d == nil {
				return
			}
			if got := !s.done(d); got != tc.wantReplaced {
				t.Errorf("dial replaced = %v, want %v", got, tc.wantReplaced)
			}
			if got := errors.Is(context.Cause(ctx), errDialReplaced); got != tc.wantReplaced {
				t.Errorf("dial cancelled for the crossing dial = %v (cause %v), want %v", got, context.Cause(ctx), tc.wantReplaced)
			}
			if len(s.m) != 0 {
				t.Errorf("dials left registered: %v", s.m)
			}
		})
	}
	if !lostArbitration(&proto.Error{Code: proto.PROTOCOL_ERROR, Message: "already connected"}) ||
		!lostArbitration(errDialReplaced) || lostArbitration(&proto.Error{Code: proto.PROTOCOL_ERROR, Message: "other"}) {
		t.Error("lostArbitration does not tell the lost dials")
	}
}

// haNode is an operational node, without a master, that accepts links
// from the storages and clients of its node table.
func newHANode(t *testing.T, ctx context.Context, nid proto.NodeID) *Node {
	t.Helper()
	n, err := New(Config{Cluster: "ha", Masters: []string{"127.0.0.1:1"}, Backend: nopBackend{}})
	if err != nil {
		t.Fatal(err)
	}
	n.mu.nid = nid
	n.mu.operational = true
	n.mu.tm = newTxnManager(txnConfig{DB: newFakeDB()})
	if err := n.Listen(ctx); err != nil {
		t.Fatal(err)
	}
	actx, cancel := context.WithCancel(ctx)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.acceptLoop(actx)
	}()
	t.Cleanup(func() {
		cancel()
		n.ln.Close()
		n.closeLinks()
		n.wg.Wait()
	})
	return n
}

// servesLink tells whether n identified, as coming from nid, the link
// whose local end is l.
func servesLink(n *Node, nid proto.NodeID, l *neonet.Link) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for in, id := range n.mu.links {
		if id == nid && in.RemoteAddr().String() == l.LocalAddr().String() {
			return true
		}
	}
	return false
}

// Two storages dial each other at the same time (protocol.md §5.6): both
// dials are registered before either connects, so each storage receives
// the other's identification while its own is silent. The dial of the
// greater id survives at once; the other one is dropped by its own node,
// which then uses the surviving link for its own requests.
func TestCrossingStorageDials(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 4*waitDeadline)
	defer cancel()
	const small, big = proto.NodeID(1), proto.NodeID(2)
	nodes := map[proto.NodeID]*Node{small: newHANode(t, ctx, small), big: newHANode(t, ctx, big)}
	var list []proto.NodeInfo
	for nid, n := range nodes {
		list = append(list, proto.NodeInfo{Type: proto.STORAGE, NID: nid, Addr: n.Addr(), State: proto.NODE_RUNNING,
			IDTimestamp: proto.Some(float64(nid))})
	}
	for _, n := range nodes {
		if err := n.notifyNodeInformation(ctx, &proto.NotifyNodeInformation{Timestamp: 10, NodeList: list}, true); err != nil {
			t.Fatal(err)
		}
	}

	// Each first attempt waits, registered, until both are.
	var barrier sync.WaitGroup
	barrier.Add(2)
	released := make(chan struct{})
	go func() {
		barrier.Wait()
		close(released)
	}()
	var mu sync.Mutex
	attempts := map[proto.NodeID]int{}
	for self, n := range nodes {
		n.dials.beforeDial = func(peer proto.NodeID, attempt int) {
			mu.Lock()
			attempts[self] = attempt
			mu.Unlock()
			if attempt > 1 {
				return
			}
			barrier.Done()
			select {
			case <-released:
			case <-ctx.Done():
			}
		}
	}

	type result struct {
		link *storageLink
		err  error
	}
	results := map[proto.NodeID]chan result{small: make(chan result, 1), big: make(chan result, 1)}
	for self, n := range nodes {
		peer := small + big - self
		go func() {
			l, err := n.dialStorage(ctx, peer, nodes[peer].Addr().String())
			results[self] <- result{l, err}
		}()
	}
	links := map[proto.NodeID]*storageLink{}
	for self, ch := range results {
		select {
		case r := <-ch:
			if r.err != nil {
				t.Fatalf("dial from %v: %v", self, r.err)
			}
			links[self] = r.link
			t.Cleanup(func() { r.link.Close() })
		case <-ctx.Done():
			t.Fatalf("dial from %v not done", self)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if attempts[big] != 1 {
		t.Errorf("the greater id dialled %d times, want once: its crossing dial must survive", attempts[big])
	}
	if attempts[small] != 1 {
		t.Errorf("the smaller id dialled %d times, want once: its dial loses and it uses the crossing one", attempts[small])
	}
	for self, l := range links {
		select {
		case <-l.Done():
			t.Errorf("link of %v closed: %v", self, l.Err())
		default:
		}
	}
	// One link for both: the one the greater id dialled, which the
	// smaller one serves, as coming from it, and uses for its requests.
	if got, want := links[small].RemoteAddr().String(), links[big].LocalAddr().String(); got != want {
		t.Errorf("the smaller id uses the link to %s, want the greater id's dial from %s", got, want)
	}
	if !servesLink(nodes[small], big, links[big].Link) {
		t.Errorf("%v does not serve the link dialled by %v", small, big)
	}
	var a proto.AnswerCheckTIDRange
	if err := links[small].Ask(ctx, &proto.AskCheckTIDRange{Partition: 7, Length: 1, MaxTid: proto.MaxTid}, &a); !isCode(err, proto.CHECKING_ERROR) {
		t.Errorf("request of the smaller id on the greater id's dial: %v, want the greater id's CHECKING_ERROR", err)
	}
	for _, n := range nodes {
		n.dials.mu.Lock()
		left := len(n.dials.m)
		n.dials.mu.Unlock()
		if left != 0 {
			t.Errorf("silent dials left registered: %d", left)
		}
	}
}
