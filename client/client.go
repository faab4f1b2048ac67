package client

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
	"github.com/neogo/neo/nodetab"
	"github.com/neogo/neo/parttab"
	"github.com/neogo/neo/proto"
)

// Config configures a [Client].
type Config struct {
	// Masters are the master addresses ("host:port"); at least one. The
	// client also tries the masters it learns about from the primary.
	Masters []string
	// Cluster is the cluster name (required).
	Cluster string
	// TLS, if set, secures every link; every node of the cluster must
	// use TLS too.
	TLS *neonet.TLSConfig
	// Logger receives the client's log; nil discards it.
	Logger *slog.Logger
	// ReadOnly makes a read-only client: the master is told so, and
	// [Client.Begin] and [Client.NewOID] fail with [ErrReadOnly].
	ReadOnly bool
}

// Validate checks the configuration and names the faulty field.
func (c *Config) Validate() error {
	switch {
	case c.Cluster == "":
		return fmt.Errorf("%w: Cluster: the cluster name is required", ErrConfig)
	case len(c.Masters) == 0:
		return fmt.Errorf("%w: Masters: at least one master address is required", ErrConfig)
	}
	for _, m := range c.Masters {
		if _, _, err := net.SplitHostPort(m); err != nil {
			return fmt.Errorf("%w: Masters: %q: %v", ErrConfig, m, err)
		}
	}
	return nil
}

// Errors of the client. Errors coming from a node's Error packet are
// *proto.Error values, to be tested with errors.Is against the proto
// sentinels (proto.ErrOidNotFound, proto.ErrOidDoesNotExist...).
var (
	// ErrConfig is matched by configuration errors.
	ErrConfig = errors.New("client: invalid configuration")
	// ErrClosed is returned by operations on a closed client.
	ErrClosed = errors.New("client: closed")
	// ErrMasterLost is matched by the errors of a transaction whose
	// connection to the primary master broke before it was finished
	// (the master aborts such transactions), and of Finish when the
	// transaction is known not to have committed; also of a read that
	// lost the partition table (cluster.md §7.2, neoppod's
	// NEOPrimaryMasterLost, a retryable read conflict). The client
	// reconnects by itself: begin a new transaction, or read again.
	ErrMasterLost = errors.New("client: connection to the primary master lost")
	// ErrReadOnly: a write on a read-only client.
	ErrReadOnly = errors.New("client: read-only client")
	// ErrChecksum is matched by a *ChecksumError.
	ErrChecksum = errors.New("client: wrong checksum")
	// ErrNoStorage: no storage node could serve a request; reads give
	// a *NoStorageError.
	ErrNoStorage = errors.New("client: no storage available")
	// ErrTxnDone: an operation on a transaction already finished or
	// aborted, or out of order (Store after Vote...).
	ErrTxnDone = errors.New("client: transaction not in a state for this operation")
)

// ChecksumError reports data whose SHA-1 does not match the checksum that
// came with it, from every readable cell asked.
type ChecksumError struct {
	Oid    proto.Oid
	Serial proto.Tid
	Node   proto.NodeID // the last storage that sent bad data
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("client: wrong checksum of oid %v serial %v from %v", e.Oid, e.Serial, e.Node)
}

// Is makes errors.Is(err, ErrChecksum) work.
func (e *ChecksumError) Is(target error) bool { return target == ErrChecksum }

// Bounds of the client's own waits and pauses.
const (
	// reconnectDelay is the least time between two attempts on one
	// master; the pause grows by half at each attempt, up to
	// maxReconnectDelay.
	reconnectDelay    = 50 * time.Millisecond
	maxReconnectDelay = time.Second
	// failureMemory is how long a storage that failed sorts after the
	// others when choosing a cell to read (cluster.md §7.2: 600 s).
	failureMemory = 600 * time.Second
	// oidBatch is how many oids are asked of the master at once.
	oidBatch = 100
)

// Client is a connection to a NEO cluster: the ZODB storage operations
// (loads, two-phase commit, invalidations) over the wire protocol.
// It is safe for concurrent use.
//
// Goroutines: run owns the master connection (connects, waits for its
// loss, reconnects); each master or storage link calls its handler on its
// reader goroutine. Shared state is in mu. Lock order: Txn.mu before
// Client.mu.
type Client struct {
	cfg  Config
	log  *slog.Logger
	ncfg neonet.Config // for storage links

	// ctx is the client's run context, canceled by Close: it bounds
	// the reconnections and the background work.
	ctx       context.Context
	cancel    context.CancelFunc
	closeOnce sync.Once
	wg        sync.WaitGroup // run, storage relock calls

	// testHookAnswer, if set, sees every object answer before it is
	// checked (tests corrupt it).
	testHookAnswer func(*proto.AnswerObject)

	mu struct {
		sync.Mutex
		nid    proto.NodeID // ours, kept across reconnections
		master *masterConn  // the current master connection; nil while disconnected
		ready  chan struct{}
		known  []string // masters learnt from the primary
		// lastTid is the tid of the last invalidation published to the
		// watchers; readTid the greatest tid known committed, which loads
		// of current revisions read up to: ahead of lastTid while
		// invalidations are held for the watchers' tid order.
		lastTid, readTid proto.Tid
		// connected is set at the first connection to a master.
		connected bool
		// stopped is set when the master told that the cluster left
		// operation (StopOperation), until the next connection: reads
		// then fail at once instead of waiting for the master.
		stopped bool
		hooks   testHooks
		// finishing counts the transactions waiting for their
		// AnswerTransactionFinished; invalidations are held meanwhile
		// so that events go out in tid order (see emitLocked).
		finishing int
		held      []Invalidation
		storages  map[proto.NodeID]*storageConn
		failed    map[proto.NodeID]time.Time // when the node last failed
		oids      []proto.Oid
		txns      map[proto.Tid]*Txn // by ttid, for NotifyDeadlock
		watchers  map[*watcher]struct{}
		closed    bool
		// refused is why the master refused us for good (a read-write
		// client of a backup cluster): every wait for it fails so.
		refused error
	}
}

// testHooks let tests step in at points of the client's work; every
// hook is nil outside tests.
type testHooks struct {
	// storageAddr rewrites the address dialed to reach a storage
	// (tests cut the client off its storages).
	storageAddr func(nid proto.NodeID, addr string) string
	// finishSent runs once AskFinishTransaction is queued on the
	// master link.
	finishSent func(*neonet.Link)
	// reconnect runs before each connection to a master after a loss.
	reconnect func()
	// finalTID sees the answers to AskFinalTID, by "master" or "storage".
	finalTID func(node string, tid proto.Tid)
	// deadlock sees every NotifyDeadlock received.
	deadlock func(ttid proto.Tid, oid proto.Oid)
}

func (c *Client) hooks() testHooks {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.hooks
}

// Open connects to the cluster: it finds the primary master, identifies
// as a client and waits until the cluster is operational (ctx bounds the
// wait). The client then keeps its connection by itself until [Client.Close].
func Open(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("role", "client", "cluster", cfg.Cluster)
	c := &Client{cfg: cfg, log: log}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.ncfg = neonet.Config{Logger: log, TLS: cfg.TLS}
	c.mu.ready = make(chan struct{})
	c.mu.storages = map[proto.NodeID]*storageConn{}
	c.mu.failed = map[proto.NodeID]time.Time{}
	c.mu.txns = map[proto.Tid]*Txn{}
	c.mu.watchers = map[*watcher]struct{}{}
	c.wg.Go(c.run)
	if _, err := c.waitMaster(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("client: open cluster %s via %v: %w", cfg.Cluster, cfg.Masters, err)
	}
	return c, nil
}

// Close disconnects from the cluster. Open transactions fail; operations
// waiting for a reconnection return [ErrClosed].
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.cancel()
		c.mu.Lock()
		c.mu.closed = true
		mc := c.mu.master
		links := c.takeStoragesLocked()
		for w := range c.mu.watchers {
			w.close()
		}
		c.mu.Unlock()
		if mc != nil {
			mc.link.Close()
		}
		for _, l := range links {
			l.Close()
		}
	})
	c.wg.Wait()
	return nil
}

// NID returns the node id the primary master gave us (0 before the
// first identification).
func (c *Client) NID() proto.NodeID {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.nid
}

// waitMaster returns the current master connection, waiting for one if
// the client is reconnecting.
func (c *Client) waitMaster(ctx context.Context) (*masterConn, error) {
	for {
		c.mu.Lock()
		mc, ready, closed, refused := c.mu.master, c.mu.ready, c.mu.closed, c.mu.refused
		c.mu.Unlock()
		if refused != nil {
			return nil, refused
		}
		if closed {
			return nil, ErrClosed
		}
		if mc != nil && !mc.lost() {
			return mc, nil
		}
		select {
		case <-ready:
		case <-mc.doneChan():
		case <-c.ctx.Done():
			return nil, ErrClosed
		case <-ctx.Done():
			return nil, fmt.Errorf("client: waiting for the primary master: %w", context.Cause(ctx))
		}
	}
}

// waitMasterForRead is waitMaster for reads: it fails at once, with an
// error matching ErrMasterLost, while the client is disconnected after
// the master said the cluster left operation (cluster.md §7.2: no
// partition table, retry later).
func (c *Client) waitMasterForRead(ctx context.Context) (*masterConn, error) {
	c.mu.Lock()
	mc, stopped := c.mu.master, c.mu.stopped
	c.mu.Unlock()
	if stopped && (mc == nil || mc.lost()) {
		return nil, fmt.Errorf("%w: the cluster left operation", ErrMasterLost)
	}
	return c.waitMaster(ctx)
}

// run keeps a connection to the primary master until Close.
func (c *Client) run() {
	for {
		mc, err := c.connect(c.ctx)
		if err != nil {
			if !errors.Is(err, ErrClosed) {
				c.mu.Lock()
				c.mu.refused = err
				close(c.mu.ready) // wakes the waits
				c.mu.Unlock()
			}
			return
		}
		select {
		case <-mc.link.Done():
		case <-c.ctx.Done():
			mc.link.Close()
		}
		c.masterLost(mc)
		if c.ctx.Err() != nil {
			return
		}
		c.log.Warn("connection to the primary master lost; reconnecting", "master", mc.addr, "err", mc.link.Err())
		if h := c.hooks().reconnect; h != nil {
			h()
		}
	}
}

// masterLost forgets the master connection: the partition table goes
// with it, storage links are closed (the master forgets us, so do the
// storages), unused oids are dropped (cluster.md §6.2).
func (c *Client) masterLost(mc *masterConn) {
	c.mu.Lock()
	if c.mu.master == mc {
		c.mu.master = nil
		c.mu.ready = make(chan struct{})
	}
	c.mu.oids = nil
	links := c.takeStoragesLocked()
	c.mu.Unlock()
	for _, l := range links {
		l.Close()
	}
}

// connect finds the primary master and identifies to it (see
// [masterlink]); a master whose cluster is not operational is passed over
// like one that refuses. It fails only when the client closes.
func (c *Client) connect(ctx context.Context) (*masterConn, error) {
	c.mu.Lock()
	nid := c.mu.nid
	c.mu.Unlock()
	extra := proto.Dict{}
	if c.cfg.ReadOnly {
		extra = proto.Dict{{Key: "read_only", Value: true}}
	}
	var mc *masterConn
	ncfg := c.ncfg
	ncfg.CallerReads = true // as on storage links: begin, finish, new oids wait for their answers
	d := &masterlink.Dialer{
		Masters:  c.masterList,
		Net:      ncfg,
		Delay:    reconnectDelay,
		MaxDelay: maxReconnectDelay,
		Learned:  c.learnMasters,
		// A backup cluster only serves read-only clients (cluster.md
		// §8.9): waiting would not change that.
		Fatal: func(err error) bool { return !c.cfg.ReadOnly && errors.Is(err, proto.ErrReadOnlyAccess) },
		Ready: func(ctx context.Context, link *neonet.Link, acc *proto.AcceptIdentification) (err error) {
			mc, err = c.follow(ctx, link, acc)
			return err
		},
		Logger: c.log,
	}
	_, _, err := d.Dial(ctx, &proto.RequestIdentification{
		NodeType:    proto.CLIENT,
		NID:         nid,
		ClusterName: c.cfg.Cluster,
		Extra:       extra,
	})
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, proto.ErrReadOnlyAccess) {
			return nil, fmt.Errorf("client: %w: the cluster is a backup cluster, it serves read-only clients only", err)
		}
		return nil, ErrClosed
	}
	return mc, nil
}

// masterList returns the configured masters followed by the known ones.
func (c *Client) masterList() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	list := slices.Clone(c.cfg.Masters)
	for _, k := range c.mu.known {
		if !slices.Contains(list, k) {
			list = append(list, k)
		}
	}
	return list
}

func (c *Client) learnMasters(addrs []proto.Addr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.learnMastersLocked(addrs)
}

func (c *Client) learnMastersLocked(addrs []proto.Addr) {
	for _, a := range addrs {
		s := a.String()
		if !a.IsZero() && !slices.Contains(c.cfg.Masters, s) && !slices.Contains(c.mu.known, s) {
			c.mu.known = append(c.mu.known, s)
		}
	}
}

// takeStoragesLocked forgets every storage link and returns them to close.
func (c *Client) takeStoragesLocked() []*neonet.Link {
	var links []*neonet.Link
	for nid, sc := range c.mu.storages {
		if sc.link != nil {
			links = append(links, sc.link)
		}
		delete(c.mu.storages, nid)
	}
	return links
}

// LastTid returns the last committed tid this client knows of: that of
// the last invalidation it processed or of its own last commit. It waits
// for a master connection if there is none.
func (c *Client) LastTid(ctx context.Context) (proto.Tid, error) {
	if _, err := c.waitMaster(ctx); err != nil {
		return 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.readTid, nil
}

// Sync makes every transaction committed before the call visible: it
// is a round trip with the primary master, which sends its invalidations
// before the answer (cluster.md §6.11).
func (c *Client) Sync(ctx context.Context) error {
	for {
		mc, err := c.waitMaster(ctx)
		if err != nil {
			return err
		}
		err = mc.barrier(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || !errors.Is(err, neonet.ErrClosed) {
			return fmt.Errorf("client: sync: %w", err)
		}
	}
}

// NewOID returns a new object id, from batches the master allocates.
func (c *Client) NewOID(ctx context.Context) (proto.Oid, error) {
	if c.cfg.ReadOnly {
		return 0, ErrReadOnly
	}
	for {
		c.mu.Lock()
		if len(c.mu.oids) > 0 {
			oid := c.mu.oids[0]
			c.mu.oids = c.mu.oids[1:]
			c.mu.Unlock()
			return oid, nil
		}
		c.mu.Unlock()
		mc, err := c.waitMaster(ctx)
		if err != nil {
			return 0, err
		}
		var ans proto.AnswerNewOIDs
		if err := mc.link.Ask(ctx, &proto.AskNewOIDs{NumOids: oidBatch}, &ans); err != nil {
			if ctx.Err() == nil && errors.Is(err, neonet.ErrClosed) {
				continue // reconnecting
			}
			return 0, fmt.Errorf("client: new oids: %w", err)
		}
		c.mu.Lock()
		if c.mu.master == mc {
			c.mu.oids = append(c.mu.oids, ans.OidList...)
		}
		c.mu.Unlock()
	}
}

// state returns the partition table and node table of the current master
// connection; callers hold c.mu.
func (c *Client) stateLocked() (*parttab.Table, *nodetab.Table) {
	mc := c.mu.master
	if mc == nil || mc.pt == nil {
		return nil, nil
	}
	return mc.pt, mc.nodes
}
