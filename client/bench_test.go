package client_test

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/neogo/neo/client"
	"github.com/neogo/neo/internal/neotest"
	"github.com/neogo/neo/internal/nodelog"
	"github.com/neogo/neo/proto"
)

// benchObjects is how many objects the load benchmarks read in turn.
const benchObjects = 256

// benchData returns 1 KiB of incompressible data.
func benchData(seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, 1024)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// loadSetup starts a cluster of one storage, commits benchObjects
// objects of 1 KiB and reads them once (warm storage).
func loadSetup(b *testing.B) (*client.Client, []proto.Oid) {
	return loadSetupWith(b, neotest.Options{Storages: 1, Partitions: 4})
}

func loadSetupWith(b *testing.B, o neotest.Options) (*client.Client, []proto.Oid) {
	b.Helper()
	c := neotest.Start(b, o)
	cl := c.Open(b, client.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	txn, err := cl.Begin(ctx)
	if err != nil {
		b.Fatal(err)
	}
	oids := make([]proto.Oid, benchObjects)
	for i := range oids {
		if oids[i], err = cl.NewOID(ctx); err != nil {
			b.Fatal(err)
		}
		if err := txn.Store(ctx, oids[i], proto.ZeroTid, benchData(uint64(i))); err != nil {
			b.Fatal(err)
		}
	}
	if err := txn.Vote(ctx); err != nil {
		b.Fatal(err)
	}
	if _, err := txn.Finish(ctx); err != nil {
		b.Fatal(err)
	}
	for _, oid := range oids {
		if _, err := cl.Load(ctx, oid, proto.InvalidTid); err != nil {
			b.Fatal(err)
		}
	}
	return cl, oids
}

// BenchmarkLoad is one Load of a current 1 KiB object, over loopback TCP
// to an in-process storage (SQLite), no client cache.
func BenchmarkLoad(b *testing.B) {
	cl, oids := loadSetup(b)
	ctx := context.Background()
	b.SetBytes(1024)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := cl.Load(ctx, oids[i%len(oids)], proto.InvalidTid); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkLoadParallel is BenchmarkLoad from GOMAXPROCS goroutines
// sharing one client (one link to the storage).
func BenchmarkLoadParallel(b *testing.B) {
	cl, oids := loadSetup(b)
	ctx := context.Background()
	var next atomic.Uint64
	b.SetBytes(1024)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			oid := oids[next.Add(1)%uint64(len(oids))]
			if _, err := cl.Load(ctx, oid, proto.InvalidTid); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkCommit is one transaction storing one new 1 KiB object:
// begin, store, vote, finish, on a cluster of one storage.
func BenchmarkCommit(b *testing.B) {
	c := neotest.Start(b, neotest.Options{Storages: 1, Partitions: 4})
	cl := c.Open(b, client.Config{})
	ctx := context.Background()
	data := benchData(0)
	b.SetBytes(1024)
	b.ReportAllocs()
	for b.Loop() {
		oid, err := cl.NewOID(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := neotest.Commit(ctx, cl, oid, proto.ZeroTid, data); err != nil {
			b.Fatal(err)
		}
	}
}

// nodeLogs returns the neotest option giving every node a log file, as
// -l of the daemons does (every record and packet in the RAM buffer,
// written out on warnings), in a temporary directory.
func nodeLogs(b *testing.B) func(string) *nodelog.Log {
	dir := b.TempDir()
	return func(node string) *nodelog.Log {
		l, err := nodelog.Open(filepath.Join(dir, node+".log"), nodelog.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { l.Close() })
		return l
	}
}

// BenchmarkLoadLog measures what a log file on every node (-l of the
// daemons: every record and packet into the RAM buffer) costs a load:
// two clusters, one without (off) and one with (on) the logs, loaded in
// turn so that the machine's load changes hit both alike. It reports the
// CPU time of the process per load of each (all nodes and the client
// are in it) and their ratio on/off; benchstat summarises them.
func BenchmarkLoadLog(b *testing.B) {
	offCl, offOids := loadSetupWith(b, neotest.Options{Storages: 1, Partitions: 4})
	onCl, onOids := loadSetupWith(b, neotest.Options{Storages: 1, Partitions: 4, Log: nodeLogs(b)})
	ctx := context.Background()
	i := 0
	pairedCPU(b, func(on bool) {
		cl, oids := offCl, offOids
		if on {
			cl, oids = onCl, onOids
		}
		if _, err := cl.Load(ctx, oids[i/2%len(oids)], proto.InvalidTid); err != nil {
			b.Fatal(err)
		}
		i++
	})
}

// BenchmarkCommitLog is BenchmarkLoadLog for a commit of one new 1 KiB
// object (BenchmarkCommit).
func BenchmarkCommitLog(b *testing.B) {
	off := neotest.Start(b, neotest.Options{Storages: 1, Partitions: 4}).Open(b, client.Config{})
	on := neotest.Start(b, neotest.Options{Storages: 1, Partitions: 4, Log: nodeLogs(b)}).Open(b, client.Config{})
	ctx := context.Background()
	data := benchData(0)
	pairedCPU(b, func(logged bool) {
		cl := off
		if logged {
			cl = on
		}
		oid, err := cl.NewOID(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := neotest.Commit(ctx, cl, oid, proto.ZeroTid, data); err != nil {
			b.Fatal(err)
		}
	})
}

// pairedCPU runs op(false) and op(true) in turn (either first as often)
// and reports the process's CPU time per op of each, and their ratio.
func pairedCPU(b *testing.B, op func(on bool)) {
	var cpu [2]time.Duration
	timed := func(on bool) {
		t0 := cpuTime()
		op(on)
		d := cpuTime() - t0
		if on {
			cpu[1] += d
		} else {
			cpu[0] += d
		}
	}
	b.ReportAllocs()
	n := 0
	for ; b.Loop(); n++ {
		first := n%2 == 0
		timed(first)
		timed(!first)
	}
	off, on := float64(cpu[0])/float64(n), float64(cpu[1])/float64(n)
	b.ReportMetric(off, "off-cpu-ns/op")
	b.ReportMetric(on, "on-cpu-ns/op")
	b.ReportMetric(on/off, "on/off")
}

// cpuTime returns the CPU time (user and system) of the process, every
// node and the client: wall time means little on a loaded machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPopulate is one transaction storing 100 new 1 KiB objects
// (incompressible), as neobench's populate, on a cluster of two storages
// with one replica: every object goes to both.
func BenchmarkPopulate(b *testing.B) {
	const perTxn = 100
	c := neotest.Start(b, neotest.Options{Storages: 2, Replicas: 1, Partitions: 12})
	cl := c.Open(b, client.Config{})
	ctx := context.Background()
	data := make([][]byte, perTxn)
	for i := range data {
		data[i] = benchData(uint64(i))
	}
	b.SetBytes(perTxn * 1024)
	b.ReportAllocs()
	for b.Loop() {
		txn, err := cl.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		for i := range perTxn {
			oid, err := cl.NewOID(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if err := txn.Store(ctx, oid, proto.ZeroTid, data[i]); err != nil {
				b.Fatal(err)
			}
		}
		if err := txn.Vote(ctx); err != nil {
			b.Fatal(err)
		}
		if _, err := txn.Finish(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
