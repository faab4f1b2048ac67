package sqlite_test

import (
	"path/filepath"
	"testing"

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

// Options.PageSize sets the page size of a new database only: an
// existing file keeps its own.
func TestPageSize(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		file     string
		size     int
		want     int
		whatItIs string
	}{
		{"a.db", 16 << 10, 16 << 10, "new, 16 KiB asked"},
		{"a.db", 4 << 10, 16 << 10, "existing 16 KiB, 4 KiB asked"},
		{"a.db", 0, 16 << 10, "existing 16 KiB, default asked"},
		{"b.db", 0, 4 << 10, "new, default"},
	} {
		path := filepath.Join(dir, c.file)
		b, err := open(t, path, backend.Options{PageSize: c.size})
		if err != nil {
			t.Fatalf("%s: %v", c.whatItIs, err)
		}
		if err := b.Close(); err != nil {
			t.Fatalf("%s: %v", c.whatItIs, err)
		}
		if got := backendtest.SQLitePageSize(t, path); got != c.want {
			t.Errorf("%s: page size %d, want %d", c.whatItIs, got, c.want)
		}
	}
}
