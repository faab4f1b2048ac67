package sqlite

import (
	"context"
	"crypto/sha1"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

// While an import commits, the write connection does not checkpoint and
// the WAL stays within a few batches (the checkpointer restarts it);
// after the import, the first other commit gives the write connection
// its autocheckpoint back.
func TestImportCheckpointer(t *testing.T) {
	ctx := t.Context()
	path := t.TempDir() + "/db.sqlite"
	db := openSetup(t, path, 1)
	b := backend.Backend(db)
	autocheckpoint := func() int {
		t.Helper()
		db.mu.Lock()
		defer db.mu.Unlock()
		var n int
		if err := db.mu.conn.QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	const commits, perCommit, size = 16, 64, 16 << 10 // 1 MiB a commit
	rng := rand.New(rand.NewPCG(1, 2))
	var maxWAL int64
	var last []byte
	for i := range commits {
		tid := proto.Tid(0x100 + i)
		m := backend.TxnMeta{Tid: tid, TTid: tid}
		var recs []backend.Record
		for k := range perCommit {
			data := make([]byte, size)
			for j := range data {
				data[j] = byte(rng.Uint32())
			}
			oid := proto.Oid(i*perCommit + k)
			m.Oids = append(m.Oids, oid)
			recs = append(recs, backend.Record{Oid: oid, Serial: tid, DataSerial: proto.InvalidTid, Data: data, Checksum: sha1.Sum(data)})
			last = data
		}
		if err := db.ImportTransactions(ctx, []backend.TxnMeta{m}, recs, nil); err != nil {
			t.Fatalf("import %s: %v", tid, err)
		}
		if n := autocheckpoint(); n != 0 {
			t.Fatalf("after import commit %d: wal_autocheckpoint=%d, want 0", i, n)
		}
		st, err := os.Stat(path + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		maxWAL = max(maxWAL, st.Size())
	}
	// Without restarts the WAL would hold all 16 MiB.
	if maxWAL > 7<<20 {
		t.Errorf("WAL grew to %d bytes over %d import commits of 1 MiB", maxWAL, commits)
	}
	oid := proto.Oid(commits*perCommit - 1)
	if o, err := b.Load(ctx, oid, proto.InvalidTid, proto.InvalidTid); err != nil || string(o.Data) != string(last) {
		t.Fatalf("load %s after the import: %v", oid, err)
	}

	defer func(d time.Duration) { importIdle = d }(importIdle)
	importIdle = 0
	data := []byte("client")
	if err := b.StoreTransaction(ctx, 0x1000, []backend.Record{{Oid: 1, Data: data, Checksum: sha1.Sum(data), DataSerial: proto.InvalidTid}}, nil); err != nil {
		t.Fatal(err)
	}
	if db.ckpt != nil {
		t.Error("the checkpointer still runs after a commit past the import")
	}
	if n := autocheckpoint(); n != autoCheckpointPages {
		t.Errorf("after the import: wal_autocheckpoint=%d, want %d", n, autoCheckpointPages)
	}
}

// The checkpointer's connection is not taken from the read pool: an
// import commits while long reads hold every pooled connection.
func TestImportCheckpointerOwnConnection(t *testing.T) {
	ctx := t.Context()
	db := openSetup(t, t.TempDir()+"/db.sqlite", 1)
	for range db.r.Stats().MaxOpenConnections {
		c, err := db.r.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	data := []byte("data")
	recs := []backend.Record{{Oid: 1, Serial: 0x100, Data: data, Checksum: sha1.Sum(data), DataSerial: proto.InvalidTid}}
	tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := db.ImportTransactions(tctx, []backend.TxnMeta{{Tid: 0x100, TTid: 0x100, Oids: []proto.Oid{1}}}, recs, nil); err != nil {
		t.Fatalf("import while the read pool is busy: %v", err)
	}
}
