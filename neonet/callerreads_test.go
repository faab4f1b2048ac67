package neonet

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/neogo/neo/proto"
)

// withLinger sets callerReadLinger for one test.
func withLinger(t *testing.T, d time.Duration) {
	old := callerReadLinger
	callerReadLinger = d
	t.Cleanup(func() { callerReadLinger = old })
}

// onWait reports whether the calling goroutine is inside Call.Wait: the
// handler then runs on a caller that reads the socket itself.
func onWait() bool {
	buf := make([]byte, 64<<10)
	return strings.Contains(string(buf[:runtime.Stack(buf, false)]), "neonet.(*Call).Wait")
}

// notifyThenAnswer answers each AskObject after a notification, so that
// the client dispatches the notification on the way to the answer.
func notifyThenAnswer(r *Request) {
	if ask, ok := r.Msg.(*proto.AskObject); ok {
		r.Link.Send(&proto.NotifyDeadlock{LockingTid: 1, Oid: ask.Oid})
		r.Reply(&proto.AnswerObject{Oid: ask.Oid, Serial: 1, NextSerial: proto.InvalidTid,
			Compression: proto.Some[uint8](0), Checksum: make([]byte, 20), Data: []byte("x"), DataSerial: proto.InvalidTid})
	}
}

func askObject(ctx context.Context, l *Link, oid proto.Oid) error {
	var ans proto.AnswerObject
	if err := l.Ask(ctx, &proto.AskObject{Oid: oid, At: proto.InvalidTid, Before: proto.InvalidTid}, &ans); err != nil {
		return err
	}
	if ans.Oid != oid {
		return errors.New("answer for another oid")
	}
	return nil
}

// With CallerReads, once the reader goroutine gave the role up (after the
// first answer), a caller reads its answer itself: the packets before it
// are dispatched on the caller's goroutine. Without, on the reader's.
func TestCallerReadsOnCaller(t *testing.T) {
	withLinger(t, time.Hour) // the reader goroutine does not take the role back
	for _, callerReads := range []bool{false, true} {
		onCaller := make(chan bool, 10)
		handler := func(r *Request) {
			if _, ok := r.Msg.(*proto.NotifyDeadlock); ok {
				onCaller <- onWait()
			}
		}
		cli, _ := pair(t, "tcp4", Config{Handler: handler, CallerReads: callerReads}, Config{Handler: notifyThenAnswer})
		ctx := testCtx(t)
		for i := range 3 {
			if err := askObject(ctx, cli, proto.Oid(i)); err != nil {
				t.Fatal(err)
			}
			got := <-onCaller
			if want := callerReads && i > 0; got != want && (callerReads || !*allCallerReads) {
				t.Fatalf("CallerReads %v, ask %d: notification dispatched on the waiting caller: %v, want %v", callerReads, i, got, want)
			}
		}
	}
}

// Between calls, the reader goroutine takes the role back: a notification
// and the close that nobody waits for are seen.
func TestCallerReadsIdle(t *testing.T) {
	withLinger(t, time.Millisecond)
	got := make(chan proto.Msg, 1)
	cli, srv := pair(t, "tcp4", Config{CallerReads: true, Handler: func(r *Request) { got <- r.Msg }},
		Config{Handler: objectHandler([]byte("x"))})
	ctx := testCtx(t)
	for i := range 3 {
		if err := askObject(ctx, cli, proto.Oid(i)); err != nil {
			t.Fatal(err)
		}
	}
	srv.Send(&proto.NotifyDeadlock{LockingTid: 7})
	select {
	case m := <-got:
		if n, ok := m.(*proto.NotifyDeadlock); !ok || n.LockingTid != 7 {
			t.Fatalf("received %#v", m)
		}
	case <-ctx.Done():
		t.Fatal("notification sent between calls never dispatched")
	}
	srv.Close()
	select {
	case <-cli.Done():
	case <-ctx.Done():
		t.Fatal("close of the peer between calls never seen")
	}
}

// A caller reading for an answer that does not come leaves at the end of
// its context; the link stays usable and drops the late answer.
func TestCallerReadsCancel(t *testing.T) {
	withLinger(t, time.Hour)
	late := make(chan *Request, 1)
	handler := func(r *Request) {
		if ask, ok := r.Msg.(*proto.AskObject); ok && ask.Oid == 666 {
			late <- r // answered later
			return
		}
		objectHandler([]byte("x"))(r)
	}
	log, rec := testLogger(t)
	cli, _ := pair(t, "tcp4", Config{CallerReads: true, Logger: log}, Config{Handler: handler})
	ctx := testCtx(t)
	if err := askObject(ctx, cli, 1); err != nil { // the reader gives the role up
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := askObject(short, cli, 666); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ask without answer: %v, want the context's deadline", err)
	}
	for i := range 3 {
		if err := askObject(ctx, cli, proto.Oid(i)); err != nil {
			t.Fatalf("ask after a cancelled one: %v", err)
		}
	}
	r := <-late
	objectHandler([]byte("x"))(r)
	if err := askObject(ctx, cli, 2); err != nil {
		t.Fatalf("ask after the late answer: %v", err)
	}
	if cli.Err() != nil {
		t.Fatalf("link closed: %v\n%s", cli.Err(), rec)
	}
}

// Concurrent callers share the role: every answer reaches its caller, and
// notifications interleaved with the answers are all dispatched, in order.
func TestCallerReadsConcurrent(t *testing.T) {
	var mu sync.Mutex
	var seen []proto.Oid
	handler := func(r *Request) {
		if n, ok := r.Msg.(*proto.NotifyDeadlock); ok {
			mu.Lock()
			seen = append(seen, n.Oid)
			mu.Unlock()
		}
	}
	var sent []proto.Oid // in the order the server sent them
	var smu sync.Mutex
	srvHandler := func(r *Request) {
		if ask, ok := r.Msg.(*proto.AskObject); ok {
			smu.Lock()
			sent = append(sent, ask.Oid)
			notifyThenAnswer(r)
			smu.Unlock()
		}
	}
	cli, _ := pair(t, "tcp4", Config{CallerReads: true, Handler: handler}, Config{Handler: srvHandler})
	ctx := testCtx(t)
	const workers, asks = 8, 200
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range asks {
				if err := askObject(ctx, cli, proto.Oid(w*asks+i)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// The notification of the last answer may still be on its way.
	deadline := time.Now().Add(testTimeout)
	for {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n == workers*asks || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	smu.Lock()
	defer smu.Unlock()
	if !slices.Equal(seen, sent) {
		t.Fatalf("%d notifications dispatched, %d sent, or not in order", len(seen), len(sent))
	}
}
