package objcache

import (
	"bytes"
	"crypto/sha1"
	"sync/atomic"
	"testing"

	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

// BenchmarkLoad measures loads of the latest revision of 1 KiB objects:
// straight from SQLite, cache hits, hits with a copy of the data (what
// not sharing Data would cost), and misses through the cache (a working
// set larger than the cache).
func BenchmarkLoad(b *testing.B) {
	const (
		size = 1024
		oids = 256
	)
	fill := func(f *fixture) {
		var recs []backend.Record
		for oid := range proto.Oid(oids) {
			r := backend.Record{Oid: oid, DataSerial: proto.InvalidTid, Data: bytes.Repeat([]byte{byte(oid)}, size)}
			r.Checksum = sha1.Sum(r.Data)
			recs = append(recs, r)
		}
		f.must(f.b.StoreTransaction(f.ctx, 0x100, recs, &backend.TxnMeta{TTid: 0x100}))
		f.must(f.b.LockTransaction(f.ctx, 0x100, 0x100, false))
		f.must(f.b.UnlockTransaction(f.ctx, 0x100, 0x100))
	}
	for _, bc := range []struct {
		name     string
		maxBytes int64
		raw      bool
		copyData bool
	}{
		{name: "sqlite", maxBytes: 1 << 20, raw: true},
		{name: "hit", maxBytes: 1 << 20},
		{name: "hit+copy", maxBytes: 1 << 20, copyData: true},
		{name: "miss", maxBytes: oids / 4 * (size + entryOverhead)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f := newFixture(b, bc.maxBytes)
			fill(f)
			be := f.b
			if bc.raw {
				be = f.raw
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				o, err := be.Load(f.ctx, proto.Oid(i%oids), proto.InvalidTid, proto.InvalidTid)
				if err != nil {
					b.Fatal(err)
				}
				if bc.copyData {
					o.Data = bytes.Clone(o.Data)
				}
				i++
			}
			if !bc.raw {
				s, _ := StatsOf(f.b)
				b.ReportMetric(float64(s.Hits)/float64(s.Hits+s.Misses), "hits/op")
			}
		})
	}
}

// BenchmarkLoadParallel is the hit path from every CPU (shard contention).
func BenchmarkLoadParallel(b *testing.B) {
	f := newFixture(b, 8<<20)
	const oids = 1024
	var ob []proto.Oid
	for oid := range proto.Oid(oids) {
		ob = append(ob, oid)
	}
	f.commit(0x100, ob...)
	for _, oid := range ob {
		f.wantLatest(oid, 0x100)
	}
	b.ReportAllocs()
	var seed atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		i := int(seed.Add(1)) * oids / 2 // each goroutine on its own oids
		for pb.Next() {
			if _, err := f.b.Load(f.ctx, proto.Oid(i%oids), proto.InvalidTid, proto.InvalidTid); err != nil {
				b.Error(err)
				return
			}
			i += 7
		}
	})
}
