package client_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/neogo/neo/client"
	"github.com/neogo/neo/internal/neotest"
	"github.com/neogo/neo/proto"
)

// When the master goes away, an open transaction fails with
// ErrMasterLost; Load and Begin wait for the client to reconnect by
// itself to the master that comes back, and watchers are told that
// commits may have been missed.
func TestReconnect(t *testing.T) {
	c := neotest.Start(t, neotest.Options{Storages: 2, Replicas: 1, Partitions: 4})
	cl, other := c.Open(t, client.Config{}), c.Open(t, client.Config{})
	ctx := opContext(t)
	events := cl.Watch(ctx)
	oid, _ := cl.NewOID(ctx)
	tid, err := neotest.Commit(ctx, cl, oid, proto.ZeroTid, []byte("before"))
	if err != nil {
		t.Fatal(err)
	}
	if inv := <-events; inv.Tid != tid {
		t.Fatalf("invalidation %+v; want tid %v", inv, tid)
	}
	txn, err := cl.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := txn.Store(ctx, oid, tid, []byte("lost")); err != nil {
		t.Fatal(err)
	}

	c.Stop(neotest.Master(0))
	c.Restart(neotest.Master(0))

	// The other client commits first: cl may miss it while reconnecting.
	tid2, err := neotest.Commit(ctx, other, oid, tid, []byte("after"))
	if err != nil {
		t.Fatalf("commit after the master restart: %v", err)
	}
	obj, err := cl.Load(ctx, oid, proto.InvalidTid)
	if err != nil {
		t.Fatalf("Load after the master restart: %v", err)
	}
	if err := cl.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if obj, err = cl.Load(ctx, oid, proto.InvalidTid); err != nil || !bytes.Equal(obj.Data, []byte("after")) || obj.Serial != tid2 {
		t.Errorf("Load after sync = %q at %v, %v; want %q at %v", obj.Data, obj.Serial, err, "after", tid2)
	}
	if err := txn.Vote(ctx); !errors.Is(err, client.ErrMasterLost) {
		t.Errorf("Vote of a transaction begun before the loss: %v; want ErrMasterLost", err)
	}
	txn.Abort(ctx)
	select {
	case inv := <-events:
		if inv.Tid != tid2 {
			t.Errorf("invalidation after the reconnection = %+v; want tid %v", inv, tid2)
		}
	case <-ctx.Done():
		t.Fatal("no invalidation after the reconnection")
	}
	tid3, err := neotest.Commit(ctx, cl, oid, tid2, []byte("again"))
	if err != nil {
		t.Fatalf("commit after the reconnection: %v", err)
	}
	if tid3 <= tid2 {
		t.Errorf("tid %v after %v", tid3, tid2)
	}
}
