package neonet

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/neogo/neo/proto"
)

// The handshake is msgpack ["NEO", 5], byte for byte (protocol.md §1.2).
func TestHandshakeBytes(t *testing.T) {
	want := []byte{0x92, 0xa3, 0x4e, 0x45, 0x4f, 0x05}
	if proto.Handshake != string(want) {
		t.Fatalf("proto.Handshake = % x, want % x", proto.Handshake, want)
	}

	// What Dial really sends, seen from a raw listener.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		l   *Link
		err error
	}
	dialed := make(chan result, 1)
	go func() {
		l, err := Dial(testCtx(t), "tcp4", ln.Addr().String(), Config{})
		dialed <- result{l, err}
	}()
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	p := newRawPeer(t, conn)
	p.expect(want) // sent at once, without waiting for ours
	p.write(want)
	r := <-dialed
	if r.err != nil {
		t.Fatal(r.err)
	}
	closeAndWait(t, r.l)
	// Nothing but packets follows: our first one gets id 0.
	r.l.Send(&proto.Ping{})
	p.expect([]byte{0x93, 0x00, 0x02, 0x90})
}

// Both ends send the handshake spontaneously, over IPv4 and IPv6, and both
// can then ask.
func TestHandshakeBothWays(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6"} {
		t.Run(network, func(t *testing.T) {
			if network == "tcp6" {
				if ln, err := net.Listen("tcp6", "[::1]:0"); err != nil {
					t.Skipf("no IPv6 loopback: %v", err)
				} else {
					ln.Close()
				}
			}
			log, _ := testLogger(t)
			cli, srv := pair(t, network, Config{Logger: log}, Config{Logger: log})
			ctx := testCtx(t)
			if err := cli.Ask(ctx, &proto.Ping{}, &proto.Pong{}); err != nil {
				t.Fatalf("client ping: %v", err)
			}
			if err := srv.Ask(ctx, &proto.Ping{}, &proto.Pong{}); err != nil {
				t.Fatalf("server ping: %v", err)
			}
			if got := srv.RemoteAddr().String(); got != cli.LocalAddr().String() {
				t.Errorf("server's remote %s, client's local %s", got, cli.LocalAddr())
			}
		})
	}
}

// A peer may queue its first packet right behind its handshake, in the
// same segment, and split its handshake anywhere (§1.2 step 3).
func TestHandshakeThenPacketInOneWrite(t *testing.T) {
	for _, split := range []int{0, 1, 3, 5, 6} {
		t.Run("", func(t *testing.T) {
			ln := listen(t, "tcp4", Config{})
			conn, err := net.Dial("tcp4", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			p := newRawPeer(t, conn)
			stream := append([]byte(proto.Handshake), proto.AppendPacket(nil, 0, &proto.Ping{})...)
			if split > 0 {
				p.write(stream[:split])
			}
			p.expect([]byte(proto.Handshake))
			p.write(stream[split:])
			l, err := ln.Accept(testCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			closeAndWait(t, l)
			p.expect([]byte{0x93, 0x00, 0xcd, 0x80, 0x02, 0x90}) // Pong answering id 0
		})
	}
}

// replyingServer listens on loopback and answers its first connection
// with reply, reads a handshake's 6 bytes and closes; it returns its
// address.
func replyingServer(t *testing.T, reply []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		conn, err := ln.Accept()
		if err == nil {
			conn.Write(reply)
			conn.Read(make([]byte, 6))
			conn.Close()
		}
	}()
	return ln.Addr().String()
}

// expectRefused sends in to a listener, which must send its handshake,
// close the connection and log the refusal with an error matching want.
func expectRefused(t *testing.T, in []byte, want error) {
	t.Helper()
	log, rec := testLogger(t)
	ln := listen(t, "tcp4", Config{Logger: log})
	conn, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	p := newRawPeer(t, conn)
	p.write(in)
	p.expect([]byte(proto.Handshake))
	p.expectEOF()
	errs := rec.waitErrs(t, "incoming connection refused", 1)
	if len(errs) != 1 || !errors.Is(errs[0], want) {
		t.Fatalf("logged %v, want %v", errs, want)
	}
}

// A handshake with the right magic and another version is a version
// mismatch; the connection is closed without a word (§1.2 step 4).
func TestHandshakeVersionMismatch(t *testing.T) {
	old := []byte{0x92, 0xa3, 0x4e, 0x45, 0x4f, 0x04}

	t.Run("dial", func(t *testing.T) {
		_, err := Dial(testCtx(t), "tcp4", replyingServer(t, old), Config{})
		var vm *VersionMismatchError
		if !errors.Is(err, ErrVersionMismatch) || !errors.As(err, &vm) || vm.Peer != 4 {
			t.Fatalf("Dial: got %v, want version mismatch with peer version 4", err)
		}
	})

	t.Run("accept", func(t *testing.T) { expectRefused(t, old, ErrVersionMismatch) })
}

// Anything else than a NEO handshake closes the connection (§1.2 step 5).
func TestHandshakeNotNEO(t *testing.T) {
	garbage := []byte("GET / HTTP/1.0\r\n\r\n")

	t.Run("dial", func(t *testing.T) {
		_, err := Dial(testCtx(t), "tcp4", replyingServer(t, garbage), Config{})
		if !errors.Is(err, ErrNotNEO) {
			t.Fatalf("Dial: got %v, want ErrNotNEO", err)
		}
	})

	// The first differing byte is enough: no waiting for 6 bytes.
	for _, in := range [][]byte{garbage, {0x92, 0xa3, 0x4e, 0x00}, {0x16}} {
		t.Run("accept", func(t *testing.T) { expectRefused(t, in, ErrNotNEO) })
	}
}

// A silent peer does not hold Dial beyond the handshake timeout or ctx.
func TestHandshakeTimeout(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { conn.Close() })
		}
	}()

	_, err = Dial(testCtx(t), "tcp4", ln.Addr().String(), Config{HandshakeTimeout: 50 * time.Millisecond})
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, errTimeout) {
		t.Errorf("Dial with HandshakeTimeout: got %v, want a timeout", err)
	}

	ctx, cancel := context.WithTimeout(testCtx(t), 50*time.Millisecond)
	defer cancel()
	_, err = Dial(ctx, "tcp4", ln.Addr().String(), Config{})
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, errTimeout) {
		t.Errorf("Dial with ctx timeout: got %v, want a timeout", err)
	}
}

// errTimeout matches a socket deadline error.
var errTimeout = os.ErrDeadlineExceeded

// A listener whose peer never sends its handshake drops it after the
// handshake timeout, and keeps accepting others.
func TestListenerHandshakeTimeout(t *testing.T) {
	log, rec := testLogger(t)
	ln := listen(t, "tcp4", Config{Logger: log, HandshakeTimeout: 50 * time.Millisecond})
	conn, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	p := newRawPeer(t, conn)
	p.expect([]byte(proto.Handshake))
	p.expectEOF()

	l, err := Dial(testCtx(t), "tcp4", ln.Addr().String(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	closeAndWait(t, l)
	if _, err := ln.Accept(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if errs := rec.waitErrs(t, "incoming connection refused", 1); len(errs) != 1 {
		t.Fatalf("logged %v, want one refused connection", errs)
	}
}

// Close stops Accept and aborts connections being set up.
func TestListenerClose(t *testing.T) {
	ln := listen(t, "tcp4", Config{})
	conn, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	p := newRawPeer(t, conn)
	p.expect([]byte(proto.Handshake))
	ln.Close()
	p.expectEOF()
	if _, err := ln.Accept(testCtx(t)); !errors.Is(err, ErrListenerClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
}
