package pickleref

import (
	"testing"

	"github.com/neogo/neo/proto"
)

// benchRecords are ZODB's records of testdata (every era: a mapping with
// every form of reference, a BTree and its bucket, lists), about 1 KiB
// on average.
func benchRecords(b *testing.B) ([][]byte, int64) {
	var recs [][]byte
	var n int64
	for _, z := range readRecords(b, "testdata/zodb-records.jsonl") {
		rec := unhex(b, z.Record)
		recs = append(recs, rec)
		n += int64(len(rec))
	}
	return recs, n
}

// BenchmarkRewriteShift is the importer's repickling: every record of a
// source database shifted by an offset. MB/s is what counts (the
// importer's goal is 100 MB/s for the whole import).
func BenchmarkRewriteShift(b *testing.B) {
	recs, n := benchRecords(b)
	s := &Shift{Offset: 0x1_0000, Mount: map[proto.Oid]proto.Oid{}}
	var w Rewriter
	var out []byte
	b.SetBytes(n)
	b.ReportAllocs()
	for b.Loop() {
		for _, rec := range recs {
			var err error
			if out, err = w.Rewrite(out[:0], rec, s.Map); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkRewriteMount: a mount point in every record that refers to
// it: rebuilt references.
func BenchmarkRewriteMount(b *testing.B) {
	recs, n := benchRecords(b)
	s := &Shift{Offset: 0x1_0000, Mount: map[proto.Oid]proto.Oid{1: 0x99}}
	var w Rewriter
	var out []byte
	b.SetBytes(n)
	b.ReportAllocs()
	for b.Loop() {
		for _, rec := range recs {
			var err error
			if out, err = w.Rewrite(out[:0], rec, s.Map); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkRefs lists the references of every record.
func BenchmarkRefs(b *testing.B) {
	recs, n := benchRecords(b)
	var m machine
	b.SetBytes(n)
	b.ReportAllocs()
	for b.Loop() {
		for _, rec := range recs {
			if err := m.run(rec); err != nil {
				b.Fatal(err)
			}
		}
	}
}
