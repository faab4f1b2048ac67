package neonet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/neogo/neo/proto"
)

// Handshake errors. A failed handshake closes the connection without
// sending anything more (§1.2).
var (
	// ErrVersionMismatch is matched by the error of a handshake with a NEO
	// peer of another protocol version; see [VersionMismatchError].
	ErrVersionMismatch = errors.New("neonet: protocol version mismatch")
	// ErrNotNEO is matched by the error of a handshake with a peer that
	// does not speak NEO.
	ErrNotNEO = errors.New("neonet: peer does not speak NEO")
	// ErrNotTLS is matched by the error of a TLS listener whose peer does
	// not start with a TLS handshake.
	ErrNotTLS = errors.New("neonet: peer does not use TLS")
	// ErrListenerClosed is returned by [Listener.Accept] after
	// [Listener.Close].
	ErrListenerClosed = errors.New("neonet: listener closed")
)

// VersionMismatchError is the error of a handshake with a NEO peer of
// another protocol version. It matches [ErrVersionMismatch].
type VersionMismatchError struct {
	Peer int // the version byte the peer sent
}

func (e *VersionMismatchError) Error() string {
	return fmt.Sprintf("neonet: protocol version mismatch: peer speaks version %d, we speak %d", e.Peer, proto.Version)
}

// Is makes the error match [ErrVersionMismatch].
func (e *VersionMismatchError) Is(target error) bool { return target == ErrVersionMismatch }

// keepAlive is neoppod's TCP keepalive (§1.1): liveness is detected only by
// TCP, there is no application-level keepalive.
var keepAlive = net.KeepAliveConfig{Enable: true, Idle: 60 * time.Second, Interval: 10 * time.Second, Count: 3}

// setTCPOptions applies §1.1's socket options to c if it is TCP.
func setTCPOptions(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
		tc.SetKeepAliveConfig(keepAlive)
	}
}

// Dial connects to a NEO node at addr ("host:port"; network is "tcp",
// "tcp4" or "tcp6"), runs the TLS handshake if cfg.TLS is set, exchanges
// the NEO handshakes and returns the link, its reader running.
// ctx and cfg.HandshakeTimeout bound the whole establishment; ctx is not
// used after Dial returns.
func Dial(ctx context.Context, network, addr string, cfg Config) (*Link, error) {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithTimeout(ctx, cfg.HandshakeTimeout)
	defer cancel()
	d := net.Dialer{KeepAliveConfig: keepAlive}
	raw, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("neonet: dial %s: %w", addr, err)
	}
	setTCPOptions(raw)
	conn := raw
	if cfg.TLS != nil {
		tc := tls.Client(raw, cfg.TLS.clientConfig())
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, fmt.Errorf("neonet: dial %s: tls handshake: %w", addr, err)
		}
		conn = tc
	}
	rest, err := handshake(ctx, conn)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("neonet: dial %s: %w", addr, err)
	}
	l := newLink(conn, rest, cfg)
	l.start()
	return l, nil
}

// handshake sends our handshake and checks the peer's (§1.2), under ctx. It
// returns the bytes received past the peer's handshake.
func handshake(ctx context.Context, conn net.Conn) (rest []byte, err error) {
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer func() {
		if !stop() && err == nil {
			err = fmt.Errorf("handshake: %w", context.Cause(ctx))
		}
		if err == nil {
			conn.SetDeadline(time.Time{})
		}
	}()

	if _, err := io.WriteString(conn, proto.Handshake); err != nil {
		return nil, fmt.Errorf("send handshake: %w", err)
	}
	buf := make([]byte, 0, 512)
	for {
		n, rerr := conn.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		ok, err := checkHandshake(buf)
		if err != nil {
			return nil, err
		}
		if ok {
			return buf[len(proto.Handshake):], nil
		}
		if rerr != nil {
			if ctx.Err() != nil {
				rerr = context.Cause(ctx)
			} else if rerr == io.EOF {
				rerr = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("receive handshake (got % x): %w", buf, rerr)
		}
	}
}

// checkHandshake applies neoppod's rules to the bytes received so far:
// ok when they start with our handshake, (false, nil) while they are a
// prefix of it.
func checkHandshake(b []byte) (ok bool, err error) {
	const hs = proto.Handshake
	const magic = len(hs) - 1 // 92 a3 4e 45 4f, without the version
	n := min(len(b), len(hs))
	switch {
	case string(b[:n]) == hs[:n]:
		return n == len(hs), nil
	case n == len(hs) && string(b[:magic]) == hs[:magic]:
		return false, &VersionMismatchError{Peer: int(b[magic])}
	default:
		return false, fmt.Errorf("%w: received % x", ErrNotNEO, b[:n])
	}
}

// Listener accepts links from NEO peers. Each incoming connection is set up
// (TLS, handshake) by its own goroutine, so a slow or hostile peer does not
// hold up the others; connections that fail are logged and closed.
type Listener struct {
	ln    net.Listener
	cfg   Config
	log   *slog.Logger
	links chan *Link
	quit  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup // the accept loop and the setup goroutines

	mu struct {
		sync.Mutex
		conns map[net.Conn]struct{} // connections being set up
	}
}

// Listen listens on addr ("host:port", port 0 for any; network "tcp",
// "tcp4" or "tcp6") and starts accepting connections in the background.
func Listen(ctx context.Context, network, addr string, cfg Config) (*Listener, error) {
	cfg = cfg.withDefaults()
	lc := net.ListenConfig{KeepAliveConfig: keepAlive}
	ln, err := lc.Listen(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("neonet: listen %s: %w", addr, err)
	}
	l := &Listener{
		ln:    ln,
		cfg:   cfg,
		log:   cfg.Logger.With("addr", ln.Addr().String()),
		links: make(chan *Link),
		quit:  make(chan struct{}),
	}
	l.mu.conns = make(map[net.Conn]struct{})
	l.wg.Add(1)
	go l.acceptLoop()
	return l, nil
}

// Addr returns the listening address.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Accept returns the next link whose handshake succeeded, its reader
// started only now so that nothing reaches the owner before it has the
// link.
func (l *Listener) Accept(ctx context.Context) (*Link, error) {
	select {
	case link := <-l.links:
		link.start()
		return link, nil
	case <-l.quit:
		return nil, ErrListenerClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close stops listening, aborts the connections being set up and waits for
// the listener's goroutines. Links already returned by Accept are not
// affected.
func (l *Listener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.quit)
		err = l.ln.Close()
		l.mu.Lock()
		for c := range l.mu.conns {
			c.Close()
		}
		l.mu.Unlock()
		l.wg.Wait()
	})
	return err
}

func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	var backoff time.Duration
	for {
		raw, err := l.ln.Accept()
		if err != nil {
			select {
			case <-l.quit:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// E.g. out of file descriptors: retry later.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.log.Warn("accept failed", "err", err, "retry_in", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-l.quit:
				t.Stop()
				return
			}
			continue
		}
		backoff = 0
		l.mu.Lock()
		select {
		case <-l.quit:
			l.mu.Unlock()
			raw.Close()
			return
		default:
		}
		l.mu.conns[raw] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		go l.setup(raw)
	}
}

// setup runs TLS and the handshake on an accepted connection and hands the
// link to Accept.
func (l *Listener) setup(raw net.Conn) {
	defer l.wg.Done()
	link, err := l.handshake(raw)
	l.mu.Lock()
	delete(l.mu.conns, raw)
	l.mu.Unlock()
	if err != nil {
		raw.Close()
		lvl := slog.LevelInfo // port scanners, health checks...
		if errors.Is(err, ErrVersionMismatch) {
			lvl = slog.LevelWarn // a NEO node to upgrade: for the operator
		}
		l.log.Log(context.Background(), lvl, "incoming connection refused", "remote", raw.RemoteAddr().String(), "err", err)
		return
	}
	select {
	case l.links <- link:
	case <-l.quit:
		link.conn.Close()
	}
}

func (l *Listener) handshake(raw net.Conn) (*Link, error) {
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.HandshakeTimeout)
	defer cancel()
	setTCPOptions(raw)
	conn := raw
	if l.cfg.TLS != nil {
		// Peek at the first byte: a TLS ClientHello starts a handshake
		// record (0x16); anything else, a plain NEO handshake (0x92) in
		// particular, is refused (§1.3).
		dl, _ := ctx.Deadline()
		raw.SetReadDeadline(dl)
		var b [1]byte
		if _, err := io.ReadFull(raw, b[:]); err != nil {
			return nil, fmt.Errorf("tls: read first byte: %w", err)
		}
		if b[0] != 0x16 {
			return nil, fmt.Errorf("%w: first byte 0x%02x", ErrNotTLS, b[0])
		}
		raw.SetReadDeadline(time.Time{})
		tc := tls.Server(&prefixConn{Conn: raw, prefix: b[:]}, l.cfg.TLS.serverConfig())
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("tls handshake: %w", err)
		}
		conn = tc
	}
	rest, err := handshake(ctx, conn)
	if err != nil {
		return nil, err
	}
	return newLink(conn, rest, l.cfg), nil
}

// prefixConn returns prefix before reading from Conn.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}
