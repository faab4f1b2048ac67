// Command neosimple starts a throw-away NEO cluster on loopback, for trying
// NEO out and for tests: one master, N SQLite storages and one admin, all
// running in this one process, with their data and logs in a directory of
// the user's choice.
//
//	neosimple -d DIR [-n STORAGES] [-r REPLICAS] [-p PARTITIONS]
//	          [--cluster NAME] [--master-port PORT] [--admin-port PORT]
//	          [--http HOST:PORT]
//
// It brings the cluster to RUNNING (a new database is created once all N
// storages are there), prints where the master and the admin listen, and
// writes the same in DIR/cluster.env for scripts. Ctrl-C (SIGINT) or
// SIGTERM stops the cluster the clean way, as `neoctl set cluster STOPPING`
// does: transactions in progress end, storages leave their cells
// UP_TO_DATE, then every node exits. Starting neosimple again on the same
// DIR (with the same -n and --cluster) restarts the cluster on its data.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/neogo/neo/internal/cliopt"
)

// options are neosimple's command-line settings.
type options struct {
	dir          string
	storages     int
	replicas     int
	partitions   int
	cluster      string
	host         string
	masterPort   int
	adminPort    int
	http         string // HOST:PORT of the nodes' HTTP side, "" for none
	startTimeout time.Duration
	stopTimeout  time.Duration
	debug        bool
}

// repeatGrace is how soon after the first a stop signal is taken as a
// duplicate of it rather than as a second Ctrl-C.
const repeatGrace = time.Second

const usage = `usage: neosimple -d DIR [options]

Start a throw-away NEO cluster on loopback: 1 master, N SQLite storages and
1 admin, in this process, with databases and logs in DIR. Once the cluster
is RUNNING, neosimple prints the master and admin addresses and writes them
to DIR/cluster.env (NEO_MASTERS, NEO_CLUSTER, NEO_ADMIN lines). Ctrl-C or
SIGTERM stops the cluster cleanly (cluster state STOPPING: transactions in
progress end, nothing is lost); a second Ctrl-C stops it at once. Run it
again on the same DIR, with the same -n and --cluster, to restart the
cluster on its data.

options:
  -d, --dir DIR          databases, logs and cluster.env (created if missing; required)
  -n, --storages N       number of storage nodes (default 2)
  -r, --replicas R       replicas of each partition, for a new database (default 1)
  -p, --partitions P     number of partitions, for a new database (default 12)
  --cluster NAME         cluster name that clients and neoctl give (default neosimple)
  --host ADDR            loopback address of every node: 127.0.0.1 or ::1 (default 127.0.0.1)
  --master-port PORT     master port; 0 picks a free one (default 0)
  --admin-port PORT      admin port, for neoctl -a; 0 picks a free one (default 0)
  --http HOST:PORT       serve the nodes' /NODE/metrics, /NODE/readyz (Prometheus,
                         health), /readyz of all and the admin's web dashboard
                         (/admin/, its URL printed) there (default: none)
  --start-timeout D      how long to wait for RUNNING (default 1m)
  --stop-timeout D       how long a clean stop may take before the nodes are
                         stopped at once (default 30s)
  --debug                debug level in the node logs (DIR/*.log)
  -h, --help             this help

examples:
  neosimple -d /tmp/neo                    # 2 storages, 1 replica, 12 partitions
  neosimple -d /tmp/neo -n 3 -r 2 --master-port 2051 --admin-port 9999

then, from Python with neoppod's client:
  import ZODB; from neo.client.Storage import Storage
  db = ZODB.DB(Storage(master_nodes='MASTER', name='CLUSTER'))
and to manage it:
  neoctl -a ADMIN print node
`

// parseArgs parses args; a usage error is returned as
// *[cliopt.UsageError], and -h prints the usage on out and returns
// [flag.ErrHelp].
func parseArgs(args []string, out io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("neosimple", flag.ContinueOnError)
	fs.StringVar(&o.dir, "d", "", "`DIR`ectory of the databases, logs and cluster.env (created if missing; required)")
	fs.StringVar(&o.dir, "dir", "", "same as -d")
	fs.IntVar(&o.storages, "n", 2, "number of storage nodes")
	fs.IntVar(&o.storages, "storages", 2, "same as -n")
	fs.IntVar(&o.replicas, "r", 1, "number of replicas of each partition (a new database only)")
	fs.IntVar(&o.replicas, "replicas", 1, "same as -r")
	fs.IntVar(&o.partitions, "p", 12, "number of partitions (a new database only)")
	fs.IntVar(&o.partitions, "partitions", 12, "same as -p")
	fs.StringVar(&o.cluster, "cluster", "neosimple", "cluster `name` (clients and neoctl need it)")
	fs.StringVar(&o.host, "host", "127.0.0.1", "loopback `address` every node listens on (127.0.0.1 or ::1)")
	fs.IntVar(&o.masterPort, "master-port", 0, "master `port`; 0 picks a free one")
	fs.IntVar(&o.adminPort, "admin-port", 0, "admin `port` (neoctl -a); 0 picks a free one")
	fs.StringVar(&o.http, "http", "", "`HOST:PORT` of the nodes' metrics and health endpoints")
	fs.DurationVar(&o.startTimeout, "start-timeout", 60*time.Second, "how long to wait for the cluster to be RUNNING")
	fs.DurationVar(&o.stopTimeout, "stop-timeout", 30*time.Second, "how long a clean stop may take before the nodes are stopped at once")
	fs.BoolVar(&o.debug, "debug", false, "log at debug level in the node logs")
	if err := cliopt.ParseFlags(fs, args, usage, out); err != nil {
		return nil, err
	}
	if err := o.check(); err != nil {
		return nil, err
	}
	return o, nil
}

// check validates the options that do not need the file system.
func (o *options) check() error {
	switch {
	case o.dir == "":
		return &cliopt.UsageError{Msg: "-d DIR is required"}
	case o.storages < 1:
		return &cliopt.UsageError{Msg: fmt.Sprintf("-n %d: at least one storage is needed", o.storages)}
	case o.replicas < 0:
		return &cliopt.UsageError{Msg: fmt.Sprintf("-r %d: replicas cannot be negative", o.replicas)}
	case o.partitions < 1:
		return &cliopt.UsageError{Msg: fmt.Sprintf("-p %d: at least one partition is needed", o.partitions)}
	case o.cluster == "" || strings.ContainsAny(o.cluster, " \t\n"):
		return &cliopt.UsageError{Msg: fmt.Sprintf("--cluster %q: a cluster name is one non-empty word", o.cluster)}
	case o.masterPort < 0 || o.masterPort > 65535:
		return &cliopt.UsageError{Msg: fmt.Sprintf("--master-port %d: not a port", o.masterPort)}
	case o.adminPort < 0 || o.adminPort > 65535:
		return &cliopt.UsageError{Msg: fmt.Sprintf("--admin-port %d: not a port", o.adminPort)}
	case o.masterPort != 0 && o.masterPort == o.adminPort:
		return &cliopt.UsageError{Msg: "--master-port and --admin-port must differ"}
	case o.startTimeout <= 0 || o.stopTimeout <= 0:
		return &cliopt.UsageError{Msg: "timeouts must be positive"}
	}
	return nil
}

// prepareDir creates dir if needed and checks that files can be created
// in it, so that a bad -d is reported before any node starts.
func prepareDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("directory %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", fmt.Errorf("cannot create directory %s: %w", abs, err)
	}
	f, err := os.CreateTemp(abs, ".neosimple-probe-")
	if err != nil {
		return "", fmt.Errorf("directory %s is not writable: %w", abs, err)
	}
	f.Close()
	os.Remove(f.Name())
	return abs, nil
}

// run is main without os.Exit: it returns the exit status. sig delivers
// the stop requests (SIGINT, SIGTERM).
func run(args []string, sig <-chan os.Signal, stdout, stderr io.Writer) int {
	o, err := parseArgs(args, stdout)
	if err != nil {
		return cliopt.UsageStatus("neosimple", err, stderr)
	}
	if o.dir, err = prepareDir(o.dir); err != nil {
		fmt.Fprintf(stderr, "neosimple: %v\n", err)
		return 1
	}

	c, err := newCluster(o, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "neosimple: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := c.serveHTTP(ctx); err != nil {
		fmt.Fprintf(stderr, "neosimple: %v\n", err)
		return 1
	}

	started := make(chan error, 1)
	go func() { started <- c.start(ctx) }()
	select {
	case err = <-started:
	case s := <-sig:
		fmt.Fprintf(stderr, "neosimple: %v while starting: stopping the nodes\n", s)
		cancel()
		<-started
		c.kill()
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "neosimple: %v\n", err)
		c.kill()
		return 1
	}
	c.announce(stdout)

	// Serve until a signal, or until a node exits on its own (then the
	// others are stopped too).
	ask := true
	select {
	case s := <-sig:
		fmt.Fprintf(stderr, "neosimple: %v: stopping the cluster (STOPPING); Ctrl-C again to stop at once\n", s)
	case <-c.Exited():
		ex := c.Exits()[0]
		if ex.Expected() {
			// neoctl set cluster STOPPING: the nodes are on their way out.
			fmt.Fprintf(stderr, "neosimple: %s exited: the cluster is stopping (%v)\n", ex.Node, ex.Err)
			ask = false
			break
		}
		fmt.Fprintf(stderr, "neosimple: %s exited unexpectedly: %v; stopping the others\n", ex.Node, ex.Err)
		c.kill()
		return 1
	}
	stopCtx, stopCancel := context.WithTimeout(context.Background(), o.stopTimeout)
	var watch sync.WaitGroup
	defer func() {
		stopCancel() // ends the watcher below
		watch.Wait()
	}()
	watch.Go(func() {
		// A signal sent to the process group (timeout(1), some shells)
		// may arrive twice at once: only a later one means "at once".
		first := time.Now()
		for {
			select {
			case <-sig:
				if time.Since(first) < repeatGrace {
					continue
				}
				fmt.Fprintln(stderr, "neosimple: stopping at once")
				stopCancel()
			case <-stopCtx.Done():
			}
			return
		}
	})
	if err := c.stop(stopCtx, ask); err != nil {
		fmt.Fprintf(stderr, "neosimple: clean stop failed: %v; stopping the nodes at once\n", err)
		c.kill()
		return 1
	}
	fmt.Fprintln(stderr, "neosimple: cluster stopped")
	return 0
}

func main() {
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	os.Exit(run(os.Args[1:], sig, os.Stdout, os.Stderr))
}
