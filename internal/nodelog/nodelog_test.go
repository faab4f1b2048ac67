package nodelog

import (
	"database/sql"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// count returns the rows of table in the log file at path.
func count(t *testing.T, path, table string) int {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
		t.Fatalf("%s: %v", table, err)
	}
	return n
}

// TestFlushOnWarning: records stay in RAM until a warning, which writes
// them all out, in order, with unique dates.
func TestFlushOnWarning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n.log")
	l, err := Open(path, Options{Level: slog.LevelDebug})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	log := slog.New(l.Handler(nil))
	for range 10 {
		log.Debug("d")
	}
	if n := count(t, path, "log"); n != 0 {
		t.Fatalf("%d records written before a warning", n)
	}
	log.Warn("w", "k", "a b")
	if n := count(t, path, "log"); n != 11 {
		t.Fatalf("%d records written after a warning, want 11", n)
	}
	db, _ := sql.Open("sqlite", path)
	defer db.Close()
	var msg, pathname string
	var level, line int
	if err := db.QueryRow("SELECT level, pathname, lineno, msg FROM log ORDER BY date DESC LIMIT 1").Scan(&level, &pathname, &line, &msg); err != nil {
		t.Fatal(err)
	}
	if level != 30 || msg != `w k="a b"` || pathname != "internal/nodelog/nodelog_test.go" || line == 0 {
		t.Errorf("last record %d %q %s:%d", level, msg, pathname, line)
	}
}

// TestRingBuffer: past the buffer's size, the oldest records are dropped.
func TestRingBuffer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n.log")
	l, err := Open(path, Options{MaxBuffer: 10 * (recordOverhead + len("0123456789"))})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(l.Handler(nil))
	for range 100 {
		log.Info("0123456789")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if n := count(t, path, "log"); n != 10 {
		t.Errorf("%d records kept, want 10", n)
	}
}

// TestReopen: after a rename and Reopen, new records go to a new file;
// the old file keeps the records before and, having logged no packet,
// loses its protocol table.
func TestReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "n.log")
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(l.Handler(nil))
	log.Info("before")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	log.Info("after")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if n := count(t, path+".1", "log"); n != 1 {
		t.Errorf("old file: %d records", n)
	}
	if n := count(t, path, "log"); n != 1 {
		t.Errorf("new file: %d records", n)
	}
	if n := count(t, path, "protocol"); n != 1 {
		t.Errorf("new file: %d protocol rows", n)
	}
	db, _ := sql.Open("sqlite", path+".1")
	defer db.Close()
	if err := db.QueryRow("SELECT 1 FROM protocol").Scan(new(int)); err == nil {
		t.Errorf("old file without packets kept its protocol table")
	}
}
