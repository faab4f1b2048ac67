package master

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/neogo/neo/internal/masterlink"
	"github.com/neogo/neo/master/core"
	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
)

// ErrServerClosed is returned by [Server.Run] after [Server.Shutdown].
var ErrServerClosed = errors.New("master: server closed")

// Server is the master node's driver: it owns the listening socket and the
// links, feeds the [core.Machine] from a single goroutine and performs its
// effects.
//
// Goroutines: Run's loop owns the core, the link table and the dial
// throttle, and performs the effects itself with the sends of neonet that
// never block (Link.Post...), so that a slow peer cannot block the core
// while no goroutine hand-off is paid per packet; one acceptor; each
// link's reader hands requests and answers to the loop (events); per link
// one watcher that reports its close, and one aborter once aborted (the
// abort flushes, within a timeout); one dialer per link to another master
// until it is connected. All are tracked by wg and end before Run returns.
type Server struct {
	cfg     Config
	netcfg  neonet.Config
	log     *slog.Logger
	events  chan event
	ready   chan struct{} // closed once listening
	addr    proto.Addr
	stop    chan struct{}
	stopped sync.Once
	wg      sync.WaitGroup
	status  atomic.Pointer[Status] // published by Run's loop after each step
	statsAt time.Time              // when the loop last took the core's Stats
}

// event is what the loop receives: a [core.Event] for the machine, or
// one of the driver's own (linkOpened).
type event any

// inspect runs f on the loop's goroutine, which owns the machine (the
// state dump); f must not block.
type inspect struct{ f func(*core.Machine) }

// linkOpened: an accepted link, or a dialed one that connected;
// upstream: the link to the upstream primary master, identified.
type linkOpened struct {
	id       core.ConnID
	link     *neonet.Link
	upstream bool
}

// connectLimit is the delay between two connection attempts to one
// address. neoppod's CONNECT_LIMIT (cluster.md §1.1.1) is 1 s, which a
// failover waits out when a master is asked while the election is
// still going (tens of milliseconds); refused dials cost nothing.
const connectLimit = 100 * time.Millisecond

// dialTimeout bounds one connection attempt to another master.
const dialTimeout = 20 * time.Second

// NewServer returns a master node for cfg.
func NewServer(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Server{
		cfg:    cfg,
		netcfg: neonet.Config{Logger: cfg.Logger, TLS: cfg.TLS, DeliverPing: true, Observer: cfg.NetObserver},
		log:    cfg.Logger,
		events: make(chan event, 1024),
		ready:  make(chan struct{}),
		stop:   make(chan struct{}),
	}, nil
}

// Addr returns the listening address once Run started listening (it
// waits until then or ctx ends).
func (s *Server) Addr(ctx context.Context) (proto.Addr, error) {
	select {
	case <-s.ready:
		return s.addr, nil
	case <-ctx.Done():
		return proto.Addr{}, ctx.Err()
	}
}

// Shutdown makes Run return [ErrServerClosed], closing every link at once.
// For a clean cluster shutdown, use neoctl's "set cluster STOPPING".
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopped.Do(func() { close(s.stop) })
	return nil
}

// linkState is the driver's side of one link. A dialed link has no link
// until connected: its effects wait in q meanwhile. Only Run's loop
// touches it, except done.
type linkState struct {
	link    *neonet.Link
	q       []core.Effect
	aborted bool
	done    chan struct{} // closed when the abort (and its flush) is over
	// cancel, for the upstream link, ends its search for the primary.
	cancel context.CancelFunc
}

// Run listens and serves until ctx ends, Shutdown is called or the cluster
// is stopped (neoctl set cluster STOPPING: Run then returns nil).
func (s *Server) Run(ctx context.Context) error {
	defer s.status.Store(nil) // Status: not running
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ln, err := neonet.Listen(ctx, "tcp", s.cfg.Bind.String(), s.netcfg)
	if err != nil {
		return fmt.Errorf("master: %w", err)
	}
	cfg := s.cfg
	if cfg.Bind.Port == 0 {
		if ta, ok := ln.Addr().(*net.TCPAddr); ok {
			cfg.Bind.Port = uint16(ta.Port)
		}
	}
	s.addr = cfg.Bind
	if cfg.DynamicMasterList != "" {
		known, err := loadMasterList(cfg.DynamicMasterList)
		if err != nil {
			ln.Close()
			return fmt.Errorf("master: %w", err)
		}
		for _, a := range known {
			if !slices.Contains(cfg.Masters, a) {
				cfg.Masters = append(cfg.Masters, a)
			}
		}
	}
	m, err := core.New(cfg.core())
	if err != nil {
		ln.Close()
		return err
	}
	s.log.Info("master listening", "addr", cfg.Bind.String(), "uuid", m.NID().String(), "cluster", cfg.Cluster)
	close(s.ready)

	links := map[core.ConnID]*linkState{}
	closing := map[core.ConnID]*linkState{} // aborted, flushing
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		var next core.ConnID
		for {
			link, err := ln.Accept(ctx)
			if err != nil {
				return
			}
			next++
			select {
			case s.events <- linkOpened{id: next, link: link}:
			case <-ctx.Done():
				link.Close()
				return
			}
		}
	}()
	listening := true
	defer func() {
		cancel() // first: callbacks of closing links must not wait for the loop
		if listening {
			ln.Close()
		}
		for _, l := range links {
			if l.link != nil {
				l.link.Close()
			}
		}
		for _, l := range closing {
			if l.link != nil {
				l.link.Close()
			}
		}
		cancel()
		s.wg.Wait()
	}()

	lastDial := map[proto.Addr]time.Time{}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	first := true
	var early []event // received by links before they were started, in order
	for {
		var ev event
		if first {
			ev, first = core.Tick{}, false // the first step dials the other masters
		} else if len(early) > 0 {
			ev, early = early[0], early[1:]
		} else {
			select {
			case ev = <-s.events:
			case <-tick.C:
				ev = core.Tick{}
			case <-s.stop:
				return ErrServerClosed
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if in, ok := ev.(inspect); ok {
			in.f(m)
			continue
		}
		if lo, ok := ev.(linkOpened); ok {
			if lo.id&core.DialedConn == 0 {
				links[lo.id], early = s.startLink(ctx, lo.id, lo.link, nil, early)
				continue
			}
			// A dialed link connected: start it with its queued effects,
			// even when aborted meanwhile (the writer then closes it).
			l := links[lo.id]
			live := l != nil
			if l == nil {
				l = closing[lo.id]
			}
			if l == nil {
				lo.link.Close()
				continue
			}
			_, early = s.startLink(ctx, lo.id, lo.link, l, early)
			if !lo.upstream || !live {
				continue
			}
			// The core learns the upstream link is up before the
			// packets it received (early, handled next).
			ev = core.UpstreamAccepted{Conn: lo.id}
		}
		if c, ok := ev.(core.Closed); ok {
			for _, l := range []*linkState{links[c.Conn], closing[c.Conn]} {
				if l != nil && l.cancel != nil {
					l.cancel()
				}
			}
			delete(links, c.Conn)
			delete(closing, c.Conn)
		}
		effects := m.Step(ev.(core.Event))
		s.publish(m)
		for _, e := range effects {
			switch e.Kind {
			case core.Dial:
				now := time.Now()
				at := now
				if last, ok := lastDial[e.Addr]; ok && last.Add(connectLimit).After(now) {
					at = last.Add(connectLimit)
				}
				lastDial[e.Addr] = at
				links[e.Conn] = &linkState{done: make(chan struct{})}
				s.dial(ctx, e.Conn, e.Addr, at.Sub(now))
			case core.DialUpstream:
				uctx, ucancel := context.WithCancel(ctx)
				links[e.Conn] = &linkState{done: make(chan struct{}), cancel: ucancel}
				s.dialUpstream(uctx, ctx, e.Conn)
			case core.Send, core.Reply, core.Ask, core.Abort:
				if l := links[e.Conn]; l != nil {
					s.perform(ctx, e.Conn, l, e)
					if e.Kind == core.Abort {
						delete(links, e.Conn)
						closing[e.Conn] = l
					}
				}
			case core.SaveMasters:
				// Failures after the start are only logged (neoppod's).
				if err := saveMasterList(cfg.DynamicMasterList, e.Masters); err != nil {
					s.log.Error("failed saving the list of master nodes", "path", cfg.DynamicMasterList, "err", err)
				}
			case core.FlushLog:
				if cfg.FlushLog != nil {
					go cfg.FlushLog() // off the loop: it writes the file
				}
			case core.StopListening:
				ln.Close()
				listening = false
			case core.Exit:
				for id, l := range links {
					s.perform(ctx, id, l, core.Effect{Kind: core.Abort})
					closing[id] = l
				}
				s.drain(closing, 5*time.Second)
				if e.Err != nil {
					return e.Err
				}
				return nil
			}
		}
	}
}

// drain waits (bounded) for the writers of aborted links to flush what
// was queued before their [core.Abort].
func (s *Server) drain(links map[core.ConnID]*linkState, d time.Duration) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for _, l := range links {
		if l.link == nil {
			continue // never connected
		}
		select {
		case <-l.done:
		case <-deadline.C:
			return
		}
	}
}

// dial connects link id to another master after delay, in the
// background: the link comes back to the loop as linkOpened, a failure as
// [core.Closed].
func (s *Server) dial(ctx context.Context, id core.ConnID, addr proto.Addr, delay time.Duration) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			}
		}
		dctx, cancel := context.WithTimeout(ctx, dialTimeout)
		link, err := neonet.Dial(dctx, "tcp", addr.String(), s.netcfg)
		cancel()
		if err != nil {
			s.log.Debug("connection to a master failed", "addr", addr.String(), "err", err)
		}
		s.dialed(ctx, linkOpened{id: id, link: link}, err)
	}()
}

// dialed hands the outcome of dialing o.id to the loop: o when the dial
// succeeded, [core.Closed] when it failed (err). A link the loop can no
// longer take, ctx having ended, is closed.
func (s *Server) dialed(ctx context.Context, o linkOpened, err error) {
	var ev event = o
	if err != nil {
		ev = core.Closed{Conn: o.id}
	}
	select {
	case s.events <- ev:
	case <-ctx.Done():
		if o.link != nil {
			o.link.Close()
		}
	}
}

// dialUpstream finds the upstream primary master and identifies to it
// as the master of a backup cluster (cluster.md §8.9), in the
// background, until it succeeds or uctx ends: the link comes back to
// the loop as linkOpened, the end of the search as [core.Closed].
func (s *Server) dialUpstream(uctx, ctx context.Context, id core.ConnID) {
	var masters []string
	for _, a := range s.cfg.UpstreamMasters {
		masters = append(masters, a.String())
	}
	d := &masterlink.Dialer{
		Masters: func() []string { return masters },
		Net:     neonet.Config{Logger: s.log, TLS: s.cfg.TLS, DeliverPing: true},
		Delay:   connectLimit,
		Logger:  s.log.With("upstream", s.cfg.UpstreamCluster),
	}
	req := &proto.RequestIdentification{NodeType: proto.CLIENT, ClusterName: s.cfg.UpstreamCluster,
		Extra: proto.Dict{{Key: "backup", Value: []byte(s.cfg.Cluster)}}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		link, _, err := d.Dial(uctx, req)
		s.dialed(ctx, linkOpened{id: id, link: link, upstream: true}, err)
	}()
}

// startLink hands the link's incoming packets to the loop and performs
// the effects queued while it was dialed; l, when not nil, is the state
// of a dialed link. The packets the link received before, which
// SetHandler delivers on the loop's goroutine, are appended to early
// for the loop to handle next.
func (s *Server) startLink(ctx context.Context, id core.ConnID, link *neonet.Link, l *linkState, early []event) (*linkState, []event) {
	if l == nil {
		l = &linkState{done: make(chan struct{})}
	}
	l.link = link
	s.log.Debug("new link", "conn", id, "addr", link.RemoteAddr().String())
	// The handler runs on the link's reader: one hand-off per packet, to
	// the loop. Until SetHandler returns, it must not wait for the loop.
	var mu sync.Mutex
	starting := true
	link.SetHandler(func(r *neonet.Request) {
		ev := core.Recv{Conn: id, MsgID: r.ID, Msg: r.Msg}
		mu.Lock()
		if starting {
			early = append(early, ev)
			mu.Unlock()
			return
		}
		mu.Unlock()
		select {
		case s.events <- ev:
		case <-ctx.Done():
		}
	})
	mu.Lock()
	starting = false
	mu.Unlock()
	s.wg.Add(1)
	go func() { // watcher: the close comes after every packet handled
		defer s.wg.Done()
		select {
		case <-link.Done():
		case <-ctx.Done():
			return
		}
		select {
		case s.events <- core.Closed{Conn: id}:
		case <-ctx.Done():
		}
	}()
	q := l.q
	l.q = nil
	for _, e := range q {
		s.perform(ctx, id, l, e)
	}
	return l, early
}

// perform does one effect on a link, in the loop, without blocking; a
// dialed link not yet connected queues it.
func (s *Server) perform(ctx context.Context, id core.ConnID, l *linkState, e core.Effect) {
	if l.aborted {
		return
	}
	link := l.link
	if link == nil {
		if e.Kind == core.Abort && l.cancel != nil {
			l.aborted = true
			l.cancel() // the search ends with a Closed event
			return
		}
		l.q = append(l.q, e)
		return
	}
	var err error
	switch e.Kind {
	case core.Send:
		err = link.Post(e.Msg)
	case core.Reply:
		err = link.PostWithID(e.MsgID, e.Msg)
	case core.Ask:
		tag := e.Tag
		_, err = link.PostFunc(e.Msg, nil, func(c *neonet.Call) {
			if c.Err() != nil {
				return // the link closed (the watcher reports it), or an Error answer
			}
			select {
			case s.events <- core.Answer{Conn: id, Tag: tag, Msg: c.Answer()}:
			case <-ctx.Done():
			}
		})
	case core.Abort:
		// The abort lets queued packets go, within a timeout: not in the
		// loop.
		l.aborted = true
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer close(l.done)
			link.Abort()
		}()
	}
	if err != nil {
		s.log.Debug("write failed", "conn", id, "err", err)
	}
}

// ParseAddr parses "host:port", "[v6]:port" or "host" (with defPort) and
// resolves the host once, as neoppod does for --bind and --masters.
func ParseAddr(s string, defPort uint16) (proto.Addr, error) {
	host, port := s, ""
	switch {
	case len(s) > 0 && s[0] == '[':
		h, rest, ok := strings.Cut(s[1:], "]")
		if !ok {
			return proto.Addr{}, fmt.Errorf("invalid address %q", s)
		}
		host = h
		if len(rest) > 0 {
			if rest[0] != ':' {
				return proto.Addr{}, fmt.Errorf("invalid address %q", s)
			}
			port = rest[1:]
		}
	case strings.Count(s, ":") == 1:
		host, port, _ = strings.Cut(s, ":")
	}
	p := uint64(defPort)
	if port != "" {
		var err error
		p, err = strconv.ParseUint(port, 10, 16)
		if err != nil {
			return proto.Addr{}, fmt.Errorf("invalid port in address %q", s)
		}
	}
	ip := net.ParseIP(host)
	if ip == nil {
		ips, err := net.LookupIP(host)
		if err != nil {
			return proto.Addr{}, fmt.Errorf("resolve %q: %w", host, err)
		}
		if len(ips) == 0 {
			return proto.Addr{}, fmt.Errorf("resolve %q: no address", host)
		}
		ip = ips[0]
	}
	return proto.Addr{Host: ip.String(), Port: uint16(p)}, nil
}
