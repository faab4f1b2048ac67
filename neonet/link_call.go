package neonet

import (
	"context"
	"fmt"
	"time"

	"github.com/neogo/neo/proto"
)

// This file holds our requests whose answers are waited for: a [Call] is
// registered in mu.pending under its id before its request can leave (the
// answer may come at once); the reader (dispatchAnswer in link_read.go)
// or the close takes it out and completes it.

// Call is one request sent by [Link.Start], waiting for its answer.
type Call struct {
	link    *Link
	id      uint32
	reqCode uint16
	ansCode uint16    // expected answer code; codeError for requests answered by Error
	resp    proto.Msg // where to decode the answer; nil: a new message
	done    chan struct{}

	// Set before done is closed, by whoever removed the call from
	// link.mu.pending.
	answer proto.Msg
	err    error

	abandoned bool // guarded by link.mu: Wait gave up, drop the answer

	// since is when the request was sent, for the node's state dump
	// (Link.Info); set only on links with an Observer, which pay for
	// the clock.
	since time.Time

	onDone func(*Call) // see PostFunc
}

// complete marks c done: Wait returns, onDone runs.
func (c *Call) complete() {
	close(c.done)
	if c.onDone != nil {
		c.onDone(c)
	}
}

// isDone reports whether c is done.
func (c *Call) isDone() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// Err returns the error of a call that is done (see [Link.Ask]).
func (c *Call) Err() error { return c.err }

// ID returns the id the request was sent with: AddTransaction/AddObject
// notifications belonging to an AskFetch* request carry it (§5.12).
func (c *Call) ID() uint32 { return c.id }

// Answer returns the answer after [Call.Wait] returned nil: resp as given
// to [Link.Start], or a new message if resp was nil (an Error(ACK) for
// requests answered by Error).
func (c *Call) Answer() proto.Msg { return c.answer }

// Ask sends the request req and waits for its answer, which it decodes into
// resp: a pointer to the answer type of req, or nil to drop the answer.
// For requests answered by Error (SetClusterState...) Error(ACK) is the
// success, which resp, if not nil, must be a *proto.Error to receive.
// Any other Error answer is returned as the error itself (a *proto.Error,
// so errors.Is(err, proto.ErrOidNotFound) works, and errors.As gets the
// packet to relay it). Other errors: ctx's (the request is then forgotten
// and a late answer dropped), or one matching [ErrClosed] or, for an
// answer of the wrong type, [ErrProtocol]. Ask may be called concurrently.
func (l *Link) Ask(ctx context.Context, req, resp proto.Msg) error {
	c, err := l.Start(req, resp)
	if err != nil {
		return err
	}
	return c.Wait(ctx)
}

// Start sends the request req and returns the call that waits for its
// answer; see [Link.Ask] for resp.
func (l *Link) Start(req, resp proto.Msg) (*Call, error) {
	c := &Call{resp: resp}
	if err := l.lockCall(req, c); err != nil {
		return nil, err
	}
	return started(c, l.sendLocked(c.id, req))
}

// PostFunc is [Link.Start] that never blocks, as [Link.Post], and calls f
// once the call is done (answered, or failed by the close of the link)
// instead of being waited for: on the goroutine that completed it, often
// the link's reader, so f must not block. [Call.Answer] and [Call.Err]
// tell the outcome.
func (l *Link) PostFunc(req, resp proto.Msg, f func(*Call)) (*Call, error) {
	c := &Call{resp: resp, onDone: f}
	if err := l.lockCall(req, c); err != nil {
		return nil, err
	}
	return started(c, l.postLocked(c.id, req))
}

// lockCall makes c, whose resp and onDone are set, the call of req: it
// takes wmu for req, as [Link.lockOpen], and registers c under the next
// id of our counter that no call holds. On error, wmu is not held.
func (l *Link) lockCall(req proto.Msg, c *Call) error {
	c.link, c.reqCode, c.done = l, req.NEOMsgCode(), make(chan struct{})
	if l.obs != nil {
		c.since = time.Now()
	}
	var err error
	if c.ansCode, err = answerCode(c.reqCode, c.resp); err != nil {
		return err
	}
	if err := l.lockOpen(); err != nil {
		return err
	}
	id := l.newIDLocked()
	l.mu.Lock()
	if l.mu.pending == nil { // closing
		l.mu.Unlock()
		l.wmu.Unlock()
		return l.Err()
	}
	// Skip ids still pending after the counter wrapped.
	for l.mu.pending[id] != nil {
		id = l.newIDLocked()
	}
	c.id = id
	l.mu.pending[id] = c // before sending: the answer may come at once
	l.mu.Unlock()
	return nil
}

// started returns c, or the error of sending its request.
func started(c *Call, err error) (*Call, error) {
	if err != nil {
		return nil, err
	}
	return c, nil
}

// answerCode returns the code of the answer to request code, checking
// that resp, if not nil, can receive it.
func answerCode(code uint16, resp proto.Msg) (uint16, error) {
	kind, ok := proto.MsgKind(code)
	if !ok || !kind.IsRequest() {
		return 0, fmt.Errorf("neonet: ask %s: not a request", proto.MsgName(code))
	}
	ans := uint16(codeError)
	if kind == proto.KindAsk {
		ans, _ = proto.AnswerCode(code)
	}
	if resp != nil {
		if rc := resp.NEOMsgCode(); rc != ans && rc != codeError {
			return 0, fmt.Errorf("neonet: ask %s: answer is %s, not %s",
				proto.MsgName(code), proto.MsgName(ans), proto.MsgName(rc))
		}
	}
	return ans, nil
}

// Wait waits for the answer of c and returns nil or the error described in
// [Link.Ask]. If ctx ends first, the request is forgotten: its answer will
// be dropped when it comes. Call Wait once.
func (c *Call) Wait(ctx context.Context) error {
	l := c.link
	if l.callerReads {
		// Read the answer ourselves when nobody reads (Config.CallerReads),
		// until the link closes: then the close completes c.
		for ctx.Err() == nil && !l.closing.Load() {
			select {
			case <-c.done:
				return c.err
			case <-l.rtoken:
				l.readFor(ctx, c)
			case <-ctx.Done():
			}
		}
	}
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
	}
	l.mu.Lock()
	if l.mu.pending[c.id] == c {
		c.abandoned = true
		l.mu.Unlock()
		return fmt.Errorf("neonet: %s (id %d) on %s: %w", proto.MsgName(c.reqCode), c.id, l, context.Cause(ctx))
	}
	l.mu.Unlock()
	// The answer or the close is being delivered right now.
	<-c.done
	return c.err
}
