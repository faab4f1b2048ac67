package main

import (
	"context"
	"strings"
	"testing"

	"github.com/neogo/neo/internal/mysqltest"
	"github.com/neogo/neo/storage/backend"
)

// TestMySQLAdapter runs neostorage -a MySQL against the server whose
// socket NEO_MYSQL_SOCKET names (`make mysql` starts one): --reset
// creates the schema in place of what was there, and a database in use
// is refused as neoppod refuses it.
func TestMySQLAdapter(t *testing.T) {
	const name = "neot_cmd_neostorage"
	sock, admin := mysqltest.DB(t, name)
	if _, err := admin.Exec("CREATE TABLE " + name + ".obj (x INT)"); err != nil {
		t.Fatal(err)
	}
	dbArg := "root@" + name + sock
	var out, errOut strings.Builder
	if st := run([]string{"-c", "x", "-a", "MySQL", "-d", dbArg, "--reset"}, &out, &errOut); st != 0 {
		t.Fatalf("--reset: status %d: %s", st, errOut.String())
	}
	var cols int
	if err := admin.QueryRow("SELECT COUNT(*) FROM information_schema.columns WHERE table_schema=? AND table_name='obj'", name).Scan(&cols); err != nil {
		t.Fatal(err)
	}
	if cols != 5 {
		t.Errorf("after --reset, table obj has %d columns, want neoppod's 5", cols)
	}

	b, err := backend.Open(context.Background(), "mysql:"+dbArg, backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	errOut.Reset()
	if st := run([]string{"-c", "x", "-a", "PyMySQL", "-d", dbArg, "-m", "127.0.0.1:1"}, &out, &errOut); st != 1 || !strings.Contains(errOut.String(), "neostorage: database is locked") {
		t.Errorf("database in use: status %d, stderr %q; want 1, database is locked", st, errOut.String())
	}
}
