package neonet

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/neogo/neo/proto"
)

// countingObserver counts what it is told, per code.
type countingObserver struct {
	mu       sync.Mutex
	sent     map[uint16]int // bytes
	received map[uint16]int // bytes
	served   map[uint16][]time.Duration
	links    int // open
	opened   int
}

func (o *countingObserver) LinkOpened() {
	o.mu.Lock()
	o.links++
	o.opened++
	o.mu.Unlock()
}

func (o *countingObserver) LinkClosed() {
	o.mu.Lock()
	o.links--
	o.mu.Unlock()
}

func newCountingObserver() *countingObserver {
	return &countingObserver{sent: map[uint16]int{}, received: map[uint16]int{}, served: map[uint16][]time.Duration{}}
}

func (o *countingObserver) PacketSent(code uint16, size int) {
	o.mu.Lock()
	o.sent[code] += size
	o.mu.Unlock()
}

func (o *countingObserver) PacketReceived(code uint16, size int) {
	o.mu.Lock()
	o.received[code] += size
	o.mu.Unlock()
}

func (o *countingObserver) RequestServed(code uint16, d time.Duration) {
	o.mu.Lock()
	o.served[code] = append(o.served[code], d)
	o.mu.Unlock()
}

// TestObserver checks what the observer of a serving link is told: each
// packet with its exact size, and the time of each request answered,
// whether by its handler (AskObject, after a delay) or by the link (Ping),
// but not of notifications.
func TestObserver(t *testing.T) {
	obs := newCountingObserver()
	const delay = 20 * time.Millisecond
	data := bytes.Repeat([]byte{'d'}, 100)
	var notified atomic.Int32
	answer := objectHandler(data)
	cli, _ := pair(t, "tcp4", Config{}, Config{Observer: obs, Handler: func(r *Request) {
		if _, ok := r.Msg.(*proto.NotifyDeadlock); ok {
			notified.Add(1)
			return
		}
		time.Sleep(delay)
		answer(r)
	}})
	ctx := testCtx(t)
	ask := &proto.AskObject{Oid: 1, At: proto.InvalidTid, Before: proto.InvalidTid}
	var ans proto.AnswerObject
	if err := cli.Ask(ctx, ask, &ans); err != nil {
		t.Fatal(err)
	}
	if err := cli.Send(&proto.NotifyDeadlock{LockingTid: 2, Oid: 1}); err != nil {
		t.Fatal(err)
	}
	if err := cli.Ask(context.Background(), &proto.Ping{}, &proto.Pong{}); err != nil {
		t.Fatal(err)
	}
	if notified.Load() != 1 {
		t.Fatal("notification not handled before the Pong")
	}

	size := func(id uint32, m proto.Msg) int { return len(proto.AppendPacket(nil, id, m)) }
	askCode, ansCode := ask.NEOMsgCode(), ans.NEOMsgCode()
	ndCode := (&proto.NotifyDeadlock{}).NEOMsgCode()
	obs.mu.Lock()
	if got, want := obs.received[askCode], size(0, ask); got != want {
		t.Errorf("received AskObject: %d bytes, want %d", got, want)
	}
	if got, want := obs.sent[ansCode], size(0, &ans); got != want {
		t.Errorf("sent AnswerObject: %d bytes, want %d", got, want)
	}
	if obs.received[ndCode] == 0 || obs.received[2] == 0 || obs.sent[0x8002] == 0 {
		t.Errorf("NotifyDeadlock, Ping or Pong not seen: received %v, sent %v", obs.received, obs.sent)
	}
	if d := obs.served[askCode]; len(d) != 1 || d[0] < delay {
		t.Errorf("AskObject served in %v, want one time ≥ %v", d, delay)
	}
	if d := obs.served[2]; len(d) != 1 {
		t.Errorf("Ping served %d times, want 1", len(d))
	}
	if d := obs.served[ndCode]; len(d) != 0 {
		t.Errorf("notification NotifyDeadlock timed as served: %v", d)
	}
	if obs.links != 1 || obs.opened != 1 {
		t.Errorf("%d links open, %d opened; want 1, 1", obs.links, obs.opened)
	}
	obs.mu.Unlock()
	cli.Close()
	deadline := time.Now().Add(testTimeout)
	for {
		obs.mu.Lock()
		open := obs.links
		obs.mu.Unlock()
		if open == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the serving link's close was not observed")
		}
		time.Sleep(time.Millisecond)
	}
}
