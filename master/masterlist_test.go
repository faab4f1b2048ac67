package master

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/neogo/neo/proto"
)

func TestMasterListFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "masters.json")
	// Missing: created empty.
	l, err := loadMasterList(path)
	if err != nil || len(l) != 0 {
		t.Fatalf("load missing: %v, %v", l, err)
	}
	if data, err := os.ReadFile(path); err != nil || string(data) != "[]" {
		t.Fatalf("created %q, %v", data, err)
	}
	// neoppod's format (json.dump of a set of tuples).
	if err := os.WriteFile(path, []byte(`[["127.0.0.1", 10000], ["::1", 10001]]`), 0o644); err != nil {
		t.Fatal(err)
	}
	want := []proto.Addr{{Host: "127.0.0.1", Port: 10000}, {Host: "::1", Port: 10001}}
	if l, err := loadMasterList(path); err != nil || !slices.Equal(l, want) {
		t.Fatalf("load = %v, %v; want %v", l, err, want)
	}
	// Round trip; no temporary file left.
	if err := saveMasterList(path, want[1:]); err != nil {
		t.Fatal(err)
	}
	if l, err := loadMasterList(path); err != nil || !slices.Equal(l, want[1:]) {
		t.Fatalf("after save: %v, %v", l, err)
	}
	if _, err := os.Stat(path + "#neo#"); !os.IsNotExist(err) {
		t.Fatalf("temporary file left: %v", err)
	}
	for _, bad := range []string{`{}`, `[["h"]]`, `[["h", 70000]]`, `[[1, 2]]`} {
		os.WriteFile(path, []byte(bad), 0o644)
		if _, err := loadMasterList(path); err == nil {
			t.Errorf("load %s: no error", bad)
		}
	}
	// A file that cannot be created is an error at start.
	if _, err := loadMasterList(filepath.Join(dir, "missing", "masters.json")); err == nil {
		t.Fatal("no error for an uncreatable file")
	}
}
