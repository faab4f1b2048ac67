package backendtest

import (
	"crypto/sha1"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

// RunConformance runs the conformance suite against the backend open
// opens. Call it from a top-level test (the crash test re-executes that
// test in a child process).
func RunConformance(t *testing.T, open Opener) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(t, open, path)
		return
	}
	tests := []struct {
		name string
		fn   func(*testing.T, Opener)
	}{
		{"fresh database has empty config", testFresh},
		{"config and partition table persist across reopen", testConfigReopen},
		{"own cell out of date keeps resume point", testOwnCellOutOfDate},
		{"new nid takes over the cells of the old one", testNewNID},
		{"vote lock unlock", testVoteLockUnlock},
		{"abort drops temporary rows and data", testAbort},
		{"load latest serial before", testLoad},
		{"last serial of new oids", testLastObjectTidNewOids},
		{"undo back-pointers", testUndo},
		{"undo of packed record", testUndoPacked},
		{"history", testHistory},
		{"transaction iteration", testIteration},
		{"oids from", testOIDsFrom},
		{"last ids ignore other partitions", testLastIDs},
		{"locked transactions for verification", testVerification},
		{"truncate", testTruncate},
		{"drop partition", testDropPartition},
		{"pack old revisions", testPack},
		{"pack orders", testPackOrders},
		{"check digests", testCheckDigests},
		{"replication fetch and add", testReplication},
		{"deduplication", testDedup},
		{"compression flag preserved", testCompression},
		{"reopen keeps everything", testReopenAll},
		{"second open is locked", testLocked},
		{"acknowledged commits survive SIGKILL", testCrash},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.name, " ", "_"), func(t *testing.T) { tt.fn(t, open) })
	}
}

func testFresh(t *testing.T, open Opener) {
	b, err := open(t, t.TempDir()+"/db", backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := t.Context()
	m, err := b.Meta(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m != (backend.Meta{BackupTid: none, TruncateTid: none}) {
		t.Errorf("fresh meta = %+v", m)
	}
	ptid, nr, cells, err := b.PartitionTable(ctx)
	if err != nil || ptid != 0 || nr != 0 || len(cells) != 0 {
		t.Errorf("fresh partition table = %d %d %v %v", ptid, nr, cells, err)
	}
	if _, err := b.Load(ctx, 0, none, none); !errors.Is(err, backend.ErrNoPartitionTable) {
		t.Errorf("load without partition table: %v, want ErrNoPartitionTable", err)
	}
	if m, err := b.LockedTransactions(ctx); err != nil || len(m) != 0 {
		t.Errorf("locked transactions = %v, %v", m, err)
	}
	if ids, err := b.LastIDs(ctx, nil); err != nil || ids != (backend.LastIDs{LastTid: none, LastOid: proto.InvalidOid, FirstTid: proto.MaxTid}) {
		t.Errorf("last ids = %+v, %v", ids, err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Meta(ctx); err == nil {
		t.Errorf("meta after close: no error")
	}
}

func testConfigReopen(t *testing.T, open Opener) {
	e := newEnv(t, open, backend.Options{})
	m := backend.Meta{Name: "cluster", NID: Me, BackupTid: 0x1234, TruncateTid: 0x5678}
	e.must(e.b.SetMeta(e.ctx, m))
	other := proto.NewNodeID(proto.STORAGE, 2)
	e.must(e.b.ChangePartitionTable(e.ctx, 2, 1, []backend.CellChange{
		{Partition: 0, NID: other, State: proto.OUT_OF_DATE},
		{Partition: 1, NID: other, State: proto.FEEDING},
		{Partition: 2, NID: other, State: proto.CORRUPTED},
		{Partition: 3, NID: Me, State: proto.DISCARDED},
	}, false))
	e.reopen()
	got, err := e.b.Meta(e.ctx)
	e.must(err)
	m.PTID, m.NumReplicas = 2, 1
	if got != m {
		t.Errorf("meta after reopen = %+v, want %+v", got, m)
	}
	ptid, nr, cells, err := e.b.PartitionTable(e.ctx)
	e.must(err)
	wantCells := []backend.Cell{
		{Partition: 0, NID: Me, State: proto.UP_TO_DATE, Pack: 0},
		{Partition: 0, NID: other, State: proto.OUT_OF_DATE, Pack: none},
		{Partition: 1, NID: Me, State: proto.UP_TO_DATE, Pack: 0},
		{Partition: 1, NID: other, State: proto.FEEDING, Pack: none},
		{Partition: 2, NID: Me, State: proto.UP_TO_DATE, Pack: 0},
		{Partition: 2, NID: other, State: proto.CORRUPTED, Pack: none},
	}
	if ptid != 2 || nr != 1 || !slices.Equal(cells, wantCells) {
		t.Errorf("partition table after reopen = ptid %d nr %d\n%v\nwant\n%v", ptid, nr, cells, wantCells)
	}
	// Unset optional fields and a reset table.
	m.BackupTid, m.TruncateTid = none, none
	e.must(e.b.SetMeta(e.ctx, m))
	e.must(e.b.ChangePartitionTable(e.ctx, 7, 0, []backend.CellChange{{Partition: 0, NID: other, State: proto.UP_TO_DATE}}, true))
	e.reopen()
	got, err = e.b.Meta(e.ctx)
	e.must(err)
	if got.BackupTid != none || got.TruncateTid != none || got.PTID != 7 {
		t.Errorf("meta after unset = %+v", got)
	}
	_, _, cells, err = e.b.PartitionTable(e.ctx)
	e.must(err)
	if want := []backend.Cell{{Partition: 0, NID: other, State: proto.UP_TO_DATE, Pack: none}}; !slices.Equal(cells, want) {
		t.Errorf("after reset: %v, want %v", cells, want)
	}
}

func testOwnCellOutOfDate(t *testing.T, open Opener) {
	e := newEnv(t, open, backend.Options{})
	// Partition 1 gets tids 0x11 (trans) and obj records of oid 1.
	e.commit(0x11, rec(1, []byte("a")))
	e.commit(0x15, rec(5, []byte("b"))) // trans in 1, obj oid 5 in 1
	e.must(e.b.ChangePartitionTable(e.ctx, 2, 0, []backend.CellChange{{Partition: 1, NID: Me, State: proto.OUT_OF_DATE}}, false))
	_, _, cells, err := e.b.PartitionTable(e.ctx)
	e.must(err)
	if c := cells[1]; c.State != proto.OUT_OF_DATE || c.Tid != 0x15 || c.Pack != 0 {
		t.Errorf("outdated own cell = %+v, want tid 0x15 (last local tid), pack kept", c)
	}
	e.must(e.b.SetCellTid(e.ctx, 1, 0x30))
	e.must(e.b.SetPartitionPacked(e.ctx, 1, 0x20, false))
	e.must(e.b.SetPartitionPacked(e.ctx, 1, 0x25, true)) // not lower: ignored
	e.must(e.b.ChangePartitionTable(e.ctx, 3, 0, []backend.CellChange{{Partition: 1, NID: Me, State: proto.OUT_OF_DATE}}, false))
	e.reopen()
	_, _, cells, err = e.b.PartitionTable(e.ctx)
	e.must(err)
	if c := cells[1]; c.State != proto.OUT_OF_DATE || c.Tid != 0x30 || c.Pack != 0x20 {
		t.Errorf("own cell = %+v, want tid 0x30 pack 0x20", c)
	}
	e.must(e.b.SetPartitionPacked(e.ctx, 1, 0x10, true))
	e.must(e.b.ChangePartitionTable(e.ctx, 4, 0, []backend.CellChange{{Partition: 1, NID: Me, State: proto.UP_TO_DATE}}, false))
	_, _, cells, err = e.b.PartitionTable(e.ctx)
	e.must(err)
	if c := cells[1]; c.State != proto.UP_TO_DATE || c.Tid != 0 || c.Pack != 0x10 {
		t.Errorf("own cell = %+v, want up to date, pack lowered to 0x10", c)
	}
}

// testNewNID: a clone given a new NID (cluster.md §8.11) keeps the copied
// cells, resume point and pack id included, under its new NID; the cells
// of other nodes stay, and a readable cell made OUT_OF_DATE for the new
// NID resumes after what the copy holds.
func testNewNID(t *testing.T, open Opener) {
	e := newEnv(t, open, backend.Options{})
	other := proto.NewNodeID(proto.STORAGE, 2)
	clone := proto.NewNodeID(proto.STORAGE, 3)
	e.commit(0x11, rec(1, []byte("a")))
	e.must(e.b.ChangePartitionTable(e.ctx, 2, 1, []backend.CellChange{
		{Partition: 0, NID: other, State: proto.UP_TO_DATE},
		{Partition: 2, NID: Me, State: proto.OUT_OF_DATE},
		{Partition: 3, NID: clone, State: proto.OUT_OF_DATE}, // a stale row of the new NID
	}, false))
	e.must(e.b.SetCellTid(e.ctx, 2, 0x7))
	m, err := e.b.Meta(e.ctx)
	e.must(err)
	m.NID = clone
	e.must(e.b.SetMeta(e.ctx, m))
	e.reopen()
	if m, err := e.b.Meta(e.ctx); err != nil || m.NID != clone {
		t.Errorf("meta after new nid = %+v, %v", m, err)
	}
	_, _, cells, err := e.b.PartitionTable(e.ctx)
	e.must(err)
	want := []backend.Cell{
		{Partition: 0, NID: other, State: proto.UP_TO_DATE, Pack: none},
		{Partition: 0, NID: clone, State: proto.UP_TO_DATE, Pack: 0},
		{Partition: 1, NID: clone, State: proto.UP_TO_DATE, Pack: 0},
		{Partition: 2, NID: clone, State: proto.OUT_OF_DATE, Tid: 0x7, Pack: 0},
		{Partition: 3, NID: clone, State: proto.UP_TO_DATE, Pack: 0},
	}
	if !slices.Equal(cells, want) {
		t.Errorf("cells after new nid:\n%v\nwant\n%v", cells, want)
	}
	// The master adds the clone's cells OUT_OF_DATE: replication resumes
	// after the last tid of the copy.
	e.must(e.b.ChangePartitionTable(e.ctx, 3, 1, []backend.CellChange{{Partition: 1, NID: clone, State: proto.OUT_OF_DATE}}, false))
	_, _, cells, err = e.b.PartitionTable(e.ctx)
	e.must(err)
	if c := cells[2]; c.NID != clone || c.State != proto.OUT_OF_DATE || c.Tid != 0x11 {
		t.Errorf("clone's cell 1 = %+v, want OUT_OF_DATE resuming after 0x11", c)
	}
}

func testVoteLockUnlock(t *testing.T, open Opener) {
	e := newEnv(t, open, backend.Options{})
	ttid, tid := proto.Tid(0x101), proto.Tid(0x105)
	recs := []backend.Record{rec(1, []byte("one")), rec(2, []byte("two"))}
	meta := &backend.TxnMeta{TTid: ttid, User: []byte("u"), Description: []byte("d"), Ext: []byte("x"), Oids: []proto.Oid{1, 2, 3}}
	e.must(e.b.StoreTransaction(e.ctx, ttid, recs, meta))
	if m := e.locked(); !maps.Equal(m, map[proto.Tid]proto.Tid{ttid: none}) {
		t.Errorf("after vote: locked = %v", m)
	}
	e.wantLoadErr(1, none, none, backend.ErrOidDoesNotExist)
	if ft, err := e.b.FinalTid(e.ctx, ttid); err != nil || ft != none {
		t.Errorf("final tid after vote = %s, %v", ft, err)
	}
	e.must(e.b.LockTransaction(e.ctx, ttid, tid, false))
	if m := e.locked(); !maps.Equal(m, map[proto.Tid]proto.Tid{ttid: tid}) {
		t.Errorf("after lock: locked = %v", m)
	}
	if ft, err := e.b.FinalTid(e.ctx, ttid); err != nil || ft != tid {
		t.Errorf("final tid after lock = %s, %v", ft, err)
	}
	e.wantLoadErr(1, none, none, backend.ErrOidDoesNotExist)
	e.must(e.b.UnlockTransaction(e.ctx, ttid, tid))
	if m := e.locked(); len(m) != 0 {
		t.Errorf("after unlock: locked = %v", m)
	}
	if ft, err := e.b.FinalTid(e.ctx, ttid); err != nil || ft != tid {
		t.Errorf("final tid after unlock = %s, %v", ft, err)
	}
	e.wantLoad(1, none, none, want{serial: tid, next: none, dataSerial: none, data: []byte("one")})
	e.wantLoad(2, tid, none, want{serial: tid, next: none, dataSerial: none, data: []byte("two")})
	got, err := e.b.Transaction(e.ctx, tid)
	e.must(err)
	if got.Tid != tid || got.TTid != ttid || string(got.User) != "u" || string(got.Description) != "d" ||
		string(got.Ext) != "x" || got.Packed || !slices.Equal(got.Oids, meta.Oids) || got.Pack != nil {
		t.Errorf("transaction = %+v", got)
	}
	if _, err := e.b.Transaction(e.ctx, ttid); !errors.Is(err, backend.ErrTidNotFound) {
		t.Errorf("transaction at ttid: %v, want ErrTidNotFound", err)
	}
	if ft, err := e.b.FinalTid(e.ctx, 0x201); err != nil || ft != none {
		t.Errorf("final tid of unknown = %s, %v", ft, err)
	}
	// A node holding only objects (no metadata): vote, lock, unlock.
	e.must(e.b.StoreTransaction(e.ctx, 0x202, []backend.Record{rec(1, []byte("one'"))}, nil))
	if m := e.locked(); !maps.Equal(m, map[proto.Tid]proto.Tid{0x202: none}) {
		t.Errorf("objects only: locked = %v", m)
	}
	e.must(e.b.LockTransaction(e.ctx, 0x202, 0x206, false))
	e.must(e.b.UnlockTransaction(e.ctx, 0x202, 0x206))
	e.wantLoad(1, none, none, want{serial: 0x206, next: none, dataSerial: none, data: []byte("one'")})
	e.wantLoad(1, tid, none, want{serial: tid, next: 0x206, dataSerial: none, data: []byte("one")})
	// An empty transaction appears with no oids.
	e.must(e.b.StoreTransaction(e.ctx, 0x301, nil, &backend.TxnMeta{TTid: 0x301}))
	e.must(e.b.LockTransaction(e.ctx, 0x301, 0x301, false))
	e.must(e.b.UnlockTransaction(e.ctx, 0x301, 0x301))
	if got, err := e.b.Transaction(e.ctx, 0x301); err != nil || len(got.Oids) != 0 || got.User == nil {
		t.Errorf("empty transaction = %+v, %v", got, err)
	}
	if tids, err := e.b.TIDs(e.ctx, 0, 10, allPartitions()); err != nil || !eqTids(tids, tidList(0x301, tid)) {
		t.Errorf("tids = %v, %v", tids, err)
	}
}

func testAbort(t *testing.T, open Opener) {
	e := newEnv(t, open, backend.Options{})
	e.commit(0x10, rec(1, []byte("kept")))
	before := e.stats()
	e.must(e.b.StoreTransaction(e.ctx, 0x21, []backend.Record{rec(1, []byte("x")), rec(2, []byte("y"))},
		&backend.TxnMeta{TTid: 0x21, Oids: []proto.Oid{1, 2}, Pack: &backend.PackOrder{PackTid: 0x10}}))
	e.must(e.b.StoreTransaction(e.ctx, 0x25, []backend.Record{rec(3, []byte("z"))}, nil))
	if s := e.stats(); s.Data != before.Data+3 || s.TempObjects != 3 || s.TempTransactions != 1 {
		t.Errorf("after votes: %+v", s)
	}
	e.must(e.b.AbortTransaction(e.ctx, 0x21))
	e.must(e.b.AbortTransaction(e.ctx, 0x25))
	if s := e.stats(); s != before {
		t.Errorf("after abort: %+v, want %+v", s, before)
	}
	if m := e.locked(); len(m) != 0 {
		t.Errorf("after abort: locked = %v", m)
	}
	if o, err := e.b.PackOrders(e.ctx, 0, allPartitions()); err != nil || len(o) != 0 {
		t.Errorf("pack orders after abort = %v, %v", o, err)
	}
	e.wantLoad(1, none, none, want{serial: 0x10, next: none, dataSerial: none, data: []byte("kept")})
}

func testLoad(t *testing.T, open Opener) {
	e := newEnv(t, open, backend.Options{})
	const oid = 6
	e.commit(0x10, rec(oid, []byte("v1")))
	e.commit(0x20, rec(oid, []byte("v2")))
	e.commit(0x30, rec(oid, nil)) // deletion
	e.commit(0x40, rec(7, []byte("other")))
	for _, tt := range []struct {
		name       string
		at, before proto.Tid
		w          want
		err        error
	}{
		{name: "latest is the deletion", at: none, before: none, w: want{serial: 0x30, next: none, dataSerial: none}},
		{name: "at first", at: 0x10, before: none, w: want{serial: 0x10, next: 0x20, dataSerial: none, data: []byte("v1")}},
		{name: "at second", at: 0x20, before: none, w: want{serial: 0x20, next: 0x30, dataSerial: none, data: []byte("v2")}},
		{name: "at missing serial", at: 0x15, before: none, err: backend.ErrOidNotFound},
		{name: "before second", at: none, before: 0x20, w: want{serial: 0x10, next: 0x20, dataSerial: none, data: []byte("v1")}},
		{name: "before between", at: none, before: 0x25, w: want{serial: 0x20, next: 0x30, dataSerial: none, data: []byte("v2")}},
		{name: "before far", at: none, before: proto.MaxTid, w: want{serial: 0x30, next: none, dataSerial: none}},
		{name: "before first", at: none, before: 0x10, err: backend.ErrOidNotFound},
		{name: "before zero", at: none, before: 0, err: backend.ErrOidNotFound},
	} {
		t.Run(strings.ReplaceAll(tt.name, " ", "_"), func(t *testing.T) {
			e.t = t
			if tt.err != nil {
				e.wantLoadErr(oid, tt.at, tt.before, tt.err)
			} else {
				e.wantLoad(oid, tt.at, tt.before, tt.w)
			}
		})
	}
	e.t = t
	e.wantLoadErr(99, none, none, backend.ErrOidDoesNotExist)
	e.wantLoadErr(99, 0x10, none, backend.ErrOidDoesNotExist)
	e.wantLoadErr(99, none, 0x50, backend.ErrOidDoesNotExist)
	if s, err := e.b.LastObjectTid(e.ctx, oid); err != nil || s != 0x30 {
		t.Errorf("last object tid = %s, %v", s, err)
	}
	if s, err := e.b.LastObjectTid(e.ctx, 99); err != nil || s != none {
		t.Errorf("last object tid of unknown = %s, %v", s, err)
	}
}

func undoRec(oid proto.Oid, to proto.Tid) backend.Record {
	r := rec(oid, nil)
	r.DataSerial = to
	return r
}

func testUndo(t *testing.T, open Opener) {
	e := newEnv(t, open, backend.Options{})
	const oid = 5
	e.commit(0x10, rec(oid, []byte("A")))
	e.commit(0x20, rec(oid, []byte("B")))
	e.commit(0x30, undoRec(oid, 0x10)) // undo of 0x20
	e.wantLoad(oid, none, none, want{serial: 0x30, next: none, dataSerial: 0x10, data: []byte("A")})
	e.wantLoad(oid, none, 0x30, want{serial: 0x20, next: 0x30, dataSerial: none, data: []byte("B")})
	if h, err := e.b.History(e.ctx, oid, 0, 10); err != nil || len(h) != 3 || h[0] != (backend.HistoryEntry{Serial: 0x30, Size: 1}) {
		t.Errorf("history = %v, %v", h, err)
	}

	// Undo history as findUndoTID needs it.
	h, ok, err := e.b.UndoHistory(e.ctx, oid, 0x20)
	e.must(err)
	if !ok || h.Before != 0x10 || !slices.Equal(h.After, []backend.UndoRecord{{Tid: 0x30, ValueTid: 0x10}}) {
		t.Errorf("undo history at 0x20 = %+v %v", h, ok)
	}
	if _, ok, err := e.b.UndoHistory(e.ctx, oid, 0x15); err != nil || ok {
		t.Errorf("undo history at 0x15: ok=%v %v, want no record", ok, err)
	}
	h, ok, err = e.b.UndoHistory(e.ctx, oid, 0x10)
	e.must(err)
	if !ok || h.Before != none || len(h.After) != 2 {
		t.Errorf("undo history at creation = %+v %v", h, ok)
	}
	// Undoing 0x20 again: 0x30 is undo-identical to 0x10, so 0x20 is not
	// current any more and the data to restore resolves to 0x30.
	r, ok := backend.FindUndoTid(mustUndoHistory(e, oid, 0x20), 0x40, 0x20, none)
	if !ok || r != (backend.UndoResult{Current: 0x30, UndoTo: 0x30, IsCurrent: false}) {
		t.Errorf("findUndoTid(0x20) = %+v %v", r, ok)
	}
	// Undoing 0x30 (the undo) restores 0x20's data.
	r, ok = backend.FindUndoTid(mustUndoHistory(e, oid, 0x30), 0x40, 0x30, none)
	if !ok || r != (backend.UndoResult{Current: 0x30, UndoTo: 0x20, IsCurrent: true}) {
		t.Errorf("findUndoTid(0x30) = %+v %v", r, ok)
	}

	// Undo of the creation: a deletion record.
	e.commit(0x40, rec(oid, nil))
	e.wantLoad(oid, none, none, want{serial: 0x40, next: none, dataSerial: none})
	// Undo pointing at a deletion: no data either.
	e.commit(0x50, undoRec(oid, 0x40))
	e.wantLoad(oid, none, none, want{serial: 0x50, next: none, dataSerial: 0x40})
	// Undo of an undo: the pointer goes to the revision holding data.
	e.commit(0x60, undoRec(oid, 0x30))
	e.wantLoad(oid, none, none, want{serial: 0x60, next: none, dataSerial: 0x30, data: []byte("A")})
}

func mustUndoHistory(e *env, oid proto.Oid, tid proto.Tid) backend.UndoHistory {
	e.t.Helper()
	h, ok, err := e.b.UndoHistory(e.ctx, oid, tid)
	e.must(err)
	if !ok {
		e.t.Fatalf("no record of %s at %s", oid, tid)
	}
	return h
}

func testUndoPacked(t *testing.T, open Opener) {
	e := newEnv(t, open, backend.Options{})
	e.commit(0x10, rec(1, []byte("A")))
	err := e.b.StoreTransaction(e.ctx, 0x21, []backend.Record{undoRec(1, 0x05)}, nil)
	if !errors.Is(err, backend.ErrUndoPacked) {
		t.Fatalf("undo to a missing record without data: %v, want ErrUndoPacked", err)
	}
	if s := e.stats(); s.TempObjects != 0 {
		t.Errorf("failed vote left %d temporary records", s.TempObjects)
	}
	// With its own data (an outdated replica), the data is stored.
	r := rec(1, []byte("A0"))
	r.DataSerial = 0x05
	e.must(e.b.StoreTransaction(e.ctx, 0x21, []backend.Record{r}, nil))
	e.must(e.b.LockTransaction(e.ctx, 0x21, 0x21, false))
	e.must(e.b.UnlockTransaction(e.ctx, 0x21, 0x21))
	e.wantLoad(1, none, none, want{serial: 0x21, next: none, dataSerial: 0x05, data: []byte("A0")})
}

func testHistory(t *testing.T, open Opener) {
	e := newEnv(t, open, backend.Options{})
	e.commit(0x10, rec(2, []byte("12345")))
	e.commit(0x20, rec(2, []byte("123")))
	e.commit(0x30, rec(2, nil))
	for _, tt := range []struct {
		offset, length int
		want           []backend.HistoryEntry
	}{
		{0, 10, []backend.HistoryEntry{{Serial: 0x30, Size: 0}, {Serial: 0x20, Size: 3}, {Serial: 0x10, Size: 5}}},
		{0, 1, []backend.HistoryEntry{{Serial: 0x30, Size: 0}}},
		{1, 1, []backend.HistoryEntry{{Serial: 0x20, Size: 3}}},
		{2, 5, []backend.HistoryEntry{{Serial: 0x10, Size: 5}}},
	} {
		h, err := e.b.History(e.ctx, 2, tt.offset, tt.length)
		if err != nil || !slices.Equal(h, tt.want) {
			t.Errorf("history [%d:+%d] = %v, %v; want %v", tt.offset, tt.length, h, err, tt.want)
		}
	}
	if _, err := e.b.History(e.ctx, 2, 3, 5); !errors.Is(err, backend.ErrOidNotFound) {
		t.Errorf("history past the end: %v, want ErrOidNotFound", err)
	}
	if _, err := e.b.History(e.ctx, 9, 0, 5); !errors.Is(err, backend.ErrOidNotFound) {
		t.Errorf("history of unknown oid: %v, want ErrOidNotFound", err)
	}
}

// commitSeries commits transactions 0x100, 0x101, ... 0x100+n-1 (one per
// partition in turn), each storing oid i%8.
func (e *env) commitSeries(n int) []proto.Tid {
	var all []proto.Tid
	for i := 0; i < n; i++ {
		tid := proto.Tid(0x100 + i)
		e.commit(tid, rec(proto.Oid(i%8), []byte{byte(i)}))
		all = append(all, tid)
	}
	return all
}

func testIteration(t *testing.T, open Opener) {
	e := newEnv(t, open, backend.Options{})
	all := e.commitSeries(12)
	desc := slices.Clone(all)
	slices.Reverse(desc)
	if got, err := e.b.TIDs(e.ctx, 0, 100, allPartitions()); err != nil || !eqTids(got, desc) {
		t.Errorf("TIDs all = %v, %v", got, err)
	}
	if got, err := e.b.TIDs(e.ctx, 2, 3, allPartitions()); err != nil || !eqTids(got, desc[2:5]) {
		t.Errorf("TIDs [2:5] = %v, %v", got, err)
	}
	if got, err := e.b.TIDs(e.ctx, 0, 100, []uint32{1}); err != nil || !eqTids(got, tidList(0x109, 0x105, 0x101)) {
		t.Errorf("TIDs of partition 1 = %v, %v", got, err)
	}
	if got, err := e.b.TIDsFrom(e.ctx, 1, 0x101, 0x109, 100); err != nil || !eqTids(got, tidList(0x101, 0x105, 0x109)) {
		t.Errorf("TIDsFrom inclusive = %v, %v", got, err)
	}
	if got, err := e.b.TIDsFrom(e.ctx, 1, 0x102, 0x108, 100); err != nil || !eqTids(got, tidList(0x105)) {
		t.Errorf("TIDsFrom inner = %v, %v", got, err)
	}
	if got, err := e.b.TIDsFrom(e.ctx, 1, 0, proto.MaxTid, 2); err != nil || !eqTids(got, tidList(0x101, 0x105)) {
		t.Errorf("TIDsFrom limited = %v, %v", got, err)
	}
	// Records of partition 0 (oids 0 and 4) from (0x104, oid 4) on.
	keys, err := e.b.ObjectsFrom(e.ctx, 0, 0x104, proto.MaxTid, 4, 100)
	e.must(err)
	if want := []backend.ObjectKey{{Tid: 0x104, Oid: 4}, {Tid: 0x108, Oid: 0}}; !slices.Equal(keys, want) {
		t.Errorf("ObjectsFrom = %v, want %v", keys, want)
	}
	keys, err = e.b.ObjectsFrom(e.ctx, 0, 0x104, proto.MaxTid, 5, 100)
	e.must(err)
	if want := []backend.ObjectKey{{Tid: 0x108, Oid: 0}}; !slices.Equal(keys, want) {
		t.Errorf("ObjectsFrom after oid = %v, want %v", keys, want)
	}
	keys, err = e.b.ObjectsFrom(e.ctx, 0, 0, 0x107, 0, 1)
	e.must(err)
	if want := []backend.ObjectKey{{Tid: 0x100, Oid: 0}}; !slices.Equal(keys, want) {
		t.Errorf("ObjectsFrom limited = %v, want %v", keys, want)
	}
}

func testOIDsFrom(t *testing.T, open Opener) {
	e := newEnv(t, open, backend.Options{})
	// Partition 1 holds oids 1, 5, 9, 13.
	e.commit(0x10, rec(1, []byte("a")), rec(5, []byte("b")), rec(9, []byte("c")))
	e.commit(0x20, rec(5, nil), rec(13, []byte("d")))
	for _, tt := range []struct {
		minOid proto.Oid
		tid    proto.Tid
		length int
		next   proto.Oid
		oids   []proto.Oid
	}{
		{0, 0x10, 10, proto.InvalidOid, []proto.Oid{1, 5, 9}},
		{0, 0x20, 10, proto.InvalidOid, []proto.Oid{1, 9, 13}},
		{0, 0x20, 2, 5 + NP, []proto.Oid{1}},
		{9, 0x20, 2, 13 + NP, []proto.Oid{9, 13}},
		{0, 0x05, 10, proto.InvalidOid, nil},
	} {
		next, oids, err := e.b.OIDsFrom(e.ctx, 1, tt.minOid, tt.tid, tt.length)
		if err != nil || next != tt.next || !slices.Equal(oids, tt.oids) {
			t.Errorf("OIDsFrom(%s, %s, %d) = %s %v %v; want %s %v", tt.minOid, tt.tid, tt.length, next, oids, err, tt.next, tt.oids)
		}
	}
}

func testLastIDs(t *testing.T, open Opener) {
	e := newEnv(t, open, backend.Options{})
	e.commit(0x10, rec(1, []byte("a")))  // trans p0, obj p1
	e.commit(0x23, rec(6, []byte("b")))  // trans p3, obj p2
	e.commit(0x31, rec(11, []byte("c"))) // trans p1, obj p3
	for _, tt := range []struct {
		parts []uint32
		want  backend.LastIDs
	}{
		{allPartitions(), backend.LastIDs{LastTid: 0x31, LastOid: 11, FirstTid: 0x10}},
		{[]uint32{0}, backend.LastIDs{LastTid: 0x10, LastOid: proto.InvalidOid, FirstTid: 0x10}},
		{[]uint32{1}, backend.LastIDs{LastTid: 0x31, LastOid: 1, FirstTid: 0x31}},
		{[]uint32{2}, backend.LastIDs{LastTid: 0x23, LastOid: 6, FirstTid: proto.MaxTid}},
		{nil, backend.LastIDs{LastTid: none, LastOid: proto.InvalidOid, FirstTid: proto.MaxTid}},
	} {
		got, err := e.b.LastIDs(e.ctx, tt.parts)
		if err != nil || got != tt.want {
			t.Errorf("LastIDs(%v) = %+v, %v; want %+v", tt.parts, got, err, tt.want)
		}
	}
}

func testVerification(t *testing.T, open Opener) {
	e := newEnv(t, open, backend.Options{})
	e.commit(0x10, rec(1, []byte("base")))
	// Voted only, voted with metadata and locked, objects only.
	e.must(e.b.StoreTransaction(e.ctx, 0x21, []backend.Record{rec(2, []byte("voted"))}, &backend.TxnMeta{TTid: 0x21, Oids: []proto.Oid{2}}))
	e.must(e.b.StoreTransaction(e.ctx, 0x31, []backend.Record{rec(1, []byte("locked"))}, &backend.TxnMeta{TTid: 0x31, Oids: []proto.Oid{1}}))
	e.must(e.b.LockTransaction(e.ctx, 0x31, 0x35, false))
	e.must(e.b.StoreTransaction(e.ctx, 0x41, []backend.Record{rec(3, []byte("objects only"))}, nil))
	e.reopen()
	wantLocked := map[proto.Tid]proto.Tid{0x21: none, 0x31: 0x35, 0x41: none}
	if m := e.locked(); !maps.Equal(m, wantLocked) {
		t.Errorf("locked after reopen = %v, want %v", m, wantLocked)
	}
	if ft, err := e.b.FinalTid(e.ctx, 0x31); err != nil || ft != 0x35 {
		t.Errorf("final tid of locked = %s, %v", ft, err)
	}
	e.must(e.b.ValidateTransaction(e.ctx, 0x31, 0x35))
	e.must(e.b.ValidateTransaction(e.ctx, 0x41, 0x45))
	e.must(e.b.DropUnfinishedData(e.ctx))
	if m := e.locked(); len(m) != 0 {
		t.Errorf("locked after validation = %v", m)
	}
	e.wantLoad(1, none, none, want{serial: 0x35, next: none, dataSerial: none, data: []byte("locked")})
	e.wantLoad(3, none, none, want{serial: 0x45, next: none, dataSerial: none, data: []byte("objects only")})
	e.wantLoadErr(2, none, none, backend.ErrOidDoesNotExist)
	if _, err := e.b.Transaction(e.ctx, 0x35); err != nil {
		t.Errorf("validated transaction: %v", err)
	}
	if s := e.stats(); s.Data != 3 || s.TempObjects != 0 || s.TempTransactions != 0 {
		t.Errorf("stats after dropping unfinished data = %+v", s)
	}
}

func testTruncate(t *testing.T, open Opener) {
	e := newEnv(t, open, backend.Options{})
	all := e.commitSeries(8)
	e.must(e.b.StoreTransaction(e.ctx, 0x105, nil, &backend.TxnMeta{TTid: 0x105})) // keep tid in sync
	e.must(e.b.AbortTransaction(e.ctx, 0x105))
	e.must(e.b.ChangePartitionTable(e.ctx, 2, 0, []backend.CellChange{{Partition: 2, NID: Me, State: proto.OUT_OF_DATE}}, false))
	m, err := e.b.Meta(e.ctx)
	e.must(err)
	m.TruncateTid = 0x103
	e.must(e.b.SetMeta(e.ctx, m))
	e.must(e.b.Truncate(e.ctx, 0x103, allPartitions()))
	e.reopen()
	if got, err := e.b.TIDs(e.ctx, 0, 100, allPartitions()); err != nil || !eqTids(got, tidList(0x103, 0x102, 0x101, 0x100)) {
		t.Errorf("tids after truncate = %v, %v (had %v)", got, err, all)
	}
	e.wantLoad(3, none, none, want{serial: 0x103, next: none, dataSerial: none, data: []byte{3}})
	e.wantLoadErr(4, none, none, backend.ErrOidDoesNotExist)
	if m, err := e.b.Meta(e.ctx); err != nil || m.TruncateTid != none {
		t.Errorf("truncate tid after truncate = %s, %v", m.TruncateTid, err)
	}
	_, _, cells, err := e.b.PartitionTable(e.ctx)
	e.must(err)
	if c := cells[2]; c.State != proto.OUT_OF_DATE || c.Tid != 0x103 {
		t.Errorf("outdated cell after truncate = %+v, want resume point lowered to 0x103", c)
	}
	if s := e.stats(); s.Objects != 4 || s.Data != 4 {
		t.Errorf("stats after truncate = %+v", s)
	}
}

func testDropPartition(t *testing.T, open Opener) {
	e := newEnv(t, open, backend.Options{})
	e.commitSeries(16)
	e.must(e.b.StoreTransaction(e.ctx, 0x201, []backend.Record{rec(1, []byte("tmp")), rec(2, []byte("tmp2"))}, &backend.TxnMeta{TTid: 0x201}))
	steps := 0
	for {
		done, err := e.b.DropPartition(e.ctx, 1, 1)
		e.must(err)
		steps++
		if done {
			break
		}
		if steps > 100 {
			t.Fatal("drop never done")
		}
	}
	if steps < 4 {
		t.Errorf("dropped 4 records in %d steps of 1", steps)
	}
	if got, err := e.b.TIDsFrom(e.ctx, 1, 0, proto.MaxTid, 100); err != nil || len(got) != 0 {
		t.Errorf("tids of dropped partition = %v, %v", got, err)
	}
	keys, err := e.b.ObjectsFrom(e.ctx, 1, 0, proto.MaxTid, 0, 100)
	if err != nil || len(keys) != 0 {
		t.Errorf("records of dropped partition = %v, %v", keys, err)
	}
	if m := e.locked(); !maps.Equal(m, map[proto.Tid]proto.Tid{0x201: none}) {
		t.Errorf("temporary rows of other partitions must stay: %v", m)
	}
	if s := e.stats(); s.Objects != 12 || s.Transactions != 12 || s.Data != 13 || s.TempObjects != 1 || s.TempTransactions != 0 {
		t.Errorf("stats after drop = %+v", s)
	}
	e.wantLoad(2, none, none, want{serial: 0x10a, next: none, dataSerial: none, data: []byte{10}})
}

func testPack(t *testing.T, open Opener) {
	e := newEnv(t, open, backend.Options{})
	// oid 1 (p1): 0x10 a, 0x20 b, 0x30 c.  oid 5 (p1): 0x10 x, 0x20 deleted.
	// oid 9 (p1): 0x10 only.  oid 13 (p1): 0x10 y, 0x20 z.
	e.commit(0x10, rec(1, []byte("a")), rec(5, []byte("x")), rec(9, []byte("only")), rec(13, []byte("y")))
	e.commit(0x20, rec(1, []byte("b")), rec(5, nil), rec(13, []byte("z")))
	e.commit(0x30, rec(1, []byte("c")))
	before := e.stats()
	// Partial pack of oid 13 only.
	next, err := e.b.Pack(e.ctx, 1, 0x25, []proto.Oid{13, 2}, 0, 100)
	e.must(err)
	if next != proto.InvalidOid {
		t.Errorf("partial pack next = %s", next)
	}
	e.wantLoadErr(13, 0x10, none, backend.ErrOidNotFound)
	e.wantLoad(1, 0x10, none, want{serial: 0x10, next: 0x20, dataSerial: none, data: []byte("a")})
	// Full pack at 0x25, two oids per step.
	var steps int
	for min := proto.Oid(0); min != proto.InvalidOid; steps++ {
		min, err = e.b.Pack(e.ctx, 1, 0x25, nil, min, 2)
		e.must(err)
	}
	if steps < 2 {
		t.Errorf("pack in %d steps", steps)
	}
	e.wantLoadErr(1, 0x10, none, backend.ErrOidNotFound)
	e.wantLoad(1, 0x20, none, want{serial: 0x20, next: 0x30, dataSerial: none, data: []byte("b")})
	e.wantLoadErr(1, none, 0x20, backend.ErrOidNotFound) // history below the pack horizon is gone
	e.wantLoadErr(5, none, none, backend.ErrOidDoesNotExist)
	e.wantLoad(9, none, none, want{serial: 0x10, next: none, dataSerial: none, data: []byte("only")})
	e.wantLoad(13, none, none, want{serial: 0x20, next: none, dataSerial: none, data: []byte("z")})
	if s := e.stats(); s.Objects != before.Objects-4 || s.Data != before.Data-3 || s.Transactions != before.Transactions {
		t.Errorf("after pack %+v, before %+v: want 4 records, 3 data rows less, all transactions", s, before)
	}
}

func testPackOrders(t *testing.T, open Opener) {
	e := newEnv(t, open, backend.Options{})
	e.commit(0x10, rec(1, []byte("a")))
	e.must(e.b.StoreTransaction(e.ctx, 0x21, nil, &backend.TxnMeta{TTid: 0x21, Description: []byte("IStorage.pack"),
		Pack: &backend.PackOrder{PackTid: 0x10}}))
	e.must(e.b.LockTransaction(e.ctx, 0x21, 0x25, true))
	e.must(e.b.UnlockTransaction(e.ctx, 0x21, 0x25))
	e.must(e.b.StoreTransaction(e.ctx, 0x31, nil, &backend.TxnMeta{TTid: 0x31,
		Pack: &backend.PackOrder{Partial: true, Oids: []proto.Oid{1, 2}, PackTid: 0x25}}))
	e.must(e.b.LockTransaction(e.ctx, 0x31, 0x31, false))
	e.must(e.b.UnlockTransaction(e.ctx, 0x31, 0x31))
	e.reopen()
	orders, err := e.b.PackOrders(e.ctx, 0, allPartitions())
	e.must(err)
	want := []backend.PackOrder{
		{ID: 0x25, State: backend.PackApproved, PackTid: 0x10},
		{ID: 0x31, State: backend.PackUnsigned, Partial: true, Oids: []proto.Oid{1, 2}, PackTid: 0x25},
	}
	if !packOrdersEqual(orders, want) {
		t.Errorf("pack orders = %+v, want %+v", orders, want)
	}
	e.must(e.b.SignPackOrders(e.ctx, nil, []proto.Tid{0x31}))
	orders, err = e.b.PackOrders(e.ctx, 0x26, []uint32{1})
	e.must(err)
	want[1].State = backend.PackRejected
	if !packOrdersEqual(orders, want[1:]) {
		t.Errorf("pack orders from 0x26 = %+v, want %+v", orders, want[1:])
	}
	if orders, err := e.b.PackOrders(e.ctx, 0, []uint32{0}); err != nil || len(orders) != 0 {
		t.Errorf("pack orders of partition 0 = %+v, %v", orders, err)
	}
	txn, err := e.b.Transaction(e.ctx, 0x25)
	e.must(err)
	if txn.Pack == nil || !packOrdersEqual([]backend.PackOrder{*txn.Pack}, want[:1]) {
		t.Errorf("transaction's pack order = %+v", txn.Pack)
	}
	// A new outdated own cell starts with the highest approved pack id.
	e.must(e.b.ChangePartitionTable(e.ctx, 2, 0, []backend.CellChange{{Partition: 4, NID: Me, State: proto.OUT_OF_DATE}}, false))
	_, _, cells, err := e.b.PartitionTable(e.ctx)
	e.must(err)
	if c := cells[len(cells)-1]; c.Partition != 4 || c.Pack != 0x25 {
		t.Errorf("new outdated cell = %+v, want pack 0x25", c)
	}
}

func packOrdersEqual(a, b []backend.PackOrder) bool {
	return slices.EqualFunc(a, b, func(x, y backend.PackOrder) bool {
		return x.ID == y.ID && x.State == y.State && x.Partial == y.Partial && x.PackTid == y.PackTid && slices.Equal(x.Oids, y.Oids)
	})
}

func testCheckDigests(t *testing.T, open Opener) {
	e := newEnv(t, open, backend.Options{})
	e.commit(0x101, rec(1, []byte("a")), rec(5, []byte("b")))
	e.commit(0x105, rec(1, []byte("c")))
	e.commit(0x109, rec(9, []byte("d")))
	sum := func(s string) [20]byte { return sha1.Sum([]byte(s)) }
	got, err := backend.CheckTIDRange(e.ctx, e.b, 1, 10, 0, proto.MaxTid)
	e.must(err)
	if want := (backend.TIDRangeCheck{Count: 3, Digest: sum("257,261,265"), LastTid: 0x109}); got != want {
		t.Errorf("CheckTIDRange = %+v, want %+v", got, want)
	}
	got, err = backend.CheckTIDRange(e.ctx, e.b, 1, 2, 0x102, proto.MaxTid)
	e.must(err)
	if want := (backend.TIDRangeCheck{Count: 2, Digest: sum("261,265"), LastTid: 0x109}); got != want {
		t.Errorf("CheckTIDRange from 0x102 = %+v, want %+v", got, want)
	}
	got, err = backend.CheckTIDRange(e.ctx, e.b, 2, 10, 0, proto.MaxTid)
	e.must(err)
	if got != (backend.TIDRangeCheck{}) {
		t.Errorf("CheckTIDRange of empty partition = %+v, want zero", got)
	}
	sr, err := backend.CheckSerialRange(e.ctx, e.b, 1, 10, 0x101, proto.MaxTid, 2)
	e.must(err)
	if want := (backend.SerialRangeCheck{Count: 3, TidDigest: sum("257,261,265"), LastTid: 0x109,
		OidDigest: sum("5,1,9"), LastOid: 9}); sr != want {
		t.Errorf("CheckSerialRange = %+v, want %+v", sr, want)
	}
	sr, err = backend.CheckSerialRange(e.ctx, e.b, 1, 10, 0, 0x101, 0)
	e.must(err)
	if want := (backend.SerialRangeCheck{Count: 2, TidDigest: sum("257,257"), LastTid: 0x101,
		OidDigest: sum("1,5"), LastOid: 5}); sr != want {
		t.Errorf("CheckSerialRange to 0x101 = %+v, want %+v", sr, want)
	}
	sr, err = backend.CheckSerialRange(e.ctx, e.b, 3, 10, 0, proto.MaxTid, 0)
	e.must(err)
	if sr != (backend.SerialRangeCheck{}) {
		t.Errorf("CheckSerialRange of empty partition = %+v", sr)
	}
}

// replicate copies partition p from src to dst as the replicator does,
// in chunks of n, and returns the number of chunks.
func replicate(e *env, src, dst backend.Backend, p uint32, n int) int {
	e.t.Helper()
	chunks := 0
	ctx := e.ctx
	for min := proto.Tid(0); ; chunks++ {
		theirs, err := src.TIDsFrom(ctx, p, min, proto.MaxTid, n+1)
		e.must(err)
		mine, err := dst.TIDsFrom(ctx, p, min, proto.MaxTid, n)
		e.must(err)
		var add []backend.TxnMeta
		have := map[proto.Tid]bool{}
		for _, t := range theirs[:min2(n, len(theirs))] {
			have[t] = true
			if !slices.Contains(mine, t) {
				m, err := src.Transaction(ctx, t)
				e.must(err)
				add = append(add, *m)
			}
		}
		var del []proto.Tid
		for _, t := range mine {
			if !have[t] && (len(theirs) <= n || t < theirs[n]) {
				del = append(del, t)
			}
		}
		e.must(dst.ReplicateTransactions(ctx, p, add, del))
		if len(theirs) <= n {
			break
		}
		min = theirs[n]
	}
	minTid, minOid := proto.Tid(0), proto.Oid(0)
	for ; ; chunks++ {
		theirs, err := src.ObjectsFrom(ctx, p, minTid, proto.MaxTid, minOid, n+1)
		e.must(err)
		mine, err := dst.ObjectsFrom(ctx, p, minTid, proto.MaxTid, minOid, n)
		e.must(err)
		var add []backend.Record
		have := map[backend.ObjectKey]bool{}
		for _, k := range theirs[:min2(n, len(theirs))] {
			have[k] = true
			if !slices.Contains(mine, k) {
				o, err := src.Load(ctx, k.Oid, k.Tid, proto.InvalidTid)
				e.must(err)
				add = append(add, o.Record)
			}
		}
		var del []backend.ObjectKey
		for _, k := range mine {
			if !have[k] && (len(theirs) <= n || k.Tid < theirs[n].Tid || k.Tid == theirs[n].Tid && k.Oid < theirs[n].Oid) {
				del = append(del, k)
			}
		}
		cellTid := proto.MaxTid
		if len(theirs) > n {
			cellTid = theirs[n].Tid - 1
		}
		e.must(dst.ReplicateObjects(ctx, p, add, del, cellTid))
		if len(theirs) <= n {
			return chunks
		}
		minTid, minOid = theirs[n].Tid, theirs[n].Oid
	}
}

func min2(a, b int) int { return min(a, b) }

func testReplication(t *testing.T, open Opener) {
	src := newEnv(t, open, backend.Options{})
	dst := newEnv(t, open, backend.Options{})
	src.commitSeries(40)
	src.commit(0x201, undoRec(1, 0x101), rec(5, nil))
	// The replica has an extra transaction and record to delete, and one
	// in common.
	dst.commit(0x1f1, rec(9, []byte("extra")))
	dst.commit(0x101, rec(1, []byte{1}))
	dst.must(dst.b.ChangePartitionTable(dst.ctx, 2, 0, []backend.CellChange{{Partition: 1, NID: Me, State: proto.OUT_OF_DATE}}, false))
	chunks := replicate(src, src.b, dst.b, 1, 3)
	if chunks < 4 {
		t.Errorf("replicated in %d chunks of 3", chunks)
	}
	ctx := t.Context()
	a, err := backend.CheckTIDRange(ctx, src.b, 1, 1000, 0, proto.MaxTid)
	src.must(err)
	b, err := backend.CheckTIDRange(ctx, dst.b, 1, 1000, 0, proto.MaxTid)
	src.must(err)
	if a != b || a.Count != 11 {
		t.Errorf("transactions differ after replication: %+v vs %+v", a, b)
	}
	as, err := backend.CheckSerialRange(ctx, src.b, 1, 1000, 0, proto.MaxTid, 0)
	src.must(err)
	bs, err := backend.CheckSerialRange(ctx, dst.b, 1, 1000, 0, proto.MaxTid, 0)
	src.must(err)
	if as != bs || as.Count != 12 {
		t.Errorf("records differ after replication: %+v vs %+v", as, bs)
	}
	dst.wantLoad(1, none, none, want{serial: 0x201, next: none, dataSerial: 0x101, data: []byte{1}})
	dst.wantLoad(5, none, none, want{serial: 0x201, next: none, dataSerial: none})
	dst.wantLoad(5, 0x105, none, want{serial: 0x105, next: 0x10d, dataSerial: none, data: []byte{5}})
	dst.wantLoadErr(9, none, none, backend.ErrOidDoesNotExist)
	m, err := dst.b.Transaction(ctx, 0x201)
	dst.must(err)
	if !slices.Equal(m.Oids, []proto.Oid{1, 5}) || string(m.Description) != "txn 0000000000000201" {
		t.Errorf("replicated transaction = %+v", m)
	}
	_, _, cells, err := dst.b.PartitionTable(ctx)
	dst.must(err)
	if c := cells[1]; c.Tid != proto.MaxTid {
		t.Errorf("cell resume point = %s, want %s", c.Tid, proto.MaxTid)
	}
	// The replica's extra record of oid 9 was deleted, its data pruned.
	if s := dst.stats(); s.Data != 10 {
		t.Errorf("replica data rows = %d, want 10 (the undo shares its data)", s.Data)
	}
}

func testDedup(t *testing.T, open Opener) {
	for _, dedup := range []bool{false, true} {
		e := newEnv(t, open, backend.Options{Dedup: dedup})
		e.commit(0x10, rec(1, []byte("same")), rec(2, []byte("same")))
		e.commit(0x20, rec(3, []byte("same")), rec(1, []byte("other")))
		wantData := 4
		if dedup {
			wantData = 2
		}
		if s := e.stats(); s.Data != wantData {
			t.Errorf("dedup=%v: %d data rows, want %d", dedup, s.Data, wantData)
		}
		// Packing oid 1 away must keep the shared data of oids 2 and 3.
		_, err := e.b.Pack(e.ctx, 1, 0x20, nil, 0, 100)
		e.must(err)
		e.wantLoad(2, none, none, want{serial: 0x10, next: none, dataSerial: none, data: []byte("same")})
		e.wantLoad(3, none, none, want{serial: 0x20, next: none, dataSerial: none, data: []byte("same")})
		e.reopen() // dedup is a property of the database
		e.commit(0x30, rec(4, []byte("same")))
		if s := e.stats(); s.Data != wantData {
			t.Errorf("dedup=%v after reopen: %d data rows, want %d", dedup, s.Data, wantData)
		}
	}
}

func testCompression(t *testing.T, open Opener) {
	e := newEnv(t, open, backend.Options{Dedup: true})
	r := rec(1, []byte("x\x9c compressed bytes"))
	r.Compression = 1
	raw := rec(2, []byte("x\x9c compressed bytes")) // same bytes, raw
	e.commit(0x10, r, raw)
	o, err := e.load(1, none, none)
	e.must(err)
	if o.Compression != 1 || o.Checksum != r.Checksum {
		t.Errorf("compressed record loaded with compression %d checksum %x", o.Compression, o.Checksum)
	}
	o, err = e.load(2, none, none)
	e.must(err)
	if o.Compression != 0 {
		t.Errorf("raw record with the same bytes loaded with compression %d", o.Compression)
	}
	if s := e.stats(); s.Data != 2 {
		t.Errorf("dedup must key on (hash, compression): %d data rows", s.Data)
	}
}

func testReopenAll(t *testing.T, open Opener) {
	e := newEnv(t, open, backend.Options{})
	all := e.commitSeries(20)
	e.must(e.b.StoreTransaction(e.ctx, 0x301, []backend.Record{rec(1, []byte("pending"))}, &backend.TxnMeta{TTid: 0x301}))
	snapshot := func() (out []string) {
		for _, tid := range all {
			m, err := e.b.Transaction(e.ctx, tid)
			e.must(err)
			out = append(out, string(m.Description))
		}
		for oid := proto.Oid(0); oid < 8; oid++ {
			h, err := e.b.History(e.ctx, oid, 0, 100)
			e.must(err)
			for _, x := range h {
				o, err := e.b.Load(e.ctx, oid, x.Serial, none)
				e.must(err)
				out = append(out, string(o.Data)+o.Serial.String()+o.NextSerial.String())
			}
		}
		return out
	}
	before := snapshot()
	st := e.stats()
	e.reopen()
	if after := snapshot(); !slices.Equal(before, after) {
		t.Errorf("after reopen:\n%q\nbefore:\n%q", after, before)
	}
	if s := e.stats(); s != st {
		t.Errorf("stats after reopen = %+v, before %+v", s, st)
	}
	// Data ids continue after reopen without clashing.
	e.must(e.b.LockTransaction(e.ctx, 0x301, 0x301, false))
	e.must(e.b.UnlockTransaction(e.ctx, 0x301, 0x301))
	e.commit(0x305, rec(1, []byte("after")), rec(5, []byte("after5")))
	e.wantLoad(1, none, 0x305, want{serial: 0x301, next: 0x305, dataSerial: none, data: []byte("pending")})
	e.wantLoad(5, none, none, want{serial: 0x305, next: none, dataSerial: none, data: []byte("after5")})
}

func testLocked(t *testing.T, open Opener) {
	e := newEnv(t, open, backend.Options{})
	b, err := open(t, e.path, backend.Options{})
	if err == nil {
		b.Close()
		t.Fatal("second open of the same database succeeded")
	}
	if !errors.Is(err, backend.ErrLocked) {
		t.Errorf("second open: %v, want ErrLocked", err)
	}
	e.reopen() // closing releases the lock
}

// A store asks for the last serial of new oids, above every stored one;
// a backend may answer "none" from a bound of the stored oids, which
// every way of adding records must then raise first.
func testLastObjectTidNewOids(t *testing.T, open Opener) {
	e := newEnv(t, open, backend.Options{})
	last := func(oid proto.Oid) proto.Tid {
		t.Helper()
		tid, err := e.b.LastObjectTid(e.ctx, oid)
		e.must(err)
		return tid
	}
	record := func(oid proto.Oid, serial proto.Tid) backend.Record {
		r := rec(oid, []byte(fmt.Sprintf("oid %d at %d", oid, serial)))
		r.Serial = serial
		return r
	}
	e.commit(0x100, record(5, 0))
	if got := last(5); got != 0x100 {
		t.Fatalf("last serial of oid 5: %v", got)
	}
	if got := last(9); got != none {
		t.Fatalf("last serial of oid 9 before its commit: %v", got)
	}
	e.commit(0x200, record(9, 0))
	if got := last(9); got != 0x200 {
		t.Fatalf("last serial of oid 9 after its commit: %v", got)
	}
	e.must(e.b.ReplicateObjects(e.ctx, 14%NP, []backend.Record{record(14, 0x300)}, nil, none))
	if got := last(14); got != 0x300 {
		t.Fatalf("last serial of replicated oid 14: %v", got)
	}
	// Validation at verification moves a voted transaction like unlock.
	e.must(e.b.StoreTransaction(e.ctx, 0x400, []backend.Record{record(21, 0)}, &backend.TxnMeta{TTid: 0x400, Oids: []proto.Oid{21}}))
	e.must(e.b.ValidateTransaction(e.ctx, 0x400, 0x401))
	if got := last(21); got != 0x401 {
		t.Fatalf("last serial of validated oid 21: %v", got)
	}
	// A voted transaction of before a reopen, validated after it.
	e.must(e.b.StoreTransaction(e.ctx, 0x500, []backend.Record{record(30, 0)}, &backend.TxnMeta{TTid: 0x500, Oids: []proto.Oid{30}}))
	e.reopen()
	if got := last(30); got != none {
		t.Fatalf("last serial of voted oid 30: %v", got)
	}
	e.must(e.b.ValidateTransaction(e.ctx, 0x500, 0x501))
	for oid, want := range map[proto.Oid]proto.Tid{5: 0x100, 9: 0x200, 14: 0x300, 21: 0x401, 30: 0x501, 31: none} {
		if got := last(oid); got != want {
			t.Errorf("after reopening, last serial of oid %d: %v, want %v", oid, got, want)
		}
	}
}
