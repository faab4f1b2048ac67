// Package ctltest provides a fake admin node for tests of neoctl: it
// accepts neoctl connections on loopback and answers each request with
// what a test function returns.
package ctltest

import (
	"context"
	"sync"
	"testing"

	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
)

// Reply tells the fake admin how to answer one request.
type Reply struct {
	// Msg is sent as the answer (an answer packet or a *proto.Error);
	// nil sends nothing.
	Msg proto.Msg
	// Close closes the connection after sending Msg.
	Close bool
}

// Admin is a fake admin node listening on 127.0.0.1.
type Admin struct {
	// Addr is the "host:port" to give neoctl.
	Addr string
}

// Start starts a fake admin that answers every request or notification
// with handle(msg); it stops at the end of the test. handle is called from
// the connection goroutines, one request at a time per connection.
func Start(t testing.TB, handle func(proto.Msg) Reply) *Admin {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l, err := neonet.Listen(ctx, "tcp", "127.0.0.1:0", neonet.Config{})
	if err != nil {
		cancel()
		t.Fatalf("fake admin: listen: %v", err)
	}
	var conns sync.WaitGroup
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			link, err := l.Accept(ctx)
			if err != nil {
				return
			}
			conns.Go(func() { serve(ctx, link, handle) })
		}
	}()
	t.Cleanup(func() {
		cancel()
		l.Close()
		<-done
		conns.Wait()
	})
	return &Admin{Addr: l.Addr().String()}
}

func serve(ctx context.Context, link *neonet.Link, handle func(proto.Msg) Reply) {
	defer link.Close()
	for {
		req, err := link.Recv(ctx)
		if err != nil {
			return
		}
		r := handle(req.Msg)
		if r.Msg != nil {
			if err := req.Reply(r.Msg); err != nil {
				return
			}
		}
		if r.Close {
			link.Abort()
			return
		}
	}
}
