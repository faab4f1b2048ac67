package storage

import (
	"context"
	"testing"

	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/parttab"
	"github.com/neogo/neo/proto"
)

// A storage that keeps a link we dialled (neoppod uses one link both
// ways) sends its own replication and check requests on it: they are
// served as on a link we accepted, while our own fetch on the same link
// still gets its AddTransaction notifications.
func TestDialledLinkServesPeerRequests(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 4*waitDeadline)
	defer cancel()
	const self, peer = proto.NodeID(1), proto.NodeID(2)

	n := newTestNode(t, ctx, self, 1, parttab.Cell{NID: self, State: proto.UP_TO_DATE}, parttab.Cell{NID: peer, State: proto.UP_TO_DATE})
	n.mu.operational = true
	n.mu.tm = newTxnManager(txnConfig{DB: newFakeDB()})
	t.Cleanup(func() {
		n.closeLinks()
		n.wg.Wait()
	})

	// The peer: identifies us, then asks on the link we dialled.
	ln, err := neonet.Listen(ctx, "tcp", "127.0.0.1:0", neonet.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type accepted struct {
		link *neonet.Link
		err  error
	}
	acc := make(chan accepted, 1)
	go func() {
		l, err := ln.Accept(ctx)
		if err == nil {
			var r *neonet.Request
			if r, err = l.Recv(ctx); err == nil {
				if _, ok := r.Msg.(*proto.RequestIdentification); ok {
					err = r.Reply(&proto.AcceptIdentification{NodeType: proto.STORAGE, MyNID: peer, YourNID: self})
				}
			}
		}
		acc <- accepted{l, err}
	}()
	sl, err := n.dialStorage(ctx, peer, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	a := <-acc
	if a.err != nil {
		t.Fatal(a.err)
	}
	pl := a.link
	defer pl.Close()

	// The peer's requests, answered by us on the link we dialled.
	var check proto.AnswerCheckTIDRange
	if err := pl.Ask(ctx, &proto.AskCheckTIDRange{Partition: 0, Length: checkCount, MaxTid: proto.MaxTid}, &check); err != nil {
		t.Fatalf("AskCheckTIDRange on the link we dialled: %v", err)
	}
	if check.Count != 0 {
		t.Errorf("check of an empty partition: count %d", check.Count)
	}
	var fetch proto.AnswerFetchTransactions
	if err := pl.Ask(ctx, &proto.AskFetchTransactions{Partition: 0, Length: fetchCount, MaxTid: proto.MaxTid}, &fetch); err != nil {
		t.Fatalf("AskFetchTransactions on the link we dialled: %v", err)
	}
	var notReadable proto.AnswerCheckTIDRange
	if err := pl.Ask(ctx, &proto.AskCheckTIDRange{Partition: 7, Length: checkCount, MaxTid: proto.MaxTid}, &notReadable); !isCode(err, proto.CHECKING_ERROR) {
		t.Fatalf("check of a partition we lack: %v, want CHECKING_ERROR with the link kept", err)
	}

	// Our fetch on the same link, while the peer asks again: the peer
	// feeds two transactions then answers.
	go func() {
		r, err := pl.Recv(ctx)
		if err != nil {
			return
		}
		if _, ok := r.Msg.(*proto.AskFetchTransactions); !ok {
			t.Errorf("peer got %s, want AskFetchTransactions", proto.MsgName(r.Msg.NEOMsgCode()))
			return
		}
		for _, tid := range []proto.Tid{5, 6} {
			pl.SendWithID(r.ID, &proto.AddTransaction{Tid: tid, TTid: tid, User: []byte{}, Description: []byte{}, Extension: []byte{}})
		}
		r.Reply(&proto.AnswerFetchTransactions{NextTid: proto.InvalidTid, CompletedPack: proto.InvalidTid})
	}()
	peerAsked := make(chan error, 1)
	go func() {
		var a proto.AnswerCheckTIDRange
		peerAsked <- pl.Ask(ctx, &proto.AskCheckTIDRange{Partition: 0, Length: checkCount, MaxTid: proto.MaxTid}, &a)
	}()
	rep := &replicator{n: n}
	var got []proto.Tid
	var ours proto.AnswerFetchTransactions
	err = rep.fetch(ctx, sl, &proto.AskFetchTransactions{Partition: 0, Length: fetchCount, MaxTid: proto.MaxTid}, &ours, func(m proto.Msg) {
		got = append(got, m.(*proto.AddTransaction).Tid)
	})
	if err != nil {
		t.Fatalf("our fetch: %v", err)
	}
	if len(got) != 2 || got[0] != 5 || got[1] != 6 {
		t.Errorf("our fetch got transactions %v, want [5 6]", got)
	}
	if err := <-peerAsked; err != nil {
		t.Errorf("peer's request during our fetch: %v", err)
	}
	select {
	case <-sl.Done():
		t.Fatalf("link closed: %v", sl.Err())
	default:
	}
}

func isCode(err error, code proto.ErrorCode) bool {
	perr, ok := err.(*proto.Error)
	return ok && perr.Code == code
}
