package nodehttp

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
)

// BenchmarkObserver measures what the metrics cost one request served:
// the request received, its answer sent, its time observed.
func BenchmarkObserver(b *testing.B) {
	m := New(Options{}).net
	ask, ans := (&proto.AskObject{}).NEOMsgCode(), (&proto.AnswerObject{}).NEOMsgCode()
	b.ReportAllocs()
	for b.Loop() {
		m.PacketReceived(ask, 40)
		m.PacketSent(ans, 4200)
		m.RequestServed(ask, 30*time.Microsecond)
	}
}

// BenchmarkAskObject4KPaired alternates a load of 4 KiB over loopback TCP
// on links observed by the metrics (both ends, as between a client and a
// storage that serve --http) and on links that are not, so that load
// changes of the machine hit both alike; it reports the median of each and
// their ratio (on/off).
func BenchmarkAskObject4KPaired(b *testing.B) {
	off := benchLink(b, false)
	on := benchLink(b, true)
	ctx := context.Background()
	ask := &proto.AskObject{Oid: 1, At: proto.InvalidTid, Before: proto.InvalidTid}
	var ans proto.AnswerObject
	var offT, onT []time.Duration
	b.ReportAllocs()
	timed := func(l *neonet.Link) time.Duration {
		t0 := time.Now()
		if err := l.Ask(ctx, ask, &ans); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 { // either goes first as often
			offT = append(offT, timed(off))
			onT = append(onT, timed(on))
		} else {
			onT = append(onT, timed(on))
			offT = append(offT, timed(off))
		}
	}
	b.StopTimer()
	o, m := median(offT), median(onT)
	b.ReportMetric(o, "off-p50-ns")
	b.ReportMetric(m, "on-p50-ns")
	b.ReportMetric(m/o, "on/off")
}

func median(d []time.Duration) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[len(s)/2])
}

// benchLink returns the client end of a link to a server answering
// AskObject with 4 KiB; both ends observed by metrics if observed.
func benchLink(b *testing.B, observed bool) *neonet.Link {
	var ccfg, scfg neonet.Config
	if observed {
		ccfg.Observer, scfg.Observer = New(Options{}).NetObserver(), New(Options{}).NetObserver()
	}
	data := bytes.Repeat([]byte{'d'}, 4096)
	scfg.Handler = func(r *neonet.Request) {
		ask := r.Msg.(*proto.AskObject)
		r.Reply(&proto.AnswerObject{Oid: ask.Oid, Serial: 1, NextSerial: proto.InvalidTid,
			Compression: proto.Some[uint8](0), Checksum: make([]byte, 20), Data: data, DataSerial: proto.InvalidTid})
	}
	ctx := context.Background()
	ln, err := neonet.Listen(ctx, "tcp4", "127.0.0.1:0", scfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	cli, err := neonet.Dial(ctx, "tcp4", ln.Addr().String(), ccfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cli.Close() })
	srv, err := ln.Accept(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	return cli
}
