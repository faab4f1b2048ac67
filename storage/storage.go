package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/neogo/neo/internal/masterlink"
	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/nodetab"
	"github.com/neogo/neo/parttab"
	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

// Config configures a storage [Node].
type Config struct {
	// Cluster is the cluster name (required).
	Cluster string
	// Masters are the master addresses ("host:port"), tried in turn.
	Masters []string
	// Bind is the listening address; port 0 lets the system choose.
	Bind string
	// Backend is the open database. The node owns it and closes it when
	// Run returns.
	Backend backend.Backend
	// NID is the node id to ask the master for when the database has none
	// (testing); 0: let the master choose.
	NID proto.NodeID
	// TLS, if set, secures every link.
	TLS *neonet.TLSConfig
	// DisablePack reports every approved pack as completed without packing.
	DisablePack bool
	// DisableDropPartitions keeps the data of discarded partitions.
	DisableDropPartitions bool
	// Logger receives the node's log; nil discards it.
	Logger *slog.Logger
	// ReconnectDelay is the pause between two attempts to reach the same
	// master. Zero means DefaultReconnectDelay.
	ReconnectDelay time.Duration
	// NetObserver, if set, is told of the traffic of every link (metrics,
	// the log file's packets).
	NetObserver neonet.Observer
	// FlushLog, if set, writes out the buffered records of the node's log
	// file: called on FlushLog (neoctl flush_log), on its own goroutine.
	FlushLog func()
	// NewNID: the database is a raw copy of another node's; ask the master
	// for a new NID and OUT_OF_DATE cells on the copied node's partitions,
	// take the copied cells over, and return ErrShutdown when the master
	// says the node is DOWN (cluster.md §8.11). Restarted without it, the
	// node replicates only what the copy lacks.
	NewNID bool
}

// Validate checks the configuration and names the faulty field.
func (c *Config) Validate() error {
	switch {
	case c.Cluster == "":
		return errors.New("storage config: Cluster is required")
	case len(c.Masters) == 0:
		return errors.New("storage config: Masters is empty")
	case c.Backend == nil:
		return errors.New("storage config: Backend is nil")
	}
	for _, m := range c.Masters {
		if _, _, err := net.SplitHostPort(m); err != nil {
			return fmt.Errorf("storage config: Masters: %q: %w", m, err)
		}
	}
	return nil
}

// Errors returned by [Node.Run].
var (
	// ErrShutdown: the master told the node it is DOWN (clean shutdown).
	ErrShutdown = errors.New("storage: shut down by the master")
	// ErrErased: the master told the node it is UNKNOWN: the database
	// was erased (neoctl drop).
	ErrErased = errors.New("storage: dropped by the master, database erased")
	// ErrEmpty: NewNID on a database where the copied node has no cell
	// (neoppod's message).
	ErrEmpty = errors.New("database is empty")
)

// Node is a storage node. Its shared state is guarded by mu; the master
// link is served by the goroutine of Run, each incoming link by its own
// goroutine. Lock order: txnManager.mu, then Node.mu, then Node.wmu.
type Node struct {
	cfg Config
	log *slog.Logger
	// cloned lists the partitions of the copied node (Config.NewNID).
	cloned []uint32
	db     backend.Backend
	// cached is db's in-memory read path, if it has one (object cache).
	cached backend.CachedLoader
	wmu    sync.Mutex // serialises writes to db

	ln   *neonet.Listener
	addr proto.Addr

	wg      sync.WaitGroup // goroutines serving incoming links, background jobs
	pool    workers        // goroutines of votes and parallel loads
	checkMu sync.Mutex     // replica checks run one at a time
	prio    clientPriority // client requests in progress, for replication to yield to
	dials   storageDials   // silent dials to other storages (ha_dial.go)
	stats   nodeStats      // counters for metrics (status.go)
	work    work           // progress of checks and packs (progress.go)

	stopOnce sync.Once
	stop     chan struct{} // closed by Shutdown
	stopped  chan struct{} // closed when Run returns

	mu struct {
		sync.Mutex
		nid         proto.NodeID
		pt          *ptable
		nodes       *nodetab.Table // as the master tells them
		notifyCh    chan struct{}  // closed and renewed at each NotifyNodeInformation and at StartOperation
		operational bool
		tm          *txnManager
		links       map[*neonet.Link]proto.NodeID // identified incoming links
		lastPackID  proto.Tid
		clusterDone bool
		// replicator is the one running while operational (backup
		// reads are cut where its cells are complete).
		replicator *replicator
	}
}

// New prepares a node; Run starts it.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Bind == "" {
		cfg.Bind = "127.0.0.1:0"
	}
	if cfg.ReconnectDelay <= 0 {
		cfg.ReconnectDelay = DefaultReconnectDelay
	}
	n := &Node{cfg: cfg, log: cfg.Logger.With("role", "storage"), db: cfg.Backend,
		stop: make(chan struct{}), stopped: make(chan struct{})}
	n.cached, _ = cfg.Backend.(backend.CachedLoader)
	n.mu.nodes = nodetab.New()
	n.mu.notifyCh = make(chan struct{})
	n.mu.links = make(map[*neonet.Link]proto.NodeID)
	return n, nil
}

// Addr returns the listening address once Run has started listening.
func (n *Node) Addr() proto.Addr { return n.addr }

// NID returns the node id (0 before the first identification).
func (n *Node) NID() proto.NodeID {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.mu.nid
}

// Listen opens the listening socket; Run calls it if it was not called.
func (n *Node) Listen(ctx context.Context) error {
	if n.ln != nil {
		return nil
	}
	ln, err := neonet.Listen(ctx, "tcp", n.cfg.Bind, neonet.Config{Logger: n.log, TLS: n.cfg.TLS, Observer: n.cfg.NetObserver})
	if err != nil {
		return err
	}
	a, err := addrOf(ln.Addr())
	if err != nil {
		ln.Close()
		return err
	}
	n.ln, n.addr = ln, a
	return nil
}

func addrOf(a net.Addr) (proto.Addr, error) {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return proto.Addr{}, err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return proto.Addr{}, err
	}
	return proto.Addr{Host: host, Port: uint16(p)}, nil
}

// Run runs the node until ctx ends or the master shuts it down
// ([ErrShutdown], [ErrErased]); it closes the backend before returning.
func (n *Node) Run(ctx context.Context) (err error) {
	defer close(n.stopped)
	defer n.pool.close()
	defer func() {
		if cerr := n.db.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if err := n.loadConfig(ctx); err != nil {
		return err
	}
	if err := n.Listen(ctx); err != nil {
		return err
	}
	n.log = n.log.With("addr", n.addr.String())
	n.log.Info("listening", "nid", n.NID())

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-n.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.acceptLoop(ctx)
	}()
	defer func() {
		cancel()
		n.ln.Close()
		n.closeLinks()
		n.wg.Wait()
	}()

	var pause relinkPause
	for {
		link, err := n.connectMaster(ctx)
		if err != nil {
			return err
		}
		linked := time.Now()
		err = n.serveMaster(ctx, link)
		link.Close()
		n.stopOperation()
		switch {
		case errors.Is(err, ErrShutdown):
			n.log.Info("told to shut down")
			return err
		case errors.Is(err, ErrErased):
			n.log.Warn("told to forget everything: erasing the database")
			return err
		case ctx.Err() != nil:
			return ctx.Err()
		case n.cfg.NewNID && n.NID() != 0:
			// Identifying again would ask for yet another NID.
			return fmt.Errorf("storage: master link lost after getting the new node id %s (restart without --new-nid): %w", n.NID(), err)
		}
		n.log.Warn("lost the primary master", "err", err)
		if d := pause.after(time.Since(linked)); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			}
		}
	}
}

// Shutdown stops a running node: links are closed, what was voted stays on
// disk for the next verification. It waits for Run to return or ctx to end.
func (n *Node) Shutdown(ctx context.Context) error {
	n.stopOnce.Do(func() { close(n.stop) })
	select {
	case <-n.stopped:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ErrOtherCluster is returned by [Node.Run] when the database was created
// by a cluster of another name; the database is left untouched.
var ErrOtherCluster = errors.New("storage: the database belongs to another cluster")

// loadConfig checks the cluster name and loads the NID and partition table.
func (n *Node) loadConfig(ctx context.Context) error {
	m, err := n.db.Meta(ctx)
	if err != nil {
		return fmt.Errorf("storage: read config: %w", err)
	}
	switch m.Name {
	case "":
		m.Name = n.cfg.Cluster
		n.wmu.Lock()
		err := n.db.SetMeta(ctx, m)
		n.wmu.Unlock()
		if err != nil {
			return fmt.Errorf("storage: save cluster name: %w", err)
		}
	case n.cfg.Cluster:
	default:
		return fmt.Errorf("%w: %q, not %q", ErrOtherCluster, m.Name, n.cfg.Cluster)
	}
	pt, err := n.loadPT(ctx)
	if err != nil {
		return err
	}
	if n.cfg.NewNID {
		if pt != nil && m.NID != 0 {
			n.cloned = pt.AssignedOffsets(m.NID)
		}
		if len(n.cloned) == 0 {
			return ErrEmpty
		}
		n.log.Info("cloned database: asking for a new node id", "copied_nid", m.NID, "partitions", n.cloned)
		m.NID = 0
	}
	n.mu.Lock()
	n.mu.nid = m.NID
	if n.mu.nid == 0 && !n.cfg.NewNID {
		n.mu.nid = n.cfg.NID
	}
	n.mu.pt = pt
	n.mu.Unlock()
	n.warmUp(ctx, pt)
	return nil
}

// loadPT reads the saved partition table (nil if none).
func (n *Node) loadPT(ctx context.Context) (*ptable, error) {
	ptid, nr, cells, err := n.db.PartitionTable(ctx)
	if err != nil {
		return nil, fmt.Errorf("storage: read partition table: %w", err)
	}
	if ptid == 0 {
		return nil, nil
	}
	np := 0
	for _, c := range cells {
		np = max(np, int(c.Partition)+1)
	}
	rows := make([][]parttab.Cell, np)
	for _, c := range cells {
		rows[c.Partition] = append(rows[c.Partition], parttab.Cell{NID: c.NID, State: c.State})
	}
	pt, err := loadPTable(ptid, nr, rows)
	if err != nil {
		return nil, fmt.Errorf("storage: saved partition table: %w", err)
	}
	return pt, nil
}

// DefaultReconnectDelay is the least time between two attempts to reach
// the same master: [masterlink.DefaultDelay]. neoppod waits 1 s, so that a
// storage that asked a secondary during an election (which takes tens of
// milliseconds) came back a second late; a refused dial costs nothing.
const DefaultReconnectDelay = masterlink.DefaultDelay

// connectMaster finds the primary master and identifies to it
// (cluster.md §1.3.2 BootstrapManager, see [masterlink]); it saves the
// node id the master gives.
func (n *Node) connectMaster(ctx context.Context) (*neonet.Link, error) {
	nid := n.NID()
	d := &masterlink.Dialer{
		Masters: func() []string { return n.cfg.Masters },
		Net:     neonet.Config{Logger: n.log, TLS: n.cfg.TLS, Observer: n.cfg.NetObserver},
		Delay:   n.cfg.ReconnectDelay,
		Logger:  n.log,
		Ready: func(ctx context.Context, link *neonet.Link, acc *proto.AcceptIdentification) error {
			return n.identified(ctx, nid, acc, link)
		},
	}
	req := &proto.RequestIdentification{
		NodeType:    proto.STORAGE,
		NID:         nid,
		Addr:        n.addr,
		ClusterName: n.cfg.Cluster,
		Extra: proto.Dict{
			{Key: "devpath", Value: []proto.Value{}},
			{Key: "new_nid", Value: []proto.Value{}},
		},
	}
	if n.cfg.NewNID {
		// Without address nor NID: the master refuses it while
		// RECOVERING (the dialer retries) and gives a new NID, DOWN.
		req.Addr = proto.Addr{}
		parts := make([]proto.Value, len(n.cloned))
		for i, p := range n.cloned {
			parts[i] = int64(p)
		}
		req.Extra[1].Value = parts
	}
	link, _, err := d.Dial(ctx, req)
	return link, err
}

// identified records the node id the master accepted us with, in the
// database if it changed (we asked as nid).
func (n *Node) identified(ctx context.Context, nid proto.NodeID, acc *proto.AcceptIdentification, link *neonet.Link) error {
	if acc.YourNID != nid {
		n.log.Info("got node id", "nid", acc.YourNID)
		n.wmu.Lock()
		m, err := n.db.Meta(ctx)
		old := m.NID
		if err == nil {
			m.NID = acc.YourNID
			err = n.db.SetMeta(ctx, m) // takes over the cells of old
		}
		n.wmu.Unlock()
		if err != nil {
			return fmt.Errorf("storage: save node id: %w", err)
		}
		if old != 0 {
			pt, err := n.loadPT(ctx)
			if err != nil {
				return err
			}
			n.mu.Lock()
			n.mu.pt = pt
			n.mu.Unlock()
			n.log.Info("cells taken over", "from", old, "nid", acc.YourNID)
		}
	}
	n.mu.Lock()
	n.mu.nid = acc.YourNID
	n.mu.Unlock()
	n.log.Info("identified to the primary master", "master", link.RemoteAddr().String(), "nid", acc.YourNID)
	return nil
}

// stopOperation leaves the operational state: pending transactions are
// forgotten (what was voted stays on disk for verification) and client
// and storage links are closed.
func (n *Node) stopOperation() {
	n.mu.Lock()
	tm := n.mu.tm
	n.mu.tm = nil
	n.mu.operational = false
	n.mu.Unlock()
	if tm != nil {
		tm.close()
	}
	n.closeLinks()
}

func (n *Node) closeLinks() {
	n.mu.Lock()
	links := make([]*neonet.Link, 0, len(n.mu.links))
	for l := range n.mu.links {
		links = append(links, l)
	}
	n.mu.Unlock()
	for _, l := range links {
		l.Close()
	}
}

// startOperation enters the operational state (StartOperation): unfinished
// data that verification did not validate is dropped and a new transaction
// manager serves clients.
func (n *Node) startOperation(ctx context.Context) error {
	start := time.Now()
	n.wmu.Lock()
	err := n.db.DropUnfinishedData(ctx)
	n.wmu.Unlock()
	dropped := time.Since(start)
	if err != nil {
		return fmt.Errorf("storage: drop unfinished data: %w", err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.pt == nil {
		return fmt.Errorf("%w: StartOperation without partition table", proto.ErrProtocol)
	}
	if n.mu.tm != nil {
		return nil
	}
	np := uint64(n.mu.pt.np())
	n.mu.tm = newTxnManager(txnConfig{
		DB:        newTxnStore(ctx, n.db, &n.wmu),
		Log:       n.log,
		Partition: func(oid proto.Oid) uint32 { return uint32(uint64(oid) % np) },
		Readable: func(p uint32) bool {
			n.mu.Lock()
			defer n.mu.Unlock()
			return n.mu.pt != nil && n.mu.pt.readable(p, n.mu.nid)
		},
		NotifyDeadlock: n.notifyDeadlock,
		Conflicts:      &n.stats.conflicts,
	})
	n.mu.operational = true
	close(n.mu.notifyCh) // wakes the identifications waiting for it
	n.mu.notifyCh = make(chan struct{})
	n.log.Info("operational", "drop_unfinished", dropped.Round(10*time.Microsecond))
	return nil
}

// notifyDeadlock sends NotifyDeadlock to the client link of nid. It is a
// callback of the transaction manager: it must not block.
func (n *Node) notifyDeadlock(client proto.NodeID, ttid proto.Tid, oid proto.Oid) {
	n.stats.deadlocks.Add(1)
	n.mu.Lock()
	var link *neonet.Link
	for l, id := range n.mu.links {
		// A client that reconnected may still have its old link here.
		if id == client && l.Err() == nil {
			link = l
		}
	}
	n.mu.Unlock()
	if link == nil {
		n.log.Info("no link to notify deadlock", "client", client, "ttid", ttid, "oid", oid)
		return
	}
	if err := link.Post(&proto.NotifyDeadlock{LockingTid: ttid, Oid: oid}); err != nil {
		n.log.Info("notify deadlock", "client", client, "err", err)
	}
}

// txnManager returns the current transaction manager, nil when not
// operational.
func (n *Node) txnManager() *txnManager {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.mu.tm
}
