package storage

import (
	"context"
	"errors"
	"testing"

	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/parttab"
	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

// An identified client's link is served by its handler: lone loads and
// loads sent in bursts (run in parallel) are all answered, each under its
// own id; an error answer does not stop the link; a protocol violation
// aborts it, and the requests behind it are not served.
func TestClientLinkLoads(t *testing.T) {
	const self = proto.NodeID(1)
	const client = proto.NodeID(-0x20<<24 + 1)
	ctx, cancel := context.WithTimeout(t.Context(), 4*waitDeadline)
	defer cancel()
	n := newTestNode(t, ctx, self, 0, parttab.Cell{NID: self, State: proto.UP_TO_DATE})
	if err := n.db.ChangePartitionTable(ctx, 1, 0, []backend.CellChange{{Partition: 0, NID: self, State: proto.UP_TO_DATE}}, true); err != nil {
		t.Fatal(err)
	}
	if err := n.notifyNodeInformation(ctx, &proto.NotifyNodeInformation{Timestamp: 10, NodeList: []proto.NodeInfo{
		{Type: proto.STORAGE, NID: self, Addr: proto.Addr{Host: "127.0.0.1", Port: 2}, State: proto.NODE_RUNNING, IDTimestamp: proto.Some(9.0)},
		{Type: proto.CLIENT, NID: client, State: proto.NODE_RUNNING, IDTimestamp: proto.Some(9.5)},
	}}, true); err != nil {
		t.Fatal(err)
	}
	if err := n.startOperation(ctx); err != nil {
		t.Fatal(err)
	}

	ln, err := neonet.Listen(ctx, "tcp", "127.0.0.1:0", neonet.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	served := make(chan struct{})
	go func() {
		defer close(served)
		link, err := ln.Accept(ctx)
		if err != nil {
			t.Errorf("accept: %v", err)
			return
		}
		defer link.Close()
		n.serveIncoming(ctx, link)
	}()
	link, err := neonet.Dial(ctx, "tcp", ln.Addr().String(), neonet.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer link.Close()
	if err := link.Ask(ctx, &proto.RequestIdentification{NodeType: proto.CLIENT, NID: client, ClusterName: "c",
		IDTimestamp: proto.Some(9.5)}, &proto.AcceptIdentification{}); err != nil {
		t.Fatalf("identification: %v", err)
	}

	load := func(oid proto.Oid) *proto.AskObject {
		return &proto.AskObject{Oid: oid, At: proto.InvalidTid, Before: proto.InvalidTid}
	}
	// Lone loads: the database is empty.
	for oid := range proto.Oid(3) {
		if err := link.Ask(ctx, load(oid), &proto.AnswerObject{}); !errors.Is(err, proto.ErrOidDoesNotExist) {
			t.Fatalf("load %v: got %v, want OID_DOES_NOT_EXIST", oid, err)
		}
	}
	// A burst: the client's writer batches what is queued behind its
	// first write, so most arrive with others buffered behind them.
	calls := make([]*neonet.Call, 4*maxLinkLoads)
	for i := range calls {
		if calls[i], err = link.Start(load(proto.Oid(100+i)), &proto.AnswerObject{}); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range calls {
		err := c.Wait(ctx)
		var perr *proto.Error
		if !errors.As(err, &perr) || perr.Code != proto.OID_DOES_NOT_EXIST || perr.Message != proto.Oid(100+i).String() {
			t.Fatalf("burst load %d: got %v, want OID_DOES_NOT_EXIST for its oid", i, err)
		}
	}
	// A protocol violation aborts the link; what follows is not served.
	bad, err := link.Start(&proto.AskStoreObject{Compression: 2, Checksum: make([]byte, 20)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The abort may already have closed the link: then the load cannot
	// even be sent, which is as good.
	after, err := link.Start(load(1), nil)
	if err != nil && !errors.Is(err, neonet.ErrClosed) {
		t.Fatal(err)
	}
	if err := bad.Wait(ctx); !errors.Is(err, proto.ErrProtocol) {
		t.Fatalf("invalid store: got %v, want PROTOCOL_ERROR", err)
	}
	if after != nil {
		if err := after.Wait(ctx); !errors.Is(err, neonet.ErrClosed) {
			t.Fatalf("load after the violation: got %v, want the link closed", err)
		}
	}
	select {
	case <-served:
	case <-ctx.Done():
		t.Fatal("serveIncoming did not return after the abort")
	}
}
