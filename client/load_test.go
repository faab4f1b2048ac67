package client_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/neogo/neo/client"
	"github.com/neogo/neo/internal/neotest"
	"github.com/neogo/neo/proto"
)

// giveUpBound is how soon a read that no storage can serve must fail:
// far below the operation's context, which would be the old behaviour.
const giveUpBound = 10 * time.Second

// refusedAddr returns a loopback address where nothing listens.
func refusedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// loadWithin runs Load and fails the test if it takes more than
// giveUpBound; the context given to Load lasts longer (opTimeout).
func loadWithin(t *testing.T, ctx context.Context, cl *client.Client, oid proto.Oid) (client.Object, error) {
	t.Helper()
	start := time.Now()
	obj, err := cl.Load(ctx, oid, proto.InvalidTid)
	if d := time.Since(start); d > giveUpBound {
		t.Errorf("Load took %v; want an answer within %v", d, giveUpBound)
	}
	if ctx.Err() != nil {
		t.Fatalf("Load returned only at the end of its context: %v", err)
	}
	return obj, err
}

// A client cut off from every storage of the partition (the master
// still has them running) gets a NoStorageError naming the oid and the
// partition, promptly; once the storages are reachable again, the same
// client reads.
func TestLoadNoStorage(t *testing.T) {
	c := neotest.Start(t, neotest.Options{Storages: 2, Replicas: 1, Partitions: 2})
	cl := c.Open(t, client.Config{})
	ctx := opContext(t)
	oid, _ := cl.NewOID(ctx)
	if _, err := neotest.Commit(ctx, cl, oid, proto.ZeroTid, []byte("unreachable")); err != nil {
		t.Fatal(err)
	}
	dead := refusedAddr(t)
	cl.DropStorageLinksForTest()
	cl.SetStorageAddrHookForTest(func(proto.NodeID, string) string { return dead })

	_, err := loadWithin(t, ctx, cl, oid)
	var nse *client.NoStorageError
	if !errors.As(err, &nse) || !errors.Is(err, client.ErrNoStorage) {
		t.Fatalf("Load without reachable storage: %v; want a NoStorageError", err)
	}
	if errors.Is(err, client.ErrMasterLost) {
		t.Errorf("Load without reachable storage: %v; the master was not lost", err)
	}
	if nse.Oid != oid || nse.Cells != 2 || nse.Err == nil {
		t.Errorf("NoStorageError = %+v; want oid %v, 2 cells, the last failure", *nse, oid)
	}

	cl.SetStorageAddrHookForTest(nil)
	if obj, err := cl.Load(ctx, oid, proto.InvalidTid); err != nil || string(obj.Data) != "unreachable" {
		t.Errorf("Load once the storages are reachable = %q, %v", obj.Data, err)
	}
}

// A read during which the master connection (so the partition table) is
// lost fails with a retryable ErrMasterLost error instead of waiting.
func TestLoadMasterLostDuringRead(t *testing.T) {
	c := neotest.Start(t, neotest.Options{Storages: 1, Partitions: 1})
	cl := c.Open(t, client.Config{})
	ctx := opContext(t)
	oid, _ := cl.NewOID(ctx)
	if _, err := neotest.Commit(ctx, cl, oid, proto.ZeroTid, []byte("x")); err != nil {
		t.Fatal(err)
	}
	cl.DropStorageLinksForTest()
	lost := cl.MasterDoneForTest()
	if lost == nil {
		t.Fatal("client not connected")
	}
	// The master goes while the client dials the storage for the read.
	cl.SetStorageAddrHookForTest(func(_ proto.NodeID, addr string) string {
		c.Stop(neotest.Master(0))
		select {
		case <-lost:
		case <-time.After(stopTimeout):
			t.Errorf("client did not notice the master's end within %v", stopTimeout)
		}
		return addr
	})
	_, err := loadWithin(t, ctx, cl, oid)
	if !errors.Is(err, client.ErrMasterLost) {
		t.Fatalf("Load losing the master: %v; want ErrMasterLost", err)
	}
}

// With both storages of the partition stopped the cluster cannot serve
// the read: Load says so promptly, whether it notices the storages'
// end first (NoStorageError) or the master's leaving operation
// (ErrMasterLost, the master drops its clients then).
func TestLoadStoragesStopped(t *testing.T) {
	c := neotest.Start(t, neotest.Options{Storages: 2, Replicas: 1, Partitions: 2})
	cl := c.Open(t, client.Config{})
	ctx := opContext(t)
	oid, _ := cl.NewOID(ctx)
	if _, err := neotest.Commit(ctx, cl, oid, proto.ZeroTid, []byte("gone")); err != nil {
		t.Fatal(err)
	}
	c.Stop(neotest.Storage(0))
	c.Stop(neotest.Storage(1))
	_, err := loadWithin(t, ctx, cl, oid)
	if !errors.Is(err, client.ErrNoStorage) && !errors.Is(err, client.ErrMasterLost) {
		t.Fatalf("Load with both storages stopped: %v; want ErrNoStorage or ErrMasterLost", err)
	}
	// Once the client was dropped, reads keep failing at once.
	<-waitChan(t, cl.MasterDoneForTest())
	if _, err := loadWithin(t, ctx, cl, oid); !errors.Is(err, client.ErrMasterLost) {
		t.Errorf("Load while the cluster is out of operation: %v; want ErrMasterLost", err)
	}
}

// waitChan returns ch, or a closed channel if ch is nil; it fails the
// test if ch is not closed within stopTimeout.
func waitChan(t *testing.T, ch <-chan struct{}) <-chan struct{} {
	t.Helper()
	if ch == nil {
		done := make(chan struct{})
		close(done)
		return done
	}
	select {
	case <-ch:
	case <-time.After(stopTimeout):
		t.Fatalf("not done within %v", stopTimeout)
	}
	return ch
}
