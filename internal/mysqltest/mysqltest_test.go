package mysqltest_test

import (
	"database/sql"
	"testing"

	"github.com/neogo/neo/internal/mysqltest"
)

const name = "neot_mysqltest"

func tables(t *testing.T, admin *sql.DB) int {
	t.Helper()
	var n int
	if err := admin.QueryRow("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ?", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestDB: the database is new (what was there is dropped), usable, and
// gone once the test that asked for it ends.
func TestDB(t *testing.T) {
	_, admin := mysqltest.DB(t, name+"_outer")
	if _, err := admin.Exec("CREATE DATABASE IF NOT EXISTS " + name); err != nil {
		t.Fatal(err)
	}
	defer admin.Exec("DROP DATABASE IF EXISTS " + name)
	if _, err := admin.Exec("CREATE TABLE " + name + ".old (x INT)"); err != nil {
		t.Fatal(err)
	}
	t.Run("inner", func(t *testing.T) {
		sock, admin := mysqltest.DB(t, name)
		if sock == "" {
			t.Error("no socket returned")
		}
		if n := tables(t, admin); n != 0 {
			t.Errorf("new database has %d tables, want 0", n)
		}
		if _, err := admin.Exec("CREATE TABLE " + name + ".obj (x INT)"); err != nil {
			t.Fatal(err)
		}
	})
	var n int
	if err := admin.QueryRow("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = ?", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("database %s still there after its test ended", name)
	}
}
