package backendtest

import (
	"context"
	"crypto/sha1"
	"fmt"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/neogo/neo/internal/peerpy"
	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

// The interoperability check of the SQL backends: the history that
// [WritePyReadHistory] writes with our backend, read by neoppod's backend
// of the same adapter ([PyRead]), prints [PyReadWant].

// WritePyReadHistory sets up b, a new database (cluster "c", 4
// partitions), and writes the history [PyRead] reads: a transaction of
// two new objects, a change of one, an undo of it with a deletion of the
// other, and a fourth transaction locked but not unlocked.
func WritePyReadHistory(ctx context.Context, b backend.Backend) error {
	if err := Setup(ctx, b, "c", 4); err != nil {
		return err
	}
	r := func(oid proto.Oid, d string) backend.Record {
		return backend.Record{Oid: oid, Data: []byte(d), Checksum: sha1.Sum([]byte(d)), DataSerial: proto.InvalidTid}
	}
	commit := func(tid proto.Tid, recs ...backend.Record) error {
		var oids []proto.Oid
		for _, x := range recs {
			oids = append(oids, x.Oid)
		}
		if err := b.StoreTransaction(ctx, tid, recs, &backend.TxnMeta{TTid: tid, User: []byte("u"), Description: []byte("d"), Oids: oids}); err != nil {
			return fmt.Errorf("store %s: %w", tid, err)
		}
		if err := b.LockTransaction(ctx, tid, tid, false); err != nil {
			return fmt.Errorf("lock %s: %w", tid, err)
		}
		if err := b.UnlockTransaction(ctx, tid, tid); err != nil {
			return fmt.Errorf("unlock %s: %w", tid, err)
		}
		return nil
	}
	if err := commit(0x10, r(1, "A"), r(2, "B")); err != nil {
		return err
	}
	if err := commit(0x20, r(1, "A2")); err != nil {
		return err
	}
	if err := commit(0x30, backend.Record{Oid: 1, DataSerial: 0x10}, backend.Record{Oid: 2, DataSerial: proto.InvalidTid}); err != nil {
		return err
	}
	if err := b.StoreTransaction(ctx, 0x41, []backend.Record{r(3, "C")}, &backend.TxnMeta{TTid: 0x41, Oids: []proto.Oid{3}}); err != nil {
		return fmt.Errorf("store 0x41: %w", err)
	}
	if err := b.LockTransaction(ctx, 0x41, 0x45, false); err != nil {
		return fmt.Errorf("lock 0x41 as 0x45: %w", err)
	}
	return nil
}

// PyRead runs testdata/pyread.py with the peers' Python (skipping t
// without them): neoppod opens database db with its backend of adapter
// (SQLite when empty) and prints what it reads.
func PyRead(t testing.TB, db, adapter string) ([]byte, error) {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	args := []string{filepath.Join(filepath.Dir(file), "testdata", "pyread.py"), db}
	if adapter != "" {
		args = append(args, adapter)
	}
	return peerpy.Run(t, nil, nil, args...)
}

// PyReadWant is what [PyRead] prints of the history of
// [WritePyReadHistory].
const PyReadWant = `version 4 nid 1 name c ptid 1
pt [(0, 1, 1), (1, 1, 1), (2, 1, 1), (3, 1, 1)]
locked {65: 69}
obj 1 0x30 None 0 b'A' 0x10
obj 1 0x20 0x30 0 b'A2' None
obj 1 0x20 0x30 0 b'A2' None
obj 2 0x30 None None None None
obj 2 0x10 0x30 0 b'B' None
obj 9 None
lastids ['0x30', '0x2']
trans ([b'\x00\x00\x00\x00\x00\x00\x00\x01', b'\x00\x00\x00\x00\x00\x00\x00\x02'], b'u', b'd', b'', False, b'\x00\x00\x00\x00\x00\x00\x000', None)
history [('0x30', 1), ('0x20', 2), ('0x10', 1)]
check (0, b'\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00', b'\x00\x00\x00\x00\x00\x00\x00\x00')
`
