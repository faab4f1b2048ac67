package sqlite

import (
	"crypto/sha1"
	"testing"

	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
	"github.com/neogo/neo/storage/backend/backendtest"
)

// One sync per commit on a node holding the metadata: the vote commits
// with synchronous=NORMAL and the lock, which updates its ttrans row,
// with FULL. A node without the metadata has nothing to write at lock,
// so its vote must be synced itself.
func TestVoteSyncPolicy(t *testing.T) {
	ctx := t.Context()
	b, err := Open(ctx, "sqlite://"+t.TempDir()+"/db.sqlite", backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	db := b.(*DB)
	if err := backendtest.Setup(ctx, b, "t", 1); err != nil {
		t.Fatal(err)
	}
	data := []byte("data")
	recs := []backend.Record{{Oid: 1, Data: data, Checksum: sha1.Sum(data), DataSerial: proto.InvalidTid}}
	syncAfter := func(what string, f func() error) string {
		t.Helper()
		if err := f(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		db.mu.Lock()
		defer db.mu.Unlock()
		// What the connection runs with, not only what db.mu.sync says.
		var level int
		if err := db.mu.conn.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&level); err != nil {
			t.Fatal(err)
		}
		if name := map[int]string{1: "NORMAL", 2: "FULL"}[level]; name != db.mu.sync {
			t.Errorf("after %s: PRAGMA synchronous is %d, db.mu.sync %s", what, level, db.mu.sync)
		}
		return db.mu.sync
	}
	for _, c := range []struct {
		ttid, tid proto.Tid
		meta      *backend.TxnMeta
		vote      string
	}{
		{0x100, 0x101, &backend.TxnMeta{User: []byte("u"), Oids: []proto.Oid{1}}, "NORMAL"},
		{0x200, 0x201, nil, "FULL"},
	} {
		if got := syncAfter("vote", func() error { return b.StoreTransaction(ctx, c.ttid, recs, c.meta) }); got != c.vote {
			t.Errorf("vote of %s with metadata %v committed with synchronous=%s, want %s", c.ttid, c.meta != nil, got, c.vote)
		}
		if got := syncAfter("lock", func() error { return b.LockTransaction(ctx, c.ttid, c.tid, false) }); got != "FULL" {
			t.Errorf("lock of %s committed with synchronous=%s, want FULL", c.ttid, got)
		}
		if err := b.UnlockTransaction(ctx, c.ttid, c.tid); err != nil {
			t.Fatal(err)
		}
	}
}
