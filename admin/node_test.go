package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
)

// Tests of the driver over loopback sockets: a fake master played by the
// test on one side, neoctl played by the test on the other.

const testTimeout = 10 * time.Second

// fakeMaster is a master whose every packet is written by the test.
type fakeMaster struct {
	ln   *neonet.Listener
	addr proto.Addr
}

func newFakeMaster(t *testing.T) *fakeMaster {
	t.Helper()
	ln, err := neonet.Listen(t.Context(), "tcp", "127.0.0.1:0", neonet.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return &fakeMaster{ln: ln, addr: addr(uint16(ln.Addr().(*net.TCPAddr).Port))}
}

// accept waits for the admin and returns its link and identification.
func (f *fakeMaster) accept(t *testing.T) (*neonet.Link, *neonet.Request) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	link, err := f.ln.Accept(ctx)
	if err != nil {
		t.Fatalf("fake master: accept: %v", err)
	}
	t.Cleanup(func() { link.Close() })
	r := recv(t, link)
	if _, ok := r.Msg.(*proto.RequestIdentification); !ok {
		t.Fatalf("fake master: got %T, want RequestIdentification", r.Msg)
	}
	return link, r
}

// welcome accepts the identification as a primary master does: answer,
// full node list, partition table, then the answer to AskClusterState.
func (f *fakeMaster) welcome(t *testing.T, link *neonet.Link, r *neonet.Request, ts float64, state proto.ClusterState) {
	t.Helper()
	must(t, r.Reply(&proto.AcceptIdentification{NodeType: proto.MASTER, MyNID: m1, YourNID: a1}))
	l := fullList()
	l.Timestamp = ts
	must(t, link.Send(l))
	must(t, link.Send(&proto.SendPartitionTable{PTid: 5, NumReplicas: 1, Rows: ptOf("UU|UU|UO|UU")}))
	q := recv(t, link)
	if _, ok := q.Msg.(*proto.AskClusterState); !ok {
		t.Fatalf("fake master: got %T, want AskClusterState", q.Msg)
	}
	must(t, q.Reply(&proto.AnswerClusterState{State: proto.Some(state)}))
}

func recv(t *testing.T, link *neonet.Link) *neonet.Request {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	r, err := link.Recv(ctx)
	if err != nil {
		t.Fatalf("recv: %v", err)
	}
	return r
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// running is the outcome of Run: err is set when done is closed.
type running struct {
	done chan struct{}
	err  error
}

// startAdmin runs an admin node for the test's duration.
func startAdmin(t *testing.T, cfg Config) (*Node, *running) {
	t.Helper()
	cfg.Cluster = "test"
	cfg.ReconnectDelay = 10 * time.Millisecond
	n, err := NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	run := &running{done: make(chan struct{})}
	go func() {
		run.err = n.Run(ctx)
		close(run.done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-run.done:
		case <-time.After(testTimeout):
			t.Error("admin did not stop")
		}
	})
	select {
	case <-n.Ready():
	case <-run.done:
		t.Fatalf("admin stopped: %v", run.err)
	case <-time.After(testTimeout):
		t.Fatal("admin not listening")
	}
	return n, run
}

// runningAdmin starts an admin with cfg (its masters: a fake one) and
// connects it to that master, RUNNING; it returns the master's link too.
func runningAdmin(t *testing.T, cfg Config) (*fakeMaster, *Node, *running, *neonet.Link) {
	t.Helper()
	f := newFakeMaster(t)
	cfg.Masters = []proto.Addr{f.addr}
	n, run := startAdmin(t, cfg)
	master, r := f.accept(t)
	f.welcome(t, master, r, 10, proto.RUNNING)
	waitConnected(t, n, proto.RUNNING)
	return f, n, run, master
}

// waitStopped waits for Run to return ErrStopped.
func waitStopped(t *testing.T, run *running) {
	t.Helper()
	select {
	case <-run.done:
		if !errors.Is(run.err, ErrStopped) {
			t.Fatalf("Run: %v, want ErrStopped", run.err)
		}
	case <-time.After(testTimeout):
		t.Fatal("admin still running after STOPPING")
	}
}

// ctl is neoctl: a link to the admin, without identification.
func ctl(t *testing.T, n *Node) *neonet.Link {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	link, err := neonet.Dial(ctx, "tcp", n.Addr().String(), neonet.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { link.Close() })
	return link
}

func ask(t *testing.T, link *neonet.Link, req, resp proto.Msg) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	return link.Ask(ctx, req, resp)
}

// waitConnected polls the admin until it answers the cluster state.
func waitConnected(t *testing.T, n *Node, want proto.ClusterState) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		var a proto.AnswerClusterState
		err := ask(t, ctl(t, n), &proto.AskClusterState{}, &a)
		if err == nil && a.State == proto.Some(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("admin not connected with state %v: last answer %v, %v", want, a.State, err)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation
	}
}

func waitClosed(t *testing.T, link *neonet.Link) {
	t.Helper()
	select {
	case <-link.Done():
	case <-time.After(testTimeout):
		t.Fatal("link not closed")
	}
}

func TestNotConnected(t *testing.T) {
	f := newFakeMaster(t)
	n, _ := startAdmin(t, Config{Masters: []proto.Addr{f.addr}})
	// The fake master does not accept yet: the admin has no primary.
	for _, req := range []proto.Msg{&proto.AskClusterState{}, &proto.AskPrimary{}, &proto.SetClusterState{State: proto.STOPPING}} {
		link := ctl(t, n)
		err := ask(t, link, req, nil)
		var perr *proto.Error
		if !errors.As(err, &perr) || perr.Code != proto.NOT_READY || perr.Message != "Not connected to a primary master." {
			t.Errorf("%T: got %v, want NOT_READY", req, err)
		}
		waitClosed(t, link)
	}
}

func TestServeNeoctl(t *testing.T) {
	f := newFakeMaster(t)
	n, _ := startAdmin(t, Config{Masters: []proto.Addr{f.addr}, NID: a1, Monitor: MonitorConfig{Backups: []string{"bk"}}})
	master, r := f.accept(t)
	id := r.Msg.(*proto.RequestIdentification)
	if id.NodeType != proto.ADMIN || id.NID != a1 || id.Addr != n.Addr() || id.ClusterName != "test" || id.IDTimestamp.Valid {
		t.Errorf("identification %+v", id)
	}
	if b, ok := id.Extra.Get("backup"); !ok || len(b.([]proto.Value)) != 1 || string(b.([]proto.Value)[0].([]byte)) != "bk" {
		t.Errorf("extra %+v, want backup [bk]", id.Extra)
	}
	f.welcome(t, master, r, 10, proto.RUNNING)
	waitConnected(t, n, proto.RUNNING)
	c := ctl(t, n)

	t.Run("answered by the admin", func(t *testing.T) {
		var p proto.AnswerPrimary
		must(t, ask(t, c, &proto.AskPrimary{}, &p))
		if p.PrimaryNID != m1 {
			t.Errorf("primary %v", p.PrimaryNID)
		}
		var nl proto.AnswerNodeList
		must(t, ask(t, c, &proto.AskNodeList{NodeType: proto.Some(proto.STORAGE)}, &nl))
		if len(nl.NodeList) != 2 {
			t.Errorf("storages %+v", nl.NodeList)
		}
		var pl proto.AnswerPartitionList
		must(t, ask(t, c, &proto.AskPartitionList{MinOffset: 2, MaxOffset: 3}, &pl))
		if pl.PTid != 5 || len(pl.RowList) != 1 || len(pl.RowList[0]) != 2 {
			t.Errorf("partition list %+v", pl)
		}
	})

	t.Run("commands are relayed", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			req    proto.Msg
			answer proto.Msg
			closes bool
		}{
			{"ACK", &proto.SetClusterState{State: proto.STOPPING}, &proto.Error{Code: proto.ACK, Message: "Cluster state changed"}, false},
			{"DENIED", &proto.SetNodeState{NID: s3, State: proto.DOWN}, &proto.Error{Code: proto.DENIED, Message: "unknown node"}, false},
			{"real answer", &proto.TweakPartitionTable{DryRun: true}, &proto.AnswerTweakPartitionTable{Changed: true, RowList: ptOf("U.|.U")}, false},
			{"last ids", &proto.AskLastIDs{}, &proto.AnswerLastIDs{LastTid: someTid, LastOid: 7, FirstTid: proto.MaxTid}, false},
			{"PROTOCOL_ERROR aborts neoctl", &proto.Truncate{Tid: 1}, &proto.Error{Code: proto.PROTOCOL_ERROR, Message: "bad"}, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := ctl(t, n)
				call, err := c.Start(tc.req, nil)
				must(t, err)
				// The master sees the very packet, with the admin's id.
				r := recv(t, master)
				if r.Msg.NEOMsgCode() != tc.req.NEOMsgCode() {
					t.Fatalf("master got %T, want %T", r.Msg, tc.req)
				}
				must(t, r.Reply(tc.answer))
				ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
				defer cancel()
				err = call.Wait(ctx)
				if e, ok := tc.answer.(*proto.Error); ok && e.Code != proto.ACK {
					var perr *proto.Error
					if !errors.As(err, &perr) || *perr != *e {
						t.Errorf("got %v, want %v", err, e)
					}
				} else {
					must(t, err)
					if got := call.Answer(); string(proto.AppendPacket(nil, 0, got)) != string(proto.AppendPacket(nil, 0, tc.answer)) {
						t.Errorf("answer %+v, want %+v", got, tc.answer)
					}
				}
				if tc.closes {
					waitClosed(t, c)
				} else if err := ask(t, c, &proto.AskPrimary{}, &proto.AnswerPrimary{}); err != nil {
					t.Errorf("link unusable after the relay: %v", err)
				}
			})
		}
	})

	t.Run("a relayed answer follows the notifications before it", func(t *testing.T) {
		c := ctl(t, n)
		call, err := c.Start(&proto.SetNodeState{NID: s2, State: proto.DOWN}, nil)
		must(t, err)
		r := recv(t, master)
		must(t, master.Send(&proto.NotifyPartitionChanges{PTid: 6, NumReplicas: 1, CellList: []proto.CellChange{
			{Offset: 0, NID: s2, State: proto.OUT_OF_DATE}}}))
		must(t, r.Reply(&proto.Error{Code: proto.ACK, Message: "state changed"}))
		ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
		defer cancel()
		must(t, call.Wait(ctx))
		var pl proto.AnswerPartitionList
		must(t, ask(t, c, &proto.AskPartitionList{MinOffset: 0, MaxOffset: 1}, &pl))
		if pl.PTid != 6 || pl.RowList[0][1] != (proto.CellInfo{NID: s2, State: proto.OUT_OF_DATE}) {
			t.Errorf("after the answer: %+v", pl)
		}
	})

	t.Run("flush_log is forwarded", func(t *testing.T) {
		must(t, c.Send(&proto.FlushLog{}))
		if r := recv(t, master); r.Msg.NEOMsgCode() != (&proto.FlushLog{}).NEOMsgCode() {
			t.Errorf("master got %T", r.Msg)
		}
	})

	t.Run("summary asks the last tid", func(t *testing.T) {
		call, err := c.Start(&proto.AskMonitorInformation{}, nil)
		must(t, err)
		r := recv(t, master)
		if _, ok := r.Msg.(*proto.AskLastTransaction); !ok {
			t.Fatalf("master got %T, want AskLastTransaction", r.Msg)
		}
		must(t, r.Reply(&proto.AnswerLastTransaction{Tid: proto.ZeroTid}))
		ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
		defer cancel()
		must(t, call.Wait(ctx))
		a := call.Answer().(*proto.AnswerMonitorInformation)
		// The monitored backup, whose admin is not connected, is a problem.
		want := "RUNNING; OUT_OF_DATE=2, UP_TO_DATE=6; ltid=0000000000000000 (1900-01-01 00:00:00)\n\nbk\n    None"
		if a.Summary != want || len(a.Warnings) != 1 || a.Warnings[0].Valid || len(a.Problems) != 1 || a.Problems[0] != proto.Some("bk") {
			t.Errorf("got %+v, want warning [nil], problem [bk] and %q", a, want)
		}
	})

	t.Run("unknown packets are protocol errors", func(t *testing.T) {
		c := ctl(t, n)
		err := ask(t, c, &proto.AskObject{}, nil)
		if !errors.Is(err, proto.ErrProtocol) {
			t.Errorf("got %v", err)
		}
		waitClosed(t, c)
	})
}

// TestBadOffset checks at the byte level that the error for rows out of
// range is a new packet of the admin, not an answer.
func TestBadOffset(t *testing.T) {
	_, n, _, _ := runningAdmin(t, Config{})

	conn, err := net.DialTimeout("tcp", n.Addr().String(), testTimeout)
	must(t, err)
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(testTimeout))
	_, err = conn.Write(proto.AppendPacket([]byte(proto.Handshake), 7, &proto.AskPartitionList{MinOffset: 0, MaxOffset: 9}))
	must(t, err)
	buf := make([]byte, len(proto.Handshake))
	_, err = io.ReadFull(conn, buf)
	must(t, err)
	var frame []byte
	for {
		k, err := proto.FrameSize(frame, 1<<20)
		must(t, err)
		if k > 0 {
			frame = frame[:k]
			break
		}
		b := make([]byte, 256)
		m, err := conn.Read(b)
		must(t, err)
		frame = append(frame, b[:m]...)
	}
	id, m, err := proto.DecodePacket(frame)
	must(t, err)
	e, ok := m.(*proto.Error)
	if !ok || id != 0 || e.Code != proto.PROTOCOL_ERROR || e.Message != "invalid partition table offset" {
		t.Errorf("got id %d %T %+v, want a new Error(PROTOCOL_ERROR) with the admin's first id", id, m, m)
	}
}

func TestMasterLoss(t *testing.T) {
	f, n, run, master := runningAdmin(t, Config{NID: a1})

	// A command in flight when the master goes away fails.
	c := ctl(t, n)
	call, err := c.Start(&proto.SetClusterState{State: proto.STOPPING}, nil)
	must(t, err)
	recv(t, master)
	master.Close()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	err = call.Wait(ctx)
	var perr *proto.Error
	if !errors.As(err, &perr) || perr.Code != proto.PROTOCOL_ERROR || perr.Message != "connection to master lost" {
		t.Errorf("in-flight command: got %v", err)
	}
	waitClosed(t, c)

	// The admin looks for the master again, without its old id, and the
	// new master's clock may be behind the old one.
	master, r := f.accept(t)
	if id := r.Msg.(*proto.RequestIdentification); id.NID != 0 {
		t.Errorf("second identification with id %v, want none", id.NID)
	}
	f.welcome(t, master, r, 1, proto.RECOVERING)
	waitConnected(t, n, proto.RECOVERING)

	// Losing the master after STOPPING stops the admin.
	must(t, master.Send(&proto.NotifyClusterInformation{State: proto.STOPPING}))
	waitConnected(t, n, proto.STOPPING)
	master.Close()
	waitStopped(t, run)
}

func TestNotPrimaryMaster(t *testing.T) {
	secondary, primary := newFakeMaster(t), newFakeMaster(t)
	n, _ := startAdmin(t, Config{Masters: []proto.Addr{secondary.addr}})
	link, _ := secondary.accept(t)
	one := uint32(1)
	must(t, link.Send(&proto.NotPrimaryMaster{Primary: proto.Some(one), KnownMasters: []proto.Addr{secondary.addr, primary.addr}}))
	link.Abort()
	master, r := primary.accept(t)
	primary.welcome(t, master, r, 10, proto.RUNNING)
	waitConnected(t, n, proto.RUNNING)
}

// TestInconsistentMaster: an update that does not apply drops the master,
// and the admin identifies again to reload everything.
func TestInconsistentMaster(t *testing.T) {
	f, n, _, master := runningAdmin(t, Config{})
	must(t, master.Send(&proto.NotifyPartitionChanges{PTid: 5, NumReplicas: 1})) // not newer than 5
	waitClosed(t, master)
	master, r := f.accept(t)
	f.welcome(t, master, r, 11, proto.VERIFYING)
	waitConnected(t, n, proto.VERIFYING)
}

// TestBackupAdmin: the admin of a monitored backup cluster identifies on
// the neoctl listener (others are refused as neoppod refuses them), its
// reports are merged and "print summary" shows it, with its lag behind
// this cluster, asking it its tids.
func TestBackupAdmin(t *testing.T) {
	_, n, _, master := runningAdmin(t, Config{Monitor: MonitorConfig{Backups: []string{"bk"}, MaxLag: 1}})
	for _, tc := range []struct {
		typ  proto.NodeType
		name string
		msg  string
	}{
		{proto.STORAGE, "bk", "reject non-admin node"},
		{proto.ADMIN, "other", `unknown backup cluster "other"`},
	} {
		c := ctl(t, n)
		err := ask(t, c, &proto.RequestIdentification{NodeType: tc.typ, ClusterName: tc.name}, &proto.AcceptIdentification{})
		var perr *proto.Error
		if !errors.As(err, &perr) || perr.Code != proto.PROTOCOL_ERROR || perr.Message != tc.msg {
			t.Errorf("%v %q: got %v, want PROTOCOL_ERROR %q", tc.typ, tc.name, err, tc.msg)
		}
		waitClosed(t, c)
	}

	t0 := time.Date(2026, 12, 7, 21, 0, 0, 500, time.UTC)
	mainTid := proto.TidFromTime(t0)
	var backupTid atomic.Uint64
	var notReady atomic.Bool // the backup admin has lost its master
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	bk, err := neonet.Dial(ctx, "tcp", n.Addr().String(), neonet.Config{Handler: func(r *neonet.Request) {
		switch r.Msg.(type) {
		case *proto.AskRecovery:
			if notReady.Load() {
				r.Reply(&proto.Error{Code: proto.NOT_READY, Message: notConnected})
				return
			}
			r.Reply(&proto.AnswerRecovery{PTid: 1, BackupTid: proto.Tid(backupTid.Load()), TruncateTid: proto.InvalidTid})
		case *proto.AskLastTransaction:
			r.Reply(&proto.AnswerLastTransaction{Tid: mainTid})
		}
	}})
	must(t, err)
	defer bk.Close()
	must(t, ask(t, bk, &proto.RequestIdentification{NodeType: proto.ADMIN, ClusterName: "bk", Extra: proto.Dict{}}, &proto.AcceptIdentification{}))
	err = ask(t, ctl(t, n), &proto.RequestIdentification{NodeType: proto.ADMIN, ClusterName: "bk"}, &proto.AcceptIdentification{})
	if !errors.Is(err, proto.ErrProtocol) || !strings.Contains(err.Error(), "already connected") {
		t.Errorf("second admin of bk: got %v, want already connected", err)
	}

	c := ctl(t, n)
	summary := func() *proto.AnswerMonitorInformation {
		t.Helper()
		call, err := c.Start(&proto.AskMonitorInformation{}, nil)
		must(t, err)
		r := recv(t, master)
		must(t, r.Reply(&proto.AnswerLastTransaction{Tid: mainTid}))
		ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
		defer cancel()
		must(t, call.Wait(ctx))
		return call.Answer().(*proto.AnswerMonitorInformation)
	}
	// waitBackup polls the summary until the backup's part is want.
	waitBackup := func(want string, warn, pbm []proto.Opt[string]) {
		t.Helper()
		for {
			a := summary()
			_, got, _ := strings.Cut(a.Summary, "\n")
			if got == want && slices.Equal(a.Warnings, warn) && slices.Equal(a.Problems, pbm) {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("backup part %q warnings %#v problems %#v\nwant %q %#v %#v", got, a.Warnings, a.Problems, want, warn, pbm)
			}
			time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation
		}
	}
	// This cluster has an OUT_OF_DATE cell: it is always a warning.
	none, bkName := []proto.Opt[string]{}, []proto.Opt[string]{proto.Some("bk")}
	me, meBk := []proto.Opt[string]{{}}, []proto.Opt[string]{{}, proto.Some("bk")}
	waitBackup("\nbk\n    None", me, bkName)

	backupTid.Store(uint64(proto.TidFromTime(t0.Add(-2500 * time.Millisecond))))
	must(t, bk.Send(&proto.NotifyMonitorInformation{Info: proto.Dict{
		{Key: "cluster_state", Value: proto.BACKINGUP},
		{Key: "down", Value: int64(0)},
		{Key: "pt_summary", Value: proto.Map{{Key: proto.UP_TO_DATE, Value: int64(2)}}},
	}}))
	waitBackup(fmt.Sprintf("\nbk\n    BACKINGUP; UP_TO_DATE=2; ltid=%016x; lag=2.5", backupTid.Load()), meBk, none)

	backupTid.Store(uint64(mainTid))
	waitBackup(fmt.Sprintf("\nbk\n    BACKINGUP; UP_TO_DATE=2; ltid=%016x; lag=0.0", uint64(mainTid)), me, none)
	// Behind within the same microsecond.
	backupTid.Store(uint64(mainTid - 1))
	waitBackup(fmt.Sprintf("\nbk\n    BACKINGUP; UP_TO_DATE=2; ltid=%016x; lag=ε", uint64(mainTid-1)), me, none)

	must(t, bk.Send(&proto.NotifyMonitorInformation{Info: proto.Dict{{Key: "down", Value: int64(1)}}}))
	waitBackup(fmt.Sprintf("\nbk\n    BACKINGUP; UP_TO_DATE=2; DOWN=1; ltid=%016x; lag=ε", uint64(mainTid-1)), me, bkName)

	// An error answer leaves the tids unknown; the link stays.
	notReady.Store(true)
	waitBackup("\nbk\n    BACKINGUP; UP_TO_DATE=2; DOWN=1", me, bkName)
	select {
	case <-bk.Done():
		t.Fatal("backup admin dropped after an error answer")
	default:
	}

	// A lost backup admin is unknown again.
	bk.Close()
	waitBackup("\nbk\n    None", me, bkName)
}

// TestStoppingRelaysAnswer: a master that answers STOPPING and closes at
// once stops the admin, and neoctl still gets the answer (the admin used to
// close neoctl's link before relaying it, now and then).
func TestStoppingRelaysAnswer(t *testing.T) {
	// The relay of the answer is held until the admin has seen the
	// master go and stopped serving: the admin must then wait for it
	// before closing neoctl's link.
	relaying, release := make(chan struct{}), make(chan struct{})
	testRelayHook = func() {
		close(relaying)
		<-release
	}
	t.Cleanup(func() { testRelayHook = nil })
	_, n, run, master := runningAdmin(t, Config{NID: a1})

	c := ctl(t, n)
	call, err := c.Start(&proto.SetClusterState{State: proto.STOPPING}, nil)
	must(t, err)
	q := recv(t, master)
	must(t, master.Send(&proto.NotifyClusterInformation{State: proto.STOPPING}))
	must(t, q.Reply(&proto.Error{Code: proto.ACK, Message: "Cluster state changed"}))
	master.Abort()

	select {
	case <-relaying:
	case <-time.After(testTimeout):
		t.Fatal("the answer was not relayed")
	}
	waitDone(t, n)
	close(release)

	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	err = call.Wait(ctx)
	if e, ok := call.Answer().(*proto.Error); err != nil || !ok || e.Code != proto.ACK {
		t.Fatalf("SetClusterState STOPPING: got %v, %v; want the master's ACK", call.Answer(), err)
	}
	waitStopped(t, run)
}

// waitDone polls the admin until its Run has left its loop (the master
// lost) and serves no more (mu.done).
func waitDone(t *testing.T, n *Node) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		n.mu.Lock()
		done := n.mu.done
		n.mu.Unlock()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("admin still serving after the loss of a STOPPING master")
		}
		time.Sleep(time.Millisecond) // polling interval, not synchronisation
	}
}
