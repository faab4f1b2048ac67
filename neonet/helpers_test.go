package neonet

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/neogo/neo/proto"
)

// testTimeout bounds every wait of the tests.
const testTimeout = 10 * time.Second

// allCallerReads runs the tests and benchmarks with Config.CallerReads on
// every link they make through listen and pair (go test ./neonet -args
// -callerreads): the tests of the link layer then check that mode too.
var allCallerReads = flag.Bool("callerreads", false, "links of listen and pair with Config.CallerReads")

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// logRecorder is a slog handler that keeps records, so that tests can
// check what a link reported (by error identity, not by text) and show the
// log of a failed test.
type logRecorder struct {
	mu      sync.Mutex
	records []slog.Record
	changed chan struct{} // closed and replaced on each record
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logRecorder) WithGroup(string) slog.Handler            { return h }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r.Clone())
	close(h.changed)
	h.changed = make(chan struct{})
	return nil
}

// waitErrs waits until n records with message msg were logged and returns
// their "err" attributes.
func (h *logRecorder) waitErrs(t testing.TB, msg string, n int) []error {
	t.Helper()
	timeout := time.After(testTimeout)
	for {
		h.mu.Lock()
		changed := h.changed
		h.mu.Unlock()
		if errs := h.errs(msg); len(errs) >= n {
			return errs
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("%q not logged %d times", msg, n)
		}
	}
}

// errs returns the "err" attributes of the records with message msg.
func (h *logRecorder) errs(msg string) []error {
	h.mu.Lock()
	defer h.mu.Unlock()
	var errs []error
	for _, r := range h.records {
		if r.Message != msg {
			continue
		}
		r.Attrs(func(a slog.Attr) bool {
			if err, ok := a.Value.Any().(error); ok && a.Key == "err" {
				errs = append(errs, err)
			}
			return true
		})
	}
	return errs
}

func (h *logRecorder) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var b strings.Builder
	for _, r := range h.records {
		fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
		r.Attrs(func(a slog.Attr) bool {
			fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
			return true
		})
		b.WriteByte('\n')
	}
	return b.String()
}

// testLogger returns a logger recording into h, dumped if the test fails.
func testLogger(t testing.TB) (*slog.Logger, *logRecorder) {
	h := &logRecorder{changed: make(chan struct{})}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("link log:\n%s", h)
		}
	})
	return slog.New(h), h
}

// listen starts a listener on the loopback address of network ("tcp4" or
// "tcp6"), closed at the end of the test.
func listen(t testing.TB, network string, cfg Config) *Listener {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "tcp6" {
		addr = "[::1]:0"
	}
	cfg.CallerReads = cfg.CallerReads || *allCallerReads
	ln, err := Listen(t.Context(), network, addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// closeAndWait closes l at the end of the test and waits for its reader.
func closeAndWait(t testing.TB, l *Link) {
	t.Cleanup(func() {
		l.Close()
		select {
		case <-l.Done():
		case <-time.After(testTimeout):
			t.Errorf("link %s: reader did not exit", l)
		}
	})
}

// pair returns two connected links: cli dialed with ccfg, srv accepted with
// scfg.
func pair(t testing.TB, network string, ccfg, scfg Config) (cli, srv *Link) {
	t.Helper()
	ln := listen(t, network, scfg)
	ctx := testCtx(t)
	ccfg.CallerReads = ccfg.CallerReads || *allCallerReads
	cli, err := Dial(ctx, network, ln.Addr().String(), ccfg)
	if err != nil {
		t.Fatal(err)
	}
	closeAndWait(t, cli)
	srv, err = ln.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	closeAndWait(t, srv)
	return cli, srv
}

// rawPeer is the far end of a link speaking bytes, to play a misbehaving
// or old peer.
type rawPeer struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func newRawPeer(t testing.TB, conn net.Conn) *rawPeer {
	conn.SetDeadline(time.Now().Add(testTimeout))
	t.Cleanup(func() { conn.Close() })
	return &rawPeer{t: t, conn: conn, r: bufio.NewReader(conn)}
}

// dialRaw connects a raw peer to ln and exchanges the handshake; the link
// is returned by Accept.
func dialRaw(t testing.TB, ln *Listener) (*rawPeer, *Link) {
	t.Helper()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	p := newRawPeer(t, conn)
	p.write([]byte(proto.Handshake))
	p.expect([]byte(proto.Handshake))
	link, err := ln.Accept(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	closeAndWait(t, link)
	return p, link
}

func (p *rawPeer) write(b []byte) {
	p.t.Helper()
	if _, err := p.conn.Write(b); err != nil {
		p.t.Fatalf("raw peer: write: %v", err)
	}
}

func (p *rawPeer) send(id uint32, m proto.Msg) {
	p.t.Helper()
	p.write(proto.AppendPacket(nil, id, m))
}

func (p *rawPeer) expect(want []byte) {
	p.t.Helper()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(p.r, got); err != nil {
		p.t.Fatalf("raw peer: read % x: %v", want, err)
	}
	if string(got) != string(want) {
		p.t.Fatalf("raw peer: got % x, want % x", got, want)
	}
}

// recv reads one packet.
func (p *rawPeer) recv() (uint32, proto.Msg) {
	p.t.Helper()
	for n := 1; ; n++ {
		buf, err := p.r.Peek(n)
		if err != nil {
			p.t.Fatalf("raw peer: read packet: %v (have % x)", err, buf)
		}
		size, err := proto.FrameSize(buf, DefaultMaxPacketSize)
		if err != nil {
			p.t.Fatalf("raw peer: %v", err)
		}
		if size == 0 {
			continue
		}
		id, m, err := proto.DecodePacket(buf[:size])
		if err != nil {
			p.t.Fatalf("raw peer: %v", err)
		}
		p.r.Discard(size)
		return id, m
	}
}

// expectEOF checks that the link closed the connection without sending
// anything more.
func (p *rawPeer) expectEOF() {
	p.t.Helper()
	b, err := p.r.ReadByte()
	if err == nil {
		p.t.Fatalf("raw peer: got byte 0x%02x, want EOF", b)
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !isReset(err) {
		p.t.Fatalf("raw peer: got %v, want EOF", err)
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// waitClosed waits for l to close and returns why.
func waitClosed(t testing.TB, l *Link) error {
	t.Helper()
	select {
	case <-l.Done():
	case <-time.After(testTimeout):
		t.Fatalf("link %s did not close", l)
	}
	return l.Err()
}

// recvReq receives the next request on l.
func recvReq(t testing.TB, l *Link) *Request {
	t.Helper()
	r, err := l.Recv(testCtx(t))
	if err != nil {
		t.Fatalf("recv: %v", err)
	}
	return r
}

// ident builds a request that the peer can tell apart by n.
func ident(n int) *proto.RequestIdentification {
	return &proto.RequestIdentification{
		NodeType:    proto.CLIENT,
		NID:         proto.NewNodeID(proto.CLIENT, uint32(n)),
		ClusterName: "test",
	}
}

// accept answers an ident request with YourNID echoing its NID.
func acceptAnswer(r *Request) *proto.AcceptIdentification {
	ri := r.Msg.(*proto.RequestIdentification)
	return &proto.AcceptIdentification{NodeType: proto.MASTER, MyNID: proto.NewNodeID(proto.MASTER, 1), YourNID: ri.NID}
}
