package sqlite_test

import (
	"crypto/sha1"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
	"github.com/neogo/neo/storage/backend/sqlite"
)

// pythonPath returns the PYTHONPATH of the unpacked neoppod peers, or
// skips the test when they are absent.
func pythonPath(t *testing.T) string {
	home, _ := os.UserHomeDir()
	peers := filepath.Join(home, ".cache", "neo-peers")
	if p := os.Getenv("PEERS"); p != "" {
		peers = p
	}
	if _, err := os.Stat(filepath.Join(peers, "neoppod", "neo")); err != nil {
		t.Skipf("neoppod peers not unpacked in %s", peers)
	}
	if _, err := os.Stat(python()); err != nil {
		t.Skipf("no %s", python())
	}
	var dirs []string
	for _, d := range []string{"neoppod", "ZODB/src", "ZEO/src", "ZConfig/src", "zdaemon/src", "_meta"} {
		dirs = append(dirs, filepath.Join(peers, d))
	}
	return strings.Join(dirs, ":")
}

// python is the interpreter that sees neoppod's dependencies (Debian's,
// as /work/shared/peers/env.sh says), or $PY.
func python() string {
	if p := os.Getenv("PY"); p != "" {
		return p
	}
	return "/usr/bin/python3"
}

// A database written by this backend is read the same by neoppod's SQLite
// backend: same schema, encodings and semantics.
func TestPythonReadsOurDatabase(t *testing.T) {
	pp := pythonPath(t)
	path := filepath.Join(t.TempDir(), "go.db")
	ctx := t.Context()
	b, err := sqlite.Open(ctx, path, backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	me := proto.NewNodeID(proto.STORAGE, 1)
	must(b.SetMeta(ctx, backend.Meta{Name: "c", NID: me, BackupTid: proto.InvalidTid, TruncateTid: proto.InvalidTid}))
	var cells []backend.CellChange
	for p := uint32(0); p < 4; p++ {
		cells = append(cells, backend.CellChange{Partition: p, NID: me, State: proto.UP_TO_DATE})
	}
	must(b.ChangePartitionTable(ctx, 1, 0, cells, true))
	r := func(oid proto.Oid, d string) backend.Record {
		return backend.Record{Oid: oid, Data: []byte(d), Checksum: sha1.Sum([]byte(d)), DataSerial: proto.InvalidTid}
	}
	commit := func(tid proto.Tid, recs ...backend.Record) {
		var oids []proto.Oid
		for _, x := range recs {
			oids = append(oids, x.Oid)
		}
		must(b.StoreTransaction(ctx, tid, recs, &backend.TxnMeta{TTid: tid, User: []byte("u"), Description: []byte("d"), Oids: oids}))
		must(b.LockTransaction(ctx, tid, tid, false))
		must(b.UnlockTransaction(ctx, tid, tid))
	}
	commit(0x10, r(1, "A"), r(2, "B"))
	commit(0x20, r(1, "A2"))
	commit(0x30, backend.Record{Oid: 1, DataSerial: 0x10}, backend.Record{Oid: 2, DataSerial: proto.InvalidTid})
	must(b.StoreTransaction(ctx, 0x41, []backend.Record{r(3, "C")}, &backend.TxnMeta{TTid: 0x41, Oids: []proto.Oid{3}}))
	must(b.LockTransaction(ctx, 0x41, 0x45, false))
	// neoppod sees the lock we hold.
	lock := exec.CommandContext(ctx, python(), "-c", `import sys
from neo.storage.database.sqlite import SQLiteDatabaseManager as M
dm = M.__new__(M)
dm._DatabaseManager__lockFile = None
try:
    dm.lockFile(sys.argv[1])
except SystemExit as e:
    print(e.code)
else:
    print("not locked")`, path)
	lock.Env = append(os.Environ(), "PYTHONPATH="+pp)
	if out, err := lock.CombinedOutput(); err != nil || !strings.Contains(string(out), "locked") || strings.Contains(string(out), "not locked") {
		t.Errorf("neoppod lockFile while we hold the database: %v %q, want its 'database is locked' exit", err, out)
	}
	must(b.Close()) // releases the lock for the Python process

	cmd := exec.CommandContext(ctx, python(), "testdata/pyread.py", path)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+pp)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pyread.py: %v\n%s", err, out)
	}
	want := `version 4 nid 1 name c ptid 1
pt [(0, 1, 1), (1, 1, 1), (2, 1, 1), (3, 1, 1)]
locked {65: 69}
obj 1 0x30 None 0 b'A' 0x10
obj 1 0x20 0x30 0 b'A2' None
obj 1 0x20 0x30 0 b'A2' None
obj 2 0x30 None None None None
obj 2 0x10 0x30 0 b'B' None
obj 9 None
lastids ['0x30', '0x2']
trans ([b'\x00\x00\x00\x00\x00\x00\x00\x01', b'\x00\x00\x00\x00\x00\x00\x00\x02'], b'u', b'd', b'', False, b'\x00\x00\x00\x00\x00\x00\x000', None)
history [('0x30', 1), ('0x20', 2), ('0x10', 1)]
check (0, b'\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00', b'\x00\x00\x00\x00\x00\x00\x00\x00')
`
	if got := string(out); got != want {
		t.Errorf("neoppod reads:\n%s\nwant:\n%s", got, want)
	}
}
