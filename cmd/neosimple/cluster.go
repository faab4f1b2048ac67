package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/neogo/neo/admin"
	"github.com/neogo/neo/ctl"
	"github.com/neogo/neo/master"
	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage"
	"github.com/neogo/neo/storage/backend"
	_ "github.com/neogo/neo/storage/backend/sqlite"
)

// pollInterval is how often the cluster state is asked while waiting.
const pollInterval = 100 * time.Millisecond

// envFile is written in the cluster directory once the cluster is RUNNING.
const envFile = "cluster.env"

// role is one node running in this process.
type role struct {
	name   string
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned
	err    error         // Run's result, set before done is closed
	log    *os.File
}

// roleExit reports a node whose Run returned.
type roleExit struct {
	name string
	err  error
}

// cluster is the set of nodes of one neosimple run.
type cluster struct {
	o      *options
	out    io.Writer // progress messages
	roles  []*role   // master first
	exited chan roleExit

	master proto.Addr
	admin  proto.Addr
}

func newCluster(o *options, out io.Writer) *cluster {
	return &cluster{o: o, out: out, exited: make(chan roleExit, o.storages+2)}
}

// logger opens DIR/name.log for a node.
func (c *cluster) logger(name string) (*slog.Logger, *os.File, error) {
	path := filepath.Join(c.o.dir, name+".log")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("open log of %s: %w", name, err)
	}
	level := slog.LevelInfo
	if c.o.debug {
		level = slog.LevelDebug
	}
	l := slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: level}))
	return l.With("node", name, "cluster", c.o.cluster), f, nil
}

// spawn runs fn in a goroutine as node name; fn's context is canceled by
// the role's cancel, or by ctx.
func (c *cluster) spawn(ctx context.Context, name string, logf *os.File, fn func(context.Context) error) *role {
	ctx, cancel := context.WithCancel(ctx)
	r := &role{name: name, cancel: cancel, done: make(chan struct{}), log: logf}
	c.roles = append(c.roles, r)
	go func() {
		err := fn(ctx)
		r.err = err
		close(r.done)
		c.exited <- roleExit{name, err}
	}()
	return r
}

// start starts the master, the storages and the admin, and waits until
// the cluster is RUNNING. On error, the caller cancels ctx and calls wait.
func (c *cluster) start(ctx context.Context) error {
	os.Remove(filepath.Join(c.o.dir, envFile))
	if err := c.checkPort("master", "--master-port", c.o.masterPort); err != nil {
		return err
	}
	if err := c.checkPort("admin", "--admin-port", c.o.adminPort); err != nil {
		return err
	}

	mlog, mf, err := c.logger("master")
	if err != nil {
		return err
	}
	srv, err := master.NewServer(master.Config{
		Cluster:    c.o.cluster,
		Bind:       proto.Addr{Host: c.o.host, Port: uint16(c.o.masterPort)},
		Partitions: c.o.partitions,
		Replicas:   c.o.replicas,
		Autostart:  c.o.storages,
		Logger:     mlog,
	})
	if err != nil {
		mf.Close()
		return fmt.Errorf("master: %w", err)
	}
	mr := c.spawn(ctx, "master", mf, srv.Run)
	if c.master, err = c.waitAddr(ctx, mr, srv.Addr); err != nil {
		return c.portError("master", "--master-port", c.o.masterPort, err)
	}
	fmt.Fprintf(c.out, "neosimple: master listening on %s\n", c.master)

	for i := range c.o.storages {
		if err := c.startStorage(ctx, i); err != nil {
			return err
		}
	}

	alog, af, err := c.logger("admin")
	if err != nil {
		return err
	}
	adm, err := admin.NewNode(admin.Config{
		Cluster: c.o.cluster,
		Masters: []proto.Addr{c.master},
		Bind:    proto.Addr{Host: c.o.host, Port: uint16(c.o.adminPort)},
		Logger:  alog,
	})
	if err != nil {
		af.Close()
		return fmt.Errorf("admin: %w", err)
	}
	ar := c.spawn(ctx, "admin", af, adm.Run)
	select {
	case <-adm.Ready():
		c.admin = adm.Addr()
	case <-ar.done:
		return c.portError("admin", "--admin-port", c.o.adminPort, ar.err)
	case <-ctx.Done():
		return ctx.Err()
	}
	fmt.Fprintf(c.out, "neosimple: admin listening on %s\n", c.admin)
	return c.waitRunning(ctx)
}

// startStorage opens DIR/storage_i.sqlite and runs a storage node on it.
func (c *cluster) startStorage(ctx context.Context, i int) error {
	name := fmt.Sprintf("storage_%d", i)
	log, f, err := c.logger(name)
	if err != nil {
		return err
	}
	path := filepath.Join(c.o.dir, name+".sqlite")
	db, err := backend.Open(ctx, path, backend.Options{Logger: log})
	if err != nil {
		f.Close()
		if errors.Is(err, backend.ErrLocked) {
			return fmt.Errorf("%s: database %s is in use by another process (another neosimple on %s?)", name, path, c.o.dir)
		}
		return fmt.Errorf("%s: open database %s: %w", name, path, err)
	}
	node, err := storage.New(storage.Config{
		Cluster: c.o.cluster,
		Masters: []string{c.master.String()},
		Bind:    net.JoinHostPort(c.o.host, "0"),
		Backend: db,
		Logger:  log,
	})
	if err != nil {
		db.Close()
		f.Close()
		return fmt.Errorf("%s: %w", name, err)
	}
	c.spawn(ctx, name, f, node.Run)
	return nil
}

// waitAddr waits for a node to listen, or to fail.
func (c *cluster) waitAddr(ctx context.Context, r *role, addr func(context.Context) (proto.Addr, error)) (proto.Addr, error) {
	actx, cancel := context.WithCancel(ctx)
	var watch sync.WaitGroup
	defer watch.Wait() // after cancel, deferred below, ends the watcher
	defer cancel()
	// A node that exits before listening would leave addr waiting.
	watch.Go(func() {
		select {
		case <-r.done:
			cancel()
		case <-actx.Done():
		}
	})
	a, err := addr(actx)
	if err != nil {
		select {
		case <-r.done:
			if r.err != nil {
				return a, r.err
			}
			return a, errors.New("exited before listening")
		default:
		}
		return a, err
	}
	return a, nil
}

// checkPort tells early and clearly that a fixed port is taken.
func (c *cluster) checkPort(what, flag string, port int) error {
	if port == 0 {
		return nil
	}
	l, err := net.Listen("tcp", net.JoinHostPort(c.o.host, strconv.Itoa(port)))
	if err != nil {
		return c.portError(what, flag, port, err)
	}
	l.Close()
	return nil
}

// portError rewords a listening failure of a node.
func (c *cluster) portError(what, flag string, port int, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use") {
		return fmt.Errorf("%s: port %d of %s is already in use: choose another %s, or 0 for a free port", what, port, c.o.host, flag)
	}
	if errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EACCES) {
		return fmt.Errorf("%s: cannot listen on %s port %d (%s): %w", what, c.o.host, port, flag, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// waitRunning polls the admin until the cluster is RUNNING, a node exits,
// or the start timeout passes.
func (c *cluster) waitRunning(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.o.startTimeout)
	defer cancel()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	var last string
	for {
		state, err := c.clusterState(ctx)
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
		case ex := <-c.exited:
			c.exited <- ex // keep it for whoever waits next
			return fmt.Errorf("%s exited while the cluster was starting: %v", ex.name, ex.err)
		case <-ctx.Done():
			return fmt.Errorf("cluster not RUNNING after %v (last: %s); see the logs in %s", c.o.startTimeout, last, c.o.dir)
		}
	}
}

// clusterState asks the admin for the cluster state.
func (c *cluster) clusterState(ctx context.Context) (proto.ClusterState, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cl, err := ctl.Dial(ctx, ctl.Config{Addr: c.admin.String()})
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

// announce prints the addresses and writes DIR/cluster.env.
func (c *cluster) announce(w io.Writer) {
	o := c.o
	fmt.Fprintf(w, "cluster %s RUNNING: %d storage(s), %d replica(s), %d partitions; data and logs in %s\n",
		o.cluster, o.storages, o.replicas, o.partitions, o.dir)
	fmt.Fprintf(w, "  master  %s\n", c.master)
	fmt.Fprintf(w, "  admin   %s\n", c.admin)
	fmt.Fprintf(w, "ZODB (neoppod's client):\n")
	fmt.Fprintf(w, "  from neo.client.Storage import Storage; import ZODB\n")
	fmt.Fprintf(w, "  db = ZODB.DB(Storage(master_nodes=%q, name=%q))\n", c.master.String(), o.cluster)
	fmt.Fprintf(w, "neoctl:\n  neoctl -a %s print node\n", c.admin)
	fmt.Fprintf(w, "Ctrl-C stops the cluster.\n")
	env := fmt.Sprintf("NEO_MASTERS=%s\nNEO_CLUSTER=%s\nNEO_ADMIN=%s\n", c.master, o.cluster, c.admin)
	path := filepath.Join(o.dir, envFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(env), 0o644); err != nil {
		fmt.Fprintf(c.out, "neosimple: write %s: %v\n", tmp, err)
		return
	}
	if err := os.Rename(tmp, path); err != nil {
		fmt.Fprintf(c.out, "neosimple: write %s: %v\n", path, err)
	}
}

// stop shuts the cluster down the clean way: STOPPING through the admin
// (if ask; else someone else asked it), then waits for every node to
// exit. If STOPPING cannot be asked, the master is stopped first so that
// no storage is marked out of date, then the others.
func (c *cluster) stop(ctx context.Context, ask bool) error {
	os.Remove(filepath.Join(c.o.dir, envFile))
	if ask {
		if err := c.askStopping(ctx); err != nil {
			fmt.Fprintf(c.out, "neosimple: cannot set the cluster STOPPING (%v): stopping the master first\n", err)
			c.roles[0].cancel()
		}
	}
	mr := c.roles[0]
	select {
	case <-mr.done:
	case <-ctx.Done():
		return fmt.Errorf("master still running: %w", ctx.Err())
	}
	if mr.err != nil && !errors.Is(mr.err, context.Canceled) {
		fmt.Fprintf(c.out, "neosimple: master: %v\n", mr.err)
	}
	// The master told the storages to exit before it did; the admin
	// exits once it has lost a master that was STOPPING.
	var errs []error
	for _, r := range c.roles[1:] {
		select {
		case <-r.done:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("%s still running: %w", r.name, ctx.Err()))
			continue
		}
		if !expectedExit(r.err) {
			errs = append(errs, fmt.Errorf("%s: %w", r.name, r.err))
		}
	}
	c.closeLogs()
	return errors.Join(errs...)
}

// askStopping sets the cluster STOPPING through the admin.
func (c *cluster) askStopping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cl, err := ctl.Dial(ctx, ctl.Config{Addr: c.admin.String()})
	if err != nil {
		return err
	}
	defer cl.Close()
	_, err = cl.SetClusterState(ctx, proto.STOPPING)
	if errors.Is(err, ctl.ErrConnectionClosed) {
		// The admin exits as soon as the cluster is STOPPING, often
		// before its answer is sent: the request went through.
		return nil
	}
	return err
}

func expectedExit(err error) bool {
	return err == nil || errors.Is(err, context.Canceled) || errors.Is(err, storage.ErrShutdown) ||
		errors.Is(err, admin.ErrStopped) || errors.Is(err, master.ErrServerClosed)
}

// wait cancels every node still running (master first) and waits for
// all of them; it is the abrupt stop.
func (c *cluster) wait(ctx context.Context) {
	for _, r := range c.roles {
		r.cancel()
		select {
		case <-r.done:
		case <-ctx.Done():
		}
	}
	c.closeLogs()
}

func (c *cluster) closeLogs() {
	for _, r := range c.roles {
		select {
		case <-r.done:
			if r.log != nil {
				r.log.Close()
				r.log = nil
			}
		default:
		}
	}
}
