// Package mysqltest gives tests a database of their own on the MariaDB
// server whose unix socket NEO_MYSQL_SOCKET names (root, empty password;
// `make mysql` starts one with ../shared/peers/mariadb.sh). Without a
// server the tests skip.
package mysqltest

import (
	"database/sql"
	"io"
	"log"
	"os"
	"testing"

	drv "github.com/go-sql-driver/mysql"
)

// SocketEnv names the environment variable with the server's socket.
const SocketEnv = "NEO_MYSQL_SOCKET"

// DB creates database name afresh (dropped if it was there) and drops it
// when tb ends. It returns the server's socket, which makes the DSN
// "root@"+name+sock of the MySQL backend and of neoppod, and a root
// connection without database, closed when tb ends. It skips tb when
// there is no server.
func DB(tb testing.TB, name string) (sock string, admin *sql.DB) {
	tb.Helper()
	sock = os.Getenv(SocketEnv)
	if sock == "" {
		tb.Skip(SocketEnv + " not set: no MariaDB server (make mysql starts one)")
	}
	cfg := drv.NewConfig()
	cfg.User, cfg.Net, cfg.Addr = "root", "unix", sock
	// Errors are returned; the driver's log would only add the broken
	// idle connections of a test that restarts the server.
	cfg.Logger = log.New(io.Discard, "", 0)
	c, err := drv.NewConnector(cfg)
	if err != nil {
		tb.Fatalf("MariaDB on %s: %v", sock, err)
	}
	admin = sql.OpenDB(c)
	tb.Cleanup(func() { admin.Close() })
	for _, q := range []string{"DROP DATABASE IF EXISTS " + name, "CREATE DATABASE " + name} {
		if _, err := admin.Exec(q); err != nil {
			tb.Fatalf("MariaDB on %s: %s: %v", sock, q, err)
		}
	}
	// Best effort (a test may have stopped the server): the next DB of
	// that name drops it anyway.
	tb.Cleanup(func() { admin.Exec("DROP DATABASE IF EXISTS " + name) })
	return sock, admin
}
