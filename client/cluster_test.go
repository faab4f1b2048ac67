package client_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/neogo/neo/client"
	"github.com/neogo/neo/master"
	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage"
	"github.com/neogo/neo/storage/backend"
	"github.com/neogo/neo/storage/backend/objcache"
	_ "github.com/neogo/neo/storage/backend/sqlite"
)

// Bounds of the waits of these tests.
const (
	startTimeout = 30 * time.Second // cluster up and a client connected
	opTimeout    = 30 * time.Second // one test's client operations
	stopTimeout  = 10 * time.Second // nodes' Run returning
)

// testCluster is a master and storages in this process, on loopback
// ports chosen by the system, with SQLite databases in a test directory.
type testCluster struct {
	tb         testing.TB
	name       string
	master     string // host:port
	dbPaths    []string
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	mu         sync.Mutex
	errs       []error
	storages   []*storage.Node
	backends   []backend.Backend // the storages' backends, as given to them
	stopStor   []func()          // stop storage i alone
	mcfg       master.Config
	stopMaster func()
	tls        *neonet.TLSConfig
}

// testLogger returns a logger for the nodes: silent unless NEO_TEST_LOG
// is set.
func testLogger() *slog.Logger {
	if os.Getenv("NEO_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// startCluster starts a master (np partitions, nr replicas, autostart
// with n storages) and n storages, stopped at the end of the test.
func startCluster(tb testing.TB, n, nr, np int) *testCluster {
	tb.Helper()
	return startClusterTLS(tb, n, nr, np, nil)
}

// startClusterTLS is startCluster with every node, and the clients
// opened by c.open, using tls (nil: plain TCP).
func startClusterTLS(tb testing.TB, n, nr, np int, tls *neonet.TLSConfig) *testCluster {
	tb.Helper()
	return startClusterWith(tb, n, nr, np, tls, 0)
}

// startClusterWith is startClusterTLS with each storage's backend behind
// an object cache of cacheSize bytes (objcache.Wrap, as neostorage does;
// 0: no cache).
func startClusterWith(tb testing.TB, n, nr, np int, tls *neonet.TLSConfig, cacheSize int64) *testCluster {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &testCluster{tb: tb, name: "t" + fmt.Sprint(time.Now().UnixNano()%1e6), cancel: cancel, tls: tls}
	tb.Cleanup(c.stop)
	log := testLogger()
	c.mcfg = master.Config{
		Cluster: c.name, Bind: proto.Addr{Host: "127.0.0.1"}, Partitions: np, Replicas: nr,
		Autostart: n, Logger: log.With("node", "master"), TLS: tls,
	}
	c.startMaster()
	dir := tb.TempDir()
	for i := range n {
		path := filepath.Join(dir, fmt.Sprintf("s%d.sqlite", i))
		c.dbPaths = append(c.dbPaths, path)
		db, err := backend.Open(ctx, path, backend.Options{Logger: log})
		if err != nil {
			tb.Fatal(err)
		}
		db = objcache.Wrap(db, cacheSize)
		c.backends = append(c.backends, db)
		node, err := storage.New(storage.Config{
			Cluster: c.name, Masters: []string{c.master}, Bind: "127.0.0.1:0", Backend: db, TLS: tls,
			Logger: log.With("node", fmt.Sprintf("s%d", i)),
		})
		if err != nil {
			tb.Fatal(err)
		}
		c.storages = append(c.storages, node)
		c.stopStor = append(c.stopStor, c.spawn(fmt.Sprintf("storage %d", i), node.Run))
	}
	return c
}

// startMaster starts the master, on the address of the previous one if
// there was one.
func (c *testCluster) startMaster() {
	c.tb.Helper()
	cfg := c.mcfg
	if c.master != "" {
		addr, err := master.ParseAddr(c.master, 0)
		if err != nil {
			c.tb.Fatal(err)
		}
		cfg.Bind = addr
	}
	srv, err := master.NewServer(cfg)
	if err != nil {
		c.tb.Fatal(err)
	}
	c.stopMaster = c.spawn("master", srv.Run)
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	addr, err := srv.Addr(ctx)
	if err != nil {
		c.tb.Fatalf("master address: %v", err)
	}
	c.master = addr.String()
}

// spawn runs a node until the cluster stops; the returned function
// stops it alone and waits for its end.
func (c *testCluster) spawn(name string, run func(context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	prev := c.cancel
	c.cancel = func() { prev(); cancel() }
	done := make(chan struct{})
	c.wg.Go(func() {
		defer close(done)
		err := run(ctx)
		if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, master.ErrServerClosed) {
			c.mu.Lock()
			c.errs = append(c.errs, fmt.Errorf("%s: %w", name, err))
			c.mu.Unlock()
		}
	})
	return func() {
		cancel()
		select {
		case <-done:
		case <-time.After(stopTimeout):
			c.tb.Fatalf("%s still running %v after cancel", name, stopTimeout)
		}
	}
}

func (c *testCluster) stop() {
	c.cancel()
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(stopTimeout):
		c.tb.Errorf("cluster nodes still running %v after cancel", stopTimeout)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, err := range c.errs {
		c.tb.Logf("node exited: %v", err)
	}
}

// open connects a client to the cluster.
func (c *testCluster) open(tb testing.TB, readOnly bool) *client.Client {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	cl, err := client.Open(ctx, client.Config{Masters: []string{c.master}, Cluster: c.name,
		ReadOnly: readOnly, TLS: c.tls, Logger: testLogger().With("node", "client")})
	if err != nil {
		tb.Fatalf("open client: %v", err)
	}
	tb.Cleanup(func() { cl.Close() })
	return cl
}

// commitOne stores data as the revision of oid after serial, in one
// transaction, and returns its tid.
func commitOne(ctx context.Context, cl *client.Client, oid proto.Oid, serial proto.Tid, data []byte) (proto.Tid, error) {
	txn, err := cl.Begin(ctx)
	if err != nil {
		return 0, err
	}
	if err := txn.Store(ctx, oid, serial, data); err != nil {
		txn.Abort(ctx)
		return 0, err
	}
	if err := txn.Vote(ctx); err != nil {
		txn.Abort(ctx)
		return 0, err
	}
	return txn.Finish(ctx)
}
