package sqlite

import (
	"context"
	"slices"
	"testing"

	"github.com/neogo/neo/storage/backend"
	"github.com/neogo/neo/storage/backend/backendtest"
)

// benchDrivers are the database/sql drivers BenchmarkDriver compares;
// files built with the sqlitebench tag add more (driver_mattn_test.go).
var benchDrivers = map[string]sqlDriver{"modernc": defaultDriver}

// BenchmarkDriver runs the backend benchmarks once per driver:
//
//	go test -tags sqlitebench -run '^$' -bench Driver -count 5 ./storage/backend/sqlite
func BenchmarkDriver(b *testing.B) {
	names := make([]string, 0, len(benchDrivers))
	for name := range benchDrivers {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		drv := benchDrivers[name]
		b.Run(name, func(b *testing.B) {
			backendtest.RunBenchmarks(b, func(t testing.TB, path string, opts backend.Options) (backend.Backend, error) {
				p, err := ParseDSN(path)
				if err != nil {
					return nil, err
				}
				return open(context.Background(), p, opts, drv)
			})
		})
	}
}
