package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/neogo/neo/client"
	"github.com/neogo/neo/internal/neotest"
	"github.com/neogo/neo/internal/peerpy"
	"github.com/neogo/neo/proto"
)

// zodbfs runs ZODB's FileStorage through filestorage's test script.
func zodbfs(t *testing.T, args ...string) []byte {
	t.Helper()
	if args[0] != "-m" {
		args = append([]string{"../../filestorage/testdata/zodbfs.py"}, args...)
	}
	out, err := peerpy.Run(t, nil, nil, args...)
	if err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
	return out
}

// migrate runs the command and returns its status, stdout and stderr.
func migrate(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	status := run(ctx, args, &stdout, &stderr)
	return status, stdout.String(), stderr.String()
}

// normalize parses zodbfs.py's dump lines and forgets what the copy
// through NEO changes by design (cluster.md §11, testMigrationTool):
// undo records become data (data_txn), and NEO has no packed status
// for transactions written by a client.
func normalize(t *testing.T, dump []byte) []string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(dump)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("dump line %q: %v", l, err)
		}
		if _, ok := m["data_txn"]; ok {
			m["data_txn"] = nil
		}
		if m["status"] == "p" {
			m["status"] = " "
		}
		b, _ := json.Marshal(m)
		out = append(out, string(b))
	}
	return out
}

// A Data.fs written by ZODB (revisions, undos, a creation undone, a
// deletion, a pack) copied into our cluster then out to a new Data.fs
// gives the same transactions and records, and a file fstest passes.
func TestRoundTrip(t *testing.T) {
	peerpy.Require(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "Data.fs")
	zodbfs(t, "gen", src)
	c := neotest.Start(t, neotest.Options{Storages: 2, Partitions: 3})
	masters := strings.Join(c.Masters(), " ")

	status, stdout, stderr := migrate(t, "-c", c.Name(), src, masters)
	if status != 0 {
		t.Fatalf("import: status %d\n%s%s", status, stdout, stderr)
	}
	if !strings.HasPrefix(stdout, importWarning+"\nMigrating from "+src+" to "+masters+"\nMigration done in ") {
		t.Errorf("import: stdout %q", stdout)
	}

	out := filepath.Join(dir, "out", "Data.fs")
	os.Mkdir(filepath.Dir(out), 0o755)
	status, stdout, stderr = migrate(t, "-q", "--cluster="+c.Name(), masters, out)
	if status != 0 || stdout != "" {
		t.Fatalf("export: status %d, stdout %q\n%s", status, stdout, stderr)
	}
	zodbfs(t, "-m", "ZODB.scripts.fstest", out)
	want, got := normalize(t, zodbfs(t, "dump", src)), normalize(t, zodbfs(t, "dump", out))
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Fatalf("line %d of ZODB's dump:\n got %.300s\nwant %.300s", i+1, got[i], want[i])
		}
	}
	if len(got) != len(want) {
		t.Fatalf("ZODB's dump of the copy: %d lines, want %d", len(got), len(want))
	}
	if n := strings.Count(string(zodbfs(t, "dump", src)), `"data": null`); n == 0 {
		t.Error("the source has no deletion: the test proves less than it says")
	}

	// Again: everything is there already, nothing is copied.
	before, _ := os.ReadFile(out)
	status, stdout, stderr = migrate(t, "-c", c.Name(), masters, out)
	if status != 0 || !strings.Contains(stderr, "copying only those after it") {
		t.Fatalf("export again: status %d\n%s%s", status, stdout, stderr)
	}
	if after, _ := os.ReadFile(out); !bytes.Equal(before, after) {
		t.Errorf("export again changed %s (%d bytes, was %d)", out, len(after), len(before))
	}
	// The same into the cluster.
	status, stdout, stderr = migrate(t, "-c", c.Name(), "-q", src, masters)
	if status != 0 || !strings.Contains(stderr, "the cluster has transactions up to") {
		t.Fatalf("import again: status %d\n%s%s", status, stdout, stderr)
	}
}

// Bad input is reported with its name and status 1; a bad command line
// with the usage and status 2.
func TestErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "not-a-Data.fs")
	os.WriteFile(bad, []byte("hello, world"), 0o644)
	status, _, stderr := migrate(t, "-q", "-c", "x", bad, "127.0.0.1:1")
	if status != 1 || !strings.Contains(stderr, bad) {
		t.Errorf("not a FileStorage: status %d, stderr %q", status, stderr)
	}
	status, _, stderr = migrate(t, "-c", "x", bad)
	if status != 2 || !strings.Contains(stderr, "required: destination") {
		t.Errorf("one argument: status %d, stderr %q", status, stderr)
	}
	status, stdout, _ := migrate(t, "--help")
	if status != 0 || !strings.Contains(stdout, "positional arguments:\n  source") {
		t.Errorf("--help: status %d, stdout %q", status, stdout)
	}
}

// A copy into a cluster that has objects already bases its stores on
// their current serials (as neoppod's importFrom does), not on "new
// object": the root of the Data.fs lands on the cluster's root.
func TestImportIntoNonEmpty(t *testing.T) {
	peerpy.Require(t)
	c := neotest.Start(t, neotest.Options{Partitions: 2})
	cl := c.Open(t, client.Config{})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	before, err := neotest.Commit(ctx, cl, 0, proto.ZeroTid, []byte("the cluster's root"))
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "Data.fs") // its tids come after the commit's
	zodbfs(t, "gen", src)
	if status, stdout, stderr := migrate(t, "-q", "-c", c.Name(), src, c.MasterAddr()); status != 0 {
		t.Fatalf("import: status %d\n%s%s", status, stdout, stderr)
	}
	obj, err := cl.Load(ctx, 0, before+1)
	if err != nil || string(obj.Data) != "the cluster's root" {
		t.Errorf("root before the copy: %q, %v", obj.Data, err)
	}
	if obj.NextSerial == proto.InvalidTid {
		t.Error("the copy did not write the root")
	}
}
