package neonet

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/neogo/neo/proto"
)

// Requests answered by Error (SetClusterState...): Error(ACK) fills a
// *proto.Error resp; another code is the error.
func TestAskAnsweredByError(t *testing.T) {
	cli, srv := pair(t, "tcp4", Config{}, Config{})
	ctx := testCtx(t)
	for _, tc := range []struct {
		answer  proto.Error
		wantErr error
	}{
		{proto.Error{Code: proto.ACK, Message: "cluster state changed"}, nil},
		{proto.Error{Code: proto.DENIED, Message: "not now"}, proto.ErrDenied},
	} {
		var resp proto.Error
		call, err := cli.Start(&proto.SetClusterState{State: proto.VERIFYING}, &resp)
		if err != nil {
			t.Fatal(err)
		}
		recvReq(t, srv).Reply(&tc.answer)
		err = call.Wait(ctx)
		if tc.wantErr == nil {
			if err != nil || resp != tc.answer {
				t.Fatalf("got %v, resp %v; want nil, resp %v", err, resp, tc.answer)
			}
		} else if !errors.Is(err, tc.wantErr) || err.(*proto.Error).Message != tc.answer.Message {
			t.Fatalf("got %v, want %v", err, tc.wantErr)
		}
	}
}

// Replication (§5.12): the feeder sends AddObject notifications with the id
// of the AskFetchObjects request, then the answer; its own counter is not
// used.
func TestAddObjectReusesFetchID(t *testing.T) {
	requester, feeder := pair(t, "tcp4", Config{}, Config{})
	ctx := testCtx(t)
	requester.Send(&proto.NotifyReady{}) // so that the fetch id is not 0
	recvReq(t, feeder)

	var answer proto.AnswerFetchObjects
	call, err := requester.Start(&proto.AskFetchObjects{Partition: 3, Length: 1000, MaxTid: 10}, &answer)
	if err != nil {
		t.Fatal(err)
	}
	fetch := recvReq(t, feeder)
	if fetch.ID != call.ID() || call.ID() != 1 {
		t.Fatalf("fetch id %d, call id %d, want 1", fetch.ID, call.ID())
	}
	for oid := range proto.Oid(3) {
		if err := feeder.SendWithID(fetch.ID, &proto.AddObject{Oid: oid, Serial: 5, Checksum: make([]byte, 20), Data: []byte("data"), DataSerial: proto.InvalidTid}); err != nil {
			t.Fatal(err)
		}
	}
	fetch.Reply(&proto.AnswerFetchObjects{NextTid: proto.InvalidTid, NextOid: proto.InvalidOid})
	for oid := range proto.Oid(3) {
		r := recvReq(t, requester)
		add, ok := r.Msg.(*proto.AddObject)
		if !ok || r.ID != call.ID() || add.Oid != oid {
			t.Fatalf("got %s id %d, want AddObject oid %d id %d", proto.MsgName(r.Msg.NEOMsgCode()), r.ID, oid, call.ID())
		}
	}
	if err := call.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	feeder.Send(&proto.NotifyReady{})
	if r := recvReq(t, requester); r.ID != 0 {
		t.Fatalf("feeder's first own id is %d, want 0", r.ID)
	}
}

// Admin relay (§5.14): the admin forwards neoctl's request to the master
// and sends the master's answer, whatever it is, back with neoctl's id.
func TestAdminRelay(t *testing.T) {
	neoctl, adminUp := pair(t, "tcp4", Config{}, Config{})
	adminDown, master := pair(t, "tcp4", Config{}, Config{})
	ctx := testCtx(t)
	for range 5 { // neoctl's ids and the admin's differ
		neoctl.Send(&proto.NotifyReady{})
		recvReq(t, adminUp)
	}

	go func() { // the master
		for {
			r, err := master.Recv(ctx)
			if err != nil {
				return
			}
			switch r.Msg.(type) {
			case *proto.AskClusterState:
				r.Reply(&proto.AnswerClusterState{State: proto.Some(proto.RUNNING)})
			case *proto.SetClusterState:
				r.Reply(&proto.Error{Code: proto.DENIED, Message: "denied"})
			}
		}
	}()
	go func() { // the admin
		for {
			r, err := adminUp.Recv(ctx)
			if err != nil {
				return
			}
			call, err := adminDown.Start(r.Msg, nil)
			if err == nil {
				err = call.Wait(ctx)
			}
			var answer proto.Msg = call.Answer()
			if pe := (*proto.Error)(nil); errors.As(err, &pe) {
				answer = pe
			} else if err != nil {
				answer = &proto.Error{Code: proto.NOT_READY, Message: err.Error()}
			}
			r.Reply(answer)
		}
	}()

	var state proto.AnswerClusterState
	if err := neoctl.Ask(ctx, &proto.AskClusterState{}, &state); err != nil {
		t.Fatal(err)
	}
	if st, _ := state.State.Get(); st != proto.RUNNING {
		t.Fatalf("cluster state %v", state.State)
	}
	if err := neoctl.Ask(ctx, &proto.SetClusterState{State: proto.STOPPING}, nil); !errors.Is(err, proto.ErrDenied) {
		t.Fatalf("got %v, want DENIED", err)
	}
}

// Answers handed out stay intact while the link reads on: small ones are
// copied out of the read buffer, big ones keep theirs.
func TestAnswersDoNotAlias(t *testing.T) {
	sizes := []int{0, 100, 4096, bigFrame - 100, bigFrame, 100 << 10, 8 << 20, 10}
	handler := func(r *Request) {
		ask := r.Msg.(*proto.AskObject)
		data := bytes.Repeat([]byte{byte(ask.Oid)}, sizes[ask.Oid])
		r.Reply(&proto.AnswerObject{Oid: ask.Oid, Serial: 1, NextSerial: proto.InvalidTid, Compression: proto.Some[uint8](0),
			Checksum: make([]byte, 20), Data: data, DataSerial: proto.InvalidTid})
	}
	cli, _ := pair(t, "tcp4", Config{}, Config{Handler: handler})
	ctx := testCtx(t)
	calls := make([]*Call, len(sizes))
	for i := range sizes {
		var err error
		if calls[i], err = cli.Start(&proto.AskObject{Oid: proto.Oid(i), At: proto.InvalidTid, Before: proto.InvalidTid}, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range calls {
		if err := c.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range calls {
		a := c.Answer().(*proto.AnswerObject)
		if !bytes.Equal(a.Data, bytes.Repeat([]byte{byte(i)}, sizes[i])) {
			t.Errorf("answer %d (%d bytes) was overwritten", i, sizes[i])
		}
	}
}

// Every packet whose Send returned nil before Abort reaches the peer, even
// if it was queued behind other goroutines' writes.
func TestAbortFlushesQueue(t *testing.T) {
	cli, srv := pair(t, "tcp4", Config{}, Config{})
	const senders, each = 4, 200
	var wg sync.WaitGroup
	var sent atomic.Int64
	pad := bytes.Repeat([]byte{'p'}, 1024)
	for range senders {
		wg.Go(func() {
			for range each {
				m := &proto.AddObject{Checksum: make([]byte, 20), Data: pad, DataSerial: proto.InvalidTid}
				if cli.Send(m) == nil {
					sent.Add(1)
				}
			}
		})
	}
	wg.Wait()
	cli.Abort()
	got := 0
	for {
		if _, err := srv.Recv(testCtx(t)); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("recv: %v", err)
			}
			break
		}
		got++
	}
	if int64(got) != sent.Load() || got != senders*each {
		t.Fatalf("peer got %d packets, %d sent", got, sent.Load())
	}
}
