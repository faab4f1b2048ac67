package neonet

import (
	"bytes"
	"context"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/neogo/neo/proto"
)

// BenchmarkModesPaired alternates single round trips over a raw echo and
// over links of each write mode, so that load changes hit all alike, and
// reports the median of each.
func BenchmarkModesPaired(b *testing.B) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
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
	raw, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	data := bytes.Repeat([]byte{'d'}, 4096)
	modes := []writeMode{writeDirect, writeGoroutine, writeHybrid}
	names := []string{"direct", "goroutine", "hybrid"}
	links := make([]*Link, len(modes))
	for i, m := range modes {
		links[i], _ = pair(b, "tcp4", Config{writeMode: m}, Config{writeMode: m, Handler: objectHandler(data)})
	}
	msg := bytes.Repeat([]byte{'x'}, 32)
	var buf [32]byte
	ctx := context.Background()
	rawT := make([]time.Duration, 0, b.N)
	pingT := make([][]time.Duration, len(modes))
	objT := make([][]time.Duration, len(modes))
	var ans proto.AnswerObject
	for b.Loop() {
		t0 := time.Now()
		raw.Write(msg)
		io.ReadFull(raw, buf[:])
		rawT = append(rawT, time.Since(t0))
		for i, l := range links {
			t0 = time.Now()
			if err := l.Ask(ctx, &proto.Ping{}, &proto.Pong{}); err != nil {
				b.Fatal(err)
			}
			pingT[i] = append(pingT[i], time.Since(t0))
			t0 = time.Now()
			if err := l.Ask(ctx, &proto.AskObject{Oid: 1, At: proto.InvalidTid, Before: proto.InvalidTid}, &ans); err != nil {
				b.Fatal(err)
			}
			objT[i] = append(objT[i], time.Since(t0))
		}
	}
	rawP := p50(rawT)
	b.ReportMetric(rawP, "raw-p50-ns")
	for i, n := range names {
		b.ReportMetric(p50(pingT[i]), "ping-"+n+"-p50-ns")
		b.ReportMetric(p50(objT[i]), "obj-"+n+"-p50-ns")
	}
	b.ReportMetric(p50(pingT[0])/rawP, "ping/raw")
	b.ReportMetric(p50(objT[0])/rawP, "obj/raw")
}

// BenchmarkModesParallelPaired alternates blocks of concurrent AskObject
// calls (8 askers) on links of each write mode.
func BenchmarkModesParallelPaired(b *testing.B) {
	data := bytes.Repeat([]byte{'d'}, 4096)
	modes := []writeMode{writeDirect, writeGoroutine, writeHybrid}
	names := []string{"direct", "goroutine", "hybrid"}
	links := make([]*Link, len(modes))
	for i, m := range modes {
		links[i], _ = pair(b, "tcp4", Config{writeMode: m}, Config{writeMode: m, Handler: objectHandler(data)})
	}
	const askers, perAsker = 8, 25
	ctx := context.Background()
	blockT := make([][]time.Duration, len(modes))
	for b.Loop() {
		for i, l := range links {
			t0 := time.Now()
			var wg sync.WaitGroup
			for range askers {
				wg.Go(func() {
					var ans proto.AnswerObject
					for range perAsker {
						if err := l.Ask(ctx, &proto.AskObject{Oid: 1, At: proto.InvalidTid, Before: proto.InvalidTid}, &ans); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			blockT[i] = append(blockT[i], time.Since(t0)/(askers*perAsker))
		}
	}
	for i, n := range names {
		b.ReportMetric(p50(blockT[i]), n+"-p50-ns/ask")
	}
}

func p50(d []time.Duration) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[len(s)/2])
}
