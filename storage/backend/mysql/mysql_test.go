package mysql_test

import (
	"testing"

	"github.com/neogo/neo/storage/backend/backendtest"
)

func TestConformance(t *testing.T) {
	backendtest.RunConformance(t, open)
}

func BenchmarkBackend(b *testing.B) {
	backendtest.RunBenchmarks(b, open)
}
