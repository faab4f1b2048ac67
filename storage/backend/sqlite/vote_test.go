package sqlite_test

import (
	"bytes"
	"crypto/sha1"
	"fmt"
	"testing"

	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
	"github.com/neogo/neo/storage/backend/backendtest"
)

// A vote inserts its rows in chunks of 64, 32, ... 1: every count around
// the chunk sizes, with undo and deletion records among new data, must
// store every record under its own data, with and without deduplication.
func TestVoteChunks(t *testing.T) {
	for _, dedup := range []bool{false, true} {
		for _, n := range []int{1, 2, 3, 63, 64, 65, 100, 127, 128, 129, 200} {
			t.Run(fmt.Sprintf("dedup=%v/%d", dedup, n), func(t *testing.T) { testVoteChunks(t, dedup, n) })
		}
	}
}

func testVoteChunks(t *testing.T, dedup bool, n int) {
	ctx := t.Context()
	b, err := open(t, t.TempDir()+"/db.sqlite", backend.Options{Dedup: dedup})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const np = 3
	if err := backendtest.Setup(ctx, b, "t", np); err != nil {
		t.Fatal(err)
	}
	commit := func(ttid proto.Tid, recs []backend.Record) {
		t.Helper()
		oids := make([]proto.Oid, len(recs))
		for i, r := range recs {
			oids[i] = r.Oid
		}
		if err := b.StoreTransaction(ctx, ttid, recs, &backend.TxnMeta{TTid: ttid, Oids: oids}); err != nil {
			t.Fatal(err)
		}
		if err := b.LockTransaction(ctx, ttid, ttid, false); err != nil {
			t.Fatal(err)
		}
		if err := b.UnlockTransaction(ctx, ttid, ttid); err != nil {
			t.Fatal(err)
		}
	}
	payload := func(oid proto.Oid, tid proto.Tid) []byte {
		if oid%5 == 4 {
			// Same data as another oid: shared with deduplication.
			oid--
		}
		return bytes.Repeat([]byte(fmt.Sprintf("oid %d at %d;", oid, tid)), 20)
	}
	record := func(oid proto.Oid, tid proto.Tid) backend.Record {
		d := payload(oid, tid)
		return backend.Record{Oid: oid, Data: d, Checksum: sha1.Sum(d), DataSerial: proto.InvalidTid}
	}
	// First transaction: n new oids.
	var recs []backend.Record
	for i := range n {
		recs = append(recs, record(proto.Oid(i), 0))
	}
	commit(100, recs)
	// Second one: new data, undo to the first (every 7th) and deletion
	// (every 11th), plus n new oids.
	recs = recs[:0]
	for i := range 2 * n {
		oid := proto.Oid(i)
		r := record(oid, 200)
		switch {
		case i < n && i%7 == 3:
			r = backend.Record{Oid: oid, DataSerial: 100}
		case i < n && i%11 == 5:
			r = backend.Record{Oid: oid, DataSerial: proto.InvalidTid}
		}
		recs = append(recs, r)
	}
	commit(200, recs)
	for i := range 2 * n {
		oid := proto.Oid(i)
		if i < n {
			o, err := b.Load(ctx, oid, 100, proto.InvalidTid)
			if err != nil {
				t.Fatalf("load oid %d at 100: %v", oid, err)
			}
			if want := payload(oid, 0); !bytes.Equal(o.Data, want) {
				t.Fatalf("oid %d at 100: data %q, want %q", oid, o.Data, want)
			}
		}
		o, err := b.Load(ctx, oid, 200, proto.InvalidTid)
		if err != nil {
			t.Fatalf("load oid %d at 200: %v", oid, err)
		}
		want, serial := payload(oid, 200), proto.InvalidTid
		switch {
		case i < n && i%7 == 3:
			want, serial = payload(oid, 0), 100
		case i < n && i%11 == 5:
			want = nil
		}
		if !bytes.Equal(o.Data, want) || o.DataSerial != serial {
			t.Fatalf("oid %d at 200: data %q value serial %v, want %q %v", oid, o.Data, o.DataSerial, want, serial)
		}
		if want != nil && o.Checksum != sha1.Sum(want) {
			t.Fatalf("oid %d at 200: checksum %x", oid, o.Checksum)
		}
	}
}
