package sqlite_test

import (
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
