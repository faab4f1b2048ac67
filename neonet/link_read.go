package neonet

import (
	"bytes"
	"context"
	"fmt"

	"github.com/neogo/neo/proto"
)

// This file holds the receive side of a link: the reader goroutine, which
// cuts frames from the stream, answers Ping, hands answers to their calls
// and requests to the handler or the queue of Recv.

// Request is a request or notification received from the peer.
type Request struct {
	// ID is the packet's id, in the peer's id space. For AddTransaction
	// and AddObject it is the id of our AskFetch* request (§5.12).
	ID uint32
	// Msg is the decoded packet; it belongs to the receiver.
	Msg proto.Msg
	// Link is the link it arrived on.
	Link *Link

	more bool // see More
}

// More reports whether more packets of the peer were already received
// when r was handed out (buffered behind it, or queued for Recv): a
// handler may serve a lone request at once and hand requests that pile
// up to other goroutines. False does not mean that nothing follows.
func (r *Request) More() bool { return r.more }

// Reply sends m as the answer to r, with r's id. Any message can be sent
// this way, in particular an Error or the answer relayed from another
// node (§5.14).
func (r *Request) Reply(m proto.Msg) error { return r.Link.SendWithID(r.ID, m) }

// Recv returns the next request or notification received from the peer,
// for links without a handler. Requests queued before the link closed are
// still returned; then Recv returns an error matching [ErrClosed]. On a
// link with a handler, it returns [ErrHandled]. Recv may be called
// concurrently.
func (l *Link) Recv(ctx context.Context) (*Request, error) {
	for {
		l.mu.Lock()
		if l.mu.handler != nil {
			l.mu.Unlock()
			l.signalRecv() // the next waiter learns it too
			return nil, ErrHandled
		}
		if len(l.mu.recvq) > 0 {
			r := l.mu.recvq[0]
			l.mu.recvq[0] = nil
			l.mu.recvq = l.mu.recvq[1:]
			more := len(l.mu.recvq) > 0
			closed := l.mu.err != nil
			l.mu.Unlock()
			if more {
				r.more = true
			}
			if more || closed {
				l.signalRecv() // for the next request, or the close
			}
			return r, nil
		}
		err := l.mu.err
		l.mu.Unlock()
		if err != nil {
			l.signalRecv() // the next waiter learns it too
			return nil, err
		}
		select {
		case <-l.recvReady:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// SetHandler makes the link hand its incoming requests and notifications
// to h instead of queueing them for [Link.Recv], e.g. once the peer is
// identified: see [Config.Handler] for what h may do. The requests already
// queued go to h first, in order, on the caller's goroutine, before
// SetHandler returns (even if the link is closed); the following ones on
// the reader goroutine. h sees every request once, in arrival order, and
// never runs concurrently with itself; a request a concurrent Recv took
// before is not seen, and Recv returns [ErrHandled] from then on.
// SetHandler may be called once, on a link created without a handler.
func (l *Link) SetHandler(h func(*Request)) {
	if h == nil {
		panic("neonet: SetHandler with a nil handler")
	}
	l.mu.Lock()
	if l.mu.handler != nil {
		l.mu.Unlock()
		panic("neonet: SetHandler on a link with a handler")
	}
	l.mu.handler = h
	l.mu.draining = true
	for len(l.mu.recvq) > 0 {
		q := l.mu.recvq
		l.mu.recvq = nil
		l.mu.Unlock()
		for i, r := range q {
			if i < len(q)-1 {
				r.more = true
			}
			h(r)
		}
		l.mu.Lock()
	}
	// The queue is empty and stays so: from now on the reader calls h.
	l.mu.draining = false
	l.mu.Unlock()
	l.signalRecv() // Recv callers waiting return ErrHandled
}

// signalRecv puts the token in recvReady, if it is not there: a waiting
// Recv wakes up and looks.
func (l *Link) signalRecv() {
	select {
	case l.recvReady <- struct{}{}:
	default:
	}
}

// Read buffer sizing: frames are cut from a buffer of readBufSize bytes,
// grown (up to the maximum packet size) for bigger frames.
const (
	readBufSize = 64 << 10
	// Frames of at least bigFrame bytes keep the buffer they were read
	// into (a fresh one is made for what follows) instead of being copied.
	bigFrame = 16 << 10
)

// readLoop is the link's reader goroutine: it cuts frames from the stream
// and dispatches them, until the link closes.
func (l *Link) readLoop() {
	defer func() {
		<-l.wdone // the close that stopped us also stops the writer
		close(l.done)
	}()
	buf := make([]byte, max(readBufSize, len(l.leftover)))
	r, w := 0, copy(buf, l.leftover)
	l.leftover = nil
	scan := proto.FrameScanner{MaxSize: l.maxPacket}
	var rerr error
	for {
		for r < w {
			size, err := scan.Scan(buf[r:w])
			if err != nil {
				l.shutdown(fmt.Errorf("%w: %w", ErrProtocol, err), false)
				return
			}
			if size == 0 {
				break
			}
			// Decoded messages alias their frame, so a frame handed out
			// must never be overwritten.
			var frame []byte
			if size >= bigFrame {
				frame = buf[r : r+size]
				nbuf := make([]byte, max(readBufSize, w-r-size))
				w = copy(nbuf, buf[r+size:w])
				r, buf = 0, nbuf
			} else {
				frame = bytes.Clone(buf[r : r+size])
				r += size
			}
			l.burst.Store(r < w)
			if !l.dispatch(frame) {
				return
			}
		}
		if rerr != nil {
			l.shutdown(rerr, false)
			return
		}
		if r == w {
			r, w = 0, 0
		} else if w == len(buf) {
			if r > 0 {
				w = copy(buf, buf[r:w])
				r = 0
			} else {
				// A frame bigger than buf: the scanner guarantees it
				// fits in maxPacket.
				nbuf := make([]byte, min(2*len(buf), l.maxPacket))
				if len(nbuf) <= len(buf) {
					l.shutdown(fmt.Errorf("%w: packet larger than %d bytes", ErrProtocol, l.maxPacket), false)
					return
				}
				copy(nbuf, buf[:w])
				buf = nbuf
			}
		}
		l.burst.Store(false)
		var n int
		n, rerr = l.conn.Read(buf[w:])
		w += n
	}
}

// dispatch handles one frame; it returns false when the reader must stop.
func (l *Link) dispatch(frame []byte) bool {
	if l.closing.Load() {
		return false // aborted: incoming data is no longer processed
	}
	id, code, args, err := proto.DecodeHeader(frame)
	if err != nil {
		l.shutdown(fmt.Errorf("%w: %w", ErrProtocol, err), false)
		return false
	}
	if l.obs != nil {
		l.obs.received(l, id, code, args, len(frame))
	}
	if code&proto.ResponseMask != 0 {
		return l.dispatchAnswer(id, code, args)
	}
	m := proto.NewMsg(code)
	if m == nil {
		l.shutdown(fmt.Errorf("%w: unknown packet code 0x%04x (id %d)", ErrProtocol, code, id), false)
		return false
	}
	if err := decodeArgs(m, args); err != nil {
		l.shutdown(fmt.Errorf("%w: %w", ErrProtocol, err), false)
		return false
	}
	if code == codePing && !l.deliverPing {
		l.SendWithID(id, &proto.Pong{}) // an error closes the link
		return true
	}
	req := &Request{ID: id, Msg: m, Link: l, more: l.burst.Load()}
	l.mu.Lock()
	h := l.mu.handler
	if h != nil && !l.mu.draining {
		l.mu.Unlock()
		h(req)
		return true
	}
	l.mu.recvq = append(l.mu.recvq, req)
	l.mu.Unlock()
	if h == nil {
		l.signalRecv()
	}
	return true
}

// dispatchAnswer hands an answer to the call waiting for it (§1.7).
func (l *Link) dispatchAnswer(id uint32, code uint16, args []byte) bool {
	l.mu.Lock()
	c := l.mu.pending[id]
	abandoned := false
	if c != nil {
		delete(l.mu.pending, id)
		abandoned = c.abandoned
	}
	l.mu.Unlock()

	if c == nil {
		switch code {
		case codePong:
			// Tolerated, as neoppod does: a Ping whose answer nobody awaits.
			return true
		case codeError:
			var e proto.Error
			if err := decodeArgs(&e, args); err != nil {
				l.shutdown(fmt.Errorf("%w: %w", ErrProtocol, err), false)
				return false
			}
			l.log.Warn("error from peer for no pending request", "id", id, "err", &e)
			return true
		}
		l.protocolError(id, fmt.Errorf("%w: unexpected answer %s (id %d): no such request", ErrProtocol, proto.MsgName(code), id))
		return false
	}
	if abandoned {
		l.log.Debug("late answer dropped", "id", id, "msg", proto.MsgName(code))
		return true
	}

	ok := true
	switch {
	case code == codeError:
		e, _ := c.resp.(*proto.Error)
		if e == nil {
			e = new(proto.Error)
		}
		if err := decodeArgs(e, args); err != nil {
			c.err = fmt.Errorf("%w: %w", ErrProtocol, err)
			ok = false
		} else if e.Code == proto.ACK && c.ansCode == codeError {
			c.answer = e // success of a request answered by Error
		} else {
			c.err = e
		}
	case code == c.ansCode:
		m := c.resp
		if m == nil {
			m = proto.NewMsg(code)
		}
		if err := decodeArgs(m, args); err != nil {
			c.err = fmt.Errorf("%w: %w", ErrProtocol, err)
			ok = false
		} else {
			c.answer = m
		}
	default:
		c.err = fmt.Errorf("%w: unexpected answer %s to %s (id %d)", ErrProtocol, proto.MsgName(code), proto.MsgName(c.reqCode), id)
		c.complete()
		l.protocolError(id, c.err)
		return false
	}
	c.complete()
	if !ok {
		l.shutdown(c.err, false)
	}
	return ok
}

// protocolError answers a protocol violation as neoppod does: an
// Error(PROTOCOL_ERROR) then abort.
func (l *Link) protocolError(id uint32, err error) {
	l.log.Warn("protocol violation by peer", "err", err)
	l.SendWithID(id, &proto.Error{Code: proto.PROTOCOL_ERROR, Message: err.Error()})
	l.shutdown(err, true)
}

// decodeArgs decodes the args array of a packet into m; it must span the
// rest of the frame.
func decodeArgs(m proto.Msg, args []byte) error {
	n, err := m.NEOMsgDecode(args)
	if err != nil {
		return err
	}
	if n != len(args) {
		return fmt.Errorf("decode %s: %d bytes after the packet", proto.MsgName(m.NEOMsgCode()), len(args)-n)
	}
	return nil
}
