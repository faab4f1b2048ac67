package sqlite

import (
	"crypto/sha1"
	"fmt"
	"testing"

	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
	"github.com/neogo/neo/storage/backend/backendtest"
)

// Data rows are inserted OR FAIL (no statement journal): a multi-row
// insert failing after its first row must still leave nothing of its
// transaction, that row included.
func TestImportFailedDataInsert(t *testing.T) {
	ctx := t.Context()
	db := openSetup(t, t.TempDir()+"/db.sqlite", 2)
	b := backend.Backend(db)
	batch := func(tid proto.Tid, oids ...proto.Oid) ([]backend.TxnMeta, []backend.Record) {
		m := backend.TxnMeta{Tid: tid, TTid: tid, Oids: oids}
		var recs []backend.Record
		for _, oid := range oids {
			data := fmt.Appendf(nil, "%s@%s", oid, tid)
			recs = append(recs, backend.Record{Oid: oid, Serial: tid, DataSerial: proto.InvalidTid, Data: data, Checksum: sha1.Sum(data)})
		}
		return []backend.TxnMeta{m}, recs
	}
	// Odd oids in partition 1, data ids from 1<<48 (0 is nextID's "unknown").
	txns, recs := batch(0x100, 1, 3, 5) // data ids L, L+1, L+2
	if err := db.ImportTransactions(ctx, txns, recs, map[string]string{"k": "1"}); err != nil {
		t.Fatal(err)
	}
	count := func() (n int) {
		t.Helper()
		if err := db.r.QueryRowContext(ctx, "SELECT COUNT(*) FROM data").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// The next batch takes ids L-1, L, L+1: the second row collides.
	db.mu.Lock()
	db.mu.nextID[1] = 1<<48 - 1
	db.mu.Unlock()
	txns, recs = batch(0x200, 7, 9, 11)
	if err := db.ImportTransactions(ctx, txns, recs, map[string]string{"k": "2"}); err == nil {
		t.Fatal("import with colliding data ids succeeded")
	}
	if n := count(); n != 3 {
		t.Errorf("%d data rows after the failed import, want 3", n)
	}
	if o, err := b.Load(ctx, 7, proto.InvalidTid, proto.InvalidTid); err == nil {
		t.Errorf("oid 7 of the failed import loads: %+v", o)
	}
	// The failed transaction's ids are forgotten: the same batch imports.
	if err := db.ImportTransactions(ctx, txns, recs, map[string]string{"k": "2"}); err != nil {
		t.Fatalf("import after the failed one: %v", err)
	}
	if n := count(); n != 6 {
		t.Errorf("%d data rows after the import, want 6", n)
	}
}

// openSetup opens a database at path, closed at the test's end, with a
// partition table of np partitions.
func openSetup(t *testing.T, path string, np uint32) *DB {
	t.Helper()
	b, err := Open(t.Context(), "sqlite://"+path, backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if err := backendtest.Setup(t.Context(), b, "t", np); err != nil {
		t.Fatal(err)
	}
	return b.(*DB)
}
