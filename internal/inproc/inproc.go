// Package inproc runs a whole NEO cluster in one process, on loopback:
// masters, storages on SQLite databases in one directory and, if asked,
// an admin. cmd/neosimple offers it to users; internal/neotest builds the
// clusters of in-process tests on it, so both run the same code.
//
// [New] checks a [Config]; [Cluster.Start] starts every node and returns
// once each listens, [Cluster.WaitRunning] waits for the cluster state
// RUNNING. Nodes have names:
//
//	master, master_1, master_2 ...   the masters (MasterName)
//	storage_0, storage_1 ...         the storages (StorageName)
//	admin                            the admin (AdminName)
//
// Storage i keeps its database in DIR/storage_i.sqlite, so a cluster
// started again on the same directory finds its data (autostart only
// matters for a new database). [Cluster.Stop] stops one node and
// [Cluster.Restart] starts it again: a master or the admin on the address
// it had, a storage on a new port, on its database. The cluster ends
// cleanly with [Cluster.Shutdown] (cluster state STOPPING, as neoctl
// does), or at once with [Cluster.Close].
//
// A node in this process cannot be killed as a process is with SIGKILL:
// stopping it cancels its Run, which closes its links at once (its peers
// see a crash) and then its database. Tests that need a process killed
// before it closes anything are in internal/integration.
package inproc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/neogo/neo/admin"
	"github.com/neogo/neo/ctl"
	"github.com/neogo/neo/internal/adminhttp"
	"github.com/neogo/neo/internal/nodehttp"
	"github.com/neogo/neo/internal/nodelog"
	"github.com/neogo/neo/master"
	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage"
	"github.com/neogo/neo/storage/backend"
	"github.com/neogo/neo/storage/backend/objcache"
	_ "github.com/neogo/neo/storage/backend/sqlite"
)

// Config describes a cluster.
type Config struct {
	// Name is the cluster name, one word (required).
	Name string
	// Dir holds the storages' databases (required, must exist).
	Dir string
	// Host is the loopback address every node listens on: 127.0.0.1
	// (the default) or ::1.
	Host string
	// Masters is the number of masters; 0 means 1.
	Masters int
	// MasterPort is the port of the master when there is one; 0 picks a
	// free port. Several masters always get free ports.
	MasterPort int
	// Storages is the number of storages; the master creates a new
	// database once that many are there.
	Storages int
	// Replicas and Partitions shape a new database (0 partitions: the
	// master's default).
	Replicas, Partitions int
	// Admin adds an admin node; AdminPort is its port (0: a free one).
	Admin     bool
	AdminPort int
	// TLS, if set, secures every link of every node.
	TLS *neonet.TLSConfig
	// CacheSize is the size in bytes of each storage's object cache
	// (objcache.Wrap, as neostorage's --cache-size); 0: no cache.
	CacheSize int64
	// UpstreamCluster and UpstreamMasters ("host:port"), when set, make
	// the cluster a backup of that cluster (cluster.md §8.9): a new
	// cluster starts in backup mode (neomaster --backup).
	UpstreamCluster string
	UpstreamMasters []string
	// AdminMonitor is the admin's monitoring (neoadmin's
	// --monitor-backup and e-mail options).
	AdminMonitor admin.MonitorConfig
	// Logger returns the logger of a node, by name; it is called at each
	// start of the node. Nil discards every log.
	Logger func(node string) (*slog.Logger, error)
	// HTTP returns the HTTP side (metrics, readiness) of a node, by name,
	// or nil for none; it is called at each start of the node, which
	// observes its links with it and attaches itself to it. Returning the
	// same handler at each start keeps the node's series across restarts.
	HTTP func(node string) *nodehttp.Handler
	// Log returns the log file (package nodelog) of a node, by name, or
	// nil for none; it is called at each start of the node, whose
	// records and packets then go to it too, as with -l of a daemon.
	Log func(node string) *nodelog.Log
}

// Node names (see the package documentation).
const AdminName = "admin"

// MasterName is the name of master i (0-based).
func MasterName(i int) string {
	if i == 0 {
		return "master"
	}
	return fmt.Sprintf("master_%d", i)
}

// StorageName is the name of storage i (0-based).
func StorageName(i int) string { return fmt.Sprintf("storage_%d", i) }

// pollInterval is how often WaitRunning asks the admin for the state.
const pollInterval = 25 * time.Millisecond

// ErrNoAdmin is returned by the methods that need the admin node when the
// cluster has none.
var ErrNoAdmin = errors.New("inproc: the cluster has no admin node")

var errClosed = errors.New("inproc: the cluster is closed")

// NodeError is the error of one node: its start failed, or its Run
// returned an error.
type NodeError struct {
	Node string
	Err  error
}

func (e *NodeError) Error() string { return e.Node + ": " + e.Err.Error() }
func (e *NodeError) Unwrap() error { return e.Err }

// Exit is a node whose Run returned without [Cluster.Stop],
// [Cluster.Close] or [Cluster.Shutdown] asking it to.
type Exit struct {
	Node string
	Err  error // Run's result
}

// Expected reports whether the node ended as the cluster stopping makes
// it end (neoctl set cluster STOPPING), rather than on a failure.
func (e Exit) Expected() bool { return expectedExit(e.Err) }

func expectedExit(err error) bool {
	return err == nil || errors.Is(err, context.Canceled) || errors.Is(err, storage.ErrShutdown) ||
		errors.Is(err, admin.ErrStopped) || errors.Is(err, master.ErrServerClosed)
}

// Cluster is a running cluster. Its methods may be called from any
// goroutine; mu guards the nodes' run state.
type Cluster struct {
	cfg Config
	// masters are the masters' addresses, written by Start only (chosen
	// before any starts, or the port the single master got from the
	// system), read-only once it returned.
	masters []proto.Addr
	// runCtx is the parent of every node's run context; Close cancels it.
	runCtx    context.Context
	cancelRun context.CancelFunc
	wg        sync.WaitGroup // one goroutine per node run

	exited chan struct{} // closed at the first Exit

	mu struct {
		sync.Mutex
		nodes  []*node // masters, storages, admin, in that order
		exits  []Exit
		closed bool
	}
}

// node is one node of the cluster; the fields from addr on are guarded
// by Cluster.mu, and all but addr are renewed at each run.
type node struct {
	name  string
	index int
	typ   proto.NodeType
	addr  proto.Addr // where it listens (a storage: in its current run)

	running bool
	asked   bool // Stop, Close or Shutdown asked this run to end
	cancel  context.CancelFunc
	done    chan struct{} // closed when Run returned; err is then set
	err     error
	db      backend.Backend // a storage's backend in its current run

	http *nodehttp.Handler // of the current run, set and read by start only; nil without Config.HTTP
	// obs observes the links of the current run (http's, the log's) and
	// flushLog flushes its log file; set and read by start only.
	obs      neonet.Observer
	flushLog func()
}

// New checks cfg and prepares a cluster; [Cluster.Start] starts it.
func New(cfg Config) (*Cluster, error) {
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.Masters == 0 {
		cfg.Masters = 1
	}
	switch {
	case cfg.Name == "" || strings.ContainsAny(cfg.Name, " \t\n"):
		return nil, fmt.Errorf("inproc: Config.Name %q: a cluster name is one non-empty word", cfg.Name)
	case cfg.Dir == "":
		return nil, errors.New("inproc: Config.Dir is required")
	case cfg.Masters < 0 || cfg.Storages < 0 || cfg.Replicas < 0 || cfg.Partitions < 0:
		return nil, errors.New("inproc: Config: negative count")
	case cfg.Masters > 1 && cfg.MasterPort != 0:
		return nil, errors.New("inproc: Config.MasterPort: only for a single master")
	case cfg.MasterPort < 0 || cfg.MasterPort > 65535:
		return nil, fmt.Errorf("inproc: Config.MasterPort %d: not a port", cfg.MasterPort)
	case cfg.AdminPort < 0 || cfg.AdminPort > 65535:
		return nil, fmt.Errorf("inproc: Config.AdminPort %d: not a port", cfg.AdminPort)
	}
	c := &Cluster{cfg: cfg, exited: make(chan struct{})}
	c.runCtx, c.cancelRun = context.WithCancel(context.Background())
	for i := range cfg.Masters {
		c.mu.nodes = append(c.mu.nodes, &node{name: MasterName(i), index: i, typ: proto.MASTER})
	}
	for i := range cfg.Storages {
		c.mu.nodes = append(c.mu.nodes, &node{name: StorageName(i), index: i, typ: proto.STORAGE})
	}
	if cfg.Admin {
		c.mu.nodes = append(c.mu.nodes, &node{name: AdminName, typ: proto.ADMIN,
			addr: proto.Addr{Host: cfg.Host, Port: uint16(cfg.AdminPort)}})
	}
	return c, nil
}

// Name is the cluster name.
func (c *Cluster) Name() string { return c.cfg.Name }

// Dir is the directory of the databases.
func (c *Cluster) Dir() string { return c.cfg.Dir }

// Masters returns the masters' "host:port", as clients and storages are
// given them; they are known once Start returned.
func (c *Cluster) Masters() []string {
	var s []string
	for _, a := range c.masters {
		s = append(s, a.String())
	}
	return s
}

// Addr returns where node listens (zero if it never did).
func (c *Cluster) Addr(name string) proto.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.node(name); n != nil {
		return n.addr
	}
	return proto.Addr{}
}

// DBPath is the database of storage i.
func (c *Cluster) DBPath(i int) string {
	return filepath.Join(c.cfg.Dir, StorageName(i)+".sqlite")
}

// Backend is the backend storage i runs on (behind its object cache if
// CacheSize is set), in its current or last run; nil before any.
func (c *Cluster) Backend(i int) backend.Backend {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.node(StorageName(i)); n != nil {
		return n.db
	}
	return nil
}

// node returns the node called name, or nil. c.mu is held.
func (c *Cluster) node(name string) *node {
	for _, n := range c.mu.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

// Start starts the masters, the storages and the admin, and returns once
// each of them listens; ctx bounds that wait only. On error, some nodes
// may be running: call [Cluster.Close].
func (c *Cluster) Start(ctx context.Context) error {
	c.mu.Lock()
	nodes := slices.Clone(c.mu.nodes)
	c.mu.Unlock()
	if err := c.placeMasters(); err != nil {
		return err
	}
	for _, n := range nodes {
		if err := c.start(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

// placeMasters chooses the masters' addresses before any starts: each
// master is given all of them, so several masters get ports free now
// (the master takes no listener; a port taken by another process in the
// meantime fails its start). A single master may take its port from the
// system as it listens (then learnt by startMaster).
func (c *Cluster) placeMasters() error {
	if c.cfg.Masters == 1 {
		c.masters = []proto.Addr{{Host: c.cfg.Host, Port: uint16(c.cfg.MasterPort)}}
		return nil
	}
	for i := range c.cfg.Masters {
		l, err := net.Listen("tcp", net.JoinHostPort(c.cfg.Host, "0"))
		if err != nil {
			return &NodeError{MasterName(i), err}
		}
		c.masters = append(c.masters, proto.Addr{Host: c.cfg.Host, Port: uint16(l.Addr().(*net.TCPAddr).Port)})
		l.Close()
	}
	return nil
}

// Restart starts again a node that was stopped or ended, and returns once
// it listens.
func (c *Cluster) Restart(ctx context.Context, name string) error {
	c.mu.Lock()
	n := c.node(name)
	c.mu.Unlock()
	if n == nil {
		return fmt.Errorf("inproc: no node %q", name)
	}
	return c.start(ctx, n)
}

// start starts node n and waits for it to listen.
func (c *Cluster) start(ctx context.Context, n *node) error {
	c.mu.Lock()
	closed, running := c.mu.closed, n.running
	c.mu.Unlock()
	switch {
	case closed:
		return &NodeError{n.name, errClosed}
	case running:
		return &NodeError{n.name, errors.New("already running")}
	}
	log := slog.New(slog.DiscardHandler)
	if c.cfg.Logger != nil {
		l, err := c.cfg.Logger(n.name)
		if err != nil {
			return &NodeError{n.name, err}
		}
		log = l
	}
	if c.cfg.HTTP != nil {
		n.http = c.cfg.HTTP(n.name)
	}
	n.obs, n.flushLog = n.http.NetObserver(), nil
	if c.cfg.Log != nil {
		if l := c.cfg.Log(n.name); l != nil {
			log = slog.New(l.Handler(log.Handler()))
			n.obs, n.flushLog = neonet.Observers(n.obs, l.Observer()), l.Flush
		}
	}
	var err error
	switch n.typ {
	case proto.MASTER:
		err = c.startMaster(ctx, n, log)
	case proto.STORAGE:
		err = c.startStorage(ctx, n, log)
	default:
		err = c.startAdmin(ctx, n, log)
	}
	if err != nil {
		return &NodeError{n.name, err}
	}
	return nil
}

func (c *Cluster) startMaster(ctx context.Context, n *node, log *slog.Logger) error {
	cfg := master.Config{
		Cluster:    c.cfg.Name,
		Bind:       c.masters[n.index],
		Partitions: c.cfg.Partitions,
		Replicas:   c.cfg.Replicas,
		Autostart:  c.cfg.Storages,
		TLS:        c.cfg.TLS,
		Logger:     log,

		NetObserver: n.obs,
		FlushLog:    n.flushLog,
	}
	if c.cfg.Masters > 1 {
		cfg.Masters = slices.Clone(c.masters)
	}
	if c.cfg.UpstreamCluster != "" {
		cfg.UpstreamCluster, cfg.Backup = c.cfg.UpstreamCluster, true
		for _, m := range c.cfg.UpstreamMasters {
			a, err := master.ParseAddr(m, 0)
			if err != nil {
				return fmt.Errorf("upstream master: %w", err)
			}
			cfg.UpstreamMasters = append(cfg.UpstreamMasters, a)
		}
	}
	srv, err := master.NewServer(cfg)
	if err != nil {
		return err
	}
	n.http.SetMaster(srv)
	done, err := c.spawn(n, srv.Run)
	if err != nil {
		return err
	}
	addr, err := c.waitListening(ctx, n, done, srv.Addr)
	if err != nil {
		return err
	}
	c.mu.Lock()
	n.addr = addr
	c.mu.Unlock()
	if c.masters[n.index] != addr {
		c.masters[n.index] = addr // port 0 at the first start
	}
	return nil
}

func (c *Cluster) startStorage(ctx context.Context, n *node, log *slog.Logger) error {
	path := c.DBPath(n.index)
	db, err := backend.Open(ctx, path, backend.Options{Logger: log})
	if err != nil {
		return fmt.Errorf("open database %s: %w", path, err)
	}
	db = objcache.Wrap(db, c.cfg.CacheSize)
	node, err := storage.New(storage.Config{
		Cluster: c.cfg.Name,
		Masters: c.Masters(),
		Bind:    net.JoinHostPort(c.cfg.Host, "0"),
		Backend: db,
		TLS:     c.cfg.TLS,
		Logger:  log,

		NetObserver: n.obs,
		FlushLog:    n.flushLog,
	})
	if err == nil {
		n.http.SetStorage(node, db, path)
		err = node.Listen(ctx)
	}
	if err != nil {
		db.Close()
		return err
	}
	c.mu.Lock()
	n.addr, n.db = node.Addr(), db
	c.mu.Unlock()
	_, err = c.spawn(n, node.Run)
	return err
}

// registries returns the metrics of the nodes that have an HTTP side,
// by name: the admin's dashboard shows their progress.
func (c *Cluster) registries() map[string]prometheus.Gatherer {
	c.mu.Lock()
	names := make([]string, 0, len(c.mu.nodes))
	for _, n := range c.mu.nodes {
		names = append(names, n.name)
	}
	c.mu.Unlock()
	m := map[string]prometheus.Gatherer{}
	for _, name := range names {
		if h := c.cfg.HTTP(name); h != nil {
			m[name] = h.Registry()
		}
	}
	return m
}

func (c *Cluster) startAdmin(ctx context.Context, n *node, log *slog.Logger) error {
	c.mu.Lock()
	bind := n.addr
	c.mu.Unlock()
	adm, err := admin.NewNode(admin.Config{
		Cluster: c.cfg.Name,
		Masters: slices.Clone(c.masters),
		Bind:    bind,
		TLS:     c.cfg.TLS,
		Logger:  log,
		Monitor: c.cfg.AdminMonitor,

		NetObserver: n.obs,
		FlushLog:    n.flushLog,
	})
	if err != nil {
		return err
	}
	if n.http != nil {
		n.http.SetAdmin(adm)
		adminhttp.Attach(n.http, adm, c.cfg.TLS, log)
		adminhttp.AttachPeers(n.http, c.registries)
	}
	done, err := c.spawn(n, adm.Run)
	if err != nil {
		return err
	}
	select {
	case <-adm.Ready():
	case <-done:
		return c.runErr(n)
	case <-ctx.Done():
		return ctx.Err()
	}
	c.mu.Lock()
	n.addr = adm.Addr()
	c.mu.Unlock()
	return nil
}

// runErr is the result of n's last run, which has ended.
func (c *Cluster) runErr(n *node) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n.err == nil {
		return errors.New("exited before listening")
	}
	return n.err
}

// waitListening waits for addr to answer (a master's Addr), or for the
// node to end.
func (c *Cluster) waitListening(ctx context.Context, n *node, done <-chan struct{}, addr func(context.Context) (proto.Addr, error)) (proto.Addr, error) {
	actx, cancel := context.WithCancel(ctx)
	var watch sync.WaitGroup
	defer watch.Wait() // after cancel, deferred below, ends the watcher
	defer cancel()
	// A node that ends before listening would leave addr waiting.
	watch.Go(func() {
		select {
		case <-done:
			cancel()
		case <-actx.Done():
		}
	})
	a, err := addr(actx)
	if err == nil {
		return a, nil
	}
	select {
	case <-done:
		return a, c.runErr(n)
	default:
		return a, err
	}
}

// spawn runs n's Run on a goroutine of the cluster; done is closed when it
// returned.
func (c *Cluster) spawn(n *node, run func(context.Context) error) (done <-chan struct{}, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.mu.closed:
		return nil, errClosed
	case n.running:
		return nil, errors.New("already running")
	}
	ctx, cancel := context.WithCancel(c.runCtx)
	n.running, n.asked, n.cancel, n.done, n.err = true, false, cancel, make(chan struct{}), nil
	ch := n.done
	c.wg.Go(func() {
		err := run(ctx)
		cancel()
		c.mu.Lock()
		defer c.mu.Unlock()
		n.running, n.err = false, err
		if !n.asked {
			c.mu.exits = append(c.mu.exits, Exit{Node: n.name, Err: err})
			if len(c.mu.exits) == 1 {
				close(c.exited)
			}
		}
		close(ch)
	})
	return ch, nil
}

// Exited is closed when a node first ends without Stop, Close or Shutdown
// asking it to (told by the master to shut down, or failing); [Cluster.Exits]
// tells which.
func (c *Cluster) Exited() <-chan struct{} { return c.exited }

// Exits returns the nodes that ended on their own so far, in order.
func (c *Cluster) Exits() []Exit {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.mu.exits)
}

// Stop stops node name, if it runs, and waits until its Run returned or
// ctx ends.
func (c *Cluster) Stop(ctx context.Context, name string) error {
	c.mu.Lock()
	n := c.node(name)
	if n == nil {
		c.mu.Unlock()
		return fmt.Errorf("inproc: no node %q", name)
	}
	done := c.askStop(n)
	c.mu.Unlock()
	return waitDone(ctx, name, done)
}

// askStop cancels n's run, if any, and returns its done channel (nil if
// it never ran). c.mu is held.
func (c *Cluster) askStop(n *node) <-chan struct{} {
	if n.done == nil {
		return nil
	}
	if n.running {
		n.asked = true
		n.cancel()
	}
	return n.done
}

func waitDone(ctx context.Context, name string, done <-chan struct{}) error {
	if done == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s still running: %w", name, ctx.Err())
	}
}

// Close stops every node at once, the masters first (so that no storage
// is marked out of date), and waits for them until ctx ends. Nodes cannot
// be started again after Close.
func (c *Cluster) Close(ctx context.Context) error {
	c.mu.Lock()
	c.mu.closed = true
	nodes := slices.Clone(c.mu.nodes)
	c.mu.Unlock()
	var errs []error
	for _, n := range nodes { // masters first
		c.mu.Lock()
		done := c.askStop(n)
		c.mu.Unlock()
		if err := waitDone(ctx, n.name, done); err != nil {
			errs = append(errs, err)
		}
	}
	c.cancelRun()
	if errs == nil {
		c.wg.Wait()
	}
	return errors.Join(errs...)
}

// Wait waits until every node ended, or ctx ends. It returns the errors
// of the nodes that ended otherwise than a clean stop of the cluster ends
// them, and those still running at the end of ctx.
func (c *Cluster) Wait(ctx context.Context) error {
	c.mu.Lock()
	nodes := slices.Clone(c.mu.nodes)
	c.mu.Unlock()
	var errs []error
	for _, n := range nodes {
		c.mu.Lock()
		done := n.done
		c.mu.Unlock()
		if err := waitDone(ctx, n.name, done); err != nil {
			errs = append(errs, err)
			continue
		}
		if done == nil {
			continue
		}
		c.mu.Lock()
		err := n.err
		c.mu.Unlock()
		if !expectedExit(err) {
			errs = append(errs, &NodeError{n.name, err})
		}
	}
	return errors.Join(errs...)
}

// Shutdown stops the cluster the clean way, as `neoctl set cluster
// STOPPING` does: transactions in progress end, storages leave their
// cells UP_TO_DATE, then every node exits. It needs the admin. It returns
// once every node ended, with [Cluster.Wait]'s errors. If the cluster
// cannot be set STOPPING, Shutdown returns that error at once and the
// nodes keep running: [Cluster.Close] them.
func (c *Cluster) Shutdown(ctx context.Context) error {
	c.mu.Lock()
	for _, n := range c.mu.nodes {
		n.asked = true // the nodes' ends are not Exits
	}
	c.mu.Unlock()
	if err := c.setStopping(ctx); err != nil {
		return fmt.Errorf("set cluster STOPPING: %w", err)
	}
	return c.Wait(ctx)
}

func (c *Cluster) setStopping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cl, err := c.Ctl(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	_, err = cl.SetClusterState(ctx, proto.STOPPING)
	if errors.Is(err, ctl.ErrConnectionClosed) {
		// The admin exits as soon as the cluster is STOPPING, at times
		// before its answer is out: the request went through.
		return nil
	}
	return err
}

// Ctl connects to the admin, as neoctl does; the caller closes the client.
func (c *Cluster) Ctl(ctx context.Context) (*ctl.Client, error) {
	if !c.cfg.Admin {
		return nil, ErrNoAdmin
	}
	return ctl.Dial(ctx, ctl.Config{Addr: c.Addr(AdminName).String(), TLS: c.cfg.TLS})
}

// ClusterState asks the admin for the cluster state.
func (c *Cluster) ClusterState(ctx context.Context) (proto.ClusterState, error) {
	if !c.cfg.Admin {
		return 0, ErrNoAdmin
	}
	return ClusterState(ctx, ctl.Config{Addr: c.Addr(AdminName).String(), TLS: c.cfg.TLS})
}

// ClusterState asks the admin of cfg for the cluster state, within 5
// seconds; a cluster without a state yet is an error.
func ClusterState(ctx context.Context, cfg ctl.Config) (proto.ClusterState, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cl, err := ctl.Dial(ctx, cfg)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	st, err := cl.ClusterState(ctx)
	if err != nil {
		return 0, err
	}
	s, ok := st.Get()
	if !ok {
		return 0, errors.New("no cluster state yet")
	}
	return s, nil
}

// WaitRunning asks the admin for the cluster state until it is RUNNING,
// a node ends on its own, or ctx ends.
func (c *Cluster) WaitRunning(ctx context.Context) error {
	if !c.cfg.Admin {
		return ErrNoAdmin
	}
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	last := "no answer"
	for {
		state, err := c.ClusterState(ctx)
		switch {
		case err == nil && state == proto.RUNNING:
			return nil
		case err == nil:
			last = state.String()
		default:
			last = err.Error()
		}
		select {
		case <-tick.C:
		case <-c.exited:
			ex := c.Exits()[0]
			return fmt.Errorf("%s exited while the cluster was starting: %v", ex.Node, ex.Err)
		case <-ctx.Done():
			return fmt.Errorf("cluster not RUNNING: %w (last: %s)", ctx.Err(), last)
		}
	}
}
