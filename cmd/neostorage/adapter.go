package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	_ "github.com/neogo/neo/storage/backend/mysql"
)

// backendDSN returns the data source name that opens --database with
// --adapter (cluster.md §9.3).
func backendDSN(adapter, database string) (string, error) {
	switch strings.ToLower(adapter) {
	case "sqlite", "importer": // the Importer's is its importer.conf
		return database, nil
	case "mysql", "mysqldb", "pymysql": // neoppod's bindings, one server
		return "mysql:" + database, nil
	}
	return "", fmt.Errorf("--adapter %s: not supported by this implementation (only Importer, MySQL, SQLite)", adapter)
}

// parseWait converts --wait SECONDS, -1 (any negative value) meaning
// forever.
func parseWait(s string) (time.Duration, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("--wait %q: %w", s, err)
	}
	if n < 0 {
		return -1, nil
	}
	return time.Duration(n) * time.Second, nil
}

// sqliteFiles returns the database file of --adapter SQLite (--database
// PATH or file:PATH?k=v), for its size in the metrics; nil for the other
// adapters.
func sqliteFiles(adapter, database string) []string {
	if !strings.EqualFold(adapter, "sqlite") {
		return nil
	}
	path, _, _ := strings.Cut(strings.TrimPrefix(database, "file:"), "?")
	if path == "" || path == ":memory:" {
		return nil
	}
	return []string{path}
}
