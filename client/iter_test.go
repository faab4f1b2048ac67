package client_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/neogo/neo/client"
	"github.com/neogo/neo/internal/neotest"
	"github.com/neogo/neo/proto"
)

// Transactions committed at given tids, with metadata, revisions and a
// deletion, come back from Iterate in tid order exactly as committed.
func TestBeginAtIterate(t *testing.T) {
	c := neotest.Start(t, neotest.Options{Storages: 2, Partitions: 3})
	cl := c.Open(t, client.Config{})
	ctx := opContext(t)
	last, err := cl.LastTid(ctx)
	if err != nil {
		t.Fatal(err)
	}
	type rec struct {
		oid  proto.Oid
		data []byte // nil: deletion
	}
	type txn struct {
		tid             proto.Tid
		user, desc, ext string
		recs            []rec
	}
	base := last + 1<<32
	big := bytes.Repeat([]byte("compressible "), 300)
	txns := []txn{
		{base + 5, "alice", "create", "", []rec{{1, []byte("one")}, {2, big}, {4, []byte("four")}}},
		{base + 6, "", "", "\x80\x03}q\x00.", []rec{{1, []byte("one, second")}}},
		{base + 100, "bob", "delete 2", "", []rec{{2, nil}, {4, []byte("four, 2")}}},
		{base + 101, "", "empty", "", nil},
		{base + 1<<20, "carol", "after", "", []rec{{2, []byte("two again")}, {1, []byte("one, third")}}},
	}
	serials := map[proto.Oid]proto.Tid{}
	for _, tx := range txns {
		txn, err := cl.BeginAt(ctx, tx.tid)
		if err != nil {
			t.Fatalf("BeginAt %v: %v", tx.tid, err)
		}
		txn.User, txn.Description, txn.Extension = []byte(tx.user), []byte(tx.desc), []byte(tx.ext)
		for _, r := range tx.recs {
			if r.data == nil {
				err = txn.Delete(ctx, r.oid, serials[r.oid])
			} else {
				err = txn.Store(ctx, r.oid, serials[r.oid], r.data)
			}
			if err != nil {
				t.Fatal(err)
			}
			serials[r.oid] = tx.tid
		}
		if err := txn.Vote(ctx); err != nil {
			t.Fatalf("vote %v: %v", tx.tid, err)
		}
		tid, err := txn.Finish(ctx)
		if err != nil || tid != tx.tid {
			t.Fatalf("Finish = %v, %v; want %v", tid, err, tx.tid)
		}
	}
	if _, err := cl.LoadSerial(ctx, 2, base+100); !errors.Is(err, proto.ErrOidDoesNotExist) {
		t.Errorf("LoadSerial of the deletion: %v; want OID_DOES_NOT_EXIST", err)
	}
	oid, err := cl.NewOID(ctx)
	if err != nil || oid <= 4 {
		t.Errorf("NewOID after the copy = %v, %v; want > 4", oid, err)
	}

	check := func(t *testing.T, it *client.TxnIter, want []txn) {
		for i := 0; ; i++ {
			got, err := it.Next(ctx)
			if err == io.EOF {
				if i != len(want) {
					t.Fatalf("%d transactions; want %d", i, len(want))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if i >= len(want) {
				t.Fatalf("transaction %v beyond the %d expected", got.Tid, len(want))
			}
			w := want[i]
			if got.Tid != w.tid || string(got.User) != w.user || string(got.Description) != w.desc || string(got.Extension) != w.ext || got.Packed {
				t.Errorf("transaction %d = %v %q %q %q packed %v; want %v %q %q %q", i, got.Tid, got.User, got.Description, got.Extension, got.Packed, w.tid, w.user, w.desc, w.ext)
			}
			if len(got.Records) != len(w.recs) {
				t.Fatalf("transaction %v: %d records; want %d", got.Tid, len(got.Records), len(w.recs))
			}
			for j, r := range got.Records {
				wr := w.recs[j]
				if r.Oid != wr.oid || r.Deleted() != (wr.data == nil) || !bytes.Equal(r.Data, wr.data) || r.DataSerial != proto.InvalidTid {
					t.Errorf("transaction %v record %d = oid %v %.20q deleted %v data serial %v; want oid %v %.20q",
						got.Tid, j, r.Oid, r.Data, r.Deleted(), r.DataSerial, wr.oid, wr.data)
				}
			}
		}
	}
	t.Run("all", func(t *testing.T) { check(t, cl.Iterate(0, proto.InvalidTid), txns) })
	t.Run("range", func(t *testing.T) { check(t, cl.Iterate(base+6, base+101), txns[1:4]) })
	t.Run("empty", func(t *testing.T) { check(t, cl.Iterate(base+7, base+99), nil) })

	// Last: the master closes the link of a client whose BeginAt it
	// refuses, and a read racing with that loss would fail with
	// ErrMasterLost (seen once in a full -race run).
	if _, err := cl.BeginAt(ctx, txns[0].tid); err == nil {
		t.Error("BeginAt a tid below the last one: no error")
	}
}

// Many transactions, over several windows of tids per partition and more
// than are read ahead, come back in order, each with its record; Close
// ends an iteration.
func TestIterateMany(t *testing.T) {
	defer client.SetIterChunkForTest(7)()
	c := neotest.Start(t, neotest.Options{Partitions: 3})
	cl := c.Open(t, client.Config{})
	ctx := opContext(t)
	const n = 60
	var tids []proto.Tid
	serial := proto.ZeroTid
	for i := range n {
		tid, err := neotest.Commit(ctx, cl, 1, serial, []byte(fmt.Sprint("revision ", i)))
		if err != nil {
			t.Fatal(err)
		}
		tids = append(tids, tid)
		serial = tid
	}
	it := cl.Iterate(0, proto.InvalidTid)
	for i := 0; ; i++ {
		txn, err := it.Next(ctx)
		if err == io.EOF {
			if i != n {
				t.Fatalf("%d transactions; want %d", i, n)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if txn.Tid != tids[i] || len(txn.Records) != 1 || string(txn.Records[0].Data) != fmt.Sprint("revision ", i) {
			t.Fatalf("transaction %d = %v %+v; want %v", i, txn.Tid, txn.Records, tids[i])
		}
	}
	it = cl.Iterate(tids[10], tids[40])
	if txn, err := it.Next(ctx); err != nil || txn.Tid != tids[10] {
		t.Fatalf("Next = %v, %v; want %v", txn, err, tids[10])
	}
	it.Close()
	if _, err := it.Next(ctx); err == nil {
		t.Error("Next after Close: no error")
	}
}
