package neonet

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/neogo/neo/proto"
)

// This file holds the link's lifecycle: creation, close and errors. The
// receive side (reader goroutine, Recv, SetHandler) is in link_read.go,
// calls and their answers in link_call.go, the send side (Send, Post,
// writer goroutine) in link_write.go and queue.go.

// Errors of the link layer. Errors of a closed link match [ErrClosed] and
// also unwrap to the cause of the close.
var (
	// ErrClosed is matched by every error due to the link being closed,
	// whoever closed it.
	ErrClosed = errors.New("neonet: link closed")
	// ErrClosedLocally is the cause of a close by [Link.Close].
	ErrClosedLocally = errors.New("closed locally")
	// ErrAborted is the cause of a close by [Link.Abort].
	ErrAborted = errors.New("aborted locally")
	// ErrProtocol is matched by the cause of a close due to a protocol
	// violation by the peer (malformed packet, unexpected answer).
	ErrProtocol = errors.New("neonet: protocol violation")
	// ErrHandled is returned by [Link.Recv] on a link whose requests go
	// to a handler ([Config.Handler], [Link.SetHandler]).
	ErrHandled = errors.New("neonet: link requests go to a handler")
)

// DefaultMaxPacketSize bounds the size of one received packet: neoppod's
// 64 MiB limit on one msgpack element plus room for the other arguments.
const DefaultMaxPacketSize = 64<<20 + 1<<20

// Config parameterises links and listeners. The zero Config is valid.
type Config struct {
	// Logger receives the link's events; nil discards them. Each link
	// logs with a "conn" attribute "local-remote".
	Logger *slog.Logger
	// TLS enables TLS 1.2 with mutual authentication (protocol.md §1.3).
	// Every node of a cluster must use TLS, or none.
	TLS *TLSConfig
	// HandshakeTimeout bounds connection establishment: TCP connect when
	// dialing, TLS handshake and NEO handshake. Zero means 10 s.
	HandshakeTimeout time.Duration
	// MaxPacketSize bounds one received packet; a peer announcing more
	// has the link closed. Zero means [DefaultMaxPacketSize].
	MaxPacketSize int
	// AbortTimeout bounds how long [Link.Abort] waits for packets being
	// written to be flushed. Zero means 5 s.
	AbortTimeout time.Duration
	// Handler, if set, receives incoming requests and notifications on the
	// link's reader goroutine (or a caller reading, see CallerReads), in
	// arrival order. It must not wait for
	// answers on the same link (the reader would not read them) nor write
	// large amounts: hand such work to another goroutine. Without a
	// Handler they are queued for [Link.Recv] until [Link.SetHandler].
	Handler func(*Request)
	// DeliverPing passes Ping requests on like any other instead of
	// answering them in the reader: a master answers in turn with its
	// queued notifications, since neoppod's client uses a Ping to the
	// master as a barrier for invalidations (its sync()).
	DeliverPing bool
	// Observer, if set, is told of every packet sent and received and of
	// the time each request of the peer took to be answered (metrics).
	Observer Observer
	// CallerReads lets a goroutine waiting in [Call.Wait] read the socket
	// itself, when no other goroutine does, instead of being handed its
	// answer by the link's reader goroutine: a round trip then wakes one
	// goroutine, as a plain read does, instead of two (with GOMAXPROCS > 1
	// each hand-off also wakes an idle thread). The Handler then runs on
	// whichever goroutine reads; the packets received up to the answer go
	// to it on the waiting goroutine. Between calls, packets that nobody
	// waits for are read within two [callerReadLinger]s. For links whose
	// goroutines wait for answers one at a time (a client's loads).
	CallerReads bool
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 10 * time.Second
	}
	if c.MaxPacketSize <= 0 {
		c.MaxPacketSize = DefaultMaxPacketSize
	}
	if c.AbortTimeout <= 0 {
		c.AbortTimeout = 5 * time.Second
	}
	return c
}

// Wire codes the link layer handles itself.
const (
	codeError = 0x8000
	codePing  = 2
	codePong  = 0x8002
)

// Link is one connection to a peer node (neo/go's NodeLink): it multiplexes
// our requests and their answers, the peer's requests and notifications,
// over one socket. See the package documentation for ids, concurrency and
// close semantics. A Link is created by [Dial] or [Listener.Accept].
//
// Each side has its own owner: the holder of the read role (rtoken: the
// reader goroutine, or a caller with [Config.CallerReads]) owns the read
// state, wmu guards the send side, mu the state both sides and the close
// share. Lock order: wmu before mu, never the reverse.
type Link struct {
	conn net.Conn
	log  *slog.Logger

	// Receive side (link_read.go). rs is owned by the holder of the
	// read role: rtoken (capacity 1) holds the role while nobody reads.
	maxPacket   int
	deliverPing bool
	rs          readState
	rtoken      chan struct{}
	callerReads bool
	rtakes      atomic.Uint64 // with callerReads: how many times a caller took the role
	rkick       chan struct{} // with callerReads: the reader goroutine is to take the role at once (cap 1)
	burst       atomic.Bool   // more input is buffered behind the packet being dispatched; senders read it
	// recvReady holds a token while Recv has something to see: a queued
	// request, the close, or a handler set. A Recv that leaves with the
	// condition still true passes the token on.
	recvReady chan struct{}

	// Send side (link_write.go, queue.go).
	wmu struct {
		sync.Mutex
		cond    sync.Cond   // signalled when writing clears or buf drains
		nextID  uint32      // our id counter
		buf     []byte      // encoded packets not yet handed to the socket
		spare   []byte      // the other buffer, reused
		writing bool        // a goroutine is writing to the socket and owns the flush
		qtimer  *time.Timer // flushes the packets left unwritten by StartQueued; nil until one is
	}
	wkick        chan struct{}   // hands the flush to the writer goroutine (cap 1)
	wstop        chan struct{}   // closed at the end of the close: the writer exits
	wdone        chan struct{}   // closed when the writer goroutine has exited
	raw          syscall.RawConn // for writes that must not block (Post); nil if the conn has none
	rsock, wsock sockIO          // raw reads (by the read role's holder) and writes (by the flush's owner)
	abortTimeout time.Duration

	obs *observing // nil without Config.Observer

	// peerID is the node id of the peer once the node knows it (see
	// [Link.SetPeerID]), for the node's log; 0 until then.
	peerID atomic.Int32

	// Lifecycle.
	closing atomic.Bool   // set once, under mu, when the close starts
	done    chan struct{} // closed when the reader and writer goroutines have exited

	mu struct {
		sync.Mutex
		pending map[uint32]*Call // our outstanding requests by id; nil once closing
		recvq   []*Request       // for Recv, or for SetHandler to hand over
		err     error            // why the link closed; nil while open
		handler func(*Request)   // nil: requests are queued for Recv
		// draining: SetHandler is handing recvq over to handler; the
		// reader queues behind it meanwhile, to keep the order.
		draining bool
	}
}

// newLink wraps an established connection whose handshakes were exchanged;
// leftover holds the bytes read past the peer's handshake. The reader
// starts with [Link.start].
func newLink(conn net.Conn, leftover []byte, cfg Config) *Link {
	cfg = cfg.withDefaults()
	l := &Link{
		conn:         conn,
		log:          cfg.Logger.With("conn", conn.LocalAddr().String()+"-"+conn.RemoteAddr().String()),
		maxPacket:    cfg.MaxPacketSize,
		deliverPing:  cfg.DeliverPing,
		rtoken:       make(chan struct{}, 1),
		callerReads:  cfg.CallerReads,
		rkick:        make(chan struct{}, 1),
		recvReady:    make(chan struct{}, 1),
		wkick:        make(chan struct{}, 1),
		wstop:        make(chan struct{}),
		wdone:        make(chan struct{}),
		raw:          rawConn(conn),
		abortTimeout: cfg.AbortTimeout,
		done:         make(chan struct{}),
	}
	l.wmu.cond.L = &l.wmu.Mutex
	l.rs.init(leftover, cfg.MaxPacketSize)
	l.initSockIO()
	if cfg.Observer != nil {
		l.obs = &observing{obs: cfg.Observer, serving: make(map[uint32]served)}
		l.obs.pl, _ = cfg.Observer.(PacketLogger)
		l.obs.po, _ = cfg.Observer.(PeerObserver)
		l.obs.lt, _ = cfg.Observer.(LinkTracker)
		cfg.Observer.LinkOpened()
		if l.obs.lt != nil {
			l.obs.lt.LinkStarted(l)
		}
	}
	l.mu.pending = make(map[uint32]*Call)
	l.mu.handler = cfg.Handler
	return l
}

// start starts the reader and writer goroutines, the reader holding the
// read role. The reader closes [Link.Done] once both have exited.
func (l *Link) start() {
	go l.readLoop()
	go l.writeLoop()
}

// LocalAddr returns the local network address.
func (l *Link) LocalAddr() net.Addr { return l.conn.LocalAddr() }

// RemoteAddr returns the peer's network address.
func (l *Link) RemoteAddr() net.Addr { return l.conn.RemoteAddr() }

// String returns "local-remote", for logs.
func (l *Link) String() string {
	return l.conn.LocalAddr().String() + "-" + l.conn.RemoteAddr().String()
}

// SetPeerID records the node id of the peer, once the identification
// told it, so that the node's log names the peer of each packet.
func (l *Link) SetPeerID(id proto.NodeID) { l.peerID.Store(int32(id)) }

// PeerID returns the id given to [Link.SetPeerID], 0 before.
func (l *Link) PeerID() proto.NodeID { return proto.NodeID(l.peerID.Load()) }

// Done returns a channel closed once the link is closed and its
// goroutines have exited.
func (l *Link) Done() <-chan struct{} { return l.done }

// Err returns nil while the link is open, then why it closed: an error
// matching [ErrClosed] and wrapping the cause.
func (l *Link) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.err
}

// Close closes the link at once: pending calls fail, queued packets are
// dropped, the goroutines stop. It does not wait for them; see
// [Link.Done]. Closing a closed link
// does nothing; Close always returns nil.
func (l *Link) Close() error {
	l.shutdown(ErrClosedLocally, false)
	l.conn.Close() // also cuts an Abort short
	return nil
}

// Abort closes the link as neoppod's abort does: incoming data is no longer
// processed, then, once the packets sent before (being written or queued)
// have been handed to the kernel (at most [Config.AbortTimeout]), the
// connection is closed. A reply sent before Abort is thus delivered, e.g.
//
//	req.Reply(&proto.Error{Code: proto.PROTOCOL_ERROR, Message: "..."})
//	req.Link.Abort()
func (l *Link) Abort() { l.shutdown(ErrAborted, true) }

// shutdown closes the link for the given cause, once; with flush, it first
// lets the writes in progress finish. In order: the link refuses new
// packets and calls (closing, mu.pending nil) and Recv learns the close;
// the packets sent before go out (flush); the socket closes, which stops
// the reader and any write; senders waiting for room return and the
// writer goroutine exits; the pending calls fail.
func (l *Link) shutdown(cause error, flush bool) {
	l.mu.Lock()
	if l.mu.err != nil {
		l.mu.Unlock()
		return
	}
	err := &closedError{link: l.String(), cause: cause}
	l.mu.err = err
	pending := l.mu.pending
	l.mu.pending = nil
	l.closing.Store(true)
	l.mu.Unlock()
	l.signalRecv()
	if l.obs != nil {
		l.obs.closed(l)
	}

	if flush {
		l.conn.SetWriteDeadline(time.Now().Add(l.abortTimeout))
		l.drainWrites()
	}
	l.conn.Close()
	l.stopWriter()
	for _, c := range pending {
		c.err = err
		c.complete()
	}
	switch {
	case cause == ErrClosedLocally || cause == ErrAborted:
		l.log.Debug("link closed", "err", cause)
	case errors.Is(cause, ErrProtocol):
		l.log.Warn("link closed", "err", cause)
	default:
		l.log.Info("link closed", "err", cause)
	}
}

// closedError is the error of every operation on a closed link.
type closedError struct {
	link  string
	cause error
}

func (e *closedError) Error() string {
	return "neonet: link " + e.link + " closed: " + e.cause.Error()
}

func (e *closedError) Unwrap() []error { return []error{ErrClosed, e.cause} }
