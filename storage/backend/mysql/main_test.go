package mysql_test

import (
	"bytes"
	"context"
	"crypto/sha1"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	drv "github.com/go-sql-driver/mysql"

	"github.com/neogo/neo/storage/backend"
	"github.com/neogo/neo/storage/backend/mysql"
)

// socketEnv names a running server's unix socket (root, empty password).
// TestMain sets it for the processes it starts (the crash test's child).
const socketEnv = "NEO_MYSQL_SOCKET"

// socket is the server the tests use, "" when there is none.
var socket string

// TestMain gives the package's tests one MariaDB server: the one named by
// NEO_MYSQL_SOCKET, else, when NEO_PEERS locates the reference peers, a
// private one that ../shared/peers/mariadb.sh starts (installing Debian's
// mariadb-server if needed) in a temporary directory, stopped at the end.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if socket = os.Getenv(socketEnv); socket != "" {
		return m.Run()
	}
	peers := os.Getenv("NEO_PEERS")
	if peers == "" {
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "neo-mysql-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(peers, "mariadb.sh")
	start := time.Now()
	cmd := exec.Command(script, "start", dir)
	cmd.Stderr = os.Stderr
	cmd.Env = append(os.Environ(), mysql.ServerEnv()...)
	out, err := cmd.Output()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s start %s: %v\n", script, dir, err)
		return 1
	}
	defer func() {
		cmd := exec.Command(script, "stop", dir)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "%s stop %s: %v\n", script, dir, err)
		}
	}()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	socket = lines[len(lines)-1]
	fmt.Fprintf(os.Stderr, "MariaDB on %s started in %v\n", socket, time.Since(start).Round(time.Millisecond))
	os.Setenv(socketEnv, socket)
	return m.Run()
}

// needServer skips t without a server.
func needServer(t testing.TB) {
	t.Helper()
	if socket == "" {
		t.Skipf("no MariaDB server: set NEO_PEERS (../shared/peers, whose mariadb.sh starts one) or %s", socketEnv)
	}
}

var admin struct {
	sync.Mutex
	db      *sql.DB
	created map[string]bool
}

// adminDB is a root connection to the server, without database.
func adminDB(t testing.TB) *sql.DB {
	t.Helper()
	admin.Lock()
	defer admin.Unlock()
	if admin.db == nil {
		cfg := drv.NewConfig()
		cfg.User, cfg.Net, cfg.Addr = "root", "unix", socket
		c, err := drv.NewConnector(cfg)
		if err != nil {
			t.Fatal(err)
		}
		admin.db = sql.OpenDB(c)
		admin.created = map[string]bool{}
	}
	return admin.db
}

// createDB creates database name (once per test process) and drops it
// when t ends.
func createDB(t testing.TB, name string) {
	t.Helper()
	db := adminDB(t)
	admin.Lock()
	defer admin.Unlock()
	if admin.created[name] {
		return
	}
	if _, err := db.Exec("CREATE DATABASE IF NOT EXISTS `" + name + "`"); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	admin.created[name] = true
	t.Cleanup(func() {
		admin.Lock()
		delete(admin.created, name)
		admin.Unlock()
		if _, err := db.Exec("DROP DATABASE IF EXISTS `" + name + "`"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
}

// dbName maps a path of the conformance suite to a database name.
func dbName(path string) string {
	h := sha1.Sum([]byte(path))
	return "neot_" + hex.EncodeToString(h[:8])
}

// dsn is the --database string of database name on the test server.
func dsn(name string) string { return "root@" + name + socket }

func open(t testing.TB, path string, opts backend.Options) (backend.Backend, error) {
	needServer(t)
	name := dbName(path)
	createDB(t, name)
	return mysql.Open(context.Background(), "mysql:"+dsn(name), opts)
}

// query runs a query on database name and returns its rows as text.
func query(t testing.TB, name, q string) string {
	t.Helper()
	rows, err := adminDB(t).Query(strings.ReplaceAll(q, "$DB", "`"+name+"`"))
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var b bytes.Buffer
	for rows.Next() {
		vals := make([]sql.RawBytes, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			if i > 0 {
				b.WriteByte(' ')
			}
			if v == nil {
				b.WriteString("NULL")
			} else {
				b.Write(v)
			}
		}
		b.WriteByte('\n')
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
