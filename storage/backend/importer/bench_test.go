package importer

import (
	"context"
	"fmt"
	iofs "io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/neogo/neo/filestorage"
	"github.com/neogo/neo/importconf"
	"github.com/neogo/neo/internal/procstat"
	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend/backendtest"
)

// Benchmarks of the import. A Data.fs of NEO_IMPORT_BENCH_MB (default 32)
// MB is written once (or NEO_IMPORT_BENCH_FS is used), then imported into
// a new SQLite database per iteration:
//
//	go test -run '^$' -bench Import -benchtime 1x ./storage/backend/importer/
//
// TestWriteBigDataFS writes such a file where a measurement wants it:
//
//	NEO_WRITE_DATAFS=/tmp/big.fs NEO_WRITE_DATAFS_MB=1100 go test -run TestWriteBigDataFS ./storage/backend/importer/

var words = strings.Fields(`the of and to in is that for it as was with be by on not he this are or his
from at which but have an they you were her she there would their we him been has when who will more
no if out so said what up its about into than them can only other new some could time these two may
catalog index document folder portal workflow review state title description creator modified`)

// appRecord is a record shaped like an application object's: a pickle
// with a reference and some text and numbers, compressible about as much.
func appRecord(rnd *rand.Rand, ref proto.Oid, size int) []byte {
	var b strings.Builder
	for b.Len() < size {
		b.WriteString(words[rnd.IntN(len(words))])
		if rnd.IntN(5) == 0 {
			b.WriteString(strconv.Itoa(rnd.IntN(1 << 20)))
		}
		b.WriteByte(' ')
	}
	return rec(ref, b.String())
}

// writeBigFS writes a Data.fs of about mb MB: transactions of 1 to 20
// records, half of them new objects, sizes from 50 B to 20 KB. It returns
// the number of objects.
func writeBigFS(tb testing.TB, path string, mb int) proto.Oid {
	// No fsync per transaction: a generated file need not survive a crash.
	openNoSync := func(name string, flag int, perm iofs.FileMode) (filestorage.File, error) {
		f, err := os.OpenFile(name, flag, perm)
		if err != nil {
			return nil, err
		}
		return noSync{f}, nil
	}
	fs, err := filestorage.Open(path, filestorage.Options{Create: true, OpenFile: openNoSync})
	if err != nil {
		tb.Fatal(err)
	}
	defer fs.Close()
	rnd := rand.New(rand.NewPCG(1, 2))
	tid := proto.Tid(0x03e0000000000000)
	var oids proto.Oid
	for fs.End() < int64(mb)<<20 {
		tid += proto.Tid(1 + rnd.IntN(1<<20))
		tw, err := fs.Begin(filestorage.TxnMeta{Tid: tid, User: []byte("/plone/acl_users user"), Description: []byte("/plone/folder/edit")})
		if err != nil {
			tb.Fatal(err)
		}
		n := 1 + rnd.IntN(20)
		seen := map[proto.Oid]bool{}
		for range n {
			oid := oids
			if oids > 0 && rnd.IntN(2) == 0 {
				oid = proto.Oid(rnd.IntN(int(oids)))
			}
			if seen[oid] {
				continue
			}
			seen[oid] = true
			if oid == oids {
				oids++
			}
			size := 50 + int(rnd.ExpFloat64()*1500)
			if size > 20000 {
				size = 20000
			}
			if err := tw.Store(filestorage.Record{Oid: oid, Data: appRecord(rnd, proto.Oid(rnd.IntN(int(oids))), size)}); err != nil {
				tb.Fatal(err)
			}
		}
		if err := tw.Commit(); err != nil {
			tb.Fatal(err)
		}
	}
	return oids
}

type noSync struct{ *os.File }

func (noSync) Sync() error { return nil }

func TestWriteBigDataFS(t *testing.T) {
	path := os.Getenv("NEO_WRITE_DATAFS")
	if path == "" {
		t.Skip("NEO_WRITE_DATAFS not set")
	}
	mb, _ := strconv.Atoi(os.Getenv("NEO_WRITE_DATAFS_MB"))
	if mb <= 0 {
		mb = 1100
	}
	start := time.Now()
	n := writeBigFS(t, path, mb)
	t.Logf("wrote %s (%d MB, %d objects) in %v", path, mb, n, time.Since(start))
	// For load probes: the oids are 0 to n-1.
	if err := os.WriteFile(path+".oids", []byte(strconv.Itoa(int(n))+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkImport(b *testing.B) {
	path := os.Getenv("NEO_IMPORT_BENCH_FS")
	if path == "" {
		mb := 32
		if s := os.Getenv("NEO_IMPORT_BENCH_MB"); s != "" {
			mb, _ = strconv.Atoi(s)
		}
		path = filepath.Join(b.TempDir(), "Data.fs")
		writeBigFS(b, path, mb)
	}
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	for _, compress := range []string{"false", "true"} {
		b.Run("compress="+compress, func(b *testing.B) {
			b.SetBytes(st.Size())
			cpu0, err := procstat.CPU(os.Getpid())
			if err != nil {
				b.Fatal(err)
			}
			var writer time.Duration
			for range b.N {
				dir := b.TempDir()
				conf, err := importconf.Parse("importer.conf", []byte(fmt.Sprintf(
					"[neo]\nadapter=SQLite\ndatabase=%s/neo.sqlite\ncompress=%s\n[root]\nstorage=\n  <filestorage>\n    path %s\n    read-only true\n  </filestorage>\n",
					dir, compress, path)), nil)
				if err != nil {
					b.Fatal(err)
				}
				ctx := context.Background()
				im, err := OpenConfig(ctx, conf, Options{})
				if err != nil {
					b.Fatal(err)
				}
				if err := backendtest.Setup(ctx, im, "bench", 12); err != nil {
					b.Fatal(err)
				}
				if err := im.Wait(ctx); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				writer += im.prog.Load().writerCPUTime()
				im.Close()
				b.StartTimer()
			}
			// The machine is shared: CPU time is the steadier measure.
			cpu, err := procstat.CPU(os.Getpid())
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(st.Size())*float64(b.N)/1e6/(cpu-cpu0).Seconds(), "MB/cpu-s")
			// The commits' thread, the stage that runs on one CPU: the
			// import's speed on an idle machine is at most this.
			if writer > 0 {
				b.ReportMetric(float64(st.Size())*float64(b.N)/1e6/writer.Seconds(), "MB/writer-cpu-s")
			}
		})
	}
}

// BenchmarkLoad compares the latest-revision loads of the node while
// importing (served from the source) and after the import.
func BenchmarkLoad(b *testing.B) {
	dir := b.TempDir()
	n := writeBigFS(b, filepath.Join(dir, "root.fs"), 8)
	conf, err := importconf.Parse("importer.conf", []byte(fmt.Sprintf(
		"[neo]\nadapter=SQLite\ndatabase=%s/neo.sqlite\n[root]\nstorage=\n  <filestorage>\n    path %s/root.fs\n    read-only true\n  </filestorage>\n",
		dir, dir)), nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, during := range []bool{true, false} {
		name := "after"
		if during {
			name = "during"
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			var stop proto.Tid
			if during {
				stop = 0x03e0000000000001 // nothing imported
			}
			im, err := OpenConfig(ctx, conf, Options{stopBefore: stop})
			if err != nil {
				b.Fatal(err)
			}
			defer im.Close()
			if _, _, cells, _ := im.PartitionTable(ctx); len(cells) == 0 {
				if err := backendtest.Setup(ctx, im, "bench", 12); err != nil {
					b.Fatal(err)
				}
			}
			if !during {
				if err := im.Wait(ctx); err != nil {
					b.Fatal(err)
				}
			}
			rnd := rand.New(rand.NewPCG(3, 4))
			b.ResetTimer()
			for range b.N {
				if _, err := im.Load(ctx, proto.Oid(rnd.IntN(int(n))), proto.InvalidTid, proto.InvalidTid); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
