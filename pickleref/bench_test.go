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

// bucketRecord is a protocol-3 record shaped like an OOBucket of a
// catalog: 60 text keys, each with a reference to a persistent value,
// about 2.5 KiB.
func bucketRecord() []byte {
	rec := p("\x80\x03cBTrees.OOBTree\nOOBucket\nq\x00.\x80\x03((")
	memo := 1
	for i := 0; i < 60; i++ {
		rec = append(rec, text("key-"+string(rune('a'+i%26))+"-some-longer-key")...)
		rec = append(rec, 'q', byte(memo))
		rec = append(rec, p(proto.Oid(1000+i), "q", byte(memo+1), "h\x00\x86q", byte(memo+2), "Q")...)
		memo += 3
		if memo > 250 {
			memo = 1
		}
	}
	return append(rec, "tq\x01\x85q\x02."...)
}

// BenchmarkRewriteBucket shifts a record dense in references.
func BenchmarkRewriteBucket(b *testing.B) {
	rec := bucketRecord()
	if _, err := Refs(rec); err != nil {
		b.Fatal(err)
	}
	s := &Shift{Offset: 0x1_0000}
	var w Rewriter
	var out []byte
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if out, err = w.Rewrite(out[:0], rec, s.Map); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRewriteData shifts a record of data without references: a
// 4 KiB bytes value in a mapping, the importer's common case.
func BenchmarkRewriteData(b *testing.B) {
	data := make([]byte, 4096)
	rec := p(class1, "\x80\x03}q\x01", text("data"), "q\x02B\x00\x10\x00\x00", data, "q\x03s.")
	s := &Shift{Offset: 0x1_0000}
	var w Rewriter
	var out []byte
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if out, err = w.Rewrite(out[:0], rec, s.Map); err != nil {
			b.Fatal(err)
		}
	}
}
