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
