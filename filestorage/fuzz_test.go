package filestorage

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/neogo/neo/proto"
)

// seedFile returns a tiny Data.fs written by our writer: data, a
// back-pointer, a deletion, metadata. Tiny, because the fuzzer minimizes
// every new input it finds in time that grows with the square of its
// size.
func seedFile(f testing.TB, meta bool) []byte {
	s, path := create(f)
	commit := func(m TxnMeta, recs ...Record) {
		tx, err := s.Begin(m)
		if err != nil {
			f.Fatal(err)
		}
		for _, r := range recs {
			if err := tx.Store(r); err != nil {
				f.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			f.Fatal(err)
		}
	}
	m := TxnMeta{Tid: 1}
	if meta {
		m.User, m.Description, m.Extension = []byte("u"), []byte("d"), []byte("}.")
	}
	commit(m, Record{Oid: 0, Data: []byte("a.")})
	commit(TxnMeta{Tid: 2}, Record{Oid: 0, DataTid: 1}, Record{Oid: 1})
	s.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// FuzzRecords feeds arbitrary bytes as a Data.fs to the whole reading
// path: open (scan), forward and backward iteration with back-pointer
// resolution, every load of every oid, and the verifier. Nothing may
// panic, and content errors must be *CorruptErrors.
func FuzzRecords(f *testing.F) {
	f.Add([]byte(Magic30))
	f.Add(seedFile(f, false))
	f.Add(seedFile(f, true))
	f.Fuzz(fuzzRecords)
}

func fuzzRecords(t *testing.T, b []byte) {
	{
		r := bytes.NewReader(b)
		checkErr := func(err error) {
			if err != nil && err != io.EOF && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrNoRevision) {
				t.Fatalf("error of an unexpected kind: %v", err)
			}
		}
		Verify("fuzz.fs", r, int64(len(b)), true)
		Verify("fuzz.fs", r, int64(len(b)), false)
		s, err := OpenReader("fuzz.fs", r, int64(len(b)), Options{})
		checkErr(err)
		if err != nil {
			return
		}
		var tids []proto.Tid
		for _, it := range []*TxnIter{s.Iterate(0), s.IterateBackward()} {
			for {
				txn, err := it.NextTxn()
				if err != nil {
					checkErr(err)
					break
				}
				if len(tids) < 8 {
					tids = append(tids, txn.Tid)
				}
				for {
					_, err := it.NextData()
					if err != nil {
						checkErr(err)
						break
					}
				}
			}
		}
		n := 0
		s.Oids(func(oid proto.Oid, _ int64) bool {
			n++
			_, _, err := s.Load(oid)
			checkErr(err)
			for _, tid := range tids {
				_, _, _, err := s.LoadBefore(oid, tid)
				checkErr(err)
				_, err = s.LoadSerial(oid, tid)
				checkErr(err)
			}
			return n < 16
		})
	}
}

// FuzzIndexPickle feeds arbitrary bytes as a .index file: no panic, and
// what parses writes back to an index that parses the same.
func FuzzIndexPickle(f *testing.F) {
	f.Add(appendIndex(nil, 1<<40, indexOf(map[proto.Oid]int64{0: 4, 1: 100, 1 << 20: 1 << 33})))
	f.Add(appendIndex(nil, 200, NewIndex()))
	f.Add([]byte("\x80\x03J\x00\x01\x00\x00.\x80\x03C\x06\x00\x00\x00\x00\x00\x00C\x08\x00\x01\x00\x00\x00\x00\x00\x04\x86q\x00.\x80\x03N."))
	f.Fuzz(func(t *testing.T, b []byte) {
		pos, index, err := parseIndex(b)
		if err != nil {
			return
		}
		pos2, index2, err := parseIndex(appendIndex(nil, pos, index))
		if err != nil || pos2 != pos || !index.Equal(index2) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
