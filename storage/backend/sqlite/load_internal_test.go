package sqlite

import (
	"bytes"
	"context"
	"crypto/sha1"
	"testing"
	"time"

	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
	"github.com/neogo/neo/storage/backend/backendtest"
)

// Loads and LastObjectTid go through the driver's own statements of a
// reader connection, loads return data of their own (not a buffer the
// next load reuses), and Close closes those statements.
func TestLoadDriverStmts(t *testing.T) {
	ctx := t.Context()
	db := openSetup(t, t.TempDir()+"/db", backendtest.NP)
	data := map[proto.Oid][]byte{1: []byte("one"), 2: []byte("two two")}
	const tid = proto.Tid(0x100)
	var recs []backend.Record
	for oid, d := range data {
		recs = append(recs, backend.Record{Oid: oid, Data: d, Checksum: sha1.Sum(d), DataSerial: proto.InvalidTid})
	}
	meta := &backend.TxnMeta{TTid: tid, User: []byte("u"), Oids: []proto.Oid{1, 2}}
	if err := db.StoreTransaction(ctx, tid, recs, meta); err != nil {
		t.Fatal(err)
	}
	if err := db.LockTransaction(ctx, tid, tid, false); err != nil {
		t.Fatal(err)
	}
	if err := db.UnlockTransaction(ctx, tid, tid); err != nil {
		t.Fatal(err)
	}
	first, err := db.Load(ctx, 1, proto.InvalidTid, proto.InvalidTid)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct{ at, before proto.Tid }{{proto.InvalidTid, proto.InvalidTid}, {tid, proto.InvalidTid}, {proto.InvalidTid, tid + 1}} {
		for oid, d := range data {
			o, err := db.Load(ctx, oid, f.at, f.before)
			if err != nil {
				t.Fatalf("load %s at %s before %s: %v", oid, f.at, f.before, err)
			}
			if !bytes.Equal(o.Data, d) || o.Serial != tid || o.NextSerial != proto.InvalidTid || o.DataSerial != proto.InvalidTid || o.Checksum != sha1.Sum(d) {
				t.Errorf("load %s at %s before %s = %+v, want data %q serial %s", oid, f.at, f.before, o, d, tid)
			}
		}
	}
	if got, err := db.LastObjectTid(ctx, 2); err != nil || got != tid {
		t.Errorf("LastObjectTid(2) = %s, %v; want %s", got, err, tid)
	}
	if string(first.Data) != "one" {
		t.Errorf("data of the first load became %q after other loads", first.Data)
	}
	var conns []*readConn
	db.readConns.Range(func(_, v any) bool {
		conns = append(conns, v.(*readConn))
		return true
	})
	var stmts int
	for _, lc := range conns {
		stmts += len(lc.stmts)
	}
	if len(conns) == 0 || stmts < 4 {
		t.Fatalf("%d reader connections with %d driver statements, want the 3 of Load and LastObjectTid's", len(conns), stmts)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for _, lc := range conns {
		if len(lc.stmts) != 0 {
			t.Errorf("%d driver statements left open by Close", len(lc.stmts))
		}
	}
}

// A reader connection whose query the context interrupted is closed by
// database/sql (the driver's IsValid): Close must not finalize the
// driver statements readRow cached on it (the driver crashed doing so).
func TestCloseAfterInterruptedReader(t *testing.T) {
	ctx := t.Context()
	db := openSetup(t, t.TempDir()+"/db", backendtest.NP)
	db.r.SetMaxOpenConns(1) // the load and the interrupted query share it
	if _, err := db.Load(ctx, 1, proto.InvalidTid, proto.InvalidTid); err == nil {
		t.Fatal("load of a missing oid: no error")
	}
	qctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	var n int64
	err := db.r.QueryRowContext(qctx, `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 1000000000) SELECT count(*) FROM c`).Scan(&n)
	if err == nil {
		t.Fatalf("a query of 10^9 rows ended within 20 ms (%d)", n)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}
