package mysql_test

import (
	"os"
	"testing"

	"github.com/neogo/neo/storage/backend"
	"github.com/neogo/neo/storage/backend/backendtest"
	"github.com/neogo/neo/storage/backend/mysql"
)

func TestConformance(t *testing.T) {
	backendtest.RunConformance(t, open)
}

func BenchmarkBackend(b *testing.B) {
	backendtest.RunBenchmarks(b, open)
}

// TestConformanceRocksDB runs the suite on tables created with the
// RocksDB engine (MyRocks), on a server that has it: mariadb.sh with
// MARIADB_ARGS=--plugin-load-add=ha_rocksdb and Debian's
// mariadb-plugin-rocksdb.
func TestConformanceRocksDB(t *testing.T) {
	needServer(t)
	var support string
	err := adminDB(t).QueryRow(`SELECT SUPPORT FROM information_schema.ENGINES WHERE ENGINE='ROCKSDB'`).Scan(&support)
	if err != nil || (support != "YES" && support != "DEFAULT") {
		t.Skipf("the server has no RocksDB engine (%q, %v)", support, err)
	}
	if os.Getenv("NEO_BACKENDTEST_CRASH_CHILD") == "" {
		name := "neot_rocksdb_engine"
		createDB(t, name)
		b, err := mysql.Open(t.Context(), "mysql:"+dsn(name), backend.Options{Engine: "rocksdb"})
		if err != nil {
			t.Fatal(err)
		}
		b.Close()
		if got := query(t, name, "SELECT DISTINCT engine FROM information_schema.tables WHERE table_schema='"+name+"'"); got != "ROCKSDB\n" {
			t.Fatalf("tables created with engines %q, want ROCKSDB", got)
		}
	}
	backendtest.RunConformance(t, func(t testing.TB, path string, opts backend.Options) (backend.Backend, error) {
		opts.Engine = "RocksDB"
		return open(t, path, opts)
	})
}

// TestSize: the database's size, which neo_storage_database_bytes reports
// for a MySQL storage, counts its tables.
func TestSize(t *testing.T) {
	db, err := open(t, t.Name(), backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n, err := db.(backend.SizeReporter).Size(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// Each of neoppod's tables takes at least a page of 16 KiB.
	if n < 16<<10 {
		t.Errorf("Size %d bytes, want at least 16 KiB", n)
	}
}
