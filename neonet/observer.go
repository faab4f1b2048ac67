package neonet

import (
	"sync"
	"time"

	"github.com/neogo/neo/proto"
)

// Observer is told of a link's traffic, for metrics (package
// internal/nodehttp implements it with Prometheus). Its methods are called
// on the links' hot paths, under the link's locks: they must be cheap,
// safe for concurrent use, and never block nor call the link.
type Observer interface {
	// PacketSent is called for each packet sent: its wire code and its
	// size in bytes (header included), when it is queued or written.
	PacketSent(code uint16, size int)
	// PacketReceived is called for each packet received, Ping and
	// answers included, before it is dispatched.
	PacketReceived(code uint16, size int)
	// RequestServed is called when the answer (or Error) to a request of
	// the peer is sent: code is the request's, d the time from its
	// receipt to the answer being queued or written.
	RequestServed(code uint16, d time.Duration)
	// LinkOpened is called once a link is established (both handshakes
	// done), and LinkClosed once when it starts closing, whatever the
	// cause.
	LinkOpened()
	LinkClosed()
}

// maxServing bounds the requests of the peer a link remembers the receipt
// of: a request never answered (Truncate, which the master sends as a
// notification) must not grow the table without end. Past it, requests
// are not timed.
const maxServing = 4096

// served is the receipt of a request not answered yet.
type served struct {
	code uint16
	at   time.Time
}

// observing is a link's state for its Observer.
type observing struct {
	obs Observer
	mu  sync.Mutex
	// serving maps the ids of the peer's requests being served to their
	// receipt; the answer carries the same id.
	serving map[uint32]served
}

// received records a received packet; a request is remembered until its
// answer is sent.
func (o *observing) received(id uint32, code uint16, size int) {
	o.obs.PacketReceived(code, size)
	if code&proto.ResponseMask != 0 {
		return
	}
	if k, ok := proto.MsgKind(code); !ok || !k.IsRequest() {
		return
	}
	now := time.Now()
	o.mu.Lock()
	if len(o.serving) < maxServing {
		o.serving[id] = served{code, now}
	}
	o.mu.Unlock()
}

// sent records a sent packet; an answer ends the request of the same id.
func (o *observing) sent(id uint32, code uint16, size int) {
	o.obs.PacketSent(code, size)
	if code&proto.ResponseMask == 0 {
		return
	}
	o.mu.Lock()
	s, ok := o.serving[id]
	if ok {
		delete(o.serving, id)
	}
	o.mu.Unlock()
	if ok {
		o.obs.RequestServed(s.code, time.Since(s.at))
	}
}
