//go:build integration

package filestorage

// Tests against ZODB's own FileStorage (the peers of ../shared/peers,
// located by NEO_PEERS as `make integration` sets it, else beside the
// module): testdata/zodbfs.py writes Data.fs files with a real history,
// dumps ZODB's iterator and load answers as JSON lines, copies, opens,
// packs and checks files; these tests compare with what we read and
// write. They skip without the peers, except under CI=true.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/neogo/neo/internal/peerpy"
	"github.com/neogo/neo/proto"
)

// python runs testdata/zodbfs.py (or, with a "-m" first argument, a
// module) with the peers' Python and returns its stdout.
func python(t *testing.T, args ...string) []byte {
	t.Helper()
	out, err := pythonErr(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// pythonErr is python, returning its failure.
func pythonErr(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	if args[0] != "-m" {
		args = append([]string{"testdata/zodbfs.py"}, args...)
	}
	out, err := peerpy.Run(t, nil, nil, args...)
	if err != nil {
		return out, fmt.Errorf("%w%s", err, out)
	}
	return out, nil
}

// genZODB writes a Data.fs with ZODB's FileStorage and returns its path.
func genZODB(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "Data.fs")
	python(t, "gen", path)
	return path
}

func hexOrNull(b []byte, null bool) string {
	if null {
		return "null"
	}
	return `"` + hex.EncodeToString(b) + `"`
}

// dumpTxn and dumpRec format records as zodbfs.py dump does.
func dumpTxn(txn *Txn) string {
	return fmt.Sprintf(`{"tid": "%s", "status": "%c", "user": %s, "description": %s, "extension": %s}`,
		txn.Tid, txn.Status, hexOrNull(txn.User, false), hexOrNull(txn.Description, false), hexOrNull(txn.Extension, false))
}

func dumpRec(r *DataRecord) string {
	dataTid := "null"
	if r.DataTid != 0 {
		dataTid = `"` + r.DataTid.String() + `"`
	}
	return fmt.Sprintf(`{"oid": "%s", "tid": "%s", "data": %s, "data_txn": %s}`,
		r.Oid, r.Tid, hexOrNull(r.Data, r.Data == nil), dataTid)
}

// ourDump is our iteration of path in the format of zodbfs.py dump:
// forward, or backward with the transactions put back in file order.
func ourDump(t *testing.T, path string, opts Options, backward bool) []string {
	t.Helper()
	opts.ReadOnly = true
	s, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	it := s.Iterate(0)
	if backward {
		it = s.IterateBackward()
	}
	var txns [][]string
	for {
		txn, err := it.NextTxn()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		lines := []string{dumpTxn(txn)}
		for {
			r, err := it.NextData()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			lines = append(lines, dumpRec(r))
		}
		txns = append(txns, lines)
	}
	var out []string
	for i := range txns {
		if backward {
			i = len(txns) - 1 - i
		}
		out = append(out, txns[i]...)
	}
	return out
}

func lines(b []byte) []string {
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func compareLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	for i := 0; i < min(len(got), len(want)); i++ {
		if got[i] != want[i] {
			t.Fatalf("%s: line %d:\n got %.300s\nwant %.300s", what, i+1, got[i], want[i])
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d lines, want %d", what, len(got), len(want))
	}
}

// checkLoads answers every request of zodbfs.py loads with our Storage
// and compares.
func checkLoads(t *testing.T, path string, opts Options) int {
	t.Helper()
	want := python(t, "loads", path)
	opts.ReadOnly = true
	s, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sum := func(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }
	n := 0
	for _, line := range lines(want) {
		var req struct {
			Op     string
			Oid    string
			Tid    *string
			Result json.RawMessage
		}
		if err := json.Unmarshal([]byte(line), &req); err != nil {
			t.Fatal(err)
		}
		oid := proto.Oid(parseHex(t, req.Oid))
		var tid proto.Tid
		if req.Tid != nil {
			tid = proto.Tid(parseHex(t, *req.Tid))
		}
		var got any
		switch req.Op {
		case "load":
			data, serial, err := s.Load(oid)
			got = []string{sum(data), serial.String()}
			if errors.Is(err, ErrNotFound) {
				got = "POSKeyError"
			} else if err != nil {
				t.Fatal(err)
			}
		case "loadBefore":
			data, serial, next, err := s.LoadBefore(oid, tid)
			var end any
			if next != 0 {
				end = next.String()
			}
			got = []any{sum(data), serial.String(), end}
			switch {
			case errors.Is(err, ErrNotFound):
				got = "POSKeyError"
			case errors.Is(err, ErrNoRevision):
				got = nil
			case err != nil:
				t.Fatal(err)
			}
		case "loadSerial":
			data, err := s.LoadSerial(oid, tid)
			got = sum(data)
			if errors.Is(err, ErrNotFound) {
				got = "POSKeyError"
			} else if err != nil {
				t.Fatal(err)
			}
		}
		gotJSON, _ := json.Marshal(got)
		var wantJSON bytes.Buffer
		json.Compact(&wantJSON, req.Result)
		if !bytes.Equal(gotJSON, wantJSON.Bytes()) {
			t.Fatalf("%s %s %v: got %s, ZODB %s", req.Op, req.Oid, req.Tid, gotJSON, wantJSON.Bytes())
		}
		n++
	}
	return n
}

func parseHex(t *testing.T, s string) uint64 {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 8 {
		t.Fatalf("bad id %q", s)
	}
	var x uint64
	for _, c := range b {
		x = x<<8 | uint64(c)
	}
	return x
}

// Our reader returns every record of a file ZODB wrote exactly as ZODB's
// iterator does, and answers every load as ZODB does.
func TestReadZODBFile(t *testing.T) {
	path := genZODB(t)
	want := lines(python(t, "dump", path))
	t.Logf("ZODB's file: %d lines of dump", len(want))
	if _, err := os.Stat(path + ".index"); err != nil {
		t.Fatal("ZODB wrote no index file")
	}
	var statuses = map[string]int{}
	for _, l := range want {
		for _, st := range []string{`"status": "p"`, `"data": null`, `"data_txn": "`} {
			if strings.Contains(l, st) {
				statuses[st]++
			}
		}
	}
	if len(statuses) != 3 {
		t.Fatalf("the generated history lacks packed transactions, deletions or back-pointers: %v", statuses)
	}
	t.Run("forward, with ZODB's index file", func(t *testing.T) {
		compareLines(t, "dump", ourDump(t, path, Options{}, false), want)
	})
	t.Run("forward, scanned", func(t *testing.T) {
		compareLines(t, "dump", ourDump(t, path, Options{NoIndexFile: true}, false), want)
	})
	t.Run("backward", func(t *testing.T) {
		compareLines(t, "dump", ourDump(t, path, Options{}, true), want)
	})
	t.Run("loads", func(t *testing.T) {
		n := checkLoads(t, path, Options{})
		t.Logf("%d loads equal", n)
	})
	t.Run("loads, scanned", func(t *testing.T) { checkLoads(t, path, Options{NoIndexFile: true}) })
	t.Run("index file equals the scan", func(t *testing.T) {
		a, err := Open(path, Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		b, err := Open(path, Options{ReadOnly: true, NoIndexFile: true})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if !a.mu.index.Equal(b.mu.index) || a.LastTid() != b.LastTid() || a.End() != b.End() {
			t.Fatal("the index read from ZODB's file differs from the scan")
		}
	})
	t.Run("verify", func(t *testing.T) {
		for _, strict := range []bool{false, true} {
			if _, err := VerifyFile(path, strict); err != nil {
				t.Fatalf("strict %v: %v", strict, err)
			}
		}
	})
}

// copyFile writes into dst, with our writer, every transaction of src as
// our reader sees it, as copyTransactionsFrom does: data inline,
// back-pointers kept, deletions kept, statuses kept.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := Open(src, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := Open(dst, Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	it := in.Iterate(0)
	for {
		txn, err := it.NextTxn()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		tx, err := out.Begin(TxnMeta{Tid: txn.Tid, Status: txn.Status, User: txn.User, Description: txn.Description, Extension: txn.Extension})
		if err != nil {
			t.Fatal(err)
		}
		for {
			r, err := it.NextData()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := tx.Store(Record{Oid: r.Oid, Data: r.Data, DataTid: r.DataTid}); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// A file we write passes fstest, reads back in ZODB record by record as
// the original, is byte for byte what ZODB's copyTransactionsFrom writes,
// has an index file ZODB loads, and ZODB packs it.
func TestWriteForZODB(t *testing.T) {
	src := genZODB(t)
	dir := t.TempDir()
	ours := filepath.Join(dir, "ours.fs")
	copyFile(t, src, ours)
	python(t, "-m", "ZODB.scripts.fstest", ours)
	want := lines(python(t, "dump", src))
	compareLines(t, "ZODB's dump of our copy", lines(python(t, "dump", ours)), want)

	theirs := filepath.Join(dir, "theirs.fs")
	python(t, "copy", src, theirs)
	a, _ := os.ReadFile(ours)
	b, _ := os.ReadFile(theirs)
	if !bytes.Equal(a, b) {
		i := 0
		for i < min(len(a), len(b)) && a[i] == b[i] {
			i++
		}
		t.Fatalf("our copy (%d bytes) differs from ZODB's (%d bytes) at offset %d", len(a), len(b), i)
	}
	compareLines(t, "ZODB's loads on our copy", lines(python(t, "loads", ours)), lines(python(t, "loads", theirs)))
	python(t, "index", ours)

	python(t, "pack", ours)
	python(t, "-m", "ZODB.scripts.fstest", ours)
	compareLines(t, "our dump of the file ZODB packed", ourDump(t, ours, Options{NoIndexFile: true}, false), lines(python(t, "dump", ours)))
}

// A random history of our writer (several records of one oid in a
// transaction, back-pointers, deletions, metadata) reads the same in
// ZODB and in our reader.
func TestRandomHistoryInZODB(t *testing.T) {
	s, path := create(t)
	writeHistory(t, s, rand.New(rand.NewPCG(11, 12)), 300, 2000)
	s.Close()
	python(t, "-m", "ZODB.scripts.fstest", path)
	compareLines(t, "dump", ourDump(t, path, Options{}, false), lines(python(t, "dump", path)))
	checkLoads(t, path, Options{})
	python(t, "index", path)
}

// A crash in the middle of a commit of our writer leaves a file that ZODB
// opens, dropping the partial transaction, and that passes fstest.
func TestCrashedFileInZODB(t *testing.T) {
	src := genZODB(t)
	dir := t.TempDir()
	base := filepath.Join(dir, "base.fs")
	copyFile(t, src, base)
	os.Remove(base + ".index")
	orig, _ := os.ReadFile(base)
	before := lines(python(t, "dump", base))
	for _, budget := range []int{10, 30, 200, 150000, 200078, 200086} {
		path := filepath.Join(dir, fmt.Sprintf("crash%d.fs", budget))
		os.WriteFile(path, orig, 0o666)
		s, err := Open(path, Options{OpenFile: func(name string, flag int, perm fs.FileMode) (File, error) {
			f, err := os.OpenFile(name, flag, perm)
			return &crashFile{File: f, budget: budget}, err
		}})
		if err != nil {
			t.Fatal(err)
		}
		tx, err := s.Begin(TxnMeta{Tid: s.LastTid() + 1, User: []byte("crash")})
		if err == nil {
			err = tx.Store(Record{Oid: 0, Data: bytes.Repeat([]byte("x."), 100000)})
		}
		if err == nil {
			err = tx.Commit()
		}
		if !errors.Is(err, errCrash) {
			t.Fatalf("budget %d: %v", budget, err)
		}
		s.f.Close()
		s.unlock()
		fi, _ := os.Stat(path)
		python(t, "open", path)
		python(t, "-m", "ZODB.scripts.fstest", path)
		compareLines(t, fmt.Sprintf("budget %d (%d bytes written): dump", budget, fi.Size()-int64(len(orig))), lines(python(t, "dump", path)), before)
	}
}

// Our Verify finds a problem exactly where ZODB's fstest does.
func TestVerifyAgreesWithFstest(t *testing.T) {
	base, cases := corruptions(t)
	dir := t.TempDir()
	for i, c := range cases {
		path := filepath.Join(dir, fmt.Sprintf("c%d.fs", i))
		b := c.damage(append([]byte(nil), base...))
		os.WriteFile(path, b, 0o666)
		_, ferr := pythonErr(t, "-m", "ZODB.scripts.fstest", path)
		_, err := Verify(path, bytes.NewReader(b), int64(len(b)), false)
		t.Logf("%s: fstest fails: %v, Verify fails: %v", c.name, ferr != nil, err != nil)
		if (ferr == nil) != (err == nil) {
			t.Errorf("%s: fstest says %v, Verify says %v", c.name, ferr, err)
		}
	}
}

// Transactions we append to a file ZODB wrote (as NEO's writeback does),
// back-pointers to ZODB's records and deletions included, read the same
// in ZODB, pass fstest, and the .index we leave is the one ZODB builds.
func TestAppendToZODBFile(t *testing.T) {
	path := genZODB(t)
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// revisions of existing objects to point back to
	var oids []proto.Oid
	s.Oids(func(oid proto.Oid, _ int64) bool { oids = append(oids, oid); return len(oids) < 20 })
	rng := rand.New(rand.NewPCG(15, 16))
	tid := s.LastTid()
	first := tid + 1
	for i := 0; i < 20; i++ {
		tid += proto.Tid(1 + rng.IntN(1000))
		tx, err := s.Begin(TxnMeta{Tid: tid, User: []byte("go"), Description: []byte(fmt.Sprintf("appended %d", i))})
		if err != nil {
			t.Fatal(err)
		}
		for _, oid := range oids[i%5 : i%5+3] {
			r := Record{Oid: oid, Data: pickleish(rng, 10+rng.IntN(100))}
			if i%4 == 3 {
				// back to the revision before the current one, when there is one
				_, serial, err := s.Load(oid)
				if err == nil {
					if _, prev, _, err := s.LoadBefore(oid, serial); err == nil {
						r = Record{Oid: oid, DataTid: prev}
					}
				}
			}
			if i == 19 {
				r = Record{Oid: oid} // deletion
			}
			if err := tx.Store(r); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	python(t, "-m", "ZODB.scripts.fstest", path)
	python(t, "index", path)
	compareLines(t, "dump", ourDump(t, path, Options{}, false), lines(python(t, "dump", path)))
	checkLoads(t, path, Options{})

	// the appended part has back-pointers and deletions
	r, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	backs, dels := 0, 0
	for it := r.Iterate(first); ; {
		if _, err := it.NextTxn(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		for {
			rec, err := it.NextData()
			if err == io.EOF {
				break
			}
			if rec.Back != 0 {
				backs++
			} else if rec.DataLen == 0 {
				dels++
			}
		}
	}
	if backs == 0 || dels == 0 {
		t.Fatalf("appended %d back-pointers and %d deletions", backs, dels)
	}
}

// A file ZODB left with a voted but unfinished transaction (a crash
// between tpc_vote and tpc_finish): we read what ZODB reads, report the
// tail, and a read-write open truncates it as ZODB does.
func TestZODBCrashTail(t *testing.T) {
	path := genZODB(t)
	os.Remove(path + ".index")
	clean, _ := os.ReadFile(path)
	python(t, "crash", path)
	fi, _ := os.Stat(path)
	if fi.Size() <= int64(len(clean)) {
		t.Fatalf("the crash left nothing behind (%d bytes, %d before)", fi.Size(), len(clean))
	}
	compareLines(t, "dump", ourDump(t, path, Options{}, false), lines(python(t, "dump", path)))
	s, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	tail := s.Tail()
	s.Close()
	if tail == nil || tail.Pos != int64(len(clean)) {
		t.Fatalf("tail %+v, want one at %d", tail, len(clean))
	}
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	after, _ := os.ReadFile(path)
	if !bytes.Equal(after, clean) {
		t.Fatalf("after a read-write open: %d bytes, want the %d before the crash", len(after), len(clean))
	}
	python(t, "-m", "ZODB.scripts.fstest", path)
}
