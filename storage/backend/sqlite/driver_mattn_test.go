//go:build sqlitebench && cgo

package sqlite

import (
	"database/sql"

	"github.com/mattn/go-sqlite3"
)

func init() {
	// The same per-connection settings as the modernc DSN.
	sql.Register("sqlite3-bench", &sqlite3.SQLiteDriver{
		ConnectHook: func(c *sqlite3.SQLiteConn) error {
			_, err := c.Exec("PRAGMA mmap_size=1073741824", nil)
			return err
		},
	})
	benchDrivers["mattn"] = sqlDriver{
		name: "sqlite3-bench",
		dsn: func(path string) string {
			return "file:" + escapePath(path) + "?_busy_timeout=10000"
		},
	}
}
