package filestorage

import (
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/neogo/neo/proto"
)

// benchFileMB is the size of the file the benchmarks write and read
// (FSBENCH_MB overrides it).
func benchFileMB() int {
	if n, err := strconv.Atoi(os.Getenv("FSBENCH_MB")); err == nil && n > 0 {
		return n
	}
	return 128
}

// writeBenchFile writes with our writer a file of about mb MiB:
// transactions of 100 records of 64 B to 2 KiB (1 KiB on average), a
// third of them new objects, the rest new revisions; a few back-pointers
// and deletions. It returns the number of oids.
func writeBenchFile(b *testing.B, path string, mb int) int {
	s, err := Open(path, Options{Create: true})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	data := make([]byte, 2048)
	for i := range data {
		data[i] = byte(rng.IntN(256))
	}
	data[0] = opProto
	var oids proto.Oid
	tid := proto.Tid(0x03f0000000000000)
	for s.End() < int64(mb)<<20 {
		tid += proto.Tid(1 + rng.IntN(1<<20))
		tx, err := s.Begin(TxnMeta{Tid: tid, User: []byte("bench"), Description: []byte("a transaction of the benchmark")})
		if err != nil {
			b.Fatal(err)
		}
		for j := 0; j < 100; j++ {
			r := Record{}
			switch k := rng.IntN(100); {
			case oids < 10 || k < 33:
				r.Oid = oids
				oids++
			default:
				r.Oid = proto.Oid(rng.IntN(int(oids)))
			}
			n := 64 + rng.IntN(1984)
			r.Data = data[:n:n]
			r.Data[n-1] = opStop
			if err := tx.Store(r); err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	return int(oids)
}

// BenchmarkFile writes a file of FSBENCH_MB (128 by default) MiB once,
// then measures: iteration throughput (MB/s) forward and backward,
// opening by a full scan and with the index file, and Load/LoadBefore
// latency of random objects (the file is in the page cache).
func BenchmarkFile(b *testing.B) {
	path := filepath.Join(b.TempDir(), "Data.fs")
	start := time.Now()
	noids := writeBenchFile(b, path, benchFileMB())
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	size := fi.Size()
	b.Logf("wrote %d MiB, %d oids, in %v (%.0f MB/s with 2 fsyncs per transaction of ~100 KiB)",
		size>>20, noids, time.Since(start), float64(size)/1e6/time.Since(start).Seconds())

	iterate := func(b *testing.B, backward bool) {
		s, err := Open(path, Options{ReadOnly: true})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			it := s.Iterate(0)
			if backward {
				it = s.IterateBackward()
			}
			var n int
			for {
				_, err := it.NextTxn()
				if err == io.EOF {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				for {
					r, err := it.NextData()
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					n += len(r.Data)
				}
			}
		}
	}
	b.Run("Iterate", func(b *testing.B) { iterate(b, false) })
	b.Run("IterateBackward", func(b *testing.B) { iterate(b, true) })
	b.Run("OpenNoIndexAndIterate", func(b *testing.B) {
		// what a streaming importer does: memory independent of the file
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			s, err := Open(path, Options{ReadOnly: true, NoIndex: true})
			if err != nil {
				b.Fatal(err)
			}
			it := s.Iterate(0)
			for {
				if _, err := it.NextTxn(); err == io.EOF {
					break
				} else if err != nil {
					b.Fatal(err)
				}
				for {
					if _, err := it.NextData(); err == io.EOF {
						break
					} else if err != nil {
						b.Fatal(err)
					}
				}
			}
			s.Close()
		}
	})
	b.Run("OpenScan", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			s, err := Open(path, Options{ReadOnly: true, NoIndexFile: true})
			if err != nil {
				b.Fatal(err)
			}
			s.Close()
		}
	})
	b.Run("OpenIndexFile", func(b *testing.B) {
		for b.Loop() {
			s, err := Open(path, Options{ReadOnly: true})
			if err != nil {
				b.Fatal(err)
			}
			s.Close()
		}
	})
	s, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(2, 2))
	b.Run("Load", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := s.Load(proto.Oid(rng.IntN(noids))); err != nil {
				b.Fatal(err)
			}
		}
	})
	last := s.LastTid()
	b.Run("LoadBefore", func(b *testing.B) {
		// a snapshot in the middle of the history: walks prev
		before := 0x03f0000000000000 + (last-0x03f0000000000000)/2
		b.ReportAllocs()
		for b.Loop() {
			_, _, _, err := s.LoadBefore(proto.Oid(rng.IntN(noids)), before)
			if err != nil && !errors.Is(err, ErrNoRevision) {
				b.Fatal(err)
			}
		}
	})
}
