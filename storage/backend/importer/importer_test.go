package importer

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/neogo/neo/filestorage"
	"github.com/neogo/neo/importconf"
	"github.com/neogo/neo/pickleref"
	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
	"github.com/neogo/neo/storage/backend/backendtest"
	"github.com/neogo/neo/storage/backend/objcache"
	_ "github.com/neogo/neo/storage/backend/sqlite"
)

const np = 4

// rec is a ZODB record: a PersistentMapping holding a reference to ref
// (with a class hint) and payload.
func rec(ref proto.Oid, payload string) []byte {
	b := []byte("\x80\x03cpersistent.mapping\nPersistentMapping\nq\x00.\x80\x03}q\x01(")
	b = append(b, 'X', 3, 0, 0, 0)
	b = append(b, "ref"...)
	b = append(b, 'C', 8)
	b = binary.BigEndian.AppendUint64(b, uint64(ref))
	b = append(b, "q\x02h\x00\x86q\x03Q"...)
	b = append(b, 'X', 1, 0, 0, 0, 'v', 'X')
	b = binary.LittleEndian.AppendUint32(b, uint32(len(payload)))
	b = append(b, payload...)
	return append(b, "u."...)
}

// txn is a transaction to write: records by oid; a nil data with dataTid
// 0 is a deletion, dataTid an undo back-pointer.
type txn struct {
	tid  proto.Tid
	user string
	recs []filestorage.Record
}

func writeFS(t *testing.T, path string, txns []txn) {
	t.Helper()
	fs, err := filestorage.Open(path, filestorage.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range txns {
		tw, err := fs.Begin(filestorage.TxnMeta{Tid: x.tid, User: []byte(x.user), Description: []byte("d " + x.tid.String()), Extension: nil})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range x.recs {
			if err := tw.Store(r); err != nil {
				t.Fatalf("store %v in %v: %v", r.Oid, x.tid, err)
			}
		}
		if err := tw.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	if err := fs.Close(); err != nil {
		t.Fatal(err)
	}
}

func data(oid proto.Oid, ref proto.Oid, s string) filestorage.Record {
	return filestorage.Record{Oid: oid, Data: rec(ref, s)}
}

// history is a source with what the importer must get right: several
// revisions, undo back-pointers, a deletion, a creation undone, an undo of
// the deletion, and revisions whose successors come much later.
func history(base proto.Tid) []txn {
	tid := func(i int) proto.Tid { return base + proto.Tid(i)*0x1001 }
	h := []txn{
		{tid(1), "alice", []filestorage.Record{data(0, 1, "root"), data(1, 2, "one"), data(2, 3, "two"), data(3, 0, "three")}},
		{tid(2), "", []filestorage.Record{data(1, 4, "one'"), data(4, 0, "four")}},
		{tid(3), "bob", []filestorage.Record{data(2, 3, "two'"), data(0, 4, "root'")}},
		{tid(4), "", []filestorage.Record{{Oid: 2, DataTid: tid(1)}}}, // undo of oid 2 to its first revision
		{tid(5), "", []filestorage.Record{{Oid: 3}}},                  // deletion
		{tid(6), "", []filestorage.Record{data(5, 0, "five")}},
		{tid(7), "", []filestorage.Record{{Oid: 5}}}, // creation undone
		{tid(8), "carol", []filestorage.Record{data(4, 1, "four'"), data(1, 2, "one''")}},
		{tid(9), "", nil}, // no record at all
	}
	for i := 10; i < 40; i++ {
		var rs []filestorage.Record
		for o := proto.Oid(0); o < 8; o++ {
			if (i+int(o))%5 == 0 && o != 3 && o != 5 {
				rs = append(rs, data(o, (o+1)%8, fmt.Sprintf("%d@%d %s", o, i, bytes.Repeat([]byte("x"), i*int(o)*40))))
			}
		}
		if i == 20 {
			rs = append(rs, filestorage.Record{Oid: 3, DataTid: tid(1)}) // the deletion undone
		}
		if i == 30 {
			rs = append(rs, filestorage.Record{Oid: 2, DataTid: tid(3)})
		}
		h = append(h, txn{tid(i), "", rs})
	}
	return h
}

type env struct {
	t    *testing.T
	ctx  context.Context
	dir  string
	conf *importconf.Config
	fs   map[string]*filestorage.Storage // the oracle, read-only
}

func newEnv(t *testing.T, confText string, sources map[string][]txn) *env {
	e := &env{t: t, ctx: context.Background(), dir: t.TempDir(), fs: map[string]*filestorage.Storage{}}
	for name, h := range sources {
		p := filepath.Join(e.dir, name+".fs")
		writeFS(t, p, h)
		fs, err := filestorage.Open(p, filestorage.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { fs.Close() })
		e.fs[name] = fs
	}
	text := fmt.Sprintf(confText, e.dir, e.dir, e.dir)
	conf, err := importconf.Parse("importer.conf", []byte(text), nil)
	if err != nil {
		t.Fatal(err)
	}
	e.conf = conf
	return e
}

const singleConf = `[neo]
adapter=SQLite
database=%s/neo.sqlite
compress=zlib=6
[root]
storage=
  <filestorage>
    path %s/root.fs
    read-only true
  </filestorage>
#%s
`

func (e *env) open(stopBefore proto.Tid) *Importer {
	e.t.Helper()
	im, err := OpenConfig(e.ctx, e.conf, Options{CommitInterval: time.Millisecond, BatchBytes: 2000, stopBefore: stopBefore})
	if err != nil {
		e.t.Fatal(err)
	}
	if _, _, cells, _ := im.PartitionTable(e.ctx); len(cells) == 0 {
		if err := backendtest.Setup(e.ctx, im, "test", np); err != nil {
			e.t.Fatal(err)
		}
	}
	return im
}

// waitImported waits until the import reached tid.
func waitImported(t *testing.T, im *Importer, tid proto.Tid) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, done := im.Imported()
		if got >= tid || done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("import stuck at %v, waiting for %v", got, tid)
		}
		time.Sleep(time.Millisecond)
	}
}

// want is the oracle's answer: ZODB's loadBefore semantics read from the
// source with our FileStorage, data_txn from its iterator, and newer
// revisions committed to the node after the import began.
type want struct {
	err    error
	serial proto.Tid
	next   proto.Tid
	dataTx proto.Tid
	data   []byte // nil: no data
}

type oracle struct {
	fs      *filestorage.Storage
	shift   pickleref.Shift
	dataTxn map[[2]uint64]proto.Tid // (oid, tid) -> data_txn
	newRevs map[proto.Oid][]proto.Tid
}

func newOracle(t *testing.T, fs *filestorage.Storage, shift pickleref.Shift) *oracle {
	o := &oracle{fs: fs, shift: shift, dataTxn: map[[2]uint64]proto.Tid{}, newRevs: map[proto.Oid][]proto.Tid{}}
	it := fs.Iterate(0)
	for {
		tx, err := it.NextTxn()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for {
			d, err := it.NextData()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			o.dataTxn[[2]uint64{uint64(d.Oid), uint64(tx.Tid)}] = d.DataTid
		}
	}
	return o
}

func (o *oracle) load(t *testing.T, oid proto.Oid, before proto.Tid) want {
	local := oid - proto.Oid(o.shift.Offset)
	d, serial, next, err := o.fs.LoadBefore(local, before)
	var w want
	switch {
	case errors.Is(err, filestorage.ErrNoRevision):
		return want{err: backend.ErrOidNotFound}
	case errors.Is(err, filestorage.ErrDeleted):
	case errors.Is(err, filestorage.ErrNotFound):
		return want{err: backend.ErrOidDoesNotExist}
	case err != nil:
		t.Fatal(err)
	default:
		if w.data, err = pickleref.Rewrite(nil, d, o.shift.Map); err != nil {
			t.Fatal(err)
		}
	}
	w.serial, w.next, w.dataTx = serial, next, o.dataTxn[[2]uint64{uint64(local), uint64(serial)}]
	if w.next == 0 {
		w.next = inv
		for _, n := range o.newRevs[oid] {
			if n > serial {
				w.next = n
				break
			}
		}
	}
	if w.dataTx == 0 {
		w.dataTx = inv
	}
	return w
}

func check(t *testing.T, what string, o *backend.Object, err error, w want) {
	t.Helper()
	if w.err != nil || err != nil {
		if !errors.Is(err, w.err) || w.err == nil {
			t.Errorf("%s: err %v, want %v", what, err, w.err)
		}
		return
	}
	got := o.Data
	if o.Compression == 1 {
		zr, err := zlib.NewReader(bytes.NewReader(o.Data))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		got, _ = io.ReadAll(zr)
	}
	if o.HasData() && o.Checksum != sha1.Sum(o.Data) {
		t.Errorf("%s: bad checksum", what)
	}
	if o.Serial != w.serial || o.NextSerial != w.next || o.DataSerial != w.dataTx || o.HasData() != (w.data != nil) || !bytes.Equal(got, w.data) {
		t.Errorf("%s: got serial %v next %v data_serial %v data %v %q, want %v %v %v %v %q", what,
			o.Serial, o.NextSerial, o.DataSerial, o.HasData(), got, w.serial, w.next, w.dataTx, w.data != nil, w.data)
	}
}

// checkAll compares every read the node may make of the source's oids
// with the oracle.
func checkAll(t *testing.T, ctx context.Context, im *Importer, o *oracle, extraTids []proto.Tid) {
	t.Helper()
	var tids []proto.Tid
	it := o.fs.Iterate(0)
	for {
		tx, err := it.NextTxn()
		if err == io.EOF {
			break
		}
		tids = append(tids, tx.Tid)
	}
	tids = append(tids, extraTids...)
	maxOid := o.fs.MaxOid()
	for local := proto.Oid(0); local <= maxOid+1; local++ {
		oid := local + proto.Oid(o.shift.Offset)
		if local > maxOid && im.source(oid) != nil {
			continue // another source's
		}
		for _, tid := range tids {
			for _, before := range []proto.Tid{tid, tid + 1} {
				r, err := im.Load(ctx, oid, inv, before)
				check(t, fmt.Sprintf("load %v before %v", oid, before), r, err, o.load(t, oid, before))
			}
			w := o.load(t, oid, tid+1)
			if w.err == nil && w.serial != tid {
				w = want{err: backend.ErrOidNotFound}
			}
			if w.err == nil || tid <= im.ltid {
				r, err := im.Load(ctx, oid, tid, inv)
				check(t, fmt.Sprintf("load %v at %v", oid, tid), r, err, w)
			}
		}
		r, err := im.Load(ctx, oid, inv, inv)
		check(t, fmt.Sprintf("load %v latest", oid), r, err, o.load(t, oid, proto.MaxTid))
		lt, err := im.LastObjectTid(ctx, oid)
		w := o.load(t, oid, proto.MaxTid)
		if w.err != nil {
			w.serial = inv
		}
		if err != nil || lt != w.serial {
			t.Errorf("last serial of %v: %v %v, want %v", oid, lt, err, w.serial)
		}
	}
}

// Reads equal FileStorage's before, at several points during and after
// the import; each stop is a restart that resumes where the last one
// committed; at the end every transaction and record is there once.
func TestImportReads(t *testing.T) {
	h := history(0x03e0000000000000)
	e := newEnv(t, singleConf, map[string][]txn{"root": h})
	o := newOracle(t, e.fs["root"], pickleref.Shift{})
	ltid := h[len(h)-1].tid
	for _, stop := range []proto.Tid{h[0].tid, h[3].tid + 1, h[6].tid, h[20].tid} {
		im := e.open(stop)
		var before proto.Tid
		for _, x := range h {
			if x.tid < stop {
				before = x.tid
			}
		}
		waitImported(t, im, before)
		time.Sleep(5 * time.Millisecond)
		if got, done := im.Imported(); got >= stop || done {
			t.Fatalf("stop before %v: imported up to %v (done %v)", stop, got, done)
		}
		checkAll(t, e.ctx, im, o, nil)
		if r := backend.ImportProgress(im); !strings.HasPrefix(r, "importing ") || !strings.Contains(r, " left") {
			t.Errorf("progress while importing: %q", r)
		}
		if _, err := im.History(e.ctx, 1, 0, 10); !errors.Is(err, proto.ErrBackendNotImplemented) {
			t.Errorf("history while importing: %v, want BACKEND_NOT_IMPLEMENTED", err)
		}
		ids, err := im.LastIDs(e.ctx, []uint32{0, 1, 2, 3})
		if err != nil || ids.LastTid != ltid || ids.LastOid != 7 || ids.FirstTid != h[0].tid {
			t.Errorf("last ids %+v %v, want tid %v oid 7 first %v", ids, err, ltid, h[0].tid)
		}
		// The iterator's tids: imported, or not yet.
		for p := uint32(0); p < np; p++ {
			var want []proto.Tid
			for _, x := range h {
				if backend.Partition(x.tid, np) == p {
					want = append(want, x.tid)
				}
			}
			for _, length := range []int{1000, 3} {
				got, err := im.TIDsFrom(e.ctx, p, h[1].tid, proto.MaxTid, length)
				w := want
				if len(w) > 0 && w[0] < h[1].tid {
					w = w[1:]
				}
				w = w[:min(length, len(w))]
				if err != nil || !slices.Equal(got, w) {
					t.Errorf("tids of partition %d (at most %d): %v %v, want %v", p, length, got, err, w)
				}
			}
		}
		// AskTIDs, newest first: imported or not yet.
		all := []uint32{0, 1, 2, 3}
		var newest []proto.Tid
		for i := len(h) - 1; i >= 0; i-- {
			newest = append(newest, h[i].tid)
		}
		for _, q := range []struct{ offset, length int }{{0, 1000}, {0, 5}, {3, 4}, {len(h) - 2, 10}, {len(h), 3}} {
			got, err := im.TIDs(e.ctx, q.offset, q.length, all)
			w := newest[min(q.offset, len(newest)):min(q.offset+q.length, len(newest))]
			if err != nil || !slices.Equal(got, w) {
				t.Errorf("tids offset %d length %d: %v %v, want %v", q.offset, q.length, got, err, w)
			}
		}
		var p1 []proto.Tid
		for _, x := range newest {
			if backend.Partition(x, np) == 1 {
				p1 = append(p1, x)
			}
		}
		if got, err := im.TIDs(e.ctx, 0, 1000, []uint32{1}); err != nil || !slices.Equal(got, p1) {
			t.Errorf("tids of partition 1: %v %v, want %v", got, err, p1)
		}
		// A transaction not imported yet is read from the source.
		m, err := im.Transaction(e.ctx, h[21].tid)
		if err != nil || string(m.User) != h[21].user || len(m.Oids) != len(h[21].recs) {
			t.Errorf("transaction %v: %+v %v", h[21].tid, m, err)
		}
		im.Close()
	}
	im := e.open(0)
	if err := im.Wait(e.ctx); err != nil {
		t.Fatal(err)
	}
	checkAll(t, e.ctx, im, o, nil)
	if r := backend.ImportProgress(objcache.Wrap(im, 1<<20)); r != "" {
		t.Errorf("progress after the import, through a cache: %q, want none", r)
	}
	st, err := im.Stats(e.ctx)
	nrec := 0
	for _, x := range h {
		nrec += len(x.recs)
	}
	if err != nil || st.Transactions != len(h) || st.Objects != nrec {
		t.Errorf("stats %+v %v, want %d transactions %d objects", st, err, len(h), nrec)
	}
	for _, x := range h {
		m, err := im.Transaction(e.ctx, x.tid)
		if err != nil || string(m.User) != x.user || string(m.Description) != "d "+x.tid.String() || len(m.Oids) != len(x.recs) {
			t.Errorf("transaction %v: %+v %v", x.tid, m, err)
		}
	}
	im.Close()
	// Restarted, it knows it is done.
	im = e.open(0)
	defer im.Close()
	if _, done := im.Imported(); !done {
		t.Fatal("not done after a restart")
	}
	checkAll(t, e.ctx, im, o, nil)
}

// commit commits records at tid through the node's path.
func commit(t *testing.T, ctx context.Context, b backend.Backend, tid proto.Tid, recs ...backend.Record) {
	t.Helper()
	m := &backend.TxnMeta{TTid: tid, User: []byte("new")}
	for _, r := range recs {
		m.Oids = append(m.Oids, r.Oid)
	}
	if err := b.StoreTransaction(ctx, tid, recs, m); err != nil {
		t.Fatal(err)
	}
	if err := b.LockTransaction(ctx, tid, tid, false); err != nil {
		t.Fatal(err)
	}
	if err := b.UnlockTransaction(ctx, tid, tid); err != nil {
		t.Fatal(err)
	}
}

func newRec(oid proto.Oid, d []byte) backend.Record {
	return backend.Record{Oid: oid, Checksum: sha1.Sum(d), Data: d, DataSerial: inv}
}

// Commits made during the import follow the source's revisions: the
// latest source revision, imported or not, reports them as next.
func TestCommitDuringImport(t *testing.T) {
	h := history(0x03e0000000000000)
	e := newEnv(t, singleConf, map[string][]txn{"root": h})
	o := newOracle(t, e.fs["root"], pickleref.Shift{})
	ltid := h[len(h)-1].tid
	im := e.open(h[15].tid)
	waitImported(t, im, h[14].tid)
	n1, n2 := ltid+0x100, ltid+0x200
	commit(t, e.ctx, im, n1, newRec(1, rec(2, "new 1")), newRec(6, rec(2, "new 6")), newRec(8, rec(1, "new object")))
	commit(t, e.ctx, im, n2, newRec(1, rec(2, "new 1'")), newRec(3, rec(2, "3 again")))
	o.newRevs = map[proto.Oid][]proto.Tid{1: {n1, n2}, 6: {n1}, 3: {n2}}
	for _, oid := range []proto.Oid{1, 6, 3} {
		r, err := im.Load(e.ctx, oid, inv, inv)
		if err != nil || r.Serial != o.newRevs[oid][len(o.newRevs[oid])-1] || r.NextSerial != inv {
			t.Errorf("latest of %v: %+v %v", oid, r, err)
		}
		if lt, err := im.LastObjectTid(e.ctx, oid); err != nil || lt != r.Serial {
			t.Errorf("last serial of %v: %v %v", oid, lt, err)
		}
	}
	// AskTIDs: the new commits, then the source's not imported yet.
	if got, err := im.TIDs(e.ctx, 0, 3, []uint32{0, 1, 2, 3}); err != nil || !slices.Equal(got, []proto.Tid{n2, n1, ltid}) {
		t.Errorf("newest tids: %v %v, want %v", got, err, []proto.Tid{n2, n1, ltid})
	}
	check := func() {
		// Every read up to ltid equals the source's, next serials
		// included.
		var tids []proto.Tid
		for _, x := range h {
			tids = append(tids, x.tid)
		}
		for oid := proto.Oid(0); oid < 8; oid++ {
			for _, tid := range append(tids, ltid+1) {
				r, err := im.Load(e.ctx, oid, inv, tid)
				checkOne(t, fmt.Sprintf("load %v before %v", oid, tid), r, err, o.load(t, oid, tid))
			}
		}
		r, err := im.Load(e.ctx, 1, inv, n2)
		if err != nil || r.Serial != n1 || r.NextSerial != n2 {
			t.Errorf("oid 1 before %v: %+v %v", n2, r, err)
		}
	}
	check()
	im.Close()
	// Restarted while importing: it finds the new commits again.
	im = e.open(h[20].tid)
	waitImported(t, im, h[19].tid)
	check()
	im.Close()
	im = e.open(0)
	defer im.Close()
	if err := im.Wait(e.ctx); err != nil {
		t.Fatal(err)
	}
	check()
	if _, err := im.Load(e.ctx, 8, inv, inv); err != nil {
		t.Errorf("new object: %v", err)
	}
}

func checkOne(t *testing.T, what string, o *backend.Object, err error, w want) {
	t.Helper()
	check(t, what, o, err, w)
}

const mergeConf = `[neo]
adapter=SQLite
database=%s/neo.sqlite
compress=false
[root]
storage=
  <filestorage>
    path %s/root.fs
  </filestorage>
other=3
[other]
oid=1
storage=
  <filestorage>
    path %s/other.fs
  </filestorage>
`

// Two databases merged through a mount point: oids of the mounted one
// shift after the root's, references to the mount point go to its root,
// transactions merge by tid (the same tid is one transaction, with the
// metadata of the first section).
func TestMerge(t *testing.T) {
	root := history(0x03e0000000000000)
	other := []txn{
		{root[0].tid + 1, "o", []filestorage.Record{data(0, 1, "other root"), data(1, 0, "other one")}},
		{root[5].tid, "o-same", []filestorage.Record{data(1, 2, "other one'"), data(2, 3, "other two")}},
		{root[len(root)-1].tid + 5, "o-last", []filestorage.Record{data(0, 2, "other root'")}},
	}
	e := newEnv(t, mergeConf, map[string][]txn{"root": root, "other": other})
	im := e.open(0)
	defer im.Close()
	// Setup: root [0, 8), other [8, 11); root's refs to 3 go to 9 (other's 1).
	if im.loid != 10 || im.ltid != other[2].tid {
		t.Fatalf("loid %v ltid %v", im.loid, im.ltid)
	}
	ro := newOracle(t, e.fs["root"], pickleref.Shift{Offset: 0, Mount: map[proto.Oid]proto.Oid{3: 9}})
	oo := newOracle(t, e.fs["other"], pickleref.Shift{Offset: 8, Mount: map[proto.Oid]proto.Oid{}})
	for range 2 { // during, then after the import
		checkAll(t, e.ctx, im, ro, []proto.Tid{other[2].tid})
		checkAll(t, e.ctx, im, oo, nil)
		if err := im.Wait(e.ctx); err != nil {
			t.Fatal(err)
		}
	}
	r, err := im.Load(e.ctx, 0, inv, inv) // root's root: history's last ref of oid 0
	if err != nil {
		t.Fatal(err)
	}
	refs, _ := pickleref.Refs(r.Data)
	if len(refs) != 1 {
		t.Fatalf("refs %v", refs)
	}
	r, _ = im.Load(e.ctx, 2, root[0].tid, inv) // "two" refers to 3
	if refs, _ := pickleref.Refs(r.Data); len(refs) != 1 || refs[0].Oid != 9 || refs[0].Form != pickleref.FormOid {
		t.Errorf("mount point reference: %v, want oid 9 without class", refs)
	}
	r, _ = im.Load(e.ctx, 9, inv, inv)
	if refs, _ := pickleref.Refs(r.Data); len(refs) != 1 || refs[0].Oid != 10 {
		t.Errorf("shifted reference: %v, want oid 10", refs)
	}
	m, err := im.Transaction(e.ctx, root[5].tid)
	if err != nil || string(m.User) != root[5].user || len(m.Oids) != len(root[5].recs)+2 {
		t.Errorf("merged transaction: %+v %v", m, err)
	}
}

// Incremental mode (cluster.md §8.10): transactions the source got after
// the import are ignored on restart, until the setup is cleared; then a
// restart imports them.
func TestIncremental(t *testing.T) {
	h := history(0x03e0000000000000)
	e := newEnv(t, singleConf, map[string][]txn{"root": h[:30]})
	im := e.open(0)
	if err := im.Wait(e.ctx); err != nil {
		t.Fatal(err)
	}
	im.Close()
	// The source goes on without NEO.
	fs, err := filestorage.Open(filepath.Join(e.dir, "root.fs"), filestorage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range h[30:] {
		tw, err := fs.Begin(filestorage.TxnMeta{Tid: x.tid, Description: []byte("d " + x.tid.String())})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range x.recs {
			if err := tw.Store(r); err != nil {
				t.Fatal(err)
			}
		}
		if err := tw.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	fs.Close()

	im = e.open(0)
	if _, done := im.Imported(); !done || im.ltid != h[29].tid {
		t.Fatalf("restart without clearing the setup: ltid %v, want %v, done", im.ltid, h[29].tid)
	}
	if err := im.target.ImportTransactions(e.ctx, nil, nil, map[string]string{setupKey: ""}); err != nil {
		t.Fatal(err)
	}
	im.Close()

	im = e.open(0)
	defer im.Close()
	if im.ltid != h[len(h)-1].tid {
		t.Fatalf("after clearing the setup: ltid %v, want %v", im.ltid, h[len(h)-1].tid)
	}
	if err := im.Wait(e.ctx); err != nil {
		t.Fatal(err)
	}
	fs, err = filestorage.Open(filepath.Join(e.dir, "root.fs"), filestorage.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	checkAll(t, e.ctx, im, newOracle(t, fs, pickleref.Shift{}), nil)
	st, err := im.Stats(e.ctx)
	nrec := 0
	for _, x := range h {
		nrec += len(x.recs)
	}
	if err != nil || st.Transactions != len(h) || st.Objects != nrec {
		t.Errorf("stats %+v %v, want %d transactions %d objects", st, err, len(h), nrec)
	}
}

const writebackConf = `[neo]
adapter=SQLite
database=%s/neo.sqlite
writeback=true
[root]
storage=
  <filestorage>
    path %s/root.fs
  </filestorage>
#%s
`

// Writeback: transactions committed to the node, during the import and
// after it, end up in the source Data.fs as ZODB would have written them;
// an undo becomes a back-pointer, a deletion a deletion record.
func TestWriteback(t *testing.T) {
	h := history(0x03e0000000000000)
	e := newEnv(t, writebackConf, map[string][]txn{"root": h})
	for _, fs := range e.fs {
		fs.Close() // the importer writes it
	}
	im := e.open(h[10].tid)
	waitImported(t, im, h[9].tid)
	ltid := h[len(h)-1].tid
	n1, n2, n3 := ltid+0x100, ltid+0x200, ltid+0x300
	d1, d8 := rec(2, "new 1"), rec(1, "new object")
	commit(t, e.ctx, im, n1, newRec(1, d1), newRec(8, d8))
	commit(t, e.ctx, im, n2, backend.Record{Oid: 2, DataSerial: h[0].tid}, backend.Record{Oid: 8, DataSerial: inv})
	im.Close() // the last writeback pass
	im = e.open(0)
	if err := im.Wait(e.ctx); err != nil {
		t.Fatal(err)
	}
	commit(t, e.ctx, im, n3, newRec(1, rec(2, "after the import")))
	deadline := time.Now().Add(10 * time.Second)
	for im.sources[0].fs.LastTid() != n3 {
		if time.Now().After(deadline) {
			t.Fatalf("writeback: source at %v, want %v", im.sources[0].fs.LastTid(), n3)
		}
		time.Sleep(time.Millisecond)
	}
	im.Close()

	path := filepath.Join(e.dir, "root.fs")
	if _, err := filestorage.VerifyFile(path, true); err != nil {
		t.Fatal(err)
	}
	fs, err := filestorage.Open(path, filestorage.Options{ReadOnly: true, NoIndexFile: true})
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	if got, err := fs.LoadSerial(1, n1); err != nil || !bytes.Equal(got, d1) {
		t.Errorf("oid 1 at %v: %q %v", n1, got, err)
	}
	if got, err := fs.LoadSerial(8, n1); err != nil || !bytes.Equal(got, d8) {
		t.Errorf("oid 8 at %v: %q %v", n1, got, err)
	}
	if _, err := fs.LoadSerial(8, n2); !errors.Is(err, filestorage.ErrDeleted) {
		t.Errorf("oid 8 at %v: %v, want deleted", n2, err)
	}
	rev, err := fs.LoadRevision(2, n2+1)
	want, _ := fs.LoadSerial(2, h[0].tid)
	if err != nil || rev.Serial != n2 || rev.DataTid != h[0].tid || !bytes.Equal(rev.Data, want) {
		t.Errorf("undo of oid 2 at %v: %+v %v, want a back-pointer to %v", n2, rev, err, h[0].tid)
	}
	if got, serial, err := fs.Load(1); err != nil || serial != n3 || !bytes.Equal(got, rec(2, "after the import")) {
		t.Errorf("oid 1: %q %v %v", got, serial, err)
	}
	it := fs.Iterate(n1)
	for _, tid := range []proto.Tid{n1, n2, n3} {
		tx, err := it.NextTxn()
		if err != nil || tx.Tid != tid || string(tx.User) != "new" {
			t.Fatalf("written back transaction %v: %+v %v", tid, tx, err)
		}
	}
	if _, err := it.NextTxn(); err != io.EOF {
		t.Errorf("more transactions written back: %v", err)
	}
}

// neoppod's first fault (its storage dies in getObject): reading an
// object whose older revision is imported but whose deletion, or
// "creation undone", is not imported yet.
func TestDeletionNotImportedYet(t *testing.T) {
	base := proto.Tid(0x03e0000000000000)
	h := []txn{
		{base + 1, "", []filestorage.Record{data(0, 1, "root"), data(1, 0, "doomed")}},
		{base + 2, "", []filestorage.Record{data(2, 0, "undone")}},
		{base + 3, "", []filestorage.Record{{Oid: 1}}},                    // deletion
		{base + 4, "", []filestorage.Record{{Oid: 2}}},                    // creation undone
		{base + 5, "", []filestorage.Record{{Oid: 1, DataTid: base + 1}}}, // deletion undone
	}
	e := newEnv(t, singleConf, map[string][]txn{"root": h})
	im := e.open(base + 3) // transactions 1 and 2 imported, not the deletions
	defer im.Close()
	waitImported(t, im, base+2)
	for _, tc := range []struct {
		oid          proto.Oid
		before       proto.Tid
		serial, next proto.Tid
		data         bool
	}{
		{1, base + 2, base + 1, base + 3, true},
		{1, base + 4, base + 3, base + 5, false}, // the deletion, not imported
		{1, inv, base + 5, inv, true},
		{2, base + 3, base + 2, base + 4, true},
		{2, inv, base + 4, inv, false}, // creation undone, not imported
	} {
		o, err := im.Load(e.ctx, tc.oid, inv, tc.before)
		if err != nil || o.Serial != tc.serial || o.NextSerial != tc.next || o.HasData() != tc.data {
			t.Errorf("load %v before %v: %+v %v, want serial %v next %v data %v", tc.oid, tc.before, o, err, tc.serial, tc.next, tc.data)
		}
	}
	if lt, err := im.LastObjectTid(e.ctx, 2); err != nil || lt != base+4 {
		t.Errorf("last serial of 2: %v %v, want %v", lt, err, base+4)
	}
}

// neoppod's second fault (stale reads): a historical read of an imported
// revision whose next revision is not imported yet must give that next
// serial, not "none" (a client would cache the old revision as current).
func TestNextSerialNotImportedYet(t *testing.T) {
	base := proto.Tid(0x03e0000000000000)
	h := []txn{
		{base + 1, "", []filestorage.Record{data(0, 1, "root v1")}},
		{base + 2, "", []filestorage.Record{data(0, 1, "root v2")}},
	}
	e := newEnv(t, singleConf, map[string][]txn{"root": h})
	im := e.open(base + 2)
	defer im.Close()
	waitImported(t, im, base+1)
	for _, at := range []proto.Tid{inv, base + 1} {
		before := inv
		if at == inv {
			before = base + 2
		}
		o, err := im.Load(e.ctx, 0, at, before)
		if err != nil || o.Serial != base+1 || o.NextSerial != base+2 {
			t.Errorf("load 0 at %v before %v: %+v %v, want serial %v next %v", at, before, o, err, base+1, base+2)
		}
	}
	if o, err := im.Load(e.ctx, 0, inv, inv); err != nil || o.Serial != base+2 || o.NextSerial != inv {
		t.Errorf("latest: %+v %v", o, err)
	}
}

// A SQLite destination the Importer creates has pages of importPageSize
// (the other tests read and write such a database).
func TestDestinationPageSize(t *testing.T) {
	h := history(0x03e0000000000000)
	e := newEnv(t, singleConf, map[string][]txn{"root": h})
	im := e.open(0)
	if err := im.Wait(e.ctx); err != nil {
		t.Fatal(err)
	}
	im.Close()
	if got := backendtest.SQLitePageSize(t, filepath.Join(e.dir, "neo.sqlite")); got != importPageSize {
		t.Errorf("page size %d, want %d", got, importPageSize)
	}
}
