package neonet

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/neogo/neo/proto"
)

// Post never blocks, even when the peer reads nothing and the socket is
// full: what the socket does not take is left to the writer goroutine,
// and everything arrives in order once the peer reads.
func TestPostNeverBlocks(t *testing.T) {
	p, link := dialRaw(t, listen(t, "tcp4", Config{}))
	if link.raw == nil {
		t.Fatal("a TCP link has no raw connection: Post would never write in place")
	}

	// 16 MiB: more than loopback socket buffers hold.
	const n, size = 64, 256 << 10
	data := bytes.Repeat([]byte{'x'}, size)
	msgs := make([]proto.Msg, n)
	var want []byte
	for i := range msgs {
		msgs[i] = &proto.AnswerObject{Oid: proto.Oid(i), Serial: 1, NextSerial: proto.InvalidTid,
			Compression: proto.Some(uint8(0)), Checksum: make([]byte, 20), Data: data, DataSerial: proto.InvalidTid}
		want = proto.AppendPacket(want, uint32(i), msgs[i])
	}
	posted := make(chan error, 1)
	go func() {
		for i, m := range msgs {
			if err := link.PostWithID(uint32(i), m); err != nil {
				posted <- fmt.Errorf("post %d: %w", i, err)
				return
			}
		}
		posted <- nil
	}()
	select {
	case err := <-posted:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Post blocked while the peer read nothing")
	}
	link.wmu.Lock()
	queued := len(link.wmu.buf)
	link.wmu.Unlock()
	if queued == 0 {
		t.Fatal("nothing left queued: the test did not fill the socket")
	}
	got := make([]byte, len(want))
	if _, err := io.ReadFull(p.r, got); err != nil {
		t.Fatalf("reading what was posted: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the peer received other bytes than the packets posted, in order")
	}
}

// PostFunc calls f with the answer, on the reader, and with the close
// error for a call pending when the link closes.
func TestPostFunc(t *testing.T) {
	cli, srv := pair(t, "tcp4", Config{}, Config{})
	done := make(chan *Call, 2)
	if _, err := cli.PostFunc(ident(1), nil, func(c *Call) { done <- c }); err != nil {
		t.Fatal(err)
	}
	r := recvReq(t, srv)
	r.Reply(acceptAnswer(r))
	select {
	case c := <-done:
		if c.Err() != nil {
			t.Fatalf("answered call: %v", c.Err())
		}
		if _, ok := c.Answer().(*proto.AcceptIdentification); !ok {
			t.Fatalf("answer %T", c.Answer())
		}
	case <-time.After(testTimeout):
		t.Fatal("f not called for the answer")
	}

	if _, err := cli.PostFunc(ident(2), nil, func(c *Call) { done <- c }); err != nil {
		t.Fatal(err)
	}
	recvReq(t, srv)
	srv.Close()
	select {
	case c := <-done:
		if err := c.Err(); !errors.Is(err, ErrClosed) || !errors.Is(err, io.EOF) {
			t.Fatalf("pending call at close: %v, want closed by EOF", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("f not called at close")
	}
	if _, err := cli.PostFunc(ident(3), nil, func(*Call) { t.Error("f called for a call that failed to start") }); !errors.Is(err, ErrClosed) {
		t.Fatalf("PostFunc after close: %v", err)
	}
}
