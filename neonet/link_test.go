package neonet

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/neogo/neo/proto"
)

func TestAskAnswer(t *testing.T) {
	log, _ := testLogger(t)
	cli, srv := pair(t, "tcp4", Config{Logger: log}, Config{Logger: log})
	ctx := testCtx(t)
	go func() {
		for {
			r, err := srv.Recv(ctx)
			if err != nil {
				return
			}
			r.Reply(acceptAnswer(r))
		}
	}()
	for i := 1; i <= 3; i++ {
		var resp proto.AcceptIdentification
		if err := cli.Ask(ctx, ident(i), &resp); err != nil {
			t.Fatalf("ask %d: %v", i, err)
		}
		if want := proto.NewNodeID(proto.CLIENT, uint32(i)); resp.YourNID != want {
			t.Fatalf("ask %d: answer for %v", i, resp.YourNID)
		}
	}
}

// Ids come from each end's own counter, used by requests and notifications
// alike; answers carry the request's id; SendWithID keeps the counter
// (§1.7).
func TestMessageIDs(t *testing.T) {
	cli, srv := pair(t, "tcp4", Config{}, Config{})
	ctx := testCtx(t)

	c0, err := cli.Start(ident(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	cli.Send(&proto.NotifyNodeInformation{})
	cli.SendWithID(77, &proto.NotifyNodeInformation{})
	c2, err := cli.Start(ident(2), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv.Send(&proto.NotifyNodeInformation{}) // the server's counter is its own
	if c0.ID() != 0 || c2.ID() != 2 {
		t.Fatalf("call ids %d, %d, want 0, 2", c0.ID(), c2.ID())
	}
	var ids []uint32
	for range 4 {
		r := recvReq(t, srv)
		ids = append(ids, r.ID)
		if _, ok := r.Msg.(*proto.RequestIdentification); ok {
			r.Reply(acceptAnswer(r))
		}
	}
	if want := []uint32{0, 1, 77, 2}; !slicesEqual(ids, want) {
		t.Fatalf("server received ids %v, want %v", ids, want)
	}
	if r := recvReq(t, cli); r.ID != 0 {
		t.Fatalf("server's first notification has id %d, want 0", r.ID)
	}
	for _, c := range []*Call{c0, c2} {
		if err := c.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// The counter wraps at 2³².
	cli.wmu.Lock()
	cli.wmu.nextID = 0xffffffff
	cli.wmu.Unlock()
	cli.Send(&proto.NotifyNodeInformation{})
	cli.Send(&proto.NotifyNodeInformation{})
	if a, b := recvReq(t, srv).ID, recvReq(t, srv).ID; a != 0xffffffff || b != 0 {
		t.Fatalf("ids around the wrap: %#x, %#x", a, b)
	}
}

func slicesEqual(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Several requests may be outstanding and be answered in any order.
func TestOutOfOrderAnswers(t *testing.T) {
	log, _ := testLogger(t)
	cli, srv := pair(t, "tcp4", Config{Logger: log}, Config{Logger: log})
	ctx := testCtx(t)
	const n = 20
	resps := make([]proto.AcceptIdentification, n)
	calls := make([]*Call, n)
	for i := range n {
		c, err := cli.Start(ident(i+1), &resps[i])
		if err != nil {
			t.Fatal(err)
		}
		calls[i] = c
	}
	reqs := make([]*Request, n)
	for i := range n {
		reqs[i] = recvReq(t, srv)
	}
	rand.Shuffle(n, func(i, j int) { reqs[i], reqs[j] = reqs[j], reqs[i] })
	for _, r := range reqs {
		if err := r.Reply(acceptAnswer(r)); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range calls {
		if err := c.Wait(ctx); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if want := proto.NewNodeID(proto.CLIENT, uint32(i+1)); resps[i].YourNID != want {
			t.Fatalf("call %d got the answer for %v", i, resps[i].YourNID)
		}
	}
}

// Concurrent askers on both ends share one link.
func TestConcurrentAsks(t *testing.T) {
	log, _ := testLogger(t)
	handler := func(r *Request) {
		if _, ok := r.Msg.(*proto.RequestIdentification); ok {
			go r.Reply(acceptAnswer(r))
		}
	}
	cli, srv := pair(t, "tcp4", Config{Logger: log, Handler: handler}, Config{Logger: log, Handler: handler})
	ctx := testCtx(t)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 8 {
		for _, l := range []*Link{cli, srv} {
			wg.Go(func() {
				for i := range 50 {
					n := g*1000 + i + 1
					var resp proto.AcceptIdentification
					if err := l.Ask(ctx, ident(n), &resp); err != nil {
						errs <- err
						return
					}
					if resp.YourNID != proto.NewNodeID(proto.CLIENT, uint32(n)) {
						errs <- errors.New("mismatched answer")
						return
					}
					if err := l.Ask(ctx, &proto.Ping{}, &proto.Pong{}); err != nil {
						errs <- err
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// An Error answer is returned as a *proto.Error, matching its code's
// sentinel, with resp or without.
func TestErrorAnswer(t *testing.T) {
	cli, srv := pair(t, "tcp4", Config{}, Config{})
	ctx := testCtx(t)

	call, err := cli.Start(ident(1), new(proto.AcceptIdentification))
	if err != nil {
		t.Fatal(err)
	}
	recvReq(t, srv).Reply(&proto.Error{Code: proto.OID_NOT_FOUND, Message: "no such oid"})
	err = call.Wait(ctx)
	var pe *proto.Error
	if !errors.Is(err, proto.ErrOidNotFound) || !errors.As(err, &pe) || pe.Message != "no such oid" {
		t.Fatalf("got %v, want OID_NOT_FOUND error", err)
	}

	call, err = cli.Start(ident(2), nil)
	if err != nil {
		t.Fatal(err)
	}
	recvReq(t, srv).Reply(&proto.Error{Code: proto.DENIED, Message: "no"})
	if err := call.Wait(ctx); !errors.Is(err, proto.ErrDenied) {
		t.Fatalf("got %v, want DENIED", err)
	}

	// The link stays usable.
	call, err = cli.Start(ident(3), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := recvReq(t, srv)
	r.Reply(acceptAnswer(r))
	if err := call.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if a, ok := call.Answer().(*proto.AcceptIdentification); !ok || a.YourNID != proto.NewNodeID(proto.CLIENT, 3) {
		t.Fatalf("answer: %#v", call.Answer())
	}
}

// Asking with an answer of the wrong type, or asking a notification, is a
// programming error reported at once.
func TestAskMisuse(t *testing.T) {
	cli, _ := pair(t, "tcp4", Config{}, Config{})
	if _, err := cli.Start(ident(1), &proto.Pong{}); err == nil {
		t.Error("RequestIdentification with a Pong answer: no error")
	}
	if _, err := cli.Start(&proto.NotifyNodeInformation{}, nil); err == nil {
		t.Error("asking a notification: no error")
	}
}

// When ctx ends, Ask returns ctx's error; the late answer is dropped and
// the link stays up.
func TestAskContextTimeout(t *testing.T) {
	log, _ := testLogger(t)
	cli, srv := pair(t, "tcp4", Config{Logger: log}, Config{Logger: log})
	ctx, cancel := context.WithTimeout(testCtx(t), 20*time.Millisecond)
	defer cancel()
	err := cli.Ask(ctx, ident(1), new(proto.AcceptIdentification))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want deadline exceeded", err)
	}
	r := recvReq(t, srv)
	r.Reply(acceptAnswer(r)) // late

	// Answers are handled in order: once this one is back, the late one
	// was seen and dropped.
	if err := cli.Ask(testCtx(t), &proto.Ping{}, &proto.Pong{}); err != nil {
		t.Fatalf("ask after a late answer: %v", err)
	}
	if err := cli.Err(); err != nil {
		t.Fatalf("link closed: %v", err)
	}

	// A canceled ctx.
	ctx, cancel = context.WithCancel(testCtx(t))
	call, err := cli.Start(ident(2), nil)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := call.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want canceled", err)
	}
}

// Ping is answered by the link layer, in any state, and never reaches the
// owner.
func TestPingAutoAnswer(t *testing.T) {
	cli, srv := pair(t, "tcp4", Config{}, Config{})
	ctx := testCtx(t)
	if err := cli.Ask(ctx, &proto.Ping{}, &proto.Pong{}); err != nil {
		t.Fatal(err)
	}
	cli.Send(&proto.NotifyNodeInformation{Timestamp: 1})
	if r := recvReq(t, srv); r.ID != 1 {
		t.Fatalf("owner received %s id %d, want the notification", proto.MsgName(r.Msg.NEOMsgCode()), r.ID)
	}
}

// A non-Error answer matching no request is a protocol violation:
// Error(PROTOCOL_ERROR) with its id, then close (§1.7). Pong and Error are
// tolerated.
func TestUnexpectedAnswer(t *testing.T) {
	t.Run("no such request", func(t *testing.T) {
		log, _ := testLogger(t)
		ln := listen(t, "tcp4", Config{Logger: log})
		p, l := dialRaw(t, ln)
		p.send(5, &proto.Pong{})
		p.send(6, &proto.Error{Code: proto.ACK, Message: "stray"})
		p.send(42, &proto.AcceptIdentification{NodeType: proto.MASTER})
		id, m := p.recv()
		if e, ok := m.(*proto.Error); !ok || e.Code != proto.PROTOCOL_ERROR || id != 42 {
			t.Fatalf("got %T %v id %d, want PROTOCOL_ERROR id 42", m, m, id)
		}
		p.expectEOF()
		if err := waitClosed(t, l); !errors.Is(err, ErrProtocol) || !errors.Is(err, ErrClosed) {
			t.Fatalf("link closed with %v, want a protocol violation", err)
		}
	})

	t.Run("wrong answer type", func(t *testing.T) {
		log, _ := testLogger(t)
		ln := listen(t, "tcp4", Config{Logger: log})
		p, l := dialRaw(t, ln)
		call, err := l.Start(ident(1), nil)
		if err != nil {
			t.Fatal(err)
		}
		id, _ := p.recv()
		p.send(id, &proto.Pong{})
		if err := call.Wait(testCtx(t)); !errors.Is(err, ErrProtocol) {
			t.Fatalf("got %v, want a protocol violation", err)
		}
		if _, m := p.recv(); m.(*proto.Error).Code != proto.PROTOCOL_ERROR {
			t.Fatalf("got %v, want PROTOCOL_ERROR", m)
		}
		p.expectEOF()
	})
}

// Malformed input closes the link, whatever the segmenting.
func TestMalformedPacket(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"not an array", []byte{0x81, 0x00, 0x00}},
		{"invalid msgpack", []byte{0x93, 0x00, 0xc1}},
		{"unknown code", []byte{0x93, 0x00, 0x7f, 0x90}},
		{"wrong argument count", []byte{0x93, 0x00, 0x02, 0x91, 0x00}},
		{"args not an array", []byte{0x93, 0x00, 0x02, 0x00}},
		{"huge bin", []byte{0x93, 0x00, 0x01, 0x96, 0xd4, 0x04, 0x02, 0xc0, 0xc0, 0xc6, 0x7f, 0xff, 0xff, 0xff}},
		{"huge array", []byte{0x93, 0x00, 0x06, 0x92, 0xcb, 0, 0, 0, 0, 0, 0, 0, 0, 0xdd, 0x7f, 0xff, 0xff, 0xff}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log, _ := testLogger(t)
			ln := listen(t, "tcp4", Config{Logger: log})
			p, l := dialRaw(t, ln)
			p.write(tc.in)
			p.expectEOF()
			if err := waitClosed(t, l); !errors.Is(err, ErrProtocol) {
				t.Fatalf("link closed with %v, want a protocol violation", err)
			}
		})
	}
}

// An [id, code, args] envelope in an array16 or array32 header is valid
// msgpack, as neoppod's unpacker reads it: the link accepts it as proto
// frames and decodes it.
func TestLongEnvelope(t *testing.T) {
	for _, env := range [][]byte{{0xdc, 0x00, 0x03}, {0xdd, 0x00, 0x00, 0x00, 0x03}} {
		ln := listen(t, "tcp4", Config{})
		p, l := dialRaw(t, ln)
		p.write(append(env, 0x05, 0x02, 0x90)) // Ping, id 5
		if id, m := p.recv(); id != 5 || m.NEOMsgCode() != codePong {
			t.Fatalf("envelope % x: got %T id %d, want Pong id 5", env, m, id)
		}
		closeAndWait(t, l)
	}
}

// A large packet crosses arbitrary TCP segmenting intact, and the max
// packet size bounds what is accepted.
func TestLargePacket(t *testing.T) {
	log, _ := testLogger(t)
	ln := listen(t, "tcp4", Config{Logger: log, MaxPacketSize: 16 << 20})
	p, l := dialRaw(t, ln)
	big := strings.Repeat("0123456789abcdef", 8<<20/16) // 8 MiB
	m := ident(7)
	m.ClusterName = big
	stream := proto.AppendPacket(nil, 0, m)
	stream = append(stream, proto.AppendPacket(nil, 1, &proto.Ping{})...)
	stream = append(stream, proto.AppendPacket(nil, 2, m)...)
	go func() {
		rng := rand.New(rand.NewPCG(1, 2))
		for len(stream) > 0 {
			n := min(len(stream), 1+rng.IntN(100<<10))
			if _, err := p.conn.Write(stream[:n]); err != nil {
				return
			}
			stream = stream[n:]
		}
	}()
	for _, wantID := range []uint32{0, 2} {
		r := recvReq(t, l)
		got := r.Msg.(*proto.RequestIdentification)
		if r.ID != wantID || got.ClusterName != big || got.NID != m.NID {
			t.Fatalf("packet %d: got id %d, %d bytes", wantID, r.ID, len(got.ClusterName))
		}
	}
	if id, m := p.recv(); id != 1 {
		t.Fatalf("got %T id %d, want Pong id 1", m, id)
	}

	// Over the limit: closed before the bytes come.
	// RequestIdentification(CLIENT, nil, nil, bin32 of 17 MiB...
	p.write([]byte{0x93, 0x03, 0x01, 0x96, 0xd4, 0x04, 0x02, 0xc0, 0xc0, 0xc6, 0x01, 0x10, 0x00, 0x00, 'x'})
	p.expectEOF()
	if err := waitClosed(t, l); !errors.Is(err, ErrProtocol) || !errors.Is(err, proto.ErrFrameTooBig) {
		t.Fatalf("link closed with %v, want frame too big", err)
	}
}

// Between two links a big request and a big answer go through.
func TestLargeAskAnswer(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 8<<20/16) // 8 MiB
	handler := func(r *Request) {
		switch m := r.Msg.(type) {
		case *proto.AskObject:
			r.Reply(&proto.AnswerObject{Oid: m.Oid, Serial: 1, NextSerial: proto.InvalidTid, Compression: proto.Some[uint8](0),
				Checksum: make([]byte, 20), Data: data, DataSerial: proto.InvalidTid})
		case *proto.RequestIdentification:
			r.Reply(&proto.AcceptIdentification{YourNID: proto.NodeID(len(m.ClusterName))})
		}
	}
	cli, _ := pair(t, "tcp4", Config{}, Config{Handler: handler})
	var obj proto.AnswerObject
	if err := cli.Ask(testCtx(t), &proto.AskObject{Oid: 1, At: proto.InvalidTid, Before: proto.InvalidTid}, &obj); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(obj.Data, data) {
		t.Fatalf("answer has %d bytes of data, want %d", len(obj.Data), len(data))
	}
	m := ident(1)
	m.ClusterName = string(data)
	var acc proto.AcceptIdentification
	if err := cli.Ask(testCtx(t), m, &acc); err != nil {
		t.Fatal(err)
	}
	if int(acc.YourNID) != len(data) {
		t.Fatalf("peer got %d bytes, want %d", acc.YourNID, len(data))
	}
}

// Closing fails the pending calls with ErrClosed and the cause.
func TestCloseWithPendingRequests(t *testing.T) {
	t.Run("local close", func(t *testing.T) {
		cli, srv := pair(t, "tcp4", Config{}, Config{})
		call, err := cli.Start(ident(1), nil)
		if err != nil {
			t.Fatal(err)
		}
		recvReq(t, srv)
		cli.Close()
		err = call.Wait(testCtx(t))
		if !errors.Is(err, ErrClosed) || !errors.Is(err, ErrClosedLocally) {
			t.Fatalf("got %v, want closed locally", err)
		}
		if err := cli.Send(&proto.Ping{}); !errors.Is(err, ErrClosed) {
			t.Fatalf("send after close: %v", err)
		}
		if _, err := cli.Start(&proto.Ping{}, nil); !errors.Is(err, ErrClosed) {
			t.Fatalf("ask after close: %v", err)
		}
		if _, err := cli.Recv(testCtx(t)); !errors.Is(err, ErrClosed) {
			t.Fatalf("recv after close: %v", err)
		}
		if err := waitClosed(t, srv); !errors.Is(err, io.EOF) {
			t.Fatalf("peer: link closed with %v, want EOF", err)
		}
	})

	t.Run("peer close", func(t *testing.T) {
		cli, srv := pair(t, "tcp4", Config{}, Config{})
		calls := make([]*Call, 3)
		for i := range calls {
			var err error
			if calls[i], err = cli.Start(ident(i), nil); err != nil {
				t.Fatal(err)
			}
		}
		for range calls {
			recvReq(t, srv)
		}
		srv.Close()
		for _, c := range calls {
			if err := c.Wait(testCtx(t)); !errors.Is(err, ErrClosed) || !errors.Is(err, io.EOF) {
				t.Fatalf("got %v, want closed by EOF", err)
			}
		}
	})
}

// Requests queued before the close are still delivered by Recv.
func TestRecvDrainsAfterClose(t *testing.T) {
	cli, srv := pair(t, "tcp4", Config{}, Config{})
	cli.Send(&proto.NotifyNodeInformation{Timestamp: 1})
	cli.Send(&proto.NotifyNodeInformation{Timestamp: 2})
	cli.Close()
	waitClosed(t, srv)
	for _, want := range []float64{1, 2} {
		r := recvReq(t, srv)
		if ts := r.Msg.(*proto.NotifyNodeInformation).Timestamp; ts != want {
			t.Fatalf("got timestamp %v, want %v", ts, want)
		}
	}
	if _, err := srv.Recv(testCtx(t)); !errors.Is(err, ErrClosed) {
		t.Fatalf("recv: %v", err)
	}
}

// Every Recv waiting when the link closes returns, one with the request
// queued before the close, the others with the close: each passes the
// recvReady token on (see Recv).
func TestRecvWaitersSeeClose(t *testing.T) {
	for range 20 {
		cli, srv := pair(t, "tcp4", Config{}, Config{})
		const waiters = 4
		got := make(chan error, waiters)
		for range waiters {
			go func() {
				_, err := srv.Recv(testCtx(t))
				got <- err
			}()
		}
		cli.Send(&proto.NotifyNodeInformation{})
		cli.Close()
		requests := 0
		for range waiters {
			select {
			case err := <-got:
				switch {
				case err == nil:
					requests++
				case !errors.Is(err, ErrClosed):
					t.Fatalf("recv: %v", err)
				}
			case <-time.After(testTimeout):
				t.Fatal("a Recv waiting at the close did not return")
			}
		}
		if requests != 1 {
			t.Fatalf("%d waiters got the request, want 1", requests)
		}
	}
}

// Abort flushes what is being sent, then closes; received data is no
// longer processed.
func TestAbort(t *testing.T) {
	cli, srv := pair(t, "tcp4", Config{}, Config{})
	call, err := cli.Start(ident(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := recvReq(t, srv)
	r.Reply(&proto.Error{Code: proto.NOT_READY, Message: "later"})
	srv.Abort()
	if err := call.Wait(testCtx(t)); !errors.Is(err, proto.ErrNotReady) {
		t.Fatalf("got %v, want NOT_READY", err)
	}
	if err := waitClosed(t, cli); !errors.Is(err, io.EOF) {
		t.Fatalf("client: link closed with %v, want EOF", err)
	}
	if err := srv.Err(); !errors.Is(err, ErrAborted) {
		t.Fatalf("server: link closed with %v, want aborted", err)
	}
}

// Recv honours its context.
func TestRecvContext(t *testing.T) {
	cli, _ := pair(t, "tcp4", Config{}, Config{})
	ctx, cancel := context.WithCancel(testCtx(t))
	cancel()
	if _, err := cli.Recv(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}
