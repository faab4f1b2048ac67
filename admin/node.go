package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/neogo/neo/internal/masterlink"
	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
)

// monitorTimeout bounds the questions the admin asks the master for
// "print summary" (neoppod's MONITOR_TIMEOUT): past it the master link is
// dropped, as a master that does not answer is of no use.
const monitorTimeout = 60 * time.Second

// ErrStopped is returned by [Node.Run] when the node stopped because the
// cluster was shut down (the master was lost after announcing STOPPING).
var ErrStopped = errors.New("admin: cluster stopped")

// Node is an admin node. It is created by [NewNode] and runs with
// [Node.Run].
//
// The view of the cluster and the master link are guarded by mu; they
// are written by the goroutine of Run that talks to the master and read by
// the handlers of neoctl links, which run on the links' reader goroutines.
type Node struct {
	cfg   Config
	log   *slog.Logger
	mdb   *masterDB // nil without dynamic master list
	ready chan struct{}
	addr  proto.Addr // set before ready is closed

	wg sync.WaitGroup // link watchers and the mailer
	// relays counts neoctl requests being answered on goroutines of their
	// own (forwarded commands, monitor questions). Run waits for them
	// before closing neoctl links, so that the answer to the command that
	// stopped the cluster still reaches neoctl. Add only under mu, while
	// mu.done is false.
	relays sync.WaitGroup

	mu struct {
		sync.Mutex
		v      *view
		master *neonet.Link          // nil while not identified to a primary
		ctl    map[*neonet.Link]bool // neoctl links, closed on exit
		ctx    context.Context       // Run's context, for work started by handlers
		done   bool                  // Run is returning: start nothing new
		mailer *mailer               // nil without e-mail notifications
		// reporter reports to the upstream admin that monitors this
		// (backup) cluster; nil if none (upstream.go).
		reporter *reporter
		// backups are the monitored backup clusters, in the order of
		// Config.Monitor.Backups (backuplink.go).
		backups []*backupConn
	}
}

// NewNode checks cfg and returns an admin node ready to Run.
func NewNode(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Bind.Host == "" {
		cfg.Bind.Host = "127.0.0.1"
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Node{cfg: cfg, log: log, ready: make(chan struct{})}
	if cfg.DynamicMasterList != "" {
		mdb, err := openMasterDB(cfg.DynamicMasterList)
		if err != nil {
			return nil, fmt.Errorf("admin: %w", err)
		}
		n.mdb = mdb
	}
	if len(n.masters()) == 0 {
		return nil, errors.New("admin: no master address, neither configured nor in the dynamic master list")
	}
	n.mu.v = newView()
	n.mu.ctl = map[*neonet.Link]bool{}
	for _, b := range cfg.Monitor.Backups {
		n.mu.backups = append(n.mu.backups, &backupConn{mon: backupMon{Name: b}})
	}
	if len(cfg.Monitor.Emails) > 0 {
		n.mu.mailer = newMailer(cfg.Cluster, cfg.Monitor, log, n.mailHealth)
	}
	return n, nil
}

// Ready is closed once the node listens for neoctl.
func (n *Node) Ready() <-chan struct{} { return n.ready }

// Addr returns the address neoctl connects to, once [Node.Ready] is closed.
func (n *Node) Addr() proto.Addr { return n.addr }

// Run listens for neoctl, connects to the primary master and serves until
// ctx ends (it then returns ctx's error) or the cluster is shut down
// (then [ErrStopped]). A lost master is looked for again, as long as the
// cluster was not STOPPING.
func (n *Node) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ln, err := neonet.Listen(ctx, "tcp", n.cfg.Bind.String(), neonet.Config{
		Logger:   n.log,
		TLS:      n.cfg.TLS,
		Handler:  n.serveCtl,
		Observer: n.cfg.NetObserver,
	})
	if err != nil {
		return fmt.Errorf("admin: listen for neoctl: %w", err)
	}
	ta := ln.Addr().(*net.TCPAddr)
	n.addr = proto.Addr{Host: n.cfg.Bind.Host, Port: uint16(ta.Port)}
	n.log.Info("listening for neoctl", "addr", n.addr)
	n.mu.Lock()
	n.mu.ctx = ctx
	n.mu.Unlock()
	close(n.ready)
	if m := n.mu.mailer; m != nil {
		n.wg.Go(func() { m.run(ctx) })
	}

	var accept sync.WaitGroup
	accept.Go(func() {
		for {
			link, err := ln.Accept(ctx)
			if err != nil {
				return
			}
			n.mu.Lock()
			if n.mu.done {
				n.mu.Unlock()
				link.Close()
				return
			}
			n.mu.ctl[link] = true
			n.mu.Unlock()
			n.wg.Go(func() {
				<-link.Done()
				n.mu.Lock()
				delete(n.mu.ctl, link)
				n.mu.Unlock()
			})
		}
	})

	err = n.loop(ctx)

	ln.Close()
	accept.Wait()
	n.mu.Lock()
	n.mu.done = true
	n.mu.Unlock()
	// The master link is closed: relays end with its answer or its loss.
	// ctx stays live until then so that an answer already received is
	// relayed rather than dropped.
	n.relays.Wait()
	cancel()
	n.mu.Lock()
	for l := range n.mu.ctl {
		l.Abort() // lets a relayed answer go out before closing
	}
	if n.mu.master != nil {
		n.mu.master.Close()
	}
	n.mu.Unlock()
	n.wg.Wait()
	return err
}

// loop connects to the primary master and follows it, again after each
// loss, until the cluster stops or ctx ends.
func (n *Node) loop(ctx context.Context) error {
	nid := n.cfg.NID
	for {
		ml, acc, err := n.connectPrimary(ctx, nid)
		if err != nil {
			return err
		}
		stopping := n.followMaster(ctx, ml, acc)
		if err := ctx.Err(); err != nil {
			return err
		}
		if stopping {
			n.log.Info("cluster stopped: exiting")
			return ErrStopped
		}
		n.log.Error("primary master is down")
		nid = 0 // forget our id, as neoppod does: the master gives one again
	}
}

// masterLink is a link to a master. Its packets are applied to the view
// on the link's reader goroutine, in arrival order, so that an answer the
// admin relays to neoctl is only sent once what the master notified before
// it has been applied: neoctl's next question sees the command's effect.
// Until the identification is accepted and the view reset for this master,
// packets are queued.
type masterLink struct {
	n    *Node
	link *neonet.Link

	mu struct {
		sync.Mutex
		following bool
		queue     []proto.Msg
		notified  bool // a NotifyClusterInformation was applied
	}
}

func (ml *masterLink) handle(r *neonet.Request) {
	ml.mu.Lock()
	defer ml.mu.Unlock()
	if !ml.mu.following {
		ml.mu.queue = append(ml.mu.queue, r.Msg)
		return
	}
	ml.apply(r.Msg)
}

// follow makes ml the admin's master and applies what it queued.
func (ml *masterLink) follow(acc *proto.AcceptIdentification) {
	ml.mu.Lock()
	defer ml.mu.Unlock()
	n := ml.n
	n.mu.Lock()
	n.mu.v.identified(acc.YourNID, acc.MyNID)
	n.mu.master = ml.link
	n.mu.Unlock()
	for _, m := range ml.mu.queue {
		ml.apply(m)
	}
	ml.mu.queue, ml.mu.following = nil, true
}

// apply handles one packet from the master; ml.mu is held.
func (ml *masterLink) apply(m proto.Msg) {
	if _, ok := m.(*proto.NotifyClusterInformation); ok {
		ml.mu.notified = true
	}
	n := ml.n
	n.mu.Lock()
	ok, err := n.mu.v.apply(m)
	if ok && err == nil {
		n.mu.mailer.changed()
		n.mu.reporter.changed()
	}
	n.mu.Unlock()
	if nn, isNodes := m.(*proto.NotifyNodeInformation); isNodes && err == nil {
		var add, remove []proto.Addr
		for _, e := range nn.NodeList {
			if e.Type == proto.MASTER {
				if e.State == proto.UNKNOWN {
					remove = append(remove, e.Addr)
				} else {
					add = append(add, e.Addr)
				}
			}
		}
		n.saveMasters(add, remove)
	}
	switch {
	case err != nil:
		n.log.Error("inconsistent update from the master: reconnecting", "err", err)
		ml.link.Close()
	case ok:
		n.log.Debug("master update", "msg", fmt.Sprintf("%T", m))
	default:
		switch m := m.(type) {
		case *proto.FlushLog:
			if n.cfg.FlushLog != nil {
				go n.cfg.FlushLog()
			}
		case *proto.NotifyUpstreamAdmin:
			n.mu.Lock()
			if !n.mu.done {
				n.setUpstreamAdminLocked(m.Addr)
			}
			n.mu.Unlock()
		default:
			n.log.Warn("unexpected packet from the master", "msg", fmt.Sprintf("%T", m))
		}
	}
}

// followMaster mirrors what the master tells until the link breaks, and
// reports whether the cluster was STOPPING then.
func (n *Node) followMaster(ctx context.Context, ml *masterLink, acc *proto.AcceptIdentification) bool {
	link := ml.link
	ml.follow(acc)
	n.log.Info("identified to the primary master", "primary", acc.MyNID, "nid", acc.YourNID, "addr", link.RemoteAddr())

	// A NotifyClusterInformation received before the answer carries the
	// same state or a newer one: the answer is then stale.
	var st proto.AnswerClusterState
	if err := link.Ask(ctx, &proto.AskClusterState{}, &st); err == nil {
		ml.mu.Lock()
		if !ml.mu.notified {
			ml.apply(&st)
		}
		ml.mu.Unlock()
	} else {
		n.log.Warn("ask cluster state", "err", err)
	}
	select {
	case <-link.Done():
	case <-ctx.Done():
	}
	link.Close()

	n.mu.Lock()
	defer n.mu.Unlock()
	s, ok := n.mu.v.clusterState.Get()
	n.mu.v.disconnected()
	n.mu.master = nil
	n.mu.mailer.changed()
	return ok && s == proto.STOPPING
}

// connectPrimary finds the primary master among the configured ones, those
// of the dynamic master list and those they tell about, and identifies to
// it (protocol.md §5.1, see [masterlink]). Attempts to one address are at
// least ReconnectDelay apart.
func (n *Node) connectPrimary(ctx context.Context, nid proto.NodeID) (*masterLink, *proto.AcceptIdentification, error) {
	backups := make([]proto.Value, len(n.cfg.Monitor.Backups))
	for i, b := range n.cfg.Monitor.Backups {
		backups[i] = b
	}
	d := &masterlink.Dialer{
		Masters: n.masters,
		Net:     neonet.Config{Logger: n.log, TLS: n.cfg.TLS, Observer: n.cfg.NetObserver},
		Delay:   n.cfg.ReconnectDelay,
		Learned: func(known []proto.Addr) { n.saveMasters(known, nil) },
		Logger:  n.log,
	}
	link, acc, err := d.Dial(ctx, &proto.RequestIdentification{
		NodeType:    proto.ADMIN,
		NID:         nid,
		Addr:        n.addr,
		ClusterName: n.cfg.Cluster,
		Extra:       proto.Dict{{Key: "backup", Value: backups}},
	})
	if err != nil {
		return nil, nil, err
	}
	// What the master sends from now on is queued until followMaster.
	ml := &masterLink{n: n, link: link}
	link.SetHandler(ml.handle)
	return ml, acc, nil
}

// masters returns the masters to look for the primary among: the
// configured ones, then those of the dynamic master list.
func (n *Node) masters() []string {
	var list []string
	for _, a := range append(slices.Clone(n.cfg.Masters), n.mdb.addrs()...) {
		if s := a.String(); !slices.Contains(list, s) {
			list = append(list, s)
		}
	}
	return list
}

// saveMasters updates the dynamic master list, if any.
func (n *Node) saveMasters(add, remove []proto.Addr) {
	if err := n.mdb.update(add, remove); err != nil {
		n.log.Error("dynamic master list not saved", "err", err)
	}
}
