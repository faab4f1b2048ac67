package sqlite

import (
	"database/sql"
	"errors"
	"os"
	"testing"

	"github.com/neogo/neo/storage/backend"
)

// Every connection, the writer and each reader of the pool, takes the
// data source name's cache_size and maps no part of the file (the
// mapped pages would count in the storage's RSS); the WAL index is in
// memory.
func TestConnectionSettings(t *testing.T) {
	ctx := t.Context()
	b, err := Open(ctx, "file:"+t.TempDir()+"/db.sqlite?cache_size=-1234", backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	db := b.(*DB)
	check := func(what string, c *sql.Conn) {
		t.Helper()
		for q, want := range map[string]int64{"PRAGMA cache_size": -1234, "PRAGMA mmap_size": 0} {
			var got int64
			if err := c.QueryRowContext(ctx, q).Scan(&got); err != nil {
				t.Fatalf("%s: %s: %v", what, q, err)
			}
			if got != want {
				t.Errorf("%s: %s = %d, want %d", what, q, got, want)
			}
		}
	}
	db.mu.Lock()
	check("writer", db.mu.conn)
	db.mu.Unlock()
	// VFS unix-excl: the WAL index is in the process's memory, not in a
	// -shm file whose read locks each read transaction would take.
	if _, err := os.Stat(db.params.Path + "-wal"); err != nil {
		t.Errorf("no WAL: %v", err)
	}
	if _, err := os.Stat(db.params.Path + "-shm"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stat of the -shm file = %v, want none (VFS unix-excl)", err)
	}
	// Held at once: each is a connection of its own.
	for i := range 4 {
		c, err := db.r.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		check("reader "+string(rune('0'+i)), c)
	}
}
