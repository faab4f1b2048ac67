package filestorage

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/neogo/neo/proto"
)

// rev is one revision of an object in a test model.
type rev struct {
	tid     proto.Tid
	data    []byte // nil: deletion
	dataTid proto.Tid
}

// model is what a history should read back as.
type model struct {
	txns []TxnMeta
	recs [][]Record
	revs map[proto.Oid][]rev
}

// pickleish returns n bytes shaped like a pickle (PROTO ... STOP).
func pickleish(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.IntN(256))
	}
	b[0], b[n-1] = opProto, opStop
	return b
}

// writeHistory appends ntxn random transactions to s: new objects,
// updates, back-pointers to older revisions (undo), deletions, metadata.
func writeHistory(t testing.TB, s *Storage, rng *rand.Rand, ntxn int, maxData int) *model {
	t.Helper()
	m := &model{revs: map[proto.Oid][]rev{}}
	tid := s.LastTid()
	var oids []proto.Oid
	nextOid := proto.Oid(0)
	for i := 0; i < ntxn; i++ {
		tid += proto.Tid(1 + rng.IntN(1000))
		meta := TxnMeta{Tid: tid}
		if rng.IntN(3) == 0 {
			meta.User = []byte(fmt.Sprintf("/ user%d", i))
			meta.Description = []byte(fmt.Sprintf("transaction %d", i))
		}
		if rng.IntN(4) == 0 {
			meta.Extension = []byte("\x80\x03}q\x00X\x01\x00\x00\x00kq\x01K\x01s.")
		}
		var recs []Record
		n := 1 + rng.IntN(6)
		for j := 0; j < n; j++ {
			var r Record
			switch k := rng.IntN(10); {
			case len(oids) == 0 || k < 3:
				r.Oid = nextOid
				nextOid++
				oids = append(oids, r.Oid)
				r.Data = pickleish(rng, 2+rng.IntN(maxData))
			case k < 7:
				r.Oid = oids[rng.IntN(len(oids))]
				r.Data = pickleish(rng, 2+rng.IntN(maxData))
			case k < 9:
				r.Oid = oids[rng.IntN(len(oids))]
				hist := m.revs[r.Oid]
				r.DataTid = hist[rng.IntN(len(hist))].tid
				if slices.ContainsFunc(recs, func(x Record) bool { return x.Oid == r.Oid }) && hist[len(hist)-1].tid == tid {
					// only committed revisions can be pointed to
					r.DataTid = 0
					r.Data = pickleish(rng, 3)
				}
			default:
				r.Oid = oids[rng.IntN(len(oids))]
			}
			if _, ok := m.revs[r.Oid]; !ok && r.Data == nil {
				r.Data = pickleish(rng, 5)
				r.DataTid = 0
			}
			recs = append(recs, r)
			// the model: data resolved now, a record in this txn replaces
			// an earlier one of the same oid in it
			rv := rev{tid: tid, data: r.Data}
			if r.DataTid != 0 {
				for _, h := range m.revs[r.Oid] {
					if h.tid == r.DataTid {
						rv.data = h.data
					}
				}
				rv.dataTid = r.DataTid
			}
			h := m.revs[r.Oid]
			if len(h) > 0 && h[len(h)-1].tid == tid {
				h = h[:len(h)-1]
			}
			m.revs[r.Oid] = append(h, rv)
		}
		tx, err := s.Begin(meta)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if err := tx.Store(r); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		m.txns = append(m.txns, meta)
		m.recs = append(m.recs, recs)
	}
	return m
}

// checkModel checks every load of every oid of m against s.
func checkModel(t *testing.T, s *Storage, m *model) {
	t.Helper()
	for oid, hist := range m.revs {
		cur := hist[len(hist)-1]
		data, serial, err := s.Load(oid)
		if cur.data == nil {
			if !errors.Is(err, ErrDeleted) || !errors.Is(err, ErrNotFound) || serial != cur.tid {
				t.Fatalf("Load %s: %s %v, want deleted at %s", oid, serial, err, cur.tid)
			}
		} else if err != nil || serial != cur.tid || !bytes.Equal(data, cur.data) {
			t.Fatalf("Load %s: %s %v, want %s", oid, serial, err, cur.tid)
		}
		for i, h := range hist {
			// LoadSerial
			data, err := s.LoadSerial(oid, h.tid)
			if h.data == nil {
				if !errors.Is(err, ErrDeleted) {
					t.Fatalf("LoadSerial %s %s: %v, want deleted", oid, h.tid, err)
				}
			} else if err != nil || !bytes.Equal(data, h.data) {
				t.Fatalf("LoadSerial %s %s: %v", oid, h.tid, err)
			}
			// LoadBefore just after this revision, and at it
			var next proto.Tid
			if i+1 < len(hist) {
				next = hist[i+1].tid
			}
			data, serial, gotNext, err := s.LoadBefore(oid, h.tid+1)
			if h.data == nil {
				if !errors.Is(err, ErrDeleted) || serial != h.tid || gotNext != next {
					t.Fatalf("LoadBefore %s %s: %s %s %v, want deleted at %s, next %s", oid, h.tid+1, serial, gotNext, err, h.tid, next)
				}
			} else if err != nil || serial != h.tid || gotNext != next || !bytes.Equal(data, h.data) {
				t.Fatalf("LoadBefore %s %s: %s %s %v, want %s %s", oid, h.tid+1, serial, gotNext, err, h.tid, next)
			}
			if i == 0 {
				if _, _, _, err := s.LoadBefore(oid, h.tid); !errors.Is(err, ErrNoRevision) {
					t.Fatalf("LoadBefore %s %s (first revision): %v, want ErrNoRevision", oid, h.tid, err)
				}
			}
		}
		if _, err := s.LoadSerial(oid, hist[0].tid-1); !errors.Is(err, ErrNotFound) {
			t.Fatalf("LoadSerial of a missing serial: %v", err)
		}
	}
	if _, _, err := s.Load(1 << 60); !errors.Is(err, ErrNotFound) || errors.Is(err, ErrDeleted) {
		t.Fatalf("Load of an unknown oid: %v", err)
	}
}

// checkIter checks that forward and backward iteration give m's
// transactions and records.
func checkIter(t *testing.T, s *Storage, m *model) {
	t.Helper()
	type got struct {
		meta TxnMeta
		recs []string
	}
	read := func(it *TxnIter) []got {
		var out []got
		for {
			txn, err := it.NextTxn()
			if err == io.EOF {
				return out
			}
			if err != nil {
				t.Fatal(err)
			}
			g := got{meta: TxnMeta{Tid: txn.Tid, Status: txn.Status, User: clone(txn.User), Description: clone(txn.Description), Extension: clone(txn.Extension)}}
			for {
				r, err := it.NextData()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				g.recs = append(g.recs, fmt.Sprintf("%s %s %x %s", r.Oid, r.Tid, r.Data, r.DataTid))
			}
			out = append(out, g)
		}
	}
	fwd := read(s.Iterate(0))
	bwd := read(s.IterateBackward())
	slices.Reverse(bwd)
	if len(fwd) != len(m.txns) || len(bwd) != len(m.txns) {
		t.Fatalf("iterated %d forward, %d backward, want %d", len(fwd), len(bwd), len(m.txns))
	}
	// the model's revisions, in order, per transaction
	revAt := map[string]rev{}
	for oid, hist := range m.revs {
		for _, h := range hist {
			revAt[fmt.Sprint(oid, h.tid)] = h
		}
	}
	for i, meta := range m.txns {
		for _, g := range []got{fwd[i], bwd[i]} {
			if g.meta.Tid != meta.Tid || g.meta.Status != StatusCommitted || !bytes.Equal(g.meta.User, meta.User) ||
				!bytes.Equal(g.meta.Description, meta.Description) || !bytes.Equal(g.meta.Extension, meta.Extension) {
				t.Fatalf("txn %d: %+v, want %+v", i, g.meta, meta)
			}
			if len(g.recs) != len(m.recs[i]) {
				t.Fatalf("txn %d: %d records, want %d", i, len(g.recs), len(m.recs[i]))
			}
		}
		// the last record of each oid is the model's revision
		last := map[proto.Oid]string{}
		for j, r := range m.recs[i] {
			last[r.Oid] = fwd[i].recs[j]
		}
		for oid, s := range last {
			h := revAt[fmt.Sprint(oid, meta.Tid)]
			if want := fmt.Sprintf("%s %s %x %s", oid, meta.Tid, h.data, h.dataTid); s != want {
				t.Fatalf("txn %d: record %q, want %q", i, s, want)
			}
		}
	}
}

func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return slices.Clone(b)
}

func create(t testing.TB) (*Storage, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "Data.fs")
	s, err := Open(path, Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	return s, path
}

func TestWriteReadBack(t *testing.T) {
	s, path := create(t)
	rng := rand.New(rand.NewPCG(1, 2))
	m := writeHistory(t, s, rng, 200, 300)
	t.Run("while open", func(t *testing.T) { checkModel(t, s, m); checkIter(t, s, m) })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for name, opts := range map[string]Options{
		"reopened read-only with the index file": {ReadOnly: true},
		"reopened read-only, scanned":            {ReadOnly: true, NoIndexFile: true},
		"reopened read-write":                    {},
	} {
		t.Run(name, func(t *testing.T) {
			s, err := Open(path, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			checkModel(t, s, m)
			checkIter(t, s, m)
			if s.Tail() != nil {
				t.Fatalf("tail %+v in a clean file", s.Tail())
			}
		})
	}
	if _, err := VerifyFile(path, true); err != nil {
		t.Fatal(err)
	}
}

// The worked example of the spec (§11), byte for byte.
func TestWorkedExample(t *testing.T) {
	s, path := create(t)
	data := bytes.Repeat([]byte{'x'}, 64)
	tx, err := s.Begin(TxnMeta{Tid: 0x03f5945817777777, Description: []byte("initial database creation")})
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Store(Record{Oid: 0, Data: data}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := hex.DecodeString("46533330" + "03f5945817777777" + "000000000000009a" + "20" + "000000190000")
	want = append(want, "initial database creation"...)
	rec, _ := hex.DecodeString("0000000000000000" + "03f5945817777777" + "0000000000000000" + "0000000000000004" + "0000" + "0000000000000040")
	want = append(want, rec...)
	want = append(want, data...)
	want = append(want, 0, 0, 0, 0, 0, 0, 0, 0x9a)
	if !bytes.Equal(b, want) {
		t.Fatalf("file:\n%x\nwant:\n%x", b, want)
	}
	if len(b) != 166 {
		t.Fatalf("size %d, want 166", len(b))
	}
}

// Rules of Begin and Store.
func TestWriteRules(t *testing.T) {
	s, _ := create(t)
	defer s.Close()
	commit := func(m TxnMeta, recs ...Record) error {
		tx, err := s.Begin(m)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if err := tx.Store(r); err != nil {
				tx.Abort()
				return err
			}
		}
		return tx.Commit()
	}
	if err := commit(TxnMeta{Tid: 10}, Record{Oid: 1, Data: []byte("a.")}); err != nil {
		t.Fatal(err)
	}
	end := s.End()
	cases := []struct {
		name string
		m    TxnMeta
		recs []Record
	}{
		{"tid not increasing", TxnMeta{Tid: 10}, nil},
		{"status c", TxnMeta{Tid: 11, Status: StatusCheckpoint}, nil},
		{"user too long", TxnMeta{Tid: 11, User: make([]byte, 65536)}, nil},
		{"empty data", TxnMeta{Tid: 11}, []Record{{Oid: 1, Data: []byte{}}}},
		{"back-pointer to a missing revision", TxnMeta{Tid: 11}, []Record{{Oid: 1, DataTid: 9}}},
		{"back-pointer of an unknown oid", TxnMeta{Tid: 11}, []Record{{Oid: 2, DataTid: 10}}},
	}
	for _, c := range cases {
		if err := commit(c.m, c.recs...); err == nil {
			t.Errorf("%s: no error", c.name)
		}
		if s.End() != end || s.LastTid() != 10 {
			t.Fatalf("%s: the failed transaction changed the storage", c.name)
		}
	}
	// restore-like: Data and DataTid, equal bytes -> back-pointer
	if err := commit(TxnMeta{Tid: 11}, Record{Oid: 1, Data: []byte("a."), DataTid: 10}, Record{Oid: 2, Data: []byte("b.")}); err != nil {
		t.Fatal(err)
	}
	if err := commit(TxnMeta{Tid: 12}, Record{Oid: 2, Data: []byte("c."), DataTid: 11}); err != nil {
		t.Fatal(err)
	}
	it := s.Iterate(11)
	var got []string
	for {
		if _, err := it.NextTxn(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		for {
			r, err := it.NextData()
			if err == io.EOF {
				break
			}
			got = append(got, fmt.Sprintf("%d %d %s %d %d", r.Oid, r.Tid, r.Data, r.Back, r.DataTid))
		}
	}
	want := []string{fmt.Sprintf("1 11 a. %d 10", MagicLen+TxnHeaderLen), "2 11 b. 0 0", "2 12 c. 0 0"}
	if !slices.Equal(got, want) {
		t.Fatalf("records %q, want %q", got, want)
	}
}

// crashFile writes at most budget bytes, then fails every write, sync and
// truncate: a machine that stopped at that point.
type crashFile struct {
	*os.File
	budget int
}

var errCrash = errors.New("crash")

func (f *crashFile) WriteAt(b []byte, off int64) (int, error) {
	if f.budget <= 0 {
		return 0, errCrash
	}
	n := min(len(b), f.budget)
	f.budget -= n
	m, err := f.File.WriteAt(b[:n], off)
	if err == nil && n < len(b) {
		err = errCrash
	}
	return m, err
}
func (f *crashFile) Sync() error {
	if f.budget <= 0 {
		return errCrash
	}
	return f.File.Sync()
}
func (f *crashFile) Truncate(int64) error {
	if f.budget <= 0 {
		return errCrash
	}
	return errCrash // a crash during the abort: nothing is undone
}

// A crash at any byte of a commit leaves a file that opens with the
// transactions committed before, and the partial one as its tail.
func TestCrashDuringCommit(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	dir := t.TempDir()
	base := filepath.Join(dir, "base.fs")
	s, err := Open(base, Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	m := writeHistory(t, s, rng, 5, 50)
	s.Close()
	os.Remove(base + ".index")
	orig, _ := os.ReadFile(base)
	meta := TxnMeta{Tid: s.LastTid() + 1, User: []byte("u"), Description: []byte("d")}
	old := m.recs[0][0].Oid
	recs := []Record{{Oid: 0, Data: pickleish(rng, 100)}, {Oid: old, DataTid: m.txns[0].Tid}, {Oid: 2}, {Oid: 100, Data: pickleish(rng, 10)}}
	sawAll := false
	for budget := 0; budget < 1000; budget++ {
		path := filepath.Join(dir, fmt.Sprintf("crash%d.fs", budget))
		if err := os.WriteFile(path, orig, 0o666); err != nil {
			t.Fatal(err)
		}
		s, err := Open(path, Options{NoIndexFile: true, OpenFile: func(name string, flag int, perm fs.FileMode) (File, error) {
			f, err := os.OpenFile(name, flag, perm)
			return &crashFile{File: f, budget: budget}, err
		}})
		if err != nil {
			t.Fatal(err)
		}
		tx, err := s.Begin(meta)
		for _, r := range recs {
			if err == nil {
				err = tx.Store(r)
			}
		}
		if err == nil {
			err = tx.Commit()
		}
		committed := err == nil
		if !committed && !errors.Is(err, errCrash) {
			t.Fatalf("budget %d: %v", budget, err)
		}
		s.f.Close()
		s.unlock()
		fi, _ := os.Stat(path)

		r, err := Open(path, Options{ReadOnly: true, NoIndexFile: true})
		if err != nil {
			t.Fatalf("budget %d: reopen: %v", budget, err)
		}
		n := 0
		for it := r.Iterate(0); ; n++ {
			if _, err := it.NextTxn(); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("budget %d: %v", budget, err)
			}
		}
		switch {
		case n == 6:
			// every byte is there: committed, or crashed in the last fsync
			sawAll = true
		case n != 5 || committed || sawAll:
			t.Fatalf("budget %d: %d transactions (committed %v, all seen before %v)", budget, n, committed, sawAll)
		case r.End() != int64(len(orig)):
			t.Fatalf("budget %d: end %d, want %d", budget, r.End(), len(orig))
		case (fi.Size() > int64(len(orig))) != (r.Tail() != nil):
			t.Fatalf("budget %d: size %d, tail %+v", budget, fi.Size(), r.Tail())
		}
		r.Close()
		// read-write: the tail goes to .tr0 and the file is clean
		w, err := Open(path, Options{NoIndexFile: true})
		if err != nil {
			t.Fatalf("budget %d: reopen read-write: %v", budget, err)
		}
		w.Close()
		if _, err := VerifyFile(path, true); err != nil {
			t.Fatalf("budget %d: %v", budget, err)
		}
		if fi.Size() > int64(len(orig)) && n == 5 {
			tr, err := os.ReadFile(path + ".tr0")
			if err != nil || int64(len(tr)) != fi.Size()-int64(len(orig)) {
				t.Fatalf("budget %d: tail not saved: %v", budget, err)
			}
		}
		if committed {
			return
		}
	}
	t.Fatal("never committed")
}

// A half-written transaction header, a transaction cut short and a 'c'
// transaction all end the readable file; garbage in the middle is an
// error naming the offset.
func TestTailAndCorruption(t *testing.T) {
	s, path := create(t)
	rng := rand.New(rand.NewPCG(5, 6))
	writeHistory(t, s, rng, 10, 100)
	s.Close()
	good, _ := os.ReadFile(path)
	// the last transaction's position
	lastLen := binary.BigEndian.Uint64(good[len(good)-8:])
	lastPos := int64(len(good)) - 8 - int64(lastLen)

	open := func(b []byte) (*Storage, error) {
		return OpenReader("test.fs", bytes.NewReader(b), int64(len(b)), Options{})
	}
	for _, cut := range []int64{lastPos + 1, lastPos + 22, lastPos + 23, lastPos + 60, int64(len(good)) - 1} {
		s, err := open(good[:cut])
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		if s.End() != lastPos || s.Tail() == nil || s.Tail().Pos != lastPos {
			t.Fatalf("cut at %d: end %d tail %+v, want end %d", cut, s.End(), s.Tail(), lastPos)
		}
	}
	c := slices.Clone(good)
	c[lastPos+16] = 'c'
	if s, err := open(c); err != nil || s.End() != lastPos {
		t.Fatalf("status c: %v", err)
	}
	// a bad redundant length in the middle
	c = slices.Clone(good)
	c[lastPos-1] ^= 1
	_, err := open(c)
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.File != "test.fs" || ce.Pos != lastPos-8 {
		t.Fatalf("bad redundant length: %v", err)
	}
	if _, err := Verify("test.fs", bytes.NewReader(c), int64(len(c)), false); !errors.As(err, &ce) || ce.Pos != lastPos-8 {
		t.Fatalf("Verify: %v", err)
	}
	// bad magic
	c = slices.Clone(good)
	c[0] = 'X'
	if _, err := open(c); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("bad magic: %v", err)
	}
	// a data record's tloc in the first transaction
	c = slices.Clone(good)
	first := DecodeTxnHeader(c[MagicLen:], MagicLen)
	c[first.Pos+first.HeaderLen()+24+7] ^= 1
	if _, err := open(c); !errors.As(err, &ce) || ce.Pos != first.Pos+first.HeaderLen() {
		t.Fatalf("bad tloc: %v", err)
	}
}

// The .index file: written on close, read back, and refused when it does
// not match the file.
func TestIndexFile(t *testing.T) {
	s, path := create(t)
	rng := rand.New(rand.NewPCG(7, 8))
	m := writeHistory(t, s, rng, 50, 100)
	want := map[proto.Oid]int64{}
	s.Oids(func(oid proto.Oid, pos int64) bool { want[oid] = pos; return true })
	end := s.End()
	s.Close()
	b, err := os.ReadFile(path + ".index")
	if err != nil {
		t.Fatal(err)
	}
	pos, index, err := parseIndex(b)
	if err != nil || pos != end || !index.Equal(indexOf(want)) {
		t.Fatalf("parseIndex: %v, pos %d (want %d)", err, pos, end)
	}
	// appending after the index was written: the scan catches up
	s, err = Open(path, Options{NoIndexFile: true})
	if err != nil {
		t.Fatal(err)
	}
	m2 := writeHistory(t, s, rng, 5, 100)
	s.f.Close() // no new index
	s.unlock()
	r, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	for oid, h := range m2.revs {
		m.revs[oid] = append(m.revs[oid], h...)
	}
	checkModel(t, r, m)
	r.Close()
	// an index whose pos is not the end of a transaction is refused
	bad := appendIndex(nil, end-1, indexOf(want))
	os.WriteFile(path+".index", bad, 0o666)
	if err := r.checkIndexFileRefused(path); err != nil {
		t.Fatal(err)
	}
}

// checkIndexFileRefused opens path and reports an error if its index file
// was used.
func (*Storage) checkIndexFileRefused(path string) error {
	var warned bool
	s, err := Open(path, Options{ReadOnly: true, Logger: newFlagLogger(&warned)})
	if err != nil {
		return err
	}
	defer s.Close()
	if !warned {
		return errors.New("a wrong index file was used")
	}
	return nil
}

func indexOf(m map[proto.Oid]int64) *Index {
	x := NewIndex()
	for oid, pos := range m {
		x.Set(oid, pos)
	}
	return x
}

// Index behaves as a map, whatever the order of inserts.
func TestIndex(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	x, m := NewIndex(), map[proto.Oid]int64{}
	for i := 0; i < 100000; i++ {
		var oid proto.Oid
		switch rng.IntN(3) {
		case 0:
			oid = proto.Oid(i) // increasing
		case 1:
			oid = proto.Oid(rng.IntN(200000)) // random, dense
		default:
			oid = proto.Oid(rng.Uint64()) // sparse
		}
		pos := rng.Int64N(1 << 48)
		x.Set(oid, pos)
		m[oid] = pos
	}
	if x.Len() != len(m) {
		t.Fatalf("Len %d, want %d", x.Len(), len(m))
	}
	var maxOid proto.Oid
	for oid, pos := range m {
		if p, ok := x.Get(oid); !ok || p != pos {
			t.Fatalf("Get %s: %d %v, want %d", oid, p, ok, pos)
		}
		maxOid = max(maxOid, oid)
	}
	if x.Max() != maxOid {
		t.Fatalf("Max %s, want %s", x.Max(), maxOid)
	}
	var last proto.Oid
	n := 0
	x.All(func(oid proto.Oid, pos int64) bool {
		if n > 0 && oid <= last {
			t.Fatalf("All: %s after %s", oid, last)
		}
		last = oid
		n++
		return true
	})
	if n != len(m) {
		t.Fatalf("All gave %d oids, want %d", n, len(m))
	}
	if _, ok := x.Get(1 << 62); ok {
		t.Fatal("Get of a missing oid")
	}
	pos, y, err := parseIndex(appendIndex(nil, 12345, x))
	if err != nil || pos != 12345 || !y.Equal(x) {
		t.Fatalf("index file round trip: %v", err)
	}
}

func TestPickleInt(t *testing.T) {
	for _, x := range []int64{0, 1, 255, 256, 65535, 65536, 1<<31 - 1, 1 << 31, 1<<40 + 3, 1<<47 - 1, -1, -129} {
		b := appendPickleInt([]byte{opProto, 3}, x)
		b = append(b, opStop)
		v, n, err := decodePickle(b)
		if err != nil || n != len(b) || v != x {
			t.Errorf("%d: %x decodes to %v, %v", x, b, v, err)
		}
	}
}

// flagLogger sets a flag when a warning says the index file was not used.
type flagHandler struct{ flag *bool }

func newFlagLogger(flag *bool) *slog.Logger { return slog.New(flagHandler{flag}) }

func (h flagHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h flagHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, "index file not used") {
		*h.flag = true
	}
	return nil
}
func (h flagHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h flagHandler) WithGroup(string) slog.Handler      { return h }

// Loads and iterators run while a writer appends: each sees a consistent
// committed state (run with -race).
func TestConcurrentReadsDuringCommits(t *testing.T) {
	s, _ := create(t)
	defer s.Close()
	rng := rand.New(rand.NewPCG(9, 10))
	writeHistory(t, s, rng, 20, 100)
	done := make(chan struct{})
	errc := make(chan error, 2)
	for g := 0; g < 2; g++ {
		go func() {
			for {
				select {
				case <-done:
					errc <- nil
					return
				default:
				}
				last := s.LastTid()
				it := s.Iterate(0)
				var tid proto.Tid
				for {
					txn, err := it.NextTxn()
					if err == io.EOF {
						break
					}
					if err != nil {
						errc <- err
						return
					}
					tid = txn.Tid
					for {
						if _, err := it.NextData(); err == io.EOF {
							break
						} else if err != nil {
							errc <- err
							return
						}
					}
				}
				if tid < last {
					errc <- fmt.Errorf("iterator stopped at %s, before %s", tid, last)
					return
				}
				for oid := proto.Oid(0); oid < 10; oid++ {
					if _, _, err := s.Load(oid); err != nil && !errors.Is(err, ErrNotFound) {
						errc <- err
						return
					}
				}
			}
		}()
	}
	writeHistory(t, s, rng, 100, 100)
	close(done)
	for g := 0; g < 2; g++ {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}

// A file created with the Python 2 magic keeps it.
func TestMagic21(t *testing.T) {
	path := filepath.Join(t.TempDir(), "Data.fs")
	s, err := Open(path, Options{Create: true, Magic: Magic21})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Magic() != Magic21 {
		t.Fatalf("magic %q", s.Magic())
	}
	if _, err := Open(filepath.Join(t.TempDir(), "x.fs"), Options{Create: true, Magic: "FS99"}); err == nil {
		t.Fatal("a bad magic was accepted")
	}
}

// Opened with NoIndex, a storage iterates as usual, keeps no index, and
// refuses loads.
func TestNoIndex(t *testing.T) {
	s, path := create(t)
	m := writeHistory(t, s, rand.New(rand.NewPCG(13, 14)), 50, 100)
	s.Close()
	r, err := Open(path, Options{ReadOnly: true, NoIndex: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	checkIter(t, r, m)
	if r.Len() != 0 {
		t.Fatalf("%d oids indexed", r.Len())
	}
	if _, _, err := r.Load(0); !errors.Is(err, ErrNoIndex) {
		t.Fatalf("Load: %v", err)
	}
	if _, err := Open(path, Options{NoIndex: true}); err == nil {
		t.Fatal("NoIndex accepted for writing")
	}
}

// Iterate(start) begins at the first transaction with a tid >= start,
// whether it skips forward or walks back from the end to find it.
func TestIterateFrom(t *testing.T) {
	s, _ := create(t)
	defer s.Close()
	m := writeHistory(t, s, rand.New(rand.NewPCG(19, 20)), 60, 20)
	tids := func(it *TxnIter) []proto.Tid {
		var out []proto.Tid
		for {
			txn, err := it.NextTxn()
			if err == io.EOF {
				return out
			}
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, txn.Tid)
		}
	}
	var all []proto.Tid
	for _, txn := range m.txns {
		all = append(all, txn.Tid)
	}
	for i, tid := range all {
		for _, start := range []proto.Tid{tid - 1, tid, tid + 1} {
			var want []proto.Tid
			for _, x := range all[max(0, i-1):] {
				if x >= start {
					want = append(want, x)
				}
			}
			if got := tids(s.Iterate(start)); !slices.Equal(got, want) {
				t.Fatalf("Iterate(%s): %d transactions from %v, want %d", start, len(got), got[:min(1, len(got))], len(want))
			}
		}
	}
	if got := tids(s.Iterate(all[len(all)-1] + 1)); len(got) != 0 {
		t.Fatalf("Iterate after the last tid: %v", got)
	}
}
