//go:build integration

package integration

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// neomigrateBuild is the build of our neomigrate.
var neomigrateBuild cmdBuild

// TestMigrateSameAsNeoppod: the same Data.fs (written by ZODB) copied into
// neoppod's clusters by neoppod's neomigrate and by ours gives the same
// iterator through neoppod's client; a cluster copied out to a Data.fs by
// both is the same file, byte for byte, and passes fstest.
func TestMigrateSameAsNeoppod(t *testing.T) {
	p := needPeers(t)
	ours := filepath.Join(neomigrateBuild.dirWith(t, "neomigrate-build-", "neomigrate"), "neomigrate")
	dir := testDir(t)
	src := filepath.Join(dir, "Data.fs")
	if r := run(t, p.env(), p.py, zodbfsPy, "gen", src); r.code != 0 {
		t.Fatalf("zodbfs.py gen: %v", r)
	}
	a := startClusterEnv(t, p, "miga", nil, 2, 0, 3)
	b := startClusterEnv(t, p, "migb", nil, 2, 0, 3)

	if r := p.script(t, "neomigrate", "-c", a.name, src, a.master); r.code != 0 {
		t.Fatalf("neoppod's neomigrate into %s: %v", a.name, r)
	}
	r := run(t, nil, ours, "-c", b.name, src, b.master)
	if r.code != 0 || !strings.Contains(r.stdout, "Migrating from "+src+" to "+b.master+"\nMigration done in ") {
		t.Fatalf("our neomigrate into %s: %v", b.name, r)
	}
	if da, db := iterDumpSorted(t, p, a), iterDumpSorted(t, p, b); !slices.Equal(da, db) {
		x, y := da, db
		for i := 0; i < len(x) && i < len(y); i++ {
			if x[i] != y[i] {
				t.Fatalf("iterators differ at line %d:\nneoppod's copy: %s\nours:           %s", i+1, x[i], y[i])
			}
		}
		t.Fatalf("iterators: %d lines from neoppod's copy, %d from ours", len(x), len(y))
	}

	theirsFS, oursFS := filepath.Join(dir, "theirs.fs"), filepath.Join(dir, "ours.fs")
	if r := p.script(t, "neomigrate", "-q", "-c", a.name, a.master, theirsFS); r.code != 0 {
		t.Fatalf("neoppod's neomigrate out of %s: %v", a.name, r)
	}
	if r := run(t, nil, ours, "-q", "-c", a.name, a.master, oursFS); r.code != 0 || r.stdout != "" {
		t.Fatalf("our neomigrate out of %s: %v", a.name, r)
	}
	if r := run(t, p.env(), p.py, "-m", "ZODB.scripts.fstest", oursFS); r.code != 0 {
		t.Fatalf("fstest %s: %v", oursFS, r)
	}
	x, _ := os.ReadFile(theirsFS)
	y, _ := os.ReadFile(oursFS)
	if !bytes.Equal(x, y) {
		i := 0
		for i < min(len(x), len(y)) && x[i] == y[i] {
			i++
		}
		t.Fatalf("our export (%d bytes) differs from neoppod's (%d bytes) at offset %d", len(y), len(x), i)
	}
	t.Logf("exports equal: %d bytes", len(y))
}

// iterDumpSorted is iterDump of c with the records of each transaction
// sorted: their order in a transaction of NEO is the order in which
// neoppod's client got the answers to its stores, ours the order of the
// stores (the source's).
func iterDumpSorted(t *testing.T, p *peers, c *cluster) []string {
	var out []string
	start := 0
	for _, l := range strings.Split(strings.TrimSpace(iterDump(t, p, c.master, c.name)), "\n") {
		if strings.HasPrefix(l, `{"tid"`) {
			slices.Sort(out[start:])
			start = len(out) + 1
		}
		out = append(out, l)
	}
	slices.Sort(out[start:])
	return out
}
