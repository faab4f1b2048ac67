package mysql

import (
	"database/sql"
	"strconv"
	"testing"
	"time"

	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

// An unlock is committed by the next write, by a read that could see it,
// by a timer when nothing else writes, by Close, and again on a new
// connection when the server lost it; until then the server's other
// sessions do not see it.
func TestDeferredUnlock(t *testing.T) {
	db, admin, name := testDB(t, backend.Options{})
	setDelay := func(d time.Duration) { // read under db.mu
		db.mu.Lock()
		db.unlocks.Delay = d
		db.mu.Unlock()
	}
	// Long enough for the steps that the timer must not disturb, on a
	// loaded machine; shortened for the step that waits for it.
	setDelay(time.Hour)
	ctx := t.Context()
	// Rows of oid in obj and tobj, as another session sees them.
	rows := func(oid proto.Oid) (obj, tobj int) {
		t.Helper()
		return count(t, admin, "SELECT COUNT(*) FROM "+name+".obj WHERE oid="+strconv.FormatUint(uint64(oid), 10)),
			count(t, admin, "SELECT COUNT(*) FROM "+name+".tobj WHERE oid="+strconv.FormatUint(uint64(oid), 10))
	}
	want := func(what string, oid proto.Oid, obj, tobj int) {
		t.Helper()
		if o, to := rows(oid); o != obj || to != tobj {
			t.Errorf("%s: oid %s has %d obj and %d tobj rows committed, want %d and %d", what, oid, o, to, obj, tobj)
		}
	}

	commit(t, db, 0x10, record(1, []byte("a")))
	want("after the unlock", 1, 0, 1)
	if tid, err := db.LastObjectTid(ctx, 1); err != nil || tid != 0x10 {
		t.Errorf("LastObjectTid(1) = %s, %v; want 0x10", tid, err)
	}
	want("after a read of it", 1, 1, 0)

	commit(t, db, 0x20, record(2, []byte("b")))
	if o, err := db.Load(ctx, 3, proto.InvalidTid, proto.InvalidTid); err == nil {
		t.Errorf("oid 3 loaded before it was stored: %+v", o)
	}
	want("after a read of another oid", 2, 0, 1)
	if err := db.StoreTransaction(ctx, 0x30, []backend.Record{record(3, []byte("c"))}, &backend.TxnMeta{TTid: 0x30, Oids: []proto.Oid{3}}); err != nil {
		t.Fatal(err)
	}
	want("after the next vote", 2, 1, 0)
	if m, err := db.Transaction(ctx, 0x20); err != nil || len(m.Oids) != 1 {
		t.Errorf("Transaction(0x20) = %+v, %v", m, err)
	}

	if err := db.LockTransaction(ctx, 0x30, 0x30, false); err != nil {
		t.Fatal(err)
	}
	setDelay(100 * time.Millisecond)
	if err := db.UnlockTransaction(ctx, 0x30, 0x30); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for o, _ := rows(3); o == 0 && time.Now().Before(deadline); o, _ = rows(3) {
		time.Sleep(50 * time.Millisecond)
	}
	want("when the timer fired", 3, 1, 0)
	setDelay(time.Hour)

	// The server loses the session: the next write commits the unlock
	// on a new connection.
	commit(t, db, 0x40, record(4, []byte("d")))
	var id sql.NullInt64
	if err := admin.QueryRow("SELECT IS_USED_LOCK('" + name + ".neostorage')").Scan(&id); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec("KILL CONNECTION ?", id.Int64); err != nil {
		t.Fatal(err)
	}
	want("after the server lost it", 4, 0, 1)
	commit(t, db, 0x50, record(5, []byte("e")))
	want("after the next commit", 4, 1, 0)
	if o, err := db.Load(ctx, 4, proto.InvalidTid, proto.InvalidTid); err != nil || string(o.Data) != "d" || o.Serial != 0x40 {
		t.Errorf("Load(4) = %+v, %v", o, err)
	}

	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	want("after Close", 5, 1, 0)
	if n := count(t, admin, "SELECT COUNT(*) FROM "+name+".ttrans"); n != 0 {
		t.Errorf("%d ttrans rows left", n)
	}
}
