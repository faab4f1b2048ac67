package neonet

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/neogo/neo/proto"
)

// notify sends the notifications numbered from..to-1 (their timestamp).
func notify(t testing.TB, l *Link, from, to int) {
	for i := from; i < to; i++ {
		if err := l.Send(&proto.NotifyNodeInformation{Timestamp: float64(i)}); err != nil {
			t.Errorf("send %d: %v", i, err)
			return
		}
	}
}

// barrier returns once the peer's reader dispatched every packet sent
// before: it answers the Ping itself, after them.
func barrier(t testing.TB, l *Link) {
	t.Helper()
	if err := l.Ask(testCtx(t), &proto.Ping{}, nil); err != nil {
		t.Fatalf("ping: %v", err)
	}
}

func stamp(r *Request) int { return int(r.Msg.(*proto.NotifyNodeInformation).Timestamp) }

// seqHandler records what a handler receives and checks that it is never
// called concurrently; done is closed once it got want requests.
type seqHandler struct {
	t       testing.TB
	want    int
	running atomic.Int32
	mu      sync.Mutex
	got     []int
	done    chan struct{}
}

func newSeqHandler(t testing.TB, want int) *seqHandler {
	return &seqHandler{t: t, want: want, done: make(chan struct{})}
}

func (h *seqHandler) handle(r *Request) {
	if h.running.Add(1) != 1 {
		h.t.Errorf("handler called concurrently (request %d)", stamp(r))
	}
	runtime.Gosched() // widen the window for a concurrent call
	h.mu.Lock()
	h.got = append(h.got, stamp(r))
	if len(h.got) == h.want {
		close(h.done)
	}
	h.mu.Unlock()
	h.running.Add(-1)
}

func (h *seqHandler) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.got)
}

func (h *seqHandler) wait(t testing.TB) []int {
	t.Helper()
	select {
	case <-h.done:
	case <-time.After(testTimeout):
		t.Fatalf("handler got %d requests, want %d", h.count(), h.want)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]int(nil), h.got...)
}

// SetHandler hands over the queued requests first, then those arriving
// meanwhile and after, in order and one at a time.
func TestSetHandlerOrder(t *testing.T) {
	const queued, more = 50, 500
	cli, srv := pair(t, "tcp4", Config{}, Config{})
	notify(t, cli, 0, queued)
	barrier(t, cli)
	h := newSeqHandler(t, queued+more)
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		notify(t, cli, queued, queued+more) // races with the hand-over
	}()
	srv.SetHandler(h.handle)
	if n := h.count(); n < queued {
		t.Errorf("SetHandler returned after handing over %d requests, want at least %d", n, queued)
	}
	got := h.wait(t)
	<-sent
	for i, s := range got {
		if s != i {
			t.Fatalf("handler got request %d in position %d: %v", s, i, got)
		}
	}
	if _, err := srv.Recv(testCtx(t)); !errors.Is(err, ErrHandled) {
		t.Fatalf("recv after SetHandler: got %v, want ErrHandled", err)
	}
}

// Requests taken by concurrent Recv calls are not handed over again; those
// calls then return ErrHandled.
func TestSetHandlerConcurrentRecv(t *testing.T) {
	const total, receivers = 400, 4
	cli, srv := pair(t, "tcp4", Config{}, Config{})
	var mu sync.Mutex
	var recvd []int
	var wg sync.WaitGroup
	for range receivers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				r, err := srv.Recv(testCtx(t))
				if err != nil {
					if !errors.Is(err, ErrHandled) {
						t.Errorf("recv: got %v, want ErrHandled", err)
					}
					return
				}
				mu.Lock()
				recvd = append(recvd, stamp(r))
				mu.Unlock()
			}
		}()
	}
	notify(t, cli, 0, total/2)
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		notify(t, cli, total/2, total)
	}()
	h := newSeqHandler(t, -1)
	srv.SetHandler(h.handle)
	wg.Wait() // every Recv returned ErrHandled
	<-sent
	barrier(t, cli) // the reader handled everything sent before
	h.mu.Lock()
	got := append([]int(nil), h.got...)
	h.mu.Unlock()
	seen := make(map[int]bool, total)
	maxRecvd := -1
	for _, s := range recvd {
		seen[s] = true
		maxRecvd = max(maxRecvd, s)
	}
	for i, s := range got {
		if seen[s] {
			t.Fatalf("request %d delivered twice", s)
		}
		seen[s] = true
		if i > 0 && s <= got[i-1] {
			t.Fatalf("handler got %d after %d", s, got[i-1])
		}
		if s < maxRecvd {
			t.Fatalf("handler got %d, older than %d taken by Recv", s, maxRecvd)
		}
	}
	if len(seen) != total {
		t.Fatalf("%d distinct requests delivered, want %d", len(seen), total)
	}
}

// The requests queued before the close are handed over; a second
// SetHandler panics.
func TestSetHandlerClosed(t *testing.T) {
	cli, srv := pair(t, "tcp4", Config{}, Config{})
	notify(t, cli, 0, 3)
	barrier(t, cli)
	cli.Close()
	if err := waitClosed(t, srv); !errors.Is(err, ErrClosed) {
		t.Fatalf("link closed with %v", err)
	}
	h := newSeqHandler(t, 3)
	srv.SetHandler(h.handle)
	if got := h.wait(t); len(got) != 3 || got[0] != 0 || got[2] != 2 {
		t.Fatalf("handler got %v, want [0 1 2]", got)
	}
	if _, err := srv.Recv(testCtx(t)); !errors.Is(err, ErrHandled) {
		t.Fatalf("recv: got %v, want ErrHandled", err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("second SetHandler did not panic")
		}
	}()
	srv.SetHandler(h.handle)
}

// More tells the requests followed by buffered input from the last one of
// a burst, with a handler and with Recv.
func TestRequestMore(t *testing.T) {
	burst := func(n int) []byte {
		var b []byte
		for i := range n {
			b = proto.AppendPacket(b, uint32(i), &proto.NotifyNodeInformation{Timestamp: float64(i)})
		}
		return b
	}
	want := []bool{true, true, false}
	t.Run("handler", func(t *testing.T) {
		got := make(chan bool, len(want))
		ln := listen(t, "tcp4", Config{Handler: func(r *Request) { got <- r.More() }})
		p, _ := dialRaw(t, ln)
		p.write(burst(len(want))) // one write: one read on loopback
		for i, w := range want {
			select {
			case m := <-got:
				if m != w {
					t.Fatalf("request %d: More() = %v, want %v", i, m, w)
				}
			case <-time.After(testTimeout):
				t.Fatalf("request %d not handled", i)
			}
		}
	})
	t.Run("recv", func(t *testing.T) {
		p, l := dialRaw(t, listen(t, "tcp4", Config{}))
		p.write(burst(len(want)))
		for i, w := range want {
			if m := recvReq(t, l).More(); m != w {
				t.Fatalf("request %d: More() = %v, want %v", i, m, w)
			}
		}
	})
}
