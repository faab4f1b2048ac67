package sqlite_test

import (
	"crypto/sha1"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/neogo/neo/internal/peerpy"
	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
	"github.com/neogo/neo/storage/backend/backendtest"
	"github.com/neogo/neo/storage/backend/sqlite"
)

// A database written by this backend is read the same by neoppod's SQLite
// backend: same schema, encodings and semantics; with SQLite's default
// pages and with the Importer's bigger ones too.
func TestPythonReadsOurDatabase(t *testing.T) {
	peerpy.Require(t)
	for _, pageSize := range []int{0, 16 << 10} {
		t.Run(fmt.Sprintf("page_size=%d", pageSize), func(t *testing.T) { pythonReadsOurDatabase(t, pageSize) })
	}
}

func pythonReadsOurDatabase(t *testing.T, pageSize int) {
	path := filepath.Join(t.TempDir(), "go.db")
	ctx := t.Context()
	b, err := sqlite.Open(ctx, path, backend.Options{PageSize: pageSize})
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(backendtest.WritePyReadHistory(ctx, b))
	// neoppod sees the lock we hold.
	out, err := peerpy.Run(t, nil, nil, "-c", `import sys
from neo.storage.database.sqlite import SQLiteDatabaseManager as M
dm = M.__new__(M)
dm._DatabaseManager__lockFile = None
try:
    dm.lockFile(sys.argv[1])
except SystemExit as e:
    print(e.code)
else:
    print("not locked")`, path)
	if err != nil || !strings.Contains(string(out), "locked") || strings.Contains(string(out), "not locked") {
		t.Errorf("neoppod lockFile while we hold the database: %v %q, want its 'database is locked' exit", err, out)
	}
	must(b.Close()) // releases the lock for the Python process

	out, err = backendtest.PyRead(t, path, "")
	if err != nil {
		t.Fatalf("pyread.py: %v\n%s", err, out)
	}
	if got := string(out); got != backendtest.PyReadWant {
		t.Errorf("neoppod reads:\n%s\nwant:\n%s", got, backendtest.PyReadWant)
	}
}

// testdata/neoppod.sqlite was written by a real neoppod storage (SQLite
// adapter, 4 partitions) of a cluster named pybk: a ZODB root committed 5
// times by the Python client, and the last transaction left locked but
// not unlocked because the node was stopped before its deferred commit.
// We open a copy: opening switches the file to WAL mode.
func TestReadNeoppodDatabase(t *testing.T) {
	src, err := os.ReadFile("testdata/neoppod.sqlite")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "db")
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	b, err := sqlite.Open(ctx, path, backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	m, err := b.Meta(ctx)
	if err != nil || m.Name != "pybk" || m.NID != proto.NewNodeID(proto.STORAGE, 1) || m.PTID != 1 || m.BackupTid != proto.InvalidTid {
		t.Errorf("meta = %+v, %v", m, err)
	}
	_, _, cells, err := b.PartitionTable(ctx)
	if err != nil || len(cells) != 4 || cells[3] != (backend.Cell{Partition: 3, NID: m.NID, State: proto.UP_TO_DATE, Pack: 0}) {
		t.Errorf("partition table = %+v, %v", cells, err)
	}
	all := []uint32{0, 1, 2, 3}
	ids, err := b.LastIDs(ctx, all)
	if err != nil || ids != (backend.LastIDs{LastTid: 0x040d40d5e722f49b, LastOid: 0, FirstTid: 0x040d40d5e6d1cf33}) {
		t.Errorf("last ids = %+v, %v", ids, err)
	}
	tids, err := b.TIDs(ctx, 0, 10, all)
	if err != nil || len(tids) != 5 {
		t.Fatalf("tids = %v, %v", tids, err)
	}
	txn, err := b.Transaction(ctx, tids[1])
	if err != nil || string(txn.Description) != "txn 2" || len(txn.Oids) != 1 || txn.TTid != 0x040d40d5e70d92ee {
		t.Errorf("transaction %s = %+v, %v", tids[1], txn, err)
	}
	o, err := b.Load(ctx, 0, proto.InvalidTid, tids[2])
	if err != nil || o.Serial != tids[3] || o.NextSerial != tids[2] || o.Compression != 1 || sha1.Sum(o.Data) != o.Checksum {
		t.Errorf("load root before %s = %+v, %v", tids[2], o, err)
	}
	locked, err := b.LockedTransactions(ctx)
	if err != nil || len(locked) != 1 || locked[0x040d40d5e72b7700] != 0x040d40d5e7316644 {
		t.Fatalf("locked = %v, %v", locked, err)
	}
	// Verification validates it; the root then has its 6th revision.
	if err := b.ValidateTransaction(ctx, 0x040d40d5e72b7700, 0x040d40d5e7316644); err != nil {
		t.Fatal(err)
	}
	o, err = b.Load(ctx, 0, proto.InvalidTid, proto.InvalidTid)
	if err != nil || o.Serial != 0x040d40d5e7316644 {
		t.Errorf("root after validation = %+v, %v", o, err)
	}
}
