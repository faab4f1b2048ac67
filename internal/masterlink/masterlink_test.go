package masterlink

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
)

// The Dialer is tested against fake masters on loopback sockets, each
// answering identifications with a script. The fake masters run outside
// the synctest bubble of the test (created before it), so that the
// bubble's clock only moves while the Dialer waits: an attempt takes no
// time, the pauses between attempts are exact.

const testTimeout = 10 * time.Second

// script plays a master's side of one identification.
type script func(link *neonet.Link, r *neonet.Request)

// welcome accepts as a primary master does: the answer, then a
// notification.
func welcome(link *neonet.Link, r *neonet.Request) {
	r.Reply(&proto.AcceptIdentification{NodeType: proto.MASTER, MyNID: master1, YourNID: storage1})
	link.Send(&proto.NotifyClusterInformation{State: proto.RUNNING})
}

const (
	master1  = proto.NodeID(-0x10000000 + 1) // M1
	storage1 = proto.NodeID(1)               // S1
)

// secondaryOf answers as a secondary master does: NotPrimaryMaster with
// the index of the primary in known (-1: none), then close.
func secondaryOf(primary int, known ...*fakeMaster) script {
	return func(link *neonet.Link, r *neonet.Request) {
		m := &proto.NotPrimaryMaster{}
		for _, k := range known {
			m.KnownMasters = append(m.KnownMasters, k.paddr())
		}
		if primary >= 0 {
			m.Primary = proto.Some(uint32(primary))
		}
		link.Send(m)
		link.Abort()
	}
}

// refuse answers an Error, then closes.
func refuse(code proto.ErrorCode) script {
	return func(link *neonet.Link, r *neonet.Request) {
		r.Reply(&proto.Error{Code: code, Message: "refused by the test"})
		link.Abort()
	}
}

// die closes the link without answering: a master killed during the
// identification.
func die(link *neonet.Link, r *neonet.Request) { link.Close() }

// fakeMaster is a listening master that plays scripts[i] at its i-th
// identification, the last one again after.
type fakeMaster struct {
	addr    string
	scripts []script

	mu   sync.Mutex
	reqs []*proto.RequestIdentification
}

func newFakeMaster(t *testing.T, scripts ...script) *fakeMaster {
	t.Helper()
	ln, err := neonet.Listen(context.Background(), "tcp", "127.0.0.1:0", neonet.Config{})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeMaster{addr: ln.Addr().String(), scripts: scripts}
	var wg sync.WaitGroup
	var links []*neonet.Link
	wg.Go(func() {
		for {
			link, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			f.mu.Lock()
			links = append(links, link)
			f.mu.Unlock()
			wg.Go(func() { f.serve(link) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		for _, l := range links {
			l.Close()
		}
		f.mu.Unlock()
		wg.Wait()
	})
	return f
}

func (f *fakeMaster) serve(link *neonet.Link) {
	r, err := link.Recv(context.Background())
	if err != nil {
		return
	}
	req, ok := r.Msg.(*proto.RequestIdentification)
	if !ok {
		link.Close()
		return
	}
	f.mu.Lock()
	s := f.scripts[min(len(f.reqs), len(f.scripts)-1)]
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	s(link, r)
}

// requests returns the identifications received so far.
func (f *fakeMaster) requests() []*proto.RequestIdentification {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs)
}

func (f *fakeMaster) paddr() proto.Addr {
	host, port, _ := net.SplitHostPort(f.addr)
	p, _ := strconv.Atoi(port)
	return proto.Addr{Host: host, Port: uint16(p)}
}

// deadAddr returns an address where nothing listens: dials are refused.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

var testReq = &proto.RequestIdentification{NodeType: proto.STORAGE, ClusterName: "test"}

// attempt is one attempt of a Dialer: where, and when on the bubble's
// clock since the test began.
type attempt struct {
	addr string
	at   time.Duration
}

// record makes d record its attempts; call it inside the bubble.
func record(d *Dialer) func() []attempt {
	start := time.Now()
	var mu sync.Mutex
	var got []attempt
	d.attempted = func(addr string) {
		mu.Lock()
		got = append(got, attempt{addr, time.Since(start)})
		mu.Unlock()
	}
	return func() []attempt {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
}

func fixed(addrs ...string) func() []string {
	return func() []string { return addrs }
}

// dial runs d.Dial, checks that it succeeded at want and closes the link.
func dial(t *testing.T, d *Dialer, want *fakeMaster) *proto.AcceptIdentification {
	t.Helper()
	link, acc, err := d.Dial(t.Context(), testReq)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer link.Close()
	if got := link.RemoteAddr().String(); got != want.addr {
		t.Errorf("identified to %s, want %s", got, want.addr)
	}
	// What the master sent after its answer waits for the caller.
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	r, err := link.Recv(ctx)
	if err != nil {
		t.Fatalf("Recv after Dial: %v", err)
	}
	if _, ok := r.Msg.(*proto.NotifyClusterInformation); !ok {
		t.Errorf("first packet after Dial: %T, want NotifyClusterInformation", r.Msg)
	}
	return acc
}

func checkAttempts(t *testing.T, got []attempt, want ...attempt) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("attempts:\n got %v\nwant %v", got, want)
	}
}

func TestSecondaryRedirectsToPrimary(t *testing.T) {
	primary := newFakeMaster(t, welcome)
	secondary := newFakeMaster(t)
	secondary.scripts = []script{secondaryOf(1, secondary, primary)}
	synctest.Test(t, func(t *testing.T) {
		var learned []proto.Addr
		d := &Dialer{Masters: fixed(secondary.addr), Learned: func(k []proto.Addr) { learned = append(learned, k...) }}
		attempts := record(d)
		acc := dial(t, d, primary)
		if acc.MyNID != master1 || acc.YourNID != storage1 {
			t.Errorf("AcceptIdentification %+v", acc)
		}
		// The primary is tried at once: it was not tried before.
		checkAttempts(t, attempts(), attempt{secondary.addr, 0}, attempt{primary.addr, 0})
		if want := []proto.Addr{secondary.paddr(), primary.paddr()}; !slices.Equal(learned, want) {
			t.Errorf("Learned %v, want %v", learned, want)
		}
	})
	if got := primary.requests(); len(got) != 1 || got[0].NodeType != proto.STORAGE || got[0].ClusterName != "test" {
		t.Errorf("the primary got %+v", got)
	}
}

// TestNoPrimaryKnown: a secondary during an election names no primary;
// the masters it knows are tried.
func TestNoPrimaryKnown(t *testing.T) {
	primary := newFakeMaster(t, welcome)
	secondary := newFakeMaster(t)
	secondary.scripts = []script{secondaryOf(-1, secondary, primary)}
	synctest.Test(t, func(t *testing.T) {
		d := &Dialer{Masters: fixed(secondary.addr)}
		attempts := record(d)
		dial(t, d, primary)
		checkAttempts(t, attempts(), attempt{secondary.addr, 0}, attempt{primary.addr, 0})
	})
}

// TestPrimaryDiesDuringIdentification: the primary a secondary named dies
// before answering; the search goes on with the masters after it.
func TestPrimaryDiesDuringIdentification(t *testing.T) {
	dying, other := newFakeMaster(t, die), newFakeMaster(t, welcome)
	secondary := newFakeMaster(t)
	secondary.scripts = []script{secondaryOf(1, secondary, dying)}
	synctest.Test(t, func(t *testing.T) {
		d := &Dialer{Masters: fixed(secondary.addr, dying.addr, other.addr)}
		attempts := record(d)
		dial(t, d, other)
		checkAttempts(t, attempts(),
			attempt{secondary.addr, 0}, attempt{dying.addr, 0}, attempt{other.addr, 0})
	})
}

// TestNotReady: a master that answers NOT_READY is tried again, no sooner
// than Delay after the last attempt; the others are tried meanwhile.
func TestNotReady(t *testing.T) {
	m := newFakeMaster(t, refuse(proto.NOT_READY), refuse(proto.NOT_READY), welcome)
	dead := deadAddr(t)
	synctest.Test(t, func(t *testing.T) {
		var log bytes.Buffer
		d := &Dialer{Masters: fixed(m.addr, dead), Logger: slog.New(slog.NewTextHandler(&log, nil))}
		attempts := record(d)
		dial(t, d, m)
		const ms = time.Millisecond
		checkAttempts(t, attempts(),
			attempt{m.addr, 0}, attempt{dead, 0},
			attempt{m.addr, 100 * ms}, attempt{dead, 100 * ms},
			attempt{m.addr, 200 * ms})
		// Once per master and failure at INFO.
		if n := strings.Count(log.String(), "level=INFO msg=\"master not available\""); n != 2 {
			t.Errorf("%d INFO lines, want 2:\n%s", n, log.String())
		}
	})
}

// TestThrottle: attempts on one address are Delay apart, or spaced by a
// pause growing by half up to MaxDelay.
func TestThrottle(t *testing.T) {
	a, b := deadAddr(t), deadAddr(t)
	const ms = time.Millisecond
	for _, tc := range []struct {
		name            string
		delay, maxDelay time.Duration
		until           time.Duration
		times           []time.Duration // of the attempts on one address
	}{
		{"default", 0, 0, 450 * ms, []time.Duration{0, 100 * ms, 200 * ms, 300 * ms, 400 * ms}},
		{"constant", 30 * ms, 0, 100 * ms, []time.Duration{0, 30 * ms, 60 * ms, 90 * ms}},
		{"growing", 50 * ms, time.Second, 2500 * ms, []time.Duration{0, 50 * ms, 125 * ms, 237500 * time.Microsecond,
			406250 * time.Microsecond, 659375 * time.Microsecond, 1039062500, 1608593750, 2462890625}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				d := &Dialer{Masters: fixed(a, b), Delay: tc.delay, MaxDelay: tc.maxDelay}
				attempts := record(d)
				ctx, cancel := context.WithTimeout(t.Context(), tc.until)
				defer cancel()
				if _, _, err := d.Dial(ctx, testReq); !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("Dial: %v, want DeadlineExceeded", err)
				}
				var want []attempt
				for _, at := range tc.times {
					want = append(want, attempt{a, at}, attempt{b, at})
				}
				checkAttempts(t, attempts(), want...)
			})
		})
	}
}

// TestMastersChange: the list is read again before every attempt (a
// dynamic master list).
func TestMastersChange(t *testing.T) {
	dead := deadAddr(t)
	m := newFakeMaster(t, welcome)
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		list := []string{dead}
		d := &Dialer{Masters: func() []string {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(list)
		}}
		attempts := record(d)
		go func() {
			time.Sleep(150 * time.Millisecond) // on the bubble's clock
			mu.Lock()
			list = []string{m.addr}
			mu.Unlock()
		}()
		dial(t, d, m)
		const ms = time.Millisecond
		checkAttempts(t, attempts(), attempt{dead, 0}, attempt{dead, 100 * ms}, attempt{m.addr, 200 * ms})
	})
}

// TestNotAMasterOrNotReady: a peer that is not a master, and a master
// refused by Ready, are failures like the others; the link Ready refused
// is closed.
func TestNotAMasterOrNotReady(t *testing.T) {
	storage := newFakeMaster(t, func(link *neonet.Link, r *neonet.Request) {
		r.Reply(&proto.AcceptIdentification{NodeType: proto.STORAGE, MyNID: storage1})
	})
	notOperational, m := newFakeMaster(t, welcome), newFakeMaster(t, welcome)
	synctest.Test(t, func(t *testing.T) {
		var refused *neonet.Link
		d := &Dialer{
			Masters: fixed(storage.addr, notOperational.addr, m.addr),
			Ready: func(ctx context.Context, link *neonet.Link, acc *proto.AcceptIdentification) error {
				if link.RemoteAddr().String() == notOperational.addr {
					refused = link
					return errors.New("partition table not operational")
				}
				return nil
			},
		}
		dial(t, d, m)
		if refused == nil || refused.Err() == nil {
			t.Error("the link Ready refused is not closed")
		}
	})
}

// TestCancel: Dial returns the context's error, whether it waits between
// attempts or for an answer.
func TestCancel(t *testing.T) {
	t.Run("between attempts", func(t *testing.T) {
		dead := deadAddr(t)
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			d := &Dialer{Masters: fixed(dead), Delay: time.Hour}
			d.attempted = func(string) {}
			time.AfterFunc(time.Minute, cancel)
			start := time.Now()
			if _, _, err := d.Dial(ctx, testReq); !errors.Is(err, context.Canceled) {
				t.Errorf("Dial: %v, want Canceled", err)
			}
			if got := time.Since(start); got != time.Minute {
				t.Errorf("Dial returned after %v, want 1m", got)
			}
		})
	})
	t.Run("waiting for the answer", func(t *testing.T) {
		// The master holds the request: real time, no bubble.
		asked := make(chan struct{})
		m := newFakeMaster(t, func(link *neonet.Link, r *neonet.Request) {
			close(asked)
			<-link.Done()
		})
		ctx, cancel := context.WithCancel(t.Context())
		go func() {
			<-asked
			cancel()
		}()
		d := &Dialer{Masters: fixed(m.addr)}
		if _, _, err := d.Dial(ctx, testReq); !errors.Is(err, context.Canceled) {
			t.Errorf("Dial: %v, want Canceled", err)
		}
	})
}

func TestMisuse(t *testing.T) {
	d := &Dialer{Masters: fixed()}
	if _, _, err := d.Dial(t.Context(), testReq); !errors.Is(err, ErrNoMaster) {
		t.Errorf("no master: %v, want ErrNoMaster", err)
	}
	d = &Dialer{Masters: fixed("127.0.0.1:1"), Net: neonet.Config{Handler: func(*neonet.Request) {}}}
	if _, _, err := d.Dial(t.Context(), testReq); !errors.Is(err, ErrHandler) {
		t.Errorf("handler: %v, want ErrHandler", err)
	}
}

// TestStaleRedirects: two secondaries that name each other as the primary
// are not asked in a busy loop.
func TestStaleRedirects(t *testing.T) {
	a, b := newFakeMaster(t), newFakeMaster(t)
	a.scripts = []script{secondaryOf(1, a, b)}
	b.scripts = []script{secondaryOf(0, a, b)}
	synctest.Test(t, func(t *testing.T) {
		d := &Dialer{Masters: fixed(a.addr)}
		attempts := record(d)
		ctx, cancel := context.WithTimeout(t.Context(), 250*time.Millisecond)
		defer cancel()
		if _, _, err := d.Dial(ctx, testReq); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Dial: %v, want DeadlineExceeded", err)
		}
		const ms = time.Millisecond
		checkAttempts(t, attempts(),
			attempt{a.addr, 0}, attempt{b.addr, 0},
			attempt{a.addr, 100 * ms}, attempt{b.addr, 100 * ms},
			attempt{a.addr, 200 * ms}, attempt{b.addr, 200 * ms})
	})
}

// TestFatal: a failure that Fatal picks ends the search with it.
func TestFatal(t *testing.T) {
	m := newFakeMaster(t, refuse(proto.NOT_READY), refuse(proto.READ_ONLY_ACCESS), welcome)
	synctest.Test(t, func(t *testing.T) {
		d := &Dialer{Masters: fixed(m.addr), Fatal: func(err error) bool { return errors.Is(err, proto.ErrReadOnlyAccess) }}
		attempts := record(d)
		_, _, err := d.Dial(t.Context(), &proto.RequestIdentification{NodeType: proto.CLIENT, ClusterName: "test"})
		if !errors.Is(err, proto.ErrReadOnlyAccess) {
			t.Fatalf("Dial: %v, want READ_ONLY_ACCESS", err)
		}
		if n := len(attempts()); n != 2 {
			t.Fatalf("%d attempts, want 2", n)
		}
	})
}
