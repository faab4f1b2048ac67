package neonet

import (
	"testing"

	"github.com/neogo/neo/proto"
)

// With DeliverPing the application answers a Ping, in turn with what it
// sends; without, the reader answers it at once.
func TestDeliverPing(t *testing.T) {
	log, _ := testLogger(t)
	ctx := testCtx(t)
	cli, srv := pair(t, "tcp4", Config{Logger: log}, Config{Logger: log, DeliverPing: true})
	call, err := cli.Start(&proto.Ping{}, &proto.Pong{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := srv.Recv(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Msg.(*proto.Ping); !ok {
		t.Fatalf("received %T, want the Ping", r.Msg)
	}
	// A notification sent before the Pong arrives before it.
	if err := srv.Send(&proto.NotifyReady{}); err != nil {
		t.Fatal(err)
	}
	if err := r.Reply(&proto.Pong{}); err != nil {
		t.Fatal(err)
	}
	if err := call.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := cli.Recv(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := n.Msg.(*proto.NotifyReady); !ok {
		t.Fatalf("received %T", n.Msg)
	}

	// Default: answered by the link itself.
	cli2, _ := pair(t, "tcp4", Config{Logger: log}, Config{Logger: log})
	if err := cli2.Ask(ctx, &proto.Ping{}, &proto.Pong{}); err != nil {
		t.Fatal(err)
	}
}
