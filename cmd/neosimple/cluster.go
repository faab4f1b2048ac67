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

	"github.com/neogo/neo/internal/inproc"
	"github.com/neogo/neo/internal/nodehttp"
	"github.com/neogo/neo/storage/backend"
)

// envFile is written in the cluster directory once the cluster is RUNNING.
const envFile = "cluster.env"

// cluster is the cluster of one neosimple run: an [inproc.Cluster] with
// its logs in DIR/NODE.log, and what neosimple tells the user.
type cluster struct {
	*inproc.Cluster
	o   *options
	out io.Writer // progress messages

	mu     sync.Mutex
	logs   []*os.File // open
	logged bool       // some node was given a log

	// The nodes' HTTP side, with --http: handlers by node name, and
	// the URL served once serveHTTP ran.
	nodes    []string
	handlers map[string]*nodehttp.Handler
	httpURL  string
}

func newCluster(o *options, out io.Writer) (*cluster, error) {
	c := &cluster{o: o, out: out}
	ic, err := inproc.New(inproc.Config{
		Name:       o.cluster,
		Dir:        o.dir,
		Host:       o.host,
		MasterPort: o.masterPort,
		Storages:   o.storages,
		Replicas:   o.replicas,
		Partitions: o.partitions,
		Admin:      true,
		AdminPort:  o.adminPort,
		Logger:     c.logger,
		HTTP:       c.nodeHTTP,
	})
	if err != nil {
		return nil, err
	}
	if o.http != "" {
		c.nodes = append(c.nodes, inproc.MasterName(0))
		for i := range o.storages {
			c.nodes = append(c.nodes, inproc.StorageName(i))
		}
		c.nodes = append(c.nodes, inproc.AdminName)
		c.handlers = map[string]*nodehttp.Handler{}
		for _, n := range c.nodes {
			c.handlers[n] = nodehttp.New(nodehttp.Options{})
		}
	}
	c.Cluster = ic
	return c, nil
}

// nodeHTTP returns the HTTP side of a node, nil without --http.
func (c *cluster) nodeHTTP(name string) *nodehttp.Handler { return c.handlers[name] }

// serveHTTP serves the nodes' HTTP side on --http, if given, until ctx
// ends.
func (c *cluster) serveHTTP(ctx context.Context) error {
	if c.o.http == "" {
		return nil
	}
	srv, err := nodehttp.Listen(ctx, c.o.http, nodehttp.ClusterMux(c.nodes, c.handlers), nil)
	if err != nil {
		return err
	}
	c.httpURL = srv.URL()
	return nil
}

// logger opens DIR/name.log for a node.
func (c *cluster) logger(name string) (*slog.Logger, error) {
	path := filepath.Join(c.o.dir, name+".log")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	c.mu.Lock()
	c.logs = append(c.logs, f)
	c.logged = true
	c.mu.Unlock()
	level := slog.LevelInfo
	if c.o.debug {
		level = slog.LevelDebug
	}
	l := slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: level}))
	return l.With("node", name, "cluster", c.o.cluster), nil
}

// closeLogs closes the nodes' logs, once they ended.
func (c *cluster) closeLogs() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.logs {
		f.Close()
	}
	c.logs = nil
}

// start starts the nodes and waits until the cluster is RUNNING. On error,
// the caller stops the nodes with Close.
func (c *cluster) start(ctx context.Context) error {
	os.Remove(filepath.Join(c.o.dir, envFile))
	if err := c.checkPort("master", "--master-port", c.o.masterPort); err != nil {
		return err
	}
	if err := c.checkPort("admin", "--admin-port", c.o.adminPort); err != nil {
		return err
	}
	if err := c.Start(ctx); err != nil {
		return c.startError(err)
	}
	fmt.Fprintf(c.out, "neosimple: master listening on %s\n", c.Masters()[0])
	fmt.Fprintf(c.out, "neosimple: admin listening on %s\n", c.Addr(inproc.AdminName))
	ctx, cancel := context.WithTimeout(ctx, c.o.startTimeout)
	defer cancel()
	if err := c.WaitRunning(ctx); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w; see the logs in %s", err, c.o.dir)
		}
		return err
	}
	return nil
}

// startError rewords the failure of a node to start.
func (c *cluster) startError(err error) error {
	var ne *inproc.NodeError
	if !errors.As(err, &ne) {
		return err
	}
	switch {
	case ne.Node == inproc.MasterName(0):
		return c.portError("master", "--master-port", c.o.masterPort, ne.Err)
	case ne.Node == inproc.AdminName:
		return c.portError("admin", "--admin-port", c.o.adminPort, ne.Err)
	case errors.Is(err, backend.ErrLocked):
		return fmt.Errorf("%s: database %s is in use by another process (another neosimple on %s?)",
			ne.Node, filepath.Join(c.o.dir, ne.Node+".sqlite"), c.o.dir)
	}
	return err
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

// announce prints the addresses and writes DIR/cluster.env.
func (c *cluster) announce(w io.Writer) {
	o := c.o
	master, admin := c.Masters()[0], c.Addr(inproc.AdminName)
	fmt.Fprintf(w, "cluster %s RUNNING: %d storage(s), %d replica(s), %d partitions; data and logs in %s\n",
		o.cluster, o.storages, o.replicas, o.partitions, o.dir)
	fmt.Fprintf(w, "  master  %s\n", master)
	fmt.Fprintf(w, "  admin   %s\n", admin)
	if c.httpURL != "" {
		fmt.Fprintf(w, "  http    %s/ (each node's /NODE/metrics and /NODE/readyz, /readyz of all)\n", c.httpURL)
		fmt.Fprintf(w, "  dashboard %s/%s/ (JSON API under %s/%s/api/v1/)\n", c.httpURL, inproc.AdminName, c.httpURL, inproc.AdminName)
	}
	fmt.Fprintf(w, "ZODB (neoppod's client):\n")
	fmt.Fprintf(w, "  from neo.client.Storage import Storage; import ZODB\n")
	fmt.Fprintf(w, "  db = ZODB.DB(Storage(master_nodes=%q, name=%q))\n", master, o.cluster)
	fmt.Fprintf(w, "neoctl:\n  neoctl -a %s print node\n", admin)
	fmt.Fprintf(w, "Ctrl-C stops the cluster.\n")
	env := fmt.Sprintf("NEO_MASTERS=%s\nNEO_CLUSTER=%s\nNEO_ADMIN=%s\n", master, o.cluster, admin)
	if c.httpURL != "" {
		env += "NEO_HTTP=" + c.httpURL + "\n"
	}
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
// exit.
func (c *cluster) stop(ctx context.Context, ask bool) error {
	os.Remove(filepath.Join(c.o.dir, envFile))
	var err error
	if ask {
		err = c.Shutdown(ctx)
	} else {
		err = c.Wait(ctx)
	}
	if err == nil {
		c.closeLogs()
	}
	return err
}

// kill stops every node at once, the master first, and waits for them.
// It tells where the logs are if some node started.
func (c *cluster) kill() {
	c.Close(context.Background())
	c.closeLogs()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.logged {
		fmt.Fprintf(c.out, "neosimple: node logs are in %s\n", c.o.dir)
	}
}
