package backendtest

import (
	"context"
	"crypto/sha1"
	"errors"
	"math/rand/v2"
	"syscall"
	"testing"

	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

// RunBenchmarks runs the backend benchmarks:
//
//	Commit/1x1KiB       vote+lock+unlock of one 1 KiB object per op
//	Commit/10x4KiB      vote+lock+unlock of ten 4 KiB objects per op
//	Commit/10x1-4KiB    the storage's access pattern: ten objects of 1-4 KiB
//	Commit/100x1KiB     a populate's transaction: a hundred 1 KiB objects
//	Load/hot            latest revision of one oid, again and again
//	Load/random         latest revision of a random oid among 5000
//	LoadBefore/random   random oid, random before tid
//	LastObjectTid/...   the conflict check of a store: existing, new oid
//	ReplicationFetch    feeder side of one AskFetchObjects chunk of 1000
//	                    records (ObjectsFrom + Load of each)
//
// The read benchmarks run on a database of 1000 transactions of 10
// objects of 1-4 KiB.
func RunBenchmarks(b *testing.B, open Opener) {
	b.Run("Commit/1x1KiB", func(b *testing.B) { benchCommit(b, open, 1, 1024, 1024) })
	b.Run("Commit/10x4KiB", func(b *testing.B) { benchCommit(b, open, 10, 4096, 4096) })
	b.Run("Commit/10x1-4KiB", func(b *testing.B) { benchCommit(b, open, 10, 1024, 4096) })
	b.Run("Commit/100x1KiB", func(b *testing.B) { benchCommit(b, open, 100, 1024, 1024) })
	e, last := filled(b, open)
	b.Run("Load/hot", func(b *testing.B) {
		b.ReportAllocs()
		defer cpuTime(b)()
		for b.Loop() {
			if _, err := e.b.Load(e.ctx, 7, none, none); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Load/random", func(b *testing.B) {
		b.ReportAllocs()
		defer cpuTime(b)()
		rng := rand.New(rand.NewPCG(1, 2))
		for b.Loop() {
			if _, err := e.b.Load(e.ctx, proto.Oid(rng.IntN(benchOids)), none, none); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("LoadBefore/random", func(b *testing.B) {
		b.ReportAllocs()
		defer cpuTime(b)()
		rng := rand.New(rand.NewPCG(3, 4))
		for b.Loop() {
			oid := proto.Oid(rng.IntN(benchOids))
			before := benchTid(rng.IntN(benchTxns)) + NP
			if _, err := e.b.Load(e.ctx, oid, none, before); err != nil && !isNotFound(err) {
				b.Fatal(err)
			}
		}
	})
	// The conflict check of every store: an existing oid, and a new one
	// (above every stored oid, as the master allocates them).
	b.Run("LastObjectTid/existing", func(b *testing.B) {
		b.ReportAllocs()
		defer cpuTime(b)()
		rng := rand.New(rand.NewPCG(5, 6))
		for b.Loop() {
			if _, err := e.b.LastObjectTid(e.ctx, proto.Oid(rng.IntN(benchOids))); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("LastObjectTid/new", func(b *testing.B) {
		b.ReportAllocs()
		defer cpuTime(b)()
		oid := proto.Oid(benchOids)
		for b.Loop() {
			if _, err := e.b.LastObjectTid(e.ctx, oid); err != nil {
				b.Fatal(err)
			}
			oid++
		}
	})
	b.Run("ReplicationFetch", func(b *testing.B) {
		b.ReportAllocs()
		defer cpuTime(b)()
		var n int
		for b.Loop() {
			keys, err := e.b.ObjectsFrom(e.ctx, 1, 0, last, 0, 1000)
			if err != nil {
				b.Fatal(err)
			}
			for _, k := range keys {
				o, err := e.b.Load(e.ctx, k.Oid, k.Tid, none)
				if err != nil {
					b.Fatal(err)
				}
				n += len(o.Data)
			}
		}
		b.SetBytes(int64(n) / int64(b.N))
	})
}

// cpuTime reports, when the returned func is called after the loop, the
// process CPU time (user+sys) per op: unlike ns/op it hardly moves when
// other processes share the machine.
func cpuTime(b *testing.B) func() {
	start := rusage()
	return func() {
		b.ReportMetric(float64(rusage()-start)/float64(b.N), "cpu-ns/op")
	}
}

func rusage() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

const (
	benchTxns = 1000
	benchOids = benchTxns / 2 * 10
)

// benchTid is the tid of the i-th transaction of the filled database.
func benchTid(i int) proto.Tid { return proto.Tid(0x10000 + NP*i) }

func isNotFound(err error) bool {
	return err != nil && (errors.Is(err, backend.ErrOidNotFound) || errors.Is(err, backend.ErrOidDoesNotExist))
}

// benchRecords returns n records of random oids below benchOids with
// random data of lo..hi bytes.
func benchRecords(rng *rand.Rand, n, lo, hi int) []backend.Record {
	recs := make([]backend.Record, 0, n)
	seen := map[proto.Oid]bool{}
	for len(recs) < n {
		oid := proto.Oid(rng.IntN(benchOids))
		if seen[oid] {
			continue
		}
		seen[oid] = true
		data := make([]byte, lo+rng.IntN(hi-lo+1))
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		r := backend.Record{Oid: oid, Data: data, Checksum: sha1.Sum(data), DataSerial: none}
		recs = append(recs, r)
	}
	return recs
}

func benchCommit(b *testing.B, open Opener, n, lo, hi int) {
	e := newEnv(b, open, backend.Options{})
	rng := rand.New(rand.NewPCG(5, 6))
	// Prepare the records outside the timer: hashing is the client's job.
	const batch = 256
	pool := make([][]backend.Record, batch)
	var size int
	for i := range pool {
		pool[i] = benchRecords(rng, n, lo, hi)
		for _, r := range pool[i] {
			size += len(r.Data)
		}
	}
	b.SetBytes(int64(size / batch))
	// A node's requests carry a cancellable context (the node's own, a
	// link's), which a driver may watch at a cost: so do these.
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	b.ReportAllocs()
	defer cpuTime(b)()
	i := 0
	for b.Loop() {
		recs := pool[i%batch]
		ttid := benchTid(i)
		meta := &backend.TxnMeta{TTid: ttid, User: []byte("bench"), Oids: oidsOf(recs)}
		if err := e.b.StoreTransaction(ctx, ttid, recs, meta); err != nil {
			b.Fatal(err)
		}
		if err := e.b.LockTransaction(ctx, ttid, ttid, false); err != nil {
			b.Fatal(err)
		}
		if err := e.b.UnlockTransaction(ctx, ttid, ttid); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// filled returns a database of benchTxns transactions of 10 objects of
// 1-4 KiB, every oid below benchOids having at least one revision.
func filled(b *testing.B, open Opener) (*env, proto.Tid) {
	e := newEnv(b, open, backend.Options{})
	rng := rand.New(rand.NewPCG(7, 8))
	var last proto.Tid
	for i := 0; i < benchTxns; i++ {
		recs := benchRecords(rng, 10, 1024, 4096)
		// Even transactions create 10 oids, odd ones modify older oids.
		for j := range recs {
			if i%2 == 0 {
				recs[j].Oid = proto.Oid(i/2*10 + j)
			} else {
				recs[j].Oid = proto.Oid(rng.IntN(i/2*10 + 10))
			}
		}
		recs = dedupOids(recs)
		last = benchTid(i)
		e.commit(last, recs...)
	}
	return e, last
}

func dedupOids(recs []backend.Record) []backend.Record {
	seen := map[proto.Oid]bool{}
	out := recs[:0]
	for _, r := range recs {
		if !seen[r.Oid] {
			seen[r.Oid] = true
			out = append(out, r)
		}
	}
	return out
}
