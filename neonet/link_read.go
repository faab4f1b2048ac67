package neonet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"time"

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

// readState is the receive side's buffer: frames are cut from buf[r:w];
// err is the socket's read error, reported once the frames before it are
// dispatched. It is owned by the holder of the read role.
type readState struct {
	buf      []byte
	r, w     int
	scan     proto.FrameScanner
	err      error
	answered bool // with callerReads: a call waited for was completed
}

// init starts the buffer with the bytes received behind the handshake.
func (rs *readState) init(leftover []byte, maxPacket int) {
	rs.buf = make([]byte, max(readBufSize, len(leftover)))
	rs.w = copy(rs.buf, leftover)
	rs.scan = proto.FrameScanner{MaxSize: maxPacket}
}

// callerReadLinger is how often, with [Config.CallerReads], the reader
// goroutine looks whether callers still read the socket, once it gave
// the role up: it takes the role again when it finds it free and not
// taken by a caller since the last look. Packets nobody waits for
// (notifications, the close) are thus read within two lingers. Callers
// do not arm a timer themselves: arming one wakes an idle thread; each
// look wakes one too, hence a few milliseconds (1 ms cost a serial
// client a quarter more context switches than 5 ms). A variable for the
// tests.
var callerReadLinger = 5 * time.Millisecond

// How the holder of the read role stopped reading.
type readEnd int

const (
	readClosed  readEnd = iota // the link is closed: the reader exits
	readUntil                  // the condition of the holder became true
	readTimeout                // the read deadline passed (a caller's ctx ended)
)

// readLoop is the link's reader goroutine: it holds the read role from
// the start, cuts frames from the stream and dispatches them, until the
// link closes. With callerReads, it gives the role up once a call waited
// for is answered, and takes it again once no caller took it for a
// callerReadLinger (or at once when a caller left input in the buffer).
func (l *Link) readLoop() {
	defer func() {
		<-l.wdone // the close that stopped us also stops the writer
		close(l.done)
	}()
	var linger *time.Timer
	for {
		switch l.read(l.answeredWaiter) {
		case readClosed:
			return // holding the role: nobody reads any more
		case readTimeout:
			l.conn.SetReadDeadline(time.Time{}) // a caller's, set late: not ours
			continue
		}
		l.releaseRead()
		if linger == nil {
			linger = time.NewTimer(callerReadLinger)
		} else {
			linger.Reset(callerReadLinger)
		}
		for taken := false; !taken; {
			takes := l.rtakes.Load()
			select {
			case <-linger.C:
				linger.Reset(callerReadLinger)
				if l.rtakes.Load() != takes {
					continue // callers read
				}
			case <-l.rkick:
			case <-l.wstop:
				// Closed: wait for a caller reading to give the role
				// up, so that nothing is dispatched once Done is closed.
				linger.Stop()
				<-l.rtoken
				return
			}
			select {
			case <-l.rtoken:
				taken = true
				linger.Stop()
				l.rs.answered = false // a caller's
			default: // a caller reads
			}
		}
	}
}

// answeredWaiter tells the reader goroutine of a callerReads link to give
// the role up: a call waited for got its answer, its caller will ask more.
func (l *Link) answeredWaiter() bool {
	if !l.rs.answered {
		return false
	}
	l.rs.answered = false
	return true
}

// releaseRead gives the read role up (its holder had it from rtoken or
// from the start); if input is buffered or the link is closing, the
// reader goroutine takes it at once, else within two callerReadLingers
// unless a caller takes it first.
func (l *Link) releaseRead() {
	l.burst.Store(false)
	more := l.rs.r < l.rs.w || l.rs.err != nil
	l.rtoken <- struct{}{}
	if more || l.closing.Load() {
		select {
		case l.rkick <- struct{}{}:
		default:
		}
	}
}

// readFor reads the socket for the call c, by its waiting goroutine,
// which took the read role: until c is done or ctx ends. It gives the
// role up when it returns.
func (l *Link) readFor(ctx context.Context, c *Call) {
	l.rtakes.Add(1)
	defer l.releaseRead()
	var stop func() bool
	if ctx.Done() != nil {
		// A read deadline in the past wakes the Read. Set late (stop
		// returned false), it is met by the next holder, who resets it.
		stop = context.AfterFunc(ctx, func() { l.conn.SetReadDeadline(time.Unix(1, 0)) })
		defer stop()
	}
	for !c.isDone() {
		if l.read(c.isDone) != readTimeout {
			return
		}
		l.conn.SetReadDeadline(time.Time{})
		if ctx.Err() != nil {
			return
		}
	}
}

// read, by the holder of the read role, dispatches the frames received,
// reading the socket when no complete frame is buffered, until until()
// is true after a dispatch, the read deadline passes, or the link closes.
func (l *Link) read(until func() bool) readEnd {
	rs := &l.rs
	for {
		for rs.r < rs.w {
			size, err := rs.scan.Scan(rs.buf[rs.r:rs.w])
			if err != nil {
				l.shutdown(fmt.Errorf("%w: %w", ErrProtocol, err), false)
				return readClosed
			}
			if size == 0 {
				break
			}
			// Decoded messages alias their frame, so a frame handed out
			// must never be overwritten.
			var frame []byte
			if size >= bigFrame {
				frame = rs.buf[rs.r : rs.r+size]
				nbuf := make([]byte, max(readBufSize, rs.w-rs.r-size))
				rs.w = copy(nbuf, rs.buf[rs.r+size:rs.w])
				rs.r, rs.buf = 0, nbuf
			} else {
				frame = bytes.Clone(rs.buf[rs.r : rs.r+size])
				rs.r += size
			}
			l.burst.Store(rs.r < rs.w)
			if !l.dispatch(frame) {
				return readClosed
			}
			if until() {
				return readUntil
			}
		}
		if rs.err != nil {
			l.shutdown(rs.err, false)
			return readClosed
		}
		if rs.r == rs.w {
			rs.r, rs.w = 0, 0
		} else if rs.w == len(rs.buf) {
			if rs.r > 0 {
				rs.w = copy(rs.buf, rs.buf[rs.r:rs.w])
				rs.r = 0
			} else {
				// A frame bigger than buf: the scanner guarantees it
				// fits in maxPacket.
				nbuf := make([]byte, min(2*len(rs.buf), l.maxPacket))
				if len(nbuf) <= len(rs.buf) {
					l.shutdown(fmt.Errorf("%w: packet larger than %d bytes", ErrProtocol, l.maxPacket), false)
					return readClosed
				}
				copy(nbuf, rs.buf[:rs.w])
				rs.buf = nbuf
			}
		}
		l.burst.Store(false)
		n, err := l.readSock(rs.buf[rs.w:])
		rs.w += n
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) && !l.closing.Load() {
				return readTimeout
			}
			rs.err = err
		}
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
	if l.callerReads && c.onDone == nil {
		l.rs.answered = true
	}
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
