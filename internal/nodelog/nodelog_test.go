package nodelog

import (
	"bytes"
	"database/sql"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"unsafe"
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

// TestArenaReuse: on a full buffer, packet bodies are copied into a few
// reused arenas, and never into one that a kept record, or one taken by
// a concurrent Flush, still points into: every body written matches the
// packet it came with.
func TestArenaReuse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n.log")
	const kept = 100
	l, err := Open(path, Options{MaxBuffer: kept * (recordOverhead + 1024)})
	if err != nil {
		t.Fatal(err)
	}
	body := func(id int) []byte {
		b := make([]byte, 1024)
		for i := range b {
			b[i] = byte(id + i)
		}
		return b
	}
	arenas := map[*arena]bool{}
	add := func(id int) {
		l.add(record{date: unixNow(), packet: true, id: uint32(id), body: body(id)})
		l.mu.Lock()
		arenas[l.arena] = true
		l.mu.Unlock()
	}
	const n = 20000
	for id := range n / 2 {
		add(id)
	}
	// kept KiB in the buffer, one arena being filled, the free ones.
	if max := kept*1024/arenaSize + 2 + maxFreeArenas; len(arenas) > max {
		t.Errorf("%d packets of 1 KiB through %d arenas, want at most %d", n/2, len(arenas), max)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 20 {
			l.Flush()
		}
	}()
	for id := n / 2; id < n; id++ {
		add(id)
	}
	<-done
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT msg_id, body FROM packet")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	written := 0
	for rows.Next() {
		var id int
		var b []byte
		if err := rows.Scan(&id, &b); err != nil {
			t.Fatal(err)
		}
		if want := body(id); !bytes.Equal(b, want) {
			t.Fatalf("packet %d written with the body of another (starts % x, want % x)", id, b[:4], want[:4])
		}
		written++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if written < kept {
		t.Errorf("%d packets written, want at least the %d kept", written, kept)
	}
}

// A chunk of records is 256 x 160 bytes, a size class of the Go
// allocator: a larger record would round each chunk up to 48 KiB.
func TestRecordSize(t *testing.T) {
	if n := unsafe.Sizeof(record{}); n > 160 {
		t.Errorf("record of %d bytes, want at most 160", n)
	}
}
