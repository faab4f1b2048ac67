package sqlite

import (
	"crypto/sha1"
	"database/sql"
	"testing"
	"time"

	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
	"github.com/neogo/neo/storage/backend/backendtest"
)

// An unlock of a transaction voted by this process is committed by the
// next write, by a read that could see it, by a timer when nothing else
// writes, and by Close; until then other connections do not see it. One
// voted before the process started is committed at once.
func TestDeferredUnlock(t *testing.T) {
	ctx := t.Context()
	path := t.TempDir() + "/db.sqlite"
	b, err := Open(ctx, "sqlite://"+path, backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db := b.(*DB)
	defer func() { db.Close() }()
	if err := backendtest.Setup(ctx, db, "t", 1); err != nil {
		t.Fatal(err)
	}
	setDelay := func(d time.Duration) { // read under db.mu
		db.mu.Lock()
		db.unlocks.Delay = d
		db.mu.Unlock()
	}
	// Long enough for the steps that the timer must not disturb, on a
	// loaded machine; shortened for the step that waits for it.
	setDelay(time.Hour)

	// What another connection sees committed.
	other, err := sql.Open(defaultDriver.name, defaultDriver.dsn(path, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	count := func(q string, arg any) int {
		t.Helper()
		var n int
		if err := other.QueryRow(q, arg).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	want := func(what string, oid proto.Oid, obj, tobj int) {
		t.Helper()
		o := count(`SELECT COUNT(*) FROM obj WHERE oid=?`, int64(oid))
		to := count(`SELECT COUNT(*) FROM tobj WHERE oid=?`, int64(oid))
		if o != obj || to != tobj {
			t.Errorf("%s: oid %s has %d obj and %d tobj rows committed, want %d and %d", what, oid, o, to, obj, tobj)
		}
	}
	vote := func(tid proto.Tid, oid proto.Oid) {
		t.Helper()
		data := []byte{byte(oid)}
		r := backend.Record{Oid: oid, Data: data, Checksum: sha1.Sum(data), DataSerial: proto.InvalidTid}
		if err := db.StoreTransaction(ctx, tid, []backend.Record{r}, &backend.TxnMeta{TTid: tid, Oids: []proto.Oid{oid}}); err != nil {
			t.Fatal(err)
		}
		if err := db.LockTransaction(ctx, tid, tid, false); err != nil {
			t.Fatal(err)
		}
	}
	commit := func(tid proto.Tid, oid proto.Oid) {
		t.Helper()
		vote(tid, oid)
		if err := db.UnlockTransaction(ctx, tid, tid); err != nil {
			t.Fatal(err)
		}
	}

	commit(0x10, 1)
	want("after the unlock", 1, 0, 1)
	if tid, err := db.LastObjectTid(ctx, 1); err != nil || tid != 0x10 {
		t.Errorf("LastObjectTid(1) = %s, %v; want 0x10", tid, err)
	}
	want("after a read of it", 1, 1, 0)

	commit(0x20, 2)
	if o, err := db.Load(ctx, 3, proto.InvalidTid, proto.InvalidTid); err == nil {
		t.Errorf("oid 3 loaded before it was stored: %+v", o)
	}
	want("after a read of another oid", 2, 0, 1)
	if o, err := db.Load(ctx, 2, proto.InvalidTid, proto.InvalidTid); err != nil || o.Serial != 0x20 {
		t.Errorf("Load(2) = %+v, %v; want serial 0x20", o, err)
	}
	want("after a load of it", 2, 1, 0)

	commit(0x30, 3)
	vote(0x40, 4)
	want("after the next vote", 3, 1, 0)
	if m, err := db.Transaction(ctx, 0x30); err != nil || len(m.Oids) != 1 {
		t.Errorf("Transaction(0x30) = %+v, %v", m, err)
	}

	setDelay(100 * time.Millisecond)
	if err := db.UnlockTransaction(ctx, 0x40, 0x40); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for count(`SELECT COUNT(*) FROM obj WHERE oid=?`, 4) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	want("when the timer fired", 4, 1, 0)
	setDelay(time.Hour)

	commit(0x50, 5)
	vote(0x60, 6) // left locked by this process
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	want("after Close", 5, 1, 0)
	want("after Close", 6, 0, 1)

	b, err = Open(ctx, "sqlite://"+path, backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db = b.(*DB)
	setDelay(time.Hour)
	if err := db.UnlockTransaction(ctx, 0x60, 0x60); err != nil {
		t.Fatal(err)
	}
	want("after the unlock of a transaction voted before a restart", 6, 1, 0)
	if n := count(`SELECT COUNT(*) FROM ttrans WHERE ttid>=?`, 0); n != 0 {
		t.Errorf("%d ttrans rows left", n)
	}
}
