package admin

import (
	"context"
	"net"
	"testing"

	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
)

// The admin of a backup cluster reports to the upstream admin its
// master names: the whole health first, then what changed, and relays
// the upstream admin's questions to its master.
func TestReportToUpstreamAdmin(t *testing.T) {
	_, _, _, master := runningAdmin(t, Config{})
	ln, err := neonet.Listen(t.Context(), "tcp", "127.0.0.1:0", neonet.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	must(t, master.Send(&proto.NotifyUpstreamAdmin{Addr: addr(uint16(ln.Addr().(*net.TCPAddr).Port))}))
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	up, err := ln.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	r := recv(t, up)
	id, ok := r.Msg.(*proto.RequestIdentification)
	if !ok || id.NodeType != proto.ADMIN || id.ClusterName != "test" || id.NID != 0 {
		t.Fatalf("identification %+v", r.Msg)
	}
	must(t, r.Reply(&proto.AcceptIdentification{NodeType: proto.ADMIN}))
	info := func() proto.Dict {
		t.Helper()
		m, ok := recv(t, up).Msg.(*proto.NotifyMonitorInformation)
		if !ok {
			t.Fatalf("got %T, want NotifyMonitorInformation", m)
		}
		return m.Info
	}
	first := info()
	if st, _ := first.Get("cluster_state"); st != proto.RUNNING {
		t.Fatalf("first report %v", first)
	}
	if pt, _ := first.Get("pt_summary"); len(pt.(proto.Map)) != 2 {
		t.Fatalf("first report pt_summary %v", pt)
	}
	if _, ok := first.Get("down"); !ok {
		t.Fatalf("first report without down: %v", first)
	}
	must(t, master.Send(&proto.NotifyClusterInformation{State: proto.VERIFYING}))
	if next := info(); len(next) != 1 || next[0].Key != "cluster_state" || next[0].Value != proto.VERIFYING {
		t.Fatalf("second report %v, want the cluster state only", next)
	}
	// A question of the upstream admin goes to our master.
	call, err := up.Start(&proto.AskLastTransaction{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	q := recv(t, master)
	if _, ok := q.Msg.(*proto.AskLastTransaction); !ok {
		t.Fatalf("master got %T", q.Msg)
	}
	must(t, q.Reply(&proto.AnswerLastTransaction{Tid: 42}))
	if err := call.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if a, ok := call.Answer().(*proto.AnswerLastTransaction); !ok || a.Tid != 42 {
		t.Fatalf("relayed %+v", call.Answer())
	}
}
