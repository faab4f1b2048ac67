package sqlite

import (
	"os"
	"strconv"
	"testing"

	"github.com/neogo/neo/storage/backend"
	"github.com/neogo/neo/storage/backend/backendtest"
)

// BenchmarkLoadBig runs the reads of BenchLoadBig on a database of NEO_SQLITE_BIG_OBJECTS
// objects (default 400,000: 1.7 GB) at NEO_SQLITE_BIG, built if missing,
// opened as NEO_SQLITE_BIG_DSN if set (e.g. file:PATH?cache_size=-20000):
//
//	NEO_SQLITE_BIG=/tmp/big.sqlite go test -run '^$' -bench LoadBig ./storage/backend/sqlite
func BenchmarkLoadBig(b *testing.B) {
	path := os.Getenv("NEO_SQLITE_BIG")
	if path == "" {
		b.Skip("NEO_SQLITE_BIG not set")
	}
	objects := 400_000
	if s := os.Getenv("NEO_SQLITE_BIG_OBJECTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatalf("NEO_SQLITE_BIG_OBJECTS=%q: %v", s, err)
		}
		objects = n
	}
	dsn := os.Getenv("NEO_SQLITE_BIG_DSN")
	if dsn == "" {
		dsn = path
	}
	backendtest.BenchLoadBig(b, func(_ testing.TB, dsn string, opts backend.Options) (backend.Backend, error) {
		return Open(b.Context(), dsn, opts)
	}, dsn, path, objects)
}
