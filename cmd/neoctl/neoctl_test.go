package main

import (
	"bytes"
	"context"
	"net"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/neogo/neo/ctl/ctltest"
	"github.com/neogo/neo/proto"
)

// testTimeout bounds each neoctl run of the tests.
const testTimeout = 10 * time.Second

// neoctl runs the command line and returns stdout, stderr and exit status
// as the real main would produce them.
func neoctl(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	m := &Main{Stdout: &stdout, Stderr: &stderr}
	// A fake admin that never answers fails the test instead of hanging it.
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	code := exitStatus(m.Run(ctx, args), &stderr)
	return stdout.String(), stderr.String(), code
}

// recorder is a fake admin that records the requests it gets.
type recorder struct {
	mu   sync.Mutex
	reqs []proto.Msg
}

func (r *recorder) handle(req proto.Msg) ctltest.Reply {
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.mu.Unlock()
	switch req := req.(type) {
	case *proto.AskClusterState:
		return ctltest.Reply{Msg: &proto.AnswerClusterState{State: proto.Some(proto.RECOVERING)}}
	case *proto.AskPartitionList:
		return ctltest.Reply{Msg: &proto.AnswerPartitionList{PTid: 1, RowList: make([][]proto.CellInfo, 3)}}
	case *proto.AskNodeList:
		return ctltest.Reply{Msg: &proto.AnswerNodeList{NodeList: []proto.NodeInfo{
			{Type: proto.STORAGE, NID: proto.NewNodeID(proto.STORAGE, 1), State: proto.PENDING},
			{Type: proto.STORAGE, NID: proto.NewNodeID(proto.STORAGE, 3), State: proto.NODE_RUNNING},
		}}}
	case *proto.SetClusterState:
		if req.State == proto.VERIFYING {
			return ctltest.Reply{Msg: &proto.Error{Code: proto.ACK, Message: "Cluster state changed"}}
		}
		return ctltest.Reply{Msg: &proto.Error{Code: proto.DENIED, Message: "Can not switch to this state"}}
	case *proto.SetNumReplicas, *proto.CheckReplicas, *proto.Truncate, *proto.Repair:
		return ctltest.Reply{Msg: &proto.Error{Code: proto.ACK}}
	case *proto.AddPendingNodes:
		return ctltest.Reply{Msg: &proto.Error{Code: proto.ACK, Message: "No node added"}}
	case *proto.FlushLog:
		return ctltest.Reply{}
	}
	return ctltest.Reply{Msg: &proto.Error{Code: proto.NOT_READY, Message: "Not connected to a primary master."}, Close: true}
}

func (r *recorder) requests() []proto.Msg {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]proto.Msg(nil), r.reqs...)
}

var (
	s1 = proto.NewNodeID(proto.STORAGE, 1)
	s2 = proto.NewNodeID(proto.STORAGE, 2)
	s3 = proto.NewNodeID(proto.STORAGE, 3)
)

func TestCommands(t *testing.T) {
	for _, tt := range []struct {
		args           []string
		stdout, stderr string
		code           int
		sent           []proto.Msg // requests the admin must have got
	}{
		{args: []string{"print", "cluster"}, stdout: "RECOVERING\n"},
		{args: []string{"start"}, stdout: "Cluster state changed\n",
			sent: []proto.Msg{&proto.SetClusterState{State: proto.VERIFYING}}},
		{args: []string{"set", "cluster", "running"}, stderr: "Can not switch to this state\n", code: 1,
			sent: []proto.Msg{&proto.SetClusterState{State: proto.RUNNING}}},
		{args: []string{"set", "replicas", " 1_0"}, stdout: "\n", sent: []proto.Msg{&proto.SetNumReplicas{NumReplicas: 10}}},
		{args: []string{"set", "replicas", "-1"}, stderr: "invalid number of replicas\n", code: 1},
		{args: []string{"print", "primary"}, stderr: "ERROR: Not connected to a primary master.\n", code: 1},
		{args: []string{"add", "all"}, stdout: "No node added\n",
			sent: []proto.Msg{&proto.AskNodeList{NodeType: proto.Some(proto.STORAGE)}, &proto.AddPendingNodes{NIDList: []proto.NodeID{s1, s3}}}},
		{args: []string{"add"}, stdout: "No node added\n", sent: []proto.Msg{&proto.AddPendingNodes{}}}, // an empty list decodes as nil
		{args: []string{"prune_orphan", "1", "S2", "S1"}, stdout: "\n",
			sent: []proto.Msg{&proto.Repair{NIDList: []proto.NodeID{s2, s1}, DryRun: true}}},
		{args: []string{"truncate", "tid:0x10"}, sent: []proto.Msg{&proto.Truncate{Tid: 0x10}}},
		{args: []string{"check", "2:", "0:S2", "2:S1", "tid:5", "tid:9"}, sent: []proto.Msg{&proto.CheckReplicas{
			PartitionDict: []proto.CheckSource{{Partition: 2, Source: s1}, {Partition: 0, Source: s2}}, MinTid: 5, MaxTid: 9}}},
		{args: []string{"check", ":S2", "1:"}, sent: []proto.Msg{
			&proto.AskPartitionList{},
			&proto.CheckReplicas{PartitionDict: []proto.CheckSource{{Partition: 0, Source: s2}, {Partition: 1}, {Partition: 2, Source: s2}}, MaxTid: proto.InvalidTid}}},
		{args: []string{"flush_log"}, sent: []proto.Msg{&proto.FlushLog{}}},
		{args: []string{"kill"}, stderr: "kill: missing argument (see neoctl without arguments)\n", code: 1},
		{args: []string{"drop", "X1"}, stderr: "invalid node \"X1\" (want a node id like S1)\n", code: 1},
		{args: []string{"print", "node", "bogus"}, stderr: "invalid node type \"bogus\"\n", code: 1},
		{args: []string{"print", "foo"}, stderr: "invalid command: print foo\n", code: 1},
		{args: []string{"print"}, stderr: "invalid command: print\n", code: 1},
		{args: []string{"foo", "bar"}, stderr: "invalid command: foo bar\n", code: 1},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := &recorder{}
			a := ctltest.Start(t, r.handle)
			stdout, stderr, code := neoctl(t, append([]string{"-a", a.Addr}, tt.args...)...)
			if stdout != tt.stdout || stderr != tt.stderr || code != tt.code {
				t.Errorf("got exit %d, stdout %q, stderr %q; want exit %d, stdout %q, stderr %q",
					code, stdout, stderr, tt.code, tt.stdout, tt.stderr)
			}
			if tt.sent == nil {
				return
			}
			// The fake admin may not have read a notification yet.
			got := r.requests()
			if len(got) < len(tt.sent) {
				ctltestWait(t, r, len(tt.sent))
				got = r.requests()
			}
			if !reflect.DeepEqual(got, tt.sent) {
				t.Errorf("admin got %#v, want %#v", got, tt.sent)
			}
		})
	}
}

// ctltestWait polls until the recorder has n requests, for 5 s at most.
func ctltestWait(t *testing.T, r *recorder, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for len(r.requests()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("admin got %d requests, want %d", len(r.requests()), n)
		}
		select {
		case <-tick.C:
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		}
	}
}

func TestUsageAndOptions(t *testing.T) {
	t.Run("without command: the command tree and the TID note", func(t *testing.T) {
		stdout, stderr, code := neoctl(t)
		if code != 0 || stderr != "" {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		tree := regexp.MustCompile(`(?m)^ *[a-z_]+$`).FindAllString(stdout, -1)
		want := []string{"print", "  ids", "  pt", "  node", "  cluster", "  primary", "  summary",
			"set", "  cluster", "  replicas", "check", "start", "add", "tweak", "drop", "kill",
			"prune_orphan", "truncate", "flush_log"}
		if !reflect.DeepEqual(tree, want) {
			t.Errorf("tree %q, want %q", tree, want)
		}
		if !strings.HasPrefix(stdout, "Available commands:\n") || !strings.Contains(stdout, "tid:") {
			t.Errorf("got\n%s", stdout)
		}
	})
	t.Run("-h prints the usage", func(t *testing.T) {
		stdout, _, code := neoctl(t, "-h")
		if code != 0 || !strings.HasPrefix(stdout, "usage: neoctl") {
			t.Errorf("exit %d, stdout %q", code, stdout)
		}
	})
	t.Run("an unknown option exits 2", func(t *testing.T) {
		_, stderr, code := neoctl(t, "--bogus", "print", "cluster")
		if code != 2 || !strings.Contains(stderr, "neoctl: error:") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})
	t.Run("a refused connection is ERROR: not connected", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		stdout, stderr, code := neoctl(t, "--address", addr, "print", "cluster")
		if code != 1 || stdout != "" || stderr != "ERROR: not connected\n" {
			t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
	})
	t.Run("partial TLS options are an error", func(t *testing.T) {
		_, stderr, code := neoctl(t, "--ca", "x", "print", "cluster")
		if code != 1 || strings.Count(stderr, "\n") != 1 {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})
}

func TestResolveAddr(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"127.0.0.1:1234", "127.0.0.1:1234"},
		{"127.0.0.1", "127.0.0.1:9999"},
		{"[::1]:5", "[::1]:5"},
		{"[::1]", "[::1]:9999"},
		{"::1", "[::1]:9999"},
		{"127.0.0.1:x", ""},
		{"[::1]x", ""},
	} {
		got, err := resolveAddr(t.Context(), tt.in)
		if got != tt.want || (err != nil) != (tt.want == "") {
			t.Errorf("%q: got %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
