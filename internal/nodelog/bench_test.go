package nodelog

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
)

// BenchmarkLogPacket is what recording one packet costs the link that
// carries it: a 1 KiB body (a store or a load's answer) into the RAM
// buffer, full (the oldest records dropped), as on a busy node.
func BenchmarkLogPacket(b *testing.B) {
	l, err := Open(filepath.Join(b.TempDir(), "n.log"), Options{MaxBuffer: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	link := benchLink(b)
	o := l.Observer().(neonet.PacketLogger)
	body := make([]byte, 1024)
	code := (&proto.AnswerObject{}).NEOMsgCode()
	b.ReportAllocs()
	for b.Loop() {
		o.LogPacket(link, true, 1, code, body)
	}
}

// BenchmarkLogDebug is what one slog.Debug record with two attributes
// costs with the log (every level is recorded).
func BenchmarkLogDebug(b *testing.B) {
	l, err := Open(filepath.Join(b.TempDir(), "n.log"), Options{MaxBuffer: 1 << 20, Level: slog.LevelDebug})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	log := slog.New(l.Handler(slog.DiscardHandler)).With("node", "master")
	b.ReportAllocs()
	for b.Loop() {
		log.Debug("lock", "ttid", proto.Tid(0x3937af2eeeeeeee), "nodes", 2)
	}
}

// benchLink returns one end of a link over loopback TCP.
func benchLink(b *testing.B) *neonet.Link {
	ctx := context.Background()
	ln, err := neonet.Listen(ctx, "tcp", "127.0.0.1:0", neonet.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	acc := make(chan *neonet.Link, 1)
	go func() {
		l, _ := ln.Accept(ctx)
		acc <- l
	}()
	link, err := neonet.Dial(ctx, "tcp", ln.Addr().String(), neonet.Config{})
	if err != nil {
		b.Fatal(err)
	}
	peer := <-acc
	b.Cleanup(func() { link.Close(); peer.Close() })
	link.SetPeerID(proto.NewNodeID(proto.STORAGE, 1))
	return link
}
