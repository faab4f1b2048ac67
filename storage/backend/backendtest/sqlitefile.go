package backendtest

import (
	"encoding/binary"
	"os"
	"testing"
)

// SQLitePageSize returns the page size written in the header of the
// SQLite file at path (closed, so that its WAL is checkpointed): two
// bytes at offset 16, big-endian, 1 meaning 65536.
func SQLitePageSize(t testing.TB, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [2]byte
	if _, err := f.ReadAt(b[:], 16); err != nil {
		t.Fatalf("read the header of %s: %v", path, err)
	}
	n := int(binary.BigEndian.Uint16(b[:]))
	if n == 1 {
		n = 65536
	}
	return n
}
