package neonet

import (
	"bytes"
	"context"
	"flag"
	"io"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/neogo/neo/proto"
)

// Round-trip benchmarks over loopback TCP. BenchmarkRawTCPEcho32 is the
// floor: 32 bytes echoed by a goroutine on a plain net.Conn. Compare with
//
//	go test -run '^$' -bench . -count 10 ./neonet > bench.txt
//	benchstat bench.txt
//
// On a loaded machine the separate benchmarks vary too much for a ratio;
// BenchmarkRoundTripPaired alternates raw and NEO round trips one by one
// and reports their medians and ratios.

// echoConn returns a plain TCP connection to a goroutine that echoes
// 32-byte messages; both end with the benchmark.
func echoConn(b *testing.B) net.Conn {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	echoDone := make(chan struct{})
	go func() {
		defer close(echoDone)
		conn, err := ln.Accept()
		ln.Close()
		if err != nil {
			return
		}
		defer conn.Close()
		var buf [32]byte
		for {
			if _, err := io.ReadFull(conn, buf[:]); err != nil {
				return
			}
			if _, err := conn.Write(buf[:]); err != nil {
				return
			}
		}
	}()
	conn, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		ln.Close()
		<-echoDone
		b.Fatal(err)
	}
	b.Cleanup(func() {
		conn.Close()
		<-echoDone
	})
	return conn
}

// BenchmarkRawTCPEcho32 measures one 32-byte write and read back through a
// goroutine echoing on a plain TCP connection.
func BenchmarkRawTCPEcho32(b *testing.B) {
	conn := echoConn(b)
	msg := bytes.Repeat([]byte{'x'}, 32)
	var buf [32]byte
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := conn.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(conn, buf[:]); err != nil {
			b.Fatal(err)
		}
	}
}

// benchObserve gives both links of the benchmarks an Observer, to
// measure its cost (go test -bench . ./neonet -args -observe).
var benchObserve = flag.Bool("observe", false, "benchmarks: links with an Observer counting atomically")

// atomicObserver counts packets, bytes and serving times with atomic
// adds, as a metrics observer does.
type atomicObserver struct {
	packets, bytes [2][256]atomic.Int64 // [answer][code&0xff]
	served         [256]atomic.Int64
}

func (o *atomicObserver) PacketSent(code uint16, size int) {
	o.packets[code>>15][code&0xff].Add(1)
	o.bytes[code>>15][code&0xff].Add(int64(size))
}

func (o *atomicObserver) PacketReceived(code uint16, size int) { o.PacketSent(code, size) }

func (o *atomicObserver) RequestServed(code uint16, d time.Duration) {
	o.served[code&0xff].Add(int64(d))
}

func (o *atomicObserver) LinkOpened() {}
func (o *atomicObserver) LinkClosed() {}

// benchPair returns connected links for a benchmark.
func benchPair(b *testing.B, scfg Config) *Link {
	var ccfg Config
	if *benchObserve {
		ccfg.Observer, scfg.Observer = new(atomicObserver), new(atomicObserver)
	}
	cli, _ := pair(b, "tcp4", ccfg, scfg)
	return cli
}

// BenchmarkAskPing measures Ask(Ping) → Pong, answered by the peer's link
// layer.
func BenchmarkAskPing(b *testing.B) {
	cli := benchPair(b, Config{})
	ctx := context.Background()
	var pong proto.Pong
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := cli.Ask(ctx, &proto.Ping{}, &pong); err != nil {
			b.Fatal(err)
		}
	}
}

// objectHandler answers AskObject with 4 KiB of data, on the reader
// goroutine as a storage serving loads would.
func objectHandler(data []byte) func(*Request) {
	return func(r *Request) {
		if ask, ok := r.Msg.(*proto.AskObject); ok {
			r.Reply(&proto.AnswerObject{
				Oid: ask.Oid, Serial: 1, NextSerial: proto.InvalidTid, Compression: proto.Some[uint8](0),
				Checksum: make([]byte, 20), Data: data, DataSerial: proto.InvalidTid,
			})
		}
	}
}

// BenchmarkAskObject4K measures Ask(AskObject) → AnswerObject with 4 KiB
// of data.
func BenchmarkAskObject4K(b *testing.B) {
	cli := benchPair(b, Config{Handler: objectHandler(bytes.Repeat([]byte{'d'}, 4096))})
	ctx := context.Background()
	var ans proto.AnswerObject
	b.ReportAllocs()
	b.SetBytes(4096)
	b.ResetTimer()
	for b.Loop() {
		if err := cli.Ask(ctx, &proto.AskObject{Oid: 1, At: proto.InvalidTid, Before: proto.InvalidTid}, &ans); err != nil {
			b.Fatal(err)
		}
	}
	if len(ans.Data) != 4096 {
		b.Fatalf("answer with %d bytes", len(ans.Data))
	}
}

// BenchmarkAskObject4KParallel is BenchmarkAskObject4K with concurrent
// askers (GOMAXPROCS × 4) sharing the link, where writes contend.
func BenchmarkAskObject4KParallel(b *testing.B) {
	cli := benchPair(b, Config{Handler: objectHandler(bytes.Repeat([]byte{'d'}, 4096))})
	b.ReportAllocs()
	b.SetBytes(4096)
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var ans proto.AnswerObject
		for pb.Next() {
			if err := cli.Ask(context.Background(), &proto.AskObject{Oid: 1, At: proto.InvalidTid, Before: proto.InvalidTid}, &ans); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkRoundTripPaired alternates one raw 32-byte echo, one
// Ask(Ping) and one Ask(AskObject) answered with 4 KiB, so that load
// changes hit them alike, and reports the median of each and the ratios
// to the raw echo. Its ns/op is the sum of the three.
func BenchmarkRoundTripPaired(b *testing.B) {
	raw := echoConn(b)
	cli := benchPair(b, Config{Handler: objectHandler(bytes.Repeat([]byte{'d'}, 4096))})
	ctx := context.Background()
	msg := bytes.Repeat([]byte{'x'}, 32)
	var buf [32]byte
	var pong proto.Pong
	var ans proto.AnswerObject
	var rawT, pingT, objT []time.Duration
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		if _, err := raw.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(raw, buf[:]); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := cli.Ask(ctx, &proto.Ping{}, &pong); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		if err := cli.Ask(ctx, &proto.AskObject{Oid: 1, At: proto.InvalidTid, Before: proto.InvalidTid}, &ans); err != nil {
			b.Fatal(err)
		}
		t3 := time.Now()
		rawT = append(rawT, t1.Sub(t0))
		pingT = append(pingT, t2.Sub(t1))
		objT = append(objT, t3.Sub(t2))
	}
	b.StopTimer()
	r, p, o := median(rawT), median(pingT), median(objT)
	b.ReportMetric(r, "raw-p50-ns")
	b.ReportMetric(p, "ping-p50-ns")
	b.ReportMetric(o, "object-p50-ns")
	b.ReportMetric(p/r, "ping/raw")
	b.ReportMetric(o/r, "object/raw")
}

func median(d []time.Duration) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[len(s)/2])
}
