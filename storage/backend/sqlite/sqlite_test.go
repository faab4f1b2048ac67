package sqlite_test

import (
	"crypto/sha1"
	"fmt"
	"testing"

	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
	"github.com/neogo/neo/storage/backend/backendtest"
	"github.com/neogo/neo/storage/backend/sqlite"
)

func open(t testing.TB, path string, opts backend.Options) (backend.Backend, error) {
	return sqlite.Open(t.Context(), "sqlite://"+path, opts)
}

func TestConformance(t *testing.T) {
	backendtest.RunConformance(t, open)
}

func BenchmarkBackend(b *testing.B) {
	backendtest.RunBenchmarks(b, open)
}

// The registry opens a plain path and neoppod's file: form with this backend.
func TestOpenByName(t *testing.T) {
	dir := t.TempDir()
	for _, dsn := range []string{dir + "/plain.db", "file:" + dir + "/file.db?synchronous=NORMAL", "sqlite://" + dir + "/url.db"} {
		b, err := backend.Open(t.Context(), dsn, backend.Options{})
		if err != nil {
			t.Errorf("open %q: %v", dsn, err)
			continue
		}
		if _, ok := b.(*sqlite.DB); !ok {
			t.Errorf("open %q: got %T", dsn, b)
		}
		if err := b.Close(); err != nil {
			t.Errorf("close %q: %v", dsn, err)
		}
	}
}

// A store asks for the last serial of new oids, above every stored one:
// the answer "none" comes from a bound that every write raises first.
func TestLastObjectTidAboveStoredOids(t *testing.T) {
	ctx := t.Context()
	path := t.TempDir() + "/db.sqlite"
	b, err := open(t, path, backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	me := proto.NewNodeID(proto.STORAGE, 1)
	if err := b.SetMeta(ctx, backend.Meta{Name: "t", NID: me, BackupTid: proto.InvalidTid, TruncateTid: proto.InvalidTid}); err != nil {
		t.Fatal(err)
	}
	const np = 4
	var cells []backend.CellChange
	for p := uint32(0); p < np; p++ {
		cells = append(cells, backend.CellChange{Partition: p, NID: me, State: proto.UP_TO_DATE})
	}
	if err := b.ChangePartitionTable(ctx, 1, 0, cells, true); err != nil {
		t.Fatal(err)
	}
	last := func(oid proto.Oid) proto.Tid {
		t.Helper()
		tid, err := b.LastObjectTid(ctx, oid)
		if err != nil {
			t.Fatal(err)
		}
		return tid
	}
	record := func(oid proto.Oid, serial proto.Tid) backend.Record {
		data := []byte(fmt.Sprintf("oid %d at %d", oid, serial))
		return backend.Record{Oid: oid, Serial: serial, Data: data, Checksum: sha1.Sum(data), DataSerial: proto.InvalidTid}
	}
	commit := func(ttid proto.Tid, oid proto.Oid) {
		t.Helper()
		recs := []backend.Record{record(oid, 0)}
		if err := b.StoreTransaction(ctx, ttid, recs, &backend.TxnMeta{TTid: ttid, Oids: []proto.Oid{oid}}); err != nil {
			t.Fatal(err)
		}
		if err := b.LockTransaction(ctx, ttid, ttid, false); err != nil {
			t.Fatal(err)
		}
		if err := b.UnlockTransaction(ctx, ttid, ttid); err != nil {
			t.Fatal(err)
		}
	}
	commit(100, 5)
	if got := last(5); got != 100 {
		t.Fatalf("last serial of oid 5: %v", got)
	}
	// The bound is known now (5): each way of adding a greater oid must
	// raise it.
	if got := last(9); got != proto.InvalidTid {
		t.Fatalf("last serial of oid 9 before its commit: %v", got)
	}
	commit(200, 9)
	if got := last(9); got != 200 {
		t.Fatalf("last serial of oid 9 after its commit: %v", got)
	}
	if err := b.ReplicateObjects(ctx, 2, []backend.Record{record(14, 300)}, nil, proto.InvalidTid); err != nil {
		t.Fatal(err)
	}
	if got := last(14); got != 300 {
		t.Fatalf("last serial of replicated oid 14: %v", got)
	}
	// Validation at verification moves a voted transaction like unlock.
	recs := []backend.Record{record(21, 0)}
	if err := b.StoreTransaction(ctx, 400, recs, &backend.TxnMeta{TTid: 400, Oids: []proto.Oid{21}}); err != nil {
		t.Fatal(err)
	}
	if err := b.ValidateTransaction(ctx, 400, 401); err != nil {
		t.Fatal(err)
	}
	if got := last(21); got != 401 {
		t.Fatalf("last serial of validated oid 21: %v", got)
	}
	// A reopened database computes its bound from its rows.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if b, err = open(t, path, backend.Options{}); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for oid, want := range map[proto.Oid]proto.Tid{5: 100, 9: 200, 14: 300, 21: 401, 22: proto.InvalidTid} {
		if got := last(oid); got != want {
			t.Errorf("after reopening, last serial of oid %d: %v, want %v", oid, got, want)
		}
	}
}
