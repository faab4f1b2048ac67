package client_test

import (
	"bytes"
	"testing"

	"github.com/neogo/neo/client"
	"github.com/neogo/neo/internal/neotest"
	"github.com/neogo/neo/proto"
)

// A load of the current revision right after Finish sees that commit,
// although another transaction of the same client is still finishing
// (whose answer holds back the invalidations the watchers get, for their
// tid order): found by neostress --client go as stale reads.
func TestLoadAfterFinishWhileAnotherFinishes(t *testing.T) {
	c := neotest.Start(t, neotest.Options{Storages: 1, Partitions: 4})
	cl := c.Open(t, client.Config{})
	ctx := opContext(t)

	commitVoted := func(data string) (*client.Txn, proto.Oid) {
		t.Helper()
		oid, err := cl.NewOID(ctx)
		if err != nil {
			t.Fatal(err)
		}
		txn, err := cl.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := txn.Store(ctx, oid, proto.ZeroTid, []byte(data)); err != nil {
			t.Fatal(err)
		}
		if err := txn.Vote(ctx); err != nil {
			t.Fatal(err)
		}
		return txn, oid
	}

	a, _ := commitVoted("a")
	sent, hold := make(chan struct{}), make(chan struct{})
	cl.HoldNextFinishForTest(sent, hold)
	aDone := make(chan error, 1)
	go func() {
		_, err := a.Finish(ctx)
		aDone <- err
	}()
	<-sent
	defer func() {
		close(hold)
		if err := <-aDone; err != nil {
			t.Errorf("finish a: %v", err)
		}
	}()

	b, oid := commitVoted("b")
	tid, err := b.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := cl.Load(ctx, oid, proto.InvalidTid)
	if err != nil {
		t.Fatalf("load of oid %v just committed at %v: %v", oid, tid, err)
	}
	if obj.Serial != tid || !bytes.Equal(obj.Data, []byte("b")) {
		t.Fatalf("load of oid %v = serial %v %q; want %v %q", oid, obj.Serial, obj.Data, tid, "b")
	}
	if last, err := cl.LastTid(ctx); err != nil || last < tid {
		t.Errorf("LastTid = %v, %v; want at least %v", last, err, tid)
	}
}
