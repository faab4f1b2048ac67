//go:build sqlitebench && cgo

package sqlite

import (
	"database/sql"

	"github.com/mattn/go-sqlite3"
)

func init() {
	// The same per-connection settings as the modernc DSN (no mmap).
	sql.Register("sqlite3-bench", &sqlite3.SQLiteDriver{})
	benchDrivers["mattn"] = sqlDriver{
		name: "sqlite3-bench",
		dsn: func(path, cacheSize string) string {
			dsn := "file:" + escapePath(path) + "?_busy_timeout=10000"
			if cacheSize != "" {
				dsn += "&_cache_size=" + cacheSize
			}
			return dsn
		},
	}
}
