// Package neotest starts in-process NEO clusters for tests: masters,
// SQLite storages in t.TempDir and, if asked, an admin, on loopback ports
// chosen by the system, all stopped by t.Cleanup.
//
//	c := neotest.Start(t, neotest.Options{Storages: 2, Replicas: 1, Partitions: 4})
//	cl := c.Open(t, client.Config{})         // a client of the cluster
//	c.Stop(neotest.Master(0))                // a node stops...
//	c.Restart(neotest.Master(0))             // ...and comes back on its address
//
// It is a thin layer over internal/inproc, the cluster that cmd/neosimple
// runs for users: the same code starts the nodes in both. Errors become
// test failures, waits are bounded ([StartTimeout], [StopTimeout]), and
// nodes log to stderr when NEO_TEST_LOG is set.
//
// The nodes talk over real sockets, so the tests run on the real clock:
// testing/synctest cannot drive them (a goroutine waiting on a socket is
// not durably blocked). Tests order events with hooks and channels, and
// poll only with a deadline.
package neotest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/neogo/neo/admin"
	"github.com/neogo/neo/client"
	"github.com/neogo/neo/ctl"
	"github.com/neogo/neo/internal/inproc"
	"github.com/neogo/neo/internal/nodehttp"
	"github.com/neogo/neo/internal/nodelog"
	"github.com/neogo/neo/internal/testca"
	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

// Bounds of the waits of a test cluster.
const (
	StartTimeout = 30 * time.Second // every node listening, RUNNING, a client connected
	StopTimeout  = 10 * time.Second // a node's Run returning after it was stopped
)

// Options shape a test cluster. The zero value is one master, one
// storage, one partition, no replica, no admin.
type Options struct {
	// Masters and Storages count the nodes; 0 means 1.
	Masters, Storages int
	// Replicas and Partitions shape the new database; 0 partitions
	// means 1.
	Replicas, Partitions int
	// Admin adds an admin node; Start then waits for the cluster to be
	// RUNNING.
	Admin bool
	// TLS, if set, secures every link, the clients' of [Cluster.Open]
	// and [Cluster.Ctl] too.
	TLS *neonet.TLSConfig
	// CacheSize puts each storage's backend behind an object cache of
	// that many bytes (objcache.Wrap); 0: no cache.
	CacheSize int64
	// HTTP, if set, gives the nodes their HTTP side (inproc.Config.HTTP).
	HTTP func(node string) *nodehttp.Handler
	// Log, if set, gives the nodes a log file (inproc.Config.Log).
	Log func(node string) *nodelog.Log
	// Upstream, if set, makes the cluster a backup of that one
	// (cluster.md §8.9), started in backup mode; Start does not wait
	// for it to be RUNNING then.
	Upstream *Cluster
	// Name is the cluster's name; "" picks a new one.
	Name string
	// MonitorBackups are the backup clusters the admin monitors
	// (neoadmin --monitor-backup).
	MonitorBackups []string
}

// NewName returns a cluster name no other cluster of the process has:
// to name a backup cluster before its upstream, which monitors it,
// starts.
func NewName() string { return fmt.Sprintf("neotest%d", clusters.Add(1)) }

// Node names, for [Cluster.Stop] and [Cluster.Restart].
const Admin = inproc.AdminName

// Master is the name of master i (0-based).
func Master(i int) string { return inproc.MasterName(i) }

// Storage is the name of storage i (0-based).
func Storage(i int) string { return inproc.StorageName(i) }

// Cluster is a cluster started by [Start]. Its methods may be called from
// any goroutine of the test.
type Cluster struct {
	tb  testing.TB
	c   *inproc.Cluster
	tls *neonet.TLSConfig
}

// clusters numbers the clusters of this process, for their names.
var clusters atomic.Int64

// Start starts a cluster and stops it at the end of the test. It returns
// once every node listens and, with an admin, the cluster is RUNNING.
func Start(tb testing.TB, o Options) *Cluster {
	tb.Helper()
	if o.Storages == 0 {
		o.Storages = 1
	}
	if o.Partitions == 0 {
		o.Partitions = 1
	}
	var upName string
	var upMasters []string
	if o.Upstream != nil {
		upName, upMasters = o.Upstream.Name(), o.Upstream.Masters()
	}
	if o.Name == "" {
		o.Name = NewName()
	}
	ic, err := inproc.New(inproc.Config{
		Name:            o.Name,
		Dir:             tb.TempDir(),
		Masters:         o.Masters,
		Storages:        o.Storages,
		Replicas:        o.Replicas,
		Partitions:      o.Partitions,
		Admin:           o.Admin,
		TLS:             o.TLS,
		CacheSize:       o.CacheSize,
		HTTP:            o.HTTP,
		Log:             o.Log,
		UpstreamCluster: upName,
		UpstreamMasters: upMasters,
		AdminMonitor:    admin.MonitorConfig{Backups: o.MonitorBackups},
		Logger:          func(node string) (*slog.Logger, error) { return Logger().With("node", node), nil },
	})
	if err != nil {
		tb.Fatal(err)
	}
	c := &Cluster{tb: tb, c: ic, tls: o.TLS}
	tb.Cleanup(c.close)
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	if err := ic.Start(ctx); err != nil {
		tb.Fatalf("start cluster: %v", err)
	}
	if o.Admin && o.Upstream == nil {
		if err := ic.WaitRunning(ctx); err != nil {
			tb.Fatal(err)
		}
	}
	return c
}

// Logger returns the logger of test nodes and clients: stderr at debug
// level if NEO_TEST_LOG is set, else nothing.
func Logger() *slog.Logger {
	if os.Getenv("NEO_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// close stops every node; nodes that ended on their own are logged.
func (c *Cluster) close() {
	ctx, cancel := context.WithTimeout(context.Background(), StopTimeout)
	defer cancel()
	if err := c.c.Close(ctx); err != nil {
		c.tb.Errorf("stop cluster: %v", err)
	}
	for _, ex := range c.c.Exits() {
		c.tb.Logf("node %s exited: %v", ex.Node, ex.Err)
	}
}

// Name is the cluster name.
func (c *Cluster) Name() string { return c.c.Name() }

// Masters are the masters' "host:port".
func (c *Cluster) Masters() []string { return c.c.Masters() }

// MasterAddr is the first master's "host:port".
func (c *Cluster) MasterAddr() string { return c.c.Masters()[0] }

// Addr is where node listens.
func (c *Cluster) Addr(node string) proto.Addr { return c.c.Addr(node) }

// AdminAddr is the admin's "host:port", for neoctl.
func (c *Cluster) AdminAddr() string { return c.c.Addr(Admin).String() }

// DBPath is the SQLite database of storage i.
func (c *Cluster) DBPath(i int) string { return c.c.DBPath(i) }

// Backend is the backend storage i runs on (its last run's).
func (c *Cluster) Backend(i int) backend.Backend { return c.c.Backend(i) }

// Stop stops node and waits until it ended. A failure is reported with
// Errorf, so Stop may be called from another goroutine than the test's.
func (c *Cluster) Stop(node string) {
	c.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), StopTimeout)
	defer cancel()
	if err := c.c.Stop(ctx, node); err != nil {
		c.tb.Errorf("stop: %v", err)
	}
}

// Restart starts again a node that was stopped, and waits until it
// listens; it fails the test if it cannot.
func (c *Cluster) Restart(node string) {
	c.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	if err := c.c.Restart(ctx, node); err != nil {
		c.tb.Fatalf("restart: %v", err)
	}
}

// Open connects a client to the cluster, closed at the end of tb. The
// fields of cfg left zero are the cluster's: Masters, Cluster, TLS, and
// Logger.
func (c *Cluster) Open(tb testing.TB, cfg client.Config) *client.Client {
	tb.Helper()
	if cfg.Masters == nil {
		cfg.Masters = c.Masters()
	}
	if cfg.Cluster == "" {
		cfg.Cluster = c.Name()
	}
	if cfg.TLS == nil {
		cfg.TLS = c.tls
	}
	if cfg.Logger == nil {
		cfg.Logger = Logger().With("node", "client")
	}
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	cl, err := client.Open(ctx, cfg)
	if err != nil {
		tb.Fatalf("open client: %v", err)
	}
	tb.Cleanup(func() { cl.Close() })
	return cl
}

// Ctl connects to the admin as neoctl does; the connection is closed at
// the end of tb.
func (c *Cluster) Ctl(tb testing.TB) *ctl.Client {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	cl, err := c.c.Ctl(ctx)
	if err != nil {
		tb.Fatalf("connect to the admin: %v", err)
	}
	tb.Cleanup(func() { cl.Close() })
	return cl
}

// Commit stores data as the revision of oid after serial, in one
// transaction of cl, and returns its tid.
func Commit(ctx context.Context, cl *client.Client, oid proto.Oid, serial proto.Tid, data []byte) (proto.Tid, error) {
	txn, err := cl.Begin(ctx)
	if err != nil {
		return 0, err
	}
	if err := txn.Store(ctx, oid, serial, data); err != nil {
		txn.Abort(ctx)
		return 0, err
	}
	return VoteAndFinish(ctx, txn)
}

// VoteAndFinish ends txn: votes, then finishes it and returns its tid,
// or aborts it when the vote fails.
func VoteAndFinish(ctx context.Context, txn *client.Txn) (proto.Tid, error) {
	if err := txn.Vote(ctx); err != nil {
		txn.Abort(ctx)
		return 0, err
	}
	return txn.Finish(ctx)
}

// NodeTLS is the TLS setup of a node holding a certificate that ca issues
// for name, loaded as a node loads its --ca, --cert and --key files.
func NodeTLS(tb testing.TB, ca *testca.CA, name string) *neonet.TLSConfig {
	tb.Helper()
	caFile, certFile, keyFile := ca.Files(tb, name)
	c, err := neonet.LoadTLS(caFile, certFile, keyFile)
	if err != nil {
		tb.Fatalf("TLS of %s: %v", name, err)
	}
	return c
}
