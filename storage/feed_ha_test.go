package storage

import (
	"context"
	"testing"
	"time"

	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/parttab"
	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

// feedNode is a node that holds partition 0 UP_TO_DATE on an empty
// database and serves one storage link in process; its clientPriority
// bound fires only when the test sends on expired.
type feedNode struct {
	n       *Node
	peer    *neonet.Link // the checking storage's end
	expired chan time.Time
}

func newFeedNode(t *testing.T, ctx context.Context) *feedNode {
	t.Helper()
	const self, checker = proto.NodeID(1), proto.NodeID(2)
	n := newTestNode(t, ctx, self, 1, parttab.Cell{NID: self, State: proto.UP_TO_DATE}, parttab.Cell{NID: checker, State: proto.UP_TO_DATE})
	f := &feedNode{n: n, expired: make(chan time.Time, 1)}
	n.prio.expired = f.expired

	ln, err := neonet.Listen(ctx, "tcp", "127.0.0.1:0", neonet.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if f.peer, err = neonet.Dial(ctx, "tcp", ln.Addr().String(), neonet.Config{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.peer.Close() })
	link, err := ln.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := &clientConn{n: n, link: link, nid: checker, tm: newTxnManager(txnConfig{DB: newFakeDB()}),
		loads: make(chan struct{}, maxLinkLoads)}
	served := make(chan struct{})
	go func() {
		defer close(served)
		for {
			r, err := link.Recv(ctx)
			if err != nil {
				return
			}
			if err := c.handle(ctx, r); err != nil {
				t.Errorf("handle %s: %v", proto.MsgName(r.Msg.NEOMsgCode()), err)
			}
		}
	}()
	t.Cleanup(func() {
		link.Close()
		<-served
	})
	return f
}

// ask starts req on the checking storage's end; the channel gives the
// outcome of the call.
func (f *feedNode) ask(t *testing.T, ctx context.Context, req, resp proto.Msg) <-chan error {
	t.Helper()
	call, err := f.peer.Start(req, resp)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- call.Wait(ctx) }()
	return done
}

// The answers of a replica check's feeding side wait while client
// requests are in progress (like replication feeding, priority.go), go on
// as soon as the last one ends, and after the bound when none ends.
func TestCheckFeedYieldsToClients(t *testing.T) {
	reqs := []struct {
		name      string
		req, resp func() proto.Msg
	}{
		{"AskCheckTIDRange",
			func() proto.Msg {
				return &proto.AskCheckTIDRange{Partition: 0, Length: checkCount, MinTid: 0, MaxTid: proto.MaxTid}
			},
			func() proto.Msg { return &proto.AnswerCheckTIDRange{} }},
		{"AskCheckSerialRange",
			func() proto.Msg {
				return &proto.AskCheckSerialRange{Partition: 0, Length: checkCount, MinTid: 0, MaxTid: proto.MaxTid, MinOid: 0}
			},
			func() proto.Msg { return &proto.AnswerCheckSerialRange{} }},
	}
	// answered adapts the outcome of a call to mustBlock/mustProceed,
	// failing on an error answer.
	answered := func(t *testing.T, errc <-chan error) <-chan bool {
		done := make(chan bool, 1)
		go func() {
			if err := <-errc; err != nil {
				t.Errorf("check answer: %v", err)
			}
			done <- true
		}()
		return done
	}
	for _, rq := range reqs {
		t.Run(rq.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 4*waitDeadline)
			defer cancel()
			f := newFeedNode(t, ctx)
			p := &f.n.prio

			// No client request: answered at once.
			mustProceed(t, answered(t, f.ask(t, ctx, rq.req(), rq.resp())), true)

			// A client request in progress: the answer waits for its end.
			p.begin()
			done := answered(t, f.ask(t, ctx, rq.req(), rq.resp()))
			mustBlock(t, done)
			p.end()
			mustProceed(t, done, true)

			// A client request that never ends: the bound lets the check go.
			p.begin()
			done = answered(t, f.ask(t, ctx, rq.req(), rq.resp()))
			mustBlock(t, done)
			f.expired <- time.Now()
			mustProceed(t, done, true)
			p.end()
		})
	}
}

// Replication's feeding side yields to clients every yieldEvery records
// it sends, not at each request: a small catch-up (a storage restarted
// after a few commits) is answered at once while clients are busy, a bulk
// one still waits for them.
func TestFetchFeedYieldsForBulkOnly(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 4*waitDeadline)
	defer cancel()
	f := newFeedNode(t, ctx)
	p := &f.n.prio
	fetch := func() <-chan bool {
		done := make(chan bool, 1)
		errc := f.ask(t, ctx, &proto.AskFetchTransactions{Partition: 0, Length: fetchCount, MinTid: 0, MaxTid: proto.MaxTid},
			&proto.AnswerFetchTransactions{})
		go func() {
			if err := <-errc; err != nil {
				t.Errorf("fetch answer: %v", err)
			}
			done <- true
		}()
		return done
	}
	if err := f.n.db.ChangePartitionTable(ctx, 1, 1, []backend.CellChange{{Partition: 0, NID: 1, State: proto.UP_TO_DATE}}, true); err != nil {
		t.Fatal(err)
	}
	add := func(from, n int) {
		var txns []backend.TxnMeta
		for i := from; i < from+n; i++ {
			txns = append(txns, backend.TxnMeta{Tid: proto.Tid(1000 + i), TTid: proto.Tid(1000 + i), Oids: []proto.Oid{proto.Oid(i)}})
		}
		if err := f.n.db.ReplicateTransactions(ctx, 0, txns, nil); err != nil {
			t.Fatal(err)
		}
	}

	p.begin() // a client request in progress, all along
	add(0, 3)
	mustProceed(t, fetch(), true)

	add(3, yieldEvery)
	done := fetch()
	mustBlock(t, done)
	p.end()
	mustProceed(t, done, true)
}
