package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/neogo/neo/internal/neotest"
	"github.com/neogo/neo/internal/testca"
	"github.com/neogo/neo/neonet"
)

// --ca, --cert and --key copy out of a cluster that uses TLS; all three
// are needed.
func TestTLS(t *testing.T) {
	ca, cert, key := testca.New(t, "ca").Files(t, "node")
	cfg, err := neonet.LoadTLS(ca, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	c := neotest.Start(t, neotest.Options{TLS: cfg})
	out := filepath.Join(t.TempDir(), "Data.fs")
	status, stdout, stderr := migrate(t, "-c", c.Name(), "--ca", ca, "--cert", cert, "--key", key, c.MasterAddr(), out)
	if status != 0 || !strings.Contains(stdout, "Migration done in ") {
		t.Fatalf("export over TLS: status %d\n%s%s", status, stdout, stderr)
	}
	status, _, stderr = migrate(t, "-c", c.Name(), "--ca", ca, c.MasterAddr(), out)
	if status != 1 || !strings.Contains(stderr, "3 files must be provided") {
		t.Errorf("--ca alone: status %d, stderr %q", status, stderr)
	}
}
