package filestorage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"slices"
	"testing"

	"github.com/neogo/neo/proto"
)

// corruption is a damage done to a small valid file, and what Verify
// says of it.
type corruption struct {
	name   string
	damage func(b []byte) []byte
	// pos is the offset Verify names, -1 when it finds nothing wrong
	pos       int64
	strictPos int64 // the same with strict checks
}

// verifyBase writes three transactions and returns the file and the
// positions of its transactions and records:
//
//	T1: oid 0 data, oid 1 data      (records R[0], R[1])
//	T2: oid 0 data, oid 2 data      (R[2], R[3])
//	T3: oid 1 back-pointer to T1    (R[4])
func verifyBase(t *testing.T) (b []byte, T []TxnHeader, R []DataHeader) {
	t.Helper()
	s, path := create(t)
	commit := func(tid proto.Tid, recs ...Record) {
		tx, err := s.Begin(TxnMeta{Tid: tid, User: []byte("u"), Extension: []byte("}.")})
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
	}
	commit(10, Record{Oid: 0, Data: []byte("}a.")}, Record{Oid: 1, Data: []byte("}b.")})
	commit(20, Record{Oid: 0, Data: []byte("}c.")}, Record{Oid: 2, Data: []byte("}d.")})
	commit(30, Record{Oid: 1, DataTid: 10})
	it := s.Iterate(0)
	for {
		txn, err := it.NextTxn()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		T = append(T, txn.TxnHeader)
		for {
			r, err := it.NextData()
			if err == io.EOF {
				break
			}
			R = append(R, r.DataHeader)
		}
	}
	s.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b, T, R
}

func corruptions(t *testing.T) ([]byte, []corruption) {
	b, T, R := verifyBase(t)
	put64 := func(off int64, v uint64) func([]byte) []byte {
		return func(b []byte) []byte { binary.BigEndian.PutUint64(b[off:], v); return b }
	}
	put := func(off int64, v ...byte) func([]byte) []byte {
		return func(b []byte) []byte { copy(b[off:], v); return b }
	}
	cut := func(n int64) func([]byte) []byte { return func(b []byte) []byte { return b[:n] } }
	return b, []corruption{
		{"valid", func(b []byte) []byte { return b }, -1, -1},
		{"empty file", cut(0), 0, 0},
		{"bad magic", put(0, 'X'), 0, 0},
		{"time-stamp reduction", put64(T[1].Pos, 10), T[1].Pos, T[1].Pos},
		{"truncated transaction header", cut(T[2].Pos + 10), T[2].Pos, T[2].Pos},
		{"truncated transaction", cut(T[2].Pos + 30), T[2].Pos, T[2].Pos},
		{"checkpoint flag not cleared", put(T[2].Pos+16, 'c'), T[2].Pos, T[2].Pos},
		{"invalid status", put(T[1].Pos+16, 'x'), T[1].Pos, T[1].Pos},
		{"header longer than the transaction", put(T[1].Pos+17, 0xff), T[1].Pos, T[1].Pos},
		{"record not of its transaction", put64(R[2].Pos+24, uint64(T[0].Pos)), R[2].Pos, R[2].Pos},
		{"record beyond its transaction", put64(R[3].Pos+34, 1000), R[3].Pos, R[3].Pos},
		{"inconsistent redundant length", put(T[1].End()+7, 0), T[1].End(), T[1].End()},
		{"version record", put(R[3].Pos+33, 1), R[3].Pos, R[3].Pos},
		{"undone transaction", put(T[1].Pos+16, 'u'), -1, -1},
		// what only the strict checks see
		{"record tid not its transaction's", put64(R[2].Pos+8, 15), -1, R[2].Pos},
		{"prev to another oid", put64(R[2].Pos+16, uint64(R[1].Pos)), -1, R[2].Pos},
		{"back-pointer to another oid", put64(R[4].Pos+42, uint64(R[0].Pos)), -1, R[4].Pos},
		{"back-pointer forward", put64(R[4].Pos+42, uint64(R[4].Pos)), -1, R[4].Pos},
		{"data not a pickle", put(R[0].Pos+42, 'z'), -1, R[0].Pos},
	}
}

// Verify makes fstest's checks, and the strict ones, naming the offset.
func TestVerify(t *testing.T) {
	base, cases := corruptions(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := c.damage(slices.Clone(base))
			for _, strict := range []bool{false, true} {
				want := c.pos
				if strict {
					want = c.strictPos
				}
				_, err := Verify("v.fs", bytes.NewReader(b), int64(len(b)), strict)
				var ce *CorruptError
				switch {
				case want < 0 && err != nil:
					t.Errorf("strict %v: %v", strict, err)
				case want >= 0 && (!errors.As(err, &ce) || ce.Pos != want || ce.File != "v.fs"):
					t.Errorf("strict %v: %v, want an error at %d", strict, err, want)
				}
			}
		})
	}
}

// An undone ('u') transaction is skipped by the scan and the iterators.
func TestUndoneTransactionSkipped(t *testing.T) {
	b, T, _ := verifyBase(t)
	b[T[1].Pos+16] = 'u'
	s, err := OpenReader("u.fs", bytes.NewReader(b), int64(len(b)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range []*TxnIter{s.Iterate(0), s.IterateBackward()} {
		var tids []proto.Tid
		for {
			txn, err := it.NextTxn()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			tids = append(tids, txn.Tid)
		}
		slices.Sort(tids)
		if !slices.Equal(tids, []proto.Tid{10, 30}) {
			t.Fatalf("transactions %v, want 10 and 30", tids)
		}
	}
	if data, serial, err := s.Load(0); err != nil || serial != 10 || string(data) != "}a." {
		t.Fatalf("Load 0: %q %s %v, want T1's revision", data, serial, err)
	}
	if _, _, err := s.Load(2); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Load 2, created in the undone transaction: %v", err)
	}
}
