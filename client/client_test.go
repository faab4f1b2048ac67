package client_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/neogo/neo/client"
	"github.com/neogo/neo/internal/neotest"
	"github.com/neogo/neo/proto"
)

// Bounds of the waits of these tests.
const (
	opTimeout   = 30 * time.Second    // one test's client operations
	stopTimeout = neotest.StopTimeout // a node's end, as seen by a client
)

// opContext bounds a test's client operations.
func opContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), opTimeout)
	t.Cleanup(cancel)
	return ctx
}

// Revisions stored by the client come back from Load (current and
// before a tid) and LoadSerial, with the serials that delimit them.
func TestStoreLoadRoundTrip(t *testing.T) {
	c := neotest.Start(t, neotest.Options{Storages: 2, Replicas: 1, Partitions: 4})
	cl := c.Open(t, client.Config{})
	ctx := opContext(t)
	oid, err := cl.NewOID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	revs := [][]byte{
		[]byte("small"),
		bytes.Repeat([]byte("compressible "), 200), // stored zlib-compressed
		[]byte("third revision"),
	}
	var tids []proto.Tid
	serial := proto.ZeroTid
	for i, data := range revs {
		tid, err := neotest.Commit(ctx, cl, oid, serial, data)
		if err != nil {
			t.Fatalf("commit revision %d: %v", i, err)
		}
		if tid <= serial {
			t.Fatalf("commit revision %d: tid %v not after %v", i, tid, serial)
		}
		tids = append(tids, tid)
		serial = tid
	}
	last, err := cl.LastTid(ctx)
	if err != nil || last != tids[2] {
		t.Errorf("LastTid = %v, %v; want %v", last, err, tids[2])
	}

	t.Run("current", func(t *testing.T) {
		obj, err := cl.Load(ctx, oid, proto.InvalidTid)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(obj.Data, revs[2]) || obj.Serial != tids[2] || obj.NextSerial != proto.InvalidTid {
			t.Errorf("Load current = %q serial %v next %v; want %q %v none", obj.Data, obj.Serial, obj.NextSerial, revs[2], tids[2])
		}
	})
	t.Run("before each revision", func(t *testing.T) {
		for i := 1; i < len(tids); i++ {
			obj, err := cl.Load(ctx, oid, tids[i])
			if err != nil {
				t.Fatalf("Load before %v: %v", tids[i], err)
			}
			if !bytes.Equal(obj.Data, revs[i-1]) || obj.Serial != tids[i-1] || obj.NextSerial != tids[i] {
				t.Errorf("Load before %v = %.20q serial %v next %v; want revision %d (%v, next %v)",
					tids[i], obj.Data, obj.Serial, obj.NextSerial, i-1, tids[i-1], tids[i])
			}
		}
	})
	t.Run("before the first revision is not found", func(t *testing.T) {
		_, err := cl.Load(ctx, oid, tids[0])
		if !errors.Is(err, proto.ErrOidNotFound) {
			t.Errorf("Load before the creation: %v; want OID_NOT_FOUND", err)
		}
	})
	t.Run("serial", func(t *testing.T) {
		for i, tid := range tids {
			obj, err := cl.LoadSerial(ctx, oid, tid)
			if err != nil {
				t.Fatalf("LoadSerial %v: %v", tid, err)
			}
			if !bytes.Equal(obj.Data, revs[i]) || obj.Serial != tid {
				t.Errorf("LoadSerial %v = %.20q serial %v", tid, obj.Data, obj.Serial)
			}
		}
		if _, err := cl.LoadSerial(ctx, oid, tids[0]+1); !errors.Is(err, proto.ErrOidNotFound) {
			t.Errorf("LoadSerial of no revision: %v; want OID_NOT_FOUND", err)
		}
	})
	t.Run("unknown oid", func(t *testing.T) {
		_, err := cl.Load(ctx, oid+1000, proto.InvalidTid)
		if !errors.Is(err, proto.ErrOidDoesNotExist) && !errors.Is(err, proto.ErrOidNotFound) {
			t.Errorf("Load of a never stored oid: %v; want OID_DOES_NOT_EXIST", err)
		}
	})
	t.Run("fresh client", func(t *testing.T) {
		cl2 := c.Open(t, client.Config{})
		obj, err := cl2.Load(ctx, oid, proto.InvalidTid)
		if err != nil || !bytes.Equal(obj.Data, revs[2]) {
			t.Errorf("Load by another client = %q, %v", obj.Data, err)
		}
	})
}

// NewOID hands out distinct oids across batches.
func TestNewOIDDistinct(t *testing.T) {
	c := neotest.Start(t, neotest.Options{Storages: 1, Partitions: 2})
	cl := c.Open(t, client.Config{})
	ctx := opContext(t)
	seen := map[proto.Oid]bool{}
	for range 250 {
		oid, err := cl.NewOID(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if seen[oid] {
			t.Fatalf("oid %v given twice", oid)
		}
		seen[oid] = true
	}
}

// A store based on a revision that is no longer current fails at vote
// with a ConflictError naming the object and the current serial.
func TestConflict(t *testing.T) {
	c := neotest.Start(t, neotest.Options{Storages: 2, Replicas: 1, Partitions: 4})
	cl := c.Open(t, client.Config{})
	ctx := opContext(t)
	oid, _ := cl.NewOID(ctx)
	base, err := neotest.Commit(ctx, cl, oid, proto.ZeroTid, []byte("base"))
	if err != nil {
		t.Fatal(err)
	}
	winner, err := neotest.Commit(ctx, cl, oid, base, []byte("winner"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = neotest.Commit(ctx, cl, oid, base, []byte("loser"))
	var ce *client.ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("commit on an old serial: %v; want a ConflictError", err)
	}
	if ce.Oid != oid || ce.Serial != winner || ce.Tried != base {
		t.Errorf("conflict = %+v; want oid %v serial %v tried %v", *ce, oid, winner, base)
	}
	// The loser's abort released its locks: a store on the right serial works.
	if _, err := neotest.Commit(ctx, cl, oid, winner, []byte("after")); err != nil {
		t.Errorf("commit after the conflict: %v", err)
	}
}

// An aborted transaction leaves nothing and no lock behind.
func TestAbort(t *testing.T) {
	c := neotest.Start(t, neotest.Options{Storages: 2, Replicas: 1, Partitions: 4})
	cl := c.Open(t, client.Config{})
	ctx := opContext(t)
	oid, _ := cl.NewOID(ctx)
	for _, vote := range []bool{false, true} {
		txn, err := cl.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := txn.Store(ctx, oid, proto.ZeroTid, []byte("aborted")); err != nil {
			t.Fatal(err)
		}
		if vote {
			if err := txn.Vote(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if err := txn.Abort(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := txn.Finish(ctx); !errors.Is(err, client.ErrTxnDone) {
			t.Errorf("Finish after Abort: %v; want ErrTxnDone", err)
		}
		if err := cl.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := cl.Load(ctx, oid, proto.InvalidTid); err == nil {
			t.Errorf("aborted store (voted %v) is readable", vote)
		}
	}
	if _, err := neotest.Commit(ctx, cl, oid, proto.ZeroTid, []byte("kept")); err != nil {
		t.Fatalf("commit after aborts: %v", err)
	}
}

// A second client sees the commits of the first through its Watch
// channel, in tid order, and reads the new data.
func TestInvalidations(t *testing.T) {
	c := neotest.Start(t, neotest.Options{Storages: 2, Replicas: 1, Partitions: 4})
	a, b := c.Open(t, client.Config{}), c.Open(t, client.Config{})
	ctx := opContext(t)
	events := b.Watch(ctx)
	own := a.Watch(ctx)
	oid, _ := a.NewOID(ctx)
	serial := proto.ZeroTid
	var tids []proto.Tid
	for i := range 5 {
		tid, err := neotest.Commit(ctx, a, oid, serial, fmt.Appendf(nil, "rev %d", i))
		if err != nil {
			t.Fatal(err)
		}
		tids = append(tids, tid)
		serial = tid
	}
	for _, ch := range []struct {
		name string
		c    <-chan client.Invalidation
	}{{"other client", events}, {"committing client", own}} {
		for i, want := range tids {
			select {
			case inv := <-ch.c:
				if inv.Tid != want || len(inv.Oids) != 1 || inv.Oids[0] != oid || inv.All {
					t.Errorf("%s: invalidation %d = %+v; want tid %v oids [%v]", ch.name, i, inv, want, oid)
				}
			case <-ctx.Done():
				t.Fatalf("%s: invalidation %d not received", ch.name, i)
			}
		}
	}
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if last, _ := b.LastTid(ctx); last != serial {
		t.Errorf("other client's LastTid = %v; want %v", last, serial)
	}
	obj, err := b.Load(ctx, oid, proto.InvalidTid)
	if err != nil || string(obj.Data) != "rev 4" {
		t.Errorf("other client loads %q, %v; want rev 4", obj.Data, err)
	}
}

// Data corrupted in the storage's database is detected by its checksum.
func TestChecksumMismatch(t *testing.T) {
	c := neotest.Start(t, neotest.Options{Storages: 1, Partitions: 1})
	cl := c.Open(t, client.Config{})
	ctx := opContext(t)
	oid, _ := cl.NewOID(ctx)
	tid, err := neotest.Commit(ctx, cl, oid, proto.ZeroTid, []byte("precious data"))
	if err != nil {
		t.Fatal(err)
	}
	// A read waits for the storage to have unlocked the commit: our
	// write to its database then does not race with the unlock's.
	if _, err := cl.Load(ctx, oid, proto.InvalidTid); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", c.DBPath(0)+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, err := db.ExecContext(ctx, "UPDATE data SET value = ? WHERE value = ?", []byte("precious dat4"), []byte("precious data"))
	if err != nil {
		t.Fatalf("corrupt the record: %v", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("corrupt the record: %d rows changed", n)
	}
	for _, load := range []func() (client.Object, error){
		func() (client.Object, error) { return cl.Load(ctx, oid, proto.InvalidTid) },
		func() (client.Object, error) { return cl.LoadSerial(ctx, oid, tid) },
	} {
		_, err := load()
		var ce *client.ChecksumError
		if !errors.As(err, &ce) || !errors.Is(err, client.ErrChecksum) {
			t.Fatalf("load of corrupted data: %v; want a ChecksumError", err)
		}
		if ce.Oid != oid || ce.Serial != tid {
			t.Errorf("checksum error names oid %v serial %v; want %v %v", ce.Oid, ce.Serial, oid, tid)
		}
	}
}

// A read-only client reads but refuses to write.
func TestReadOnly(t *testing.T) {
	c := neotest.Start(t, neotest.Options{Storages: 1, Partitions: 2})
	rw, ro := c.Open(t, client.Config{}), c.Open(t, client.Config{ReadOnly: true})
	ctx := opContext(t)
	oid, _ := rw.NewOID(ctx)
	if _, err := neotest.Commit(ctx, rw, oid, proto.ZeroTid, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := ro.Begin(ctx); !errors.Is(err, client.ErrReadOnly) {
		t.Errorf("Begin on a read-only client: %v; want ErrReadOnly", err)
	}
	if _, err := ro.NewOID(ctx); !errors.Is(err, client.ErrReadOnly) {
		t.Errorf("NewOID on a read-only client: %v; want ErrReadOnly", err)
	}
	if err := ro.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if obj, err := ro.Load(ctx, oid, proto.InvalidTid); err != nil || string(obj.Data) != "x" {
		t.Errorf("read-only Load = %q, %v", obj.Data, err)
	}
}

// Operations on a closed client fail at once.
func TestClosed(t *testing.T) {
	c := neotest.Start(t, neotest.Options{Storages: 1, Partitions: 2})
	cl := c.Open(t, client.Config{})
	cl.Close()
	ctx := opContext(t)
	if _, err := cl.Load(ctx, 0, proto.InvalidTid); !errors.Is(err, client.ErrClosed) {
		t.Errorf("Load after Close: %v; want ErrClosed", err)
	}
	if _, err := cl.Begin(ctx); !errors.Is(err, client.ErrClosed) {
		t.Errorf("Begin after Close: %v; want ErrClosed", err)
	}
}

// A storage whose link breaks during a transaction, while the master
// still has it RUNNING, is reported at vote (FailedVote); the master
// accepts since the other replica keeps the cluster operational, and the
// commit goes through.
func TestFailedVote(t *testing.T) {
	c := neotest.Start(t, neotest.Options{Storages: 2, Replicas: 1, Partitions: 4})
	cl := c.Open(t, client.Config{})
	ctx := opContext(t)
	oid, _ := cl.NewOID(ctx)
	txn, err := cl.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := txn.Store(ctx, oid, proto.ZeroTid, []byte("survives")); err != nil {
		t.Fatal(err)
	}
	nids := txn.StorageNIDsForTest()
	if len(nids) != 2 {
		t.Fatalf("stored to %v; want both storages", nids)
	}
	txn.BreakLinkForTest(nids[0])
	if err := txn.Vote(ctx); err != nil {
		t.Fatalf("Vote with one replica lost: %v", err)
	}
	tid, err := txn.Finish(ctx)
	if err != nil {
		t.Fatalf("Finish with one replica lost: %v", err)
	}
	obj, err := cl.Load(ctx, oid, proto.InvalidTid)
	if err != nil || string(obj.Data) != "survives" || obj.Serial != tid {
		t.Errorf("Load = %q at %v, %v; want %q at %v", obj.Data, obj.Serial, err, "survives", tid)
	}
}
