package ctl_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/neogo/neo/ctl"
	"github.com/neogo/neo/ctl/ctltest"
	"github.com/neogo/neo/proto"
)

var (
	s1 = proto.NewNodeID(proto.STORAGE, 1)
	s2 = proto.NewNodeID(proto.STORAGE, 2)
	m1 = proto.NewNodeID(proto.MASTER, 1)
)

// admin answers like a neoppod admin of a RUNNING 2-storage cluster.
func admin(req proto.Msg) ctltest.Reply {
	U := proto.UP_TO_DATE
	rows := [][]proto.CellInfo{{{NID: s1, State: U}}, {{NID: s2, State: proto.OUT_OF_DATE}, {NID: s1, State: U}}, {{NID: s2, State: U}}}
	switch req := req.(type) {
	case *proto.AskClusterState:
		return ctltest.Reply{Msg: &proto.AnswerClusterState{State: proto.Some(proto.RUNNING)}}
	case *proto.AskNodeList:
		all := []proto.NodeInfo{
			{Type: proto.MASTER, Addr: proto.Addr{Host: "127.0.0.1", Port: 1}, NID: m1, State: proto.NODE_RUNNING},
			{Type: proto.STORAGE, Addr: proto.Addr{Host: "127.0.0.1", Port: 2}, NID: s1, State: proto.NODE_RUNNING},
			{Type: proto.STORAGE, Addr: proto.Addr{Host: "127.0.0.1", Port: 3}, NID: s2, State: proto.DOWN},
		}
		var nodes []proto.NodeInfo
		for _, n := range all {
			if t, ok := req.NodeType.Get(); !ok || t == n.Type {
				nodes = append(nodes, n)
			}
		}
		return ctltest.Reply{Msg: &proto.AnswerNodeList{NodeList: nodes}}
	case *proto.AskPartitionList:
		max := req.MaxOffset
		if max == 0 {
			max = uint32(len(rows))
		}
		if req.MinOffset >= max || max > uint32(len(rows)) {
			return ctltest.Reply{Close: true}
		}
		return ctltest.Reply{Msg: &proto.AnswerPartitionList{PTid: 7, NumReplicas: 1, RowList: rows[req.MinOffset:max]}}
	case *proto.AskRecovery:
		return ctltest.Reply{Msg: &proto.AnswerRecovery{PTid: 7, BackupTid: proto.InvalidTid, TruncateTid: proto.InvalidTid}}
	case *proto.AskLastIDs:
		return ctltest.Reply{Msg: &proto.AnswerLastIDs{LastTid: 0x3937af2eeeeeeee, LastOid: 0x1f, FirstTid: 1}}
	case *proto.AskPrimary:
		return ctltest.Reply{Msg: &proto.AnswerPrimary{PrimaryNID: m1}}
	case *proto.SetClusterState:
		if req.State == proto.STOPPING {
			return ctltest.Reply{Msg: &proto.Error{Code: proto.ACK, Message: "Cluster state changed"}}
		}
		return ctltest.Reply{Msg: &proto.Error{Code: proto.DENIED, Message: "Invalid state requested"}}
	case *proto.TweakPartitionTable:
		return ctltest.Reply{Msg: &proto.AnswerTweakPartitionTable{Changed: len(req.NIDList) > 0, RowList: rows}}
	case *proto.AddPendingNodes:
		return ctltest.Reply{Msg: &proto.Error{Code: proto.ACK, Message: fmt.Sprint("Nodes added: ", req.NIDList)}}
	}
	return ctltest.Reply{Msg: &proto.Error{Code: proto.PROTOCOL_ERROR, Message: fmt.Sprintf("unexpected %T", req)}, Close: true}
}

// testCtx is a context bounded by a deadline, so that a fake admin that
// never answers fails the test instead of hanging it.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func dial(t *testing.T, handle func(proto.Msg) ctltest.Reply) *ctl.Client {
	t.Helper()
	a := ctltest.Start(t, handle)
	c, err := ctl.Dial(testCtx(t), ctl.Config{Addr: a.Addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestClientPrints(t *testing.T) {
	c := dial(t, admin)
	ctx := testCtx(t)
	for _, tt := range []struct {
		name string
		do   func() (string, error)
		want string
	}{
		{"print cluster", func() (string, error) { return c.PrintClusterState(ctx) }, "RUNNING"},
		{"print primary", func() (string, error) { return c.PrintPrimary(ctx) }, "M1"},
		{"print ids", func() (string, error) { return c.PrintIDs(ctx) },
			"last_oid = 0x1f\nlast_tid = 0x3937af2eeeeeeee (2012-01-01 12:34:55.999999)\nlast_ptid = 7"},
		{"print pt", func() (string, error) { return c.PrintPartitionTable(ctx, 0, 0, 0) },
			"# ptid: 7, replicas: 1\nS1 R UU.\nS2 D .OU"},
		{"print pt 1", func() (string, error) { return c.PrintPartitionTable(ctx, 1, 0, 0) },
			"# ptid: 7, replicas: 1\n001 | S2 - OUT_OF_DATE | S1 - UP_TO_DATE |\n002 | S2 - UP_TO_DATE |"},
		{"print node storage", func() (string, error) { return c.PrintNodes(ctx, proto.Some(proto.STORAGE)) },
			"S1 | STORAGE | 127.0.0.1:2 | RUNNING | None\nS2 | STORAGE | 127.0.0.1:3 | DOWN    | None"},
		{"tweak unchanged", func() (string, error) { return c.Tweak(ctx, true, nil) }, "No change done."},
		{"tweak changed", func() (string, error) { return c.Tweak(ctx, false, []proto.NodeID{s2}) }, "S1 R UU.\nS2 D .OU"},
		{"set cluster STOPPING", func() (string, error) { return c.SetClusterState(ctx, proto.STOPPING) }, "Cluster state changed"},
		{"add", func() (string, error) { return c.AddPendingNodes(ctx, []proto.NodeID{s1, s2}) }, "Nodes added: [S1 S2]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.do()
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want\n%s", got, err, tt.want)
			}
		})
	}
}

// A backup cluster reports its backup tid instead of the last oid, and
// the last tid comes from AskLastTransaction.
func TestPrintIDsBackup(t *testing.T) {
	c := dial(t, func(req proto.Msg) ctltest.Reply {
		switch req.(type) {
		case *proto.AskRecovery:
			return ctltest.Reply{Msg: &proto.AnswerRecovery{BackupTid: 0x3937af2eeeeeeee, TruncateTid: proto.InvalidTid}}
		case *proto.AskLastTransaction:
			return ctltest.Reply{Msg: &proto.AnswerLastTransaction{Tid: 0x3937af2eeeeeeef}}
		}
		return ctltest.Reply{Close: true}
	})
	got, err := c.PrintIDs(testCtx(t))
	want := "backup_tid = 0x3937af2eeeeeeee (2012-01-01 12:34:55.999999)\n" +
		"last_tid = 0x3937af2eeeeeeef (2012-01-01 12:34:56)\nlast_ptid = None" // as neoppod prints them
	if err != nil || got != want {
		t.Errorf("got %q, %v; want\n%s", got, err, want)
	}
}

func TestClientErrors(t *testing.T) {
	ctx := testCtx(t)
	t.Run("DENIED is a *proto.Error with the master's message", func(t *testing.T) {
		_, err := dial(t, admin).SetClusterState(ctx, proto.RUNNING)
		var perr *proto.Error
		if !errors.As(err, &perr) || perr.Code != proto.DENIED || perr.Message != "Invalid state requested" {
			t.Errorf("got %v", err)
		}
	})
	t.Run("NOT_READY then close is a *proto.Error", func(t *testing.T) {
		c := dial(t, func(proto.Msg) ctltest.Reply {
			return ctltest.Reply{Msg: &proto.Error{Code: proto.NOT_READY, Message: "Not connected to a primary master."}, Close: true}
		})
		_, err := c.PrintClusterState(ctx)
		if !errors.Is(err, proto.ErrNotReady) {
			t.Errorf("got %v", err)
		}
	})
	t.Run("a connection closed before the answer is ErrConnectionClosed", func(t *testing.T) {
		_, err := dial(t, admin).PrintPartitionTable(ctx, 5, 0, 0)
		if !errors.Is(err, ctl.ErrConnectionClosed) {
			t.Errorf("got %v", err)
		}
	})
	t.Run("a peer closing during the handshake is ErrConnectionClosed", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		done := make(chan struct{})
		go func() {
			defer close(done)
			if c, err := l.Accept(); err == nil {
				c.Write([]byte("HTTP/1.0 400\r\n"))
				c.Close()
			}
		}()
		_, err = ctl.Dial(ctx, ctl.Config{Addr: l.Addr().String()})
		<-done
		if !errors.Is(err, ctl.ErrConnectionClosed) {
			t.Errorf("got %v", err)
		}
	})
	t.Run("a refused connection is ErrNotConnected", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		_, err = ctl.Dial(ctx, ctl.Config{Addr: addr})
		if !errors.Is(err, ctl.ErrNotConnected) {
			t.Errorf("got %v", err)
		}
	})
}
