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
	"time"

	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
)

// ErrServerClosed is returned by [Server.Run] after [Server.Shutdown].
var ErrServerClosed = errors.New("master: server closed")

// Server is the master node's driver: it owns the listening socket and the
// links, feeds the [Core] from a single goroutine and performs its effects.
//
// Goroutines: the core, the link table and the dial throttle belong to
// the step running (see loop): events are stepped by the goroutine that
// receives them when no other step runs, and effects are performed with
// the sends of neonet that never block (Link.Post...), so that a slow peer
// cannot block the core while no goroutine hand-off is paid per packet.
// Run waits for the ticker, Shutdown and the core's Exit; one acceptor;
// each link's reader posts its requests and answers; per link one watcher
// that posts its close, and one aborter once aborted (the abort flushes,
// within a timeout); one dialer per link to another master until it is
// connected. All are tracked by wg and end before Run returns.
type Server struct {
	cfg     Config
	netcfg  neonet.Config
	log     *slog.Logger
	ready   chan struct{} // closed once listening
	addr    proto.Addr
	stop    chan struct{}
	stopped sync.Once
	wg      sync.WaitGroup
}

// internal events of the driver
type linkOpened struct {
	id   ConnID
	link *neonet.Link
}

func (linkOpened) isEvent() {}

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
		netcfg: neonet.Config{Logger: cfg.Logger, TLS: cfg.TLS, DeliverPing: true},
		log:    cfg.Logger,
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
// until connected: its effects wait in q meanwhile. Only steps touch it,
// except done.
type linkState struct {
	link    *neonet.Link
	q       []Effect
	aborted bool
	done    chan struct{} // closed when the abort (and its flush) is over
}

// Run listens and serves until ctx ends, Shutdown is called or the cluster
// is stopped (neoctl set cluster STOPPING: Run then returns nil).
func (s *Server) Run(ctx context.Context) error {
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
	core, err := NewCore(cfg)
	if err != nil {
		ln.Close()
		return err
	}
	s.log.Info("master listening", "addr", cfg.Bind.String(), "uuid", core.NID().String(), "cluster", cfg.Cluster)
	if cfg.UpstreamCluster != "" || cfg.Backup {
		s.log.Warn("backup mode is not implemented")
	}
	close(s.ready)

	d := &loop{s: s, ctx: ctx, cfg: cfg, core: core, ln: ln, listening: true,
		links: map[ConnID]*linkState{}, closing: map[ConnID]*linkState{},
		lastDial: map[proto.Addr]time.Time{}, exit: make(chan exitInfo, 1)}
	d.idle.L = &d.qmu
	s.wg.Add(1)
	go func() { // acceptor
		defer s.wg.Done()
		var next ConnID
		for {
			link, err := ln.Accept(ctx)
			if err != nil {
				return
			}
			next++
			if !d.post(linkOpened{next, link}) {
				link.Close()
				return
			}
		}
	}()
	defer func() {
		// No step runs from here on: the link table is ours.
		d.qmu.Lock()
		d.stopped = true
		for d.stepping {
			d.idle.Wait()
		}
		d.qmu.Unlock()
		cancel()
		if d.listening {
			ln.Close()
		}
		for _, l := range d.links {
			if l.link != nil {
				l.link.Close()
			}
		}
		for _, l := range d.closing {
			if l.link != nil {
				l.link.Close()
			}
		}
		s.wg.Wait()
	}()

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	d.post(Tick{}) // the first step dials the other masters
	for {
		select {
		case x := <-d.exit:
			s.drain(x.drain, 5*time.Second)
			return x.err
		case <-tick.C:
			d.post(Tick{})
		case <-s.stop:
			return ErrServerClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// loop feeds the core and performs its effects. Events are posted by the
// goroutines that receive them (links' readers, acceptor, dialers,
// ticker) and stepped by whichever of them finds no step running: it
// steps the events queued meanwhile too, in order. So a request crosses
// no goroutine hand-off when the master is not busy (on this VM a wakeup
// of an idle thread costs tens of microseconds), and the core still sees
// one event at a time. A step never blocks: sends are neonet's Post*,
// dials and aborts run in their own goroutines.
type loop struct {
	s    *Server
	ctx  context.Context
	cfg  Config
	core *Core
	ln   *neonet.Listener

	// Owned by the stepping goroutine.
	listening bool
	links     map[ConnID]*linkState
	closing   map[ConnID]*linkState // aborted, flushing
	lastDial  map[proto.Addr]time.Time
	exited    bool

	qmu      sync.Mutex
	q        []Event
	stepping bool
	stopped  bool      // Run is returning: events are dropped
	idle     sync.Cond // on qmu: stepping ended
	exit     chan exitInfo
}

// exitInfo is the core's Exit, for Run: the error and the links to drain.
type exitInfo struct {
	err   error
	drain []*linkState
}

// post queues ev and steps the queue unless a step is running (possibly
// on this very goroutine, e.g. a link completing a call synchronously).
// It reports false if Run is returning and ev was dropped.
func (d *loop) post(ev Event) bool {
	d.qmu.Lock()
	if d.stopped {
		d.qmu.Unlock()
		return false
	}
	d.q = append(d.q, ev)
	if d.stepping {
		d.qmu.Unlock()
		return true
	}
	d.stepping = true
	for len(d.q) > 0 && !d.stopped {
		ev := d.q[0]
		d.q[0] = nil
		d.q = d.q[1:]
		d.qmu.Unlock()
		d.step(ev)
		d.qmu.Lock()
	}
	d.stepping = false
	d.idle.Broadcast()
	d.qmu.Unlock()
	return true
}

// step handles one event.
func (d *loop) step(ev Event) {
	s, ctx := d.s, d.ctx
	if d.exited {
		return
	}
	if lo, ok := ev.(linkOpened); ok {
		if lo.id&DialedConn == 0 {
			d.links[lo.id] = s.startLink(ctx, d, lo.id, lo.link, nil)
			return
		}
		// A dialed link connected: start it with its queued effects,
		// even when aborted meanwhile (its abort then closes it).
		l := d.links[lo.id]
		if l == nil {
			l = d.closing[lo.id]
		}
		if l == nil {
			lo.link.Close()
			return
		}
		s.startLink(ctx, d, lo.id, lo.link, l)
		return
	}
	if c, ok := ev.(Closed); ok {
		delete(d.links, c.Conn)
		delete(d.closing, c.Conn)
	}
	for _, e := range d.core.Step(ev) {
		switch e.Kind {
		case Dial:
			now := time.Now()
			at := now
			if last, ok := d.lastDial[e.Addr]; ok && last.Add(connectLimit).After(now) {
				at = last.Add(connectLimit)
			}
			d.lastDial[e.Addr] = at
			d.links[e.Conn] = &linkState{done: make(chan struct{})}
			s.dial(ctx, d, e.Conn, e.Addr, at.Sub(now))
		case Send, Reply, Ask, Abort:
			if l := d.links[e.Conn]; l != nil {
				s.perform(ctx, d, e.Conn, l, e)
				if e.Kind == Abort {
					delete(d.links, e.Conn)
					d.closing[e.Conn] = l
				}
			}
		case SaveMasters:
			// Failures after the start are only logged (neoppod's).
			if err := saveMasterList(d.cfg.DynamicMasterList, e.Masters); err != nil {
				s.log.Error("failed saving the list of master nodes", "path", d.cfg.DynamicMasterList, "err", err)
			}
		case StopListening:
			d.ln.Close()
			d.listening = false
		case Exit:
			for id, l := range d.links {
				s.perform(ctx, d, id, l, Effect{Kind: Abort})
				d.closing[id] = l
			}
			clear(d.links)
			x := exitInfo{err: e.Err}
			for _, l := range d.closing {
				x.drain = append(x.drain, l)
			}
			d.exited = true
			d.exit <- x // cap 1, and there is one Exit
			return
		}
	}
}

// drain waits (bounded) for the aborted links to flush what was queued
// before their Abort.
func (s *Server) drain(links []*linkState, d time.Duration) {
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
// Closed.
func (s *Server) dial(ctx context.Context, d *loop, id ConnID, addr proto.Addr, delay time.Duration) {
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
		var ev Event = linkOpened{id, link}
		if err != nil {
			s.log.Debug("connection to a master failed", "addr", addr.String(), "err", err)
			ev = Closed{Conn: id}
		}
		if !d.post(ev) && link != nil {
			link.Close()
		}
	}()
}

// startLink hands the link's incoming packets to the loop and performs
// the effects queued while it was dialed; l, when not nil, is the state
// of a dialed link. It runs in a step.
func (s *Server) startLink(ctx context.Context, d *loop, id ConnID, link *neonet.Link, l *linkState) *linkState {
	if l == nil {
		l = &linkState{done: make(chan struct{})}
	}
	l.link = link
	s.log.Debug("new link", "conn", id, "addr", link.RemoteAddr().String())
	// On the link's reader; the requests received before are handed
	// over here, in this step: post queues them behind it.
	link.SetHandler(func(r *neonet.Request) {
		d.post(Recv{Conn: id, MsgID: r.ID, Msg: r.Msg})
	})
	s.wg.Add(1)
	go func() { // watcher: the close comes after every packet handled
		defer s.wg.Done()
		select {
		case <-link.Done():
		case <-ctx.Done():
			return
		}
		d.post(Closed{Conn: id})
	}()
	q := l.q
	l.q = nil
	for _, e := range q {
		s.perform(ctx, d, id, l, e)
	}
	return l
}

// perform does one effect on a link, in a step, without blocking; a
// dialed link not yet connected queues it.
func (s *Server) perform(ctx context.Context, d *loop, id ConnID, l *linkState, e Effect) {
	if l.aborted {
		return
	}
	link := l.link
	if link == nil {
		l.q = append(l.q, e)
		return
	}
	var err error
	switch e.Kind {
	case Send:
		err = link.Post(e.Msg)
	case Reply:
		err = link.PostWithID(e.MsgID, e.Msg)
	case Ask:
		tag := e.Tag
		_, err = link.PostFunc(e.Msg, nil, func(c *neonet.Call) {
			if c.Err() != nil {
				return // the link closed (the watcher reports it), or an Error answer
			}
			d.post(Answer{Conn: id, Tag: tag, Msg: c.Answer()})
		})
	case Abort:
		// The abort lets queued packets go, within a timeout: not in a
		// step.
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
