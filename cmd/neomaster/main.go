// Command neomaster runs a NEO master node. It takes neoppod's options
// (cluster.md §9.1–9.2), so that it can replace neoppod's neomaster in a
// deployment or a test harness:
//
//	neomaster -c CLUSTER [-m MASTERS] [-b BIND] [-p PARTITIONS] [-r REPLICAS]
//	          [-A AUTOSTART] [-C UPSTREAM_CLUSTER -M UPSTREAM_MASTERS] [-B]
//	          [-i NID] [-D DYNAMIC_MASTER_LIST] [-l LOGFILE]
//	          [--ca CA --cert CERT --key KEY] [-f FILE [-s SECTION]]
//
// A bad command line exits with status 2, a configuration error with 1.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/neogo/neo/internal/cpuprof"
	"github.com/neogo/neo/master"
	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
)

func masterOptions() *optParser {
	return &optParser{
		prog:  "neomaster",
		descr: "NEO Master node",
		specs: []*optSpec{
			{short: "l", long: "logfile", kind: kindPath, help: "log debugging information to specified file"},
			{long: "ca", kind: kindPath, help: "(SSL) certificate authority in PEM format"},
			{long: "cert", kind: kindPath, help: "(SSL) certificate in PEM format"},
			{long: "key", kind: kindPath, help: "(SSL) private key in PEM format"},
			{short: "f", long: "file", kind: kindPath, help: "specify a configuration file"},
			{short: "s", long: "section", def: "master", hasDef: true, help: "specify a configuration section"},
			{short: "c", long: "cluster", required: true, help: "the cluster name"},
			{short: "m", long: "masters", help: "space-separated list of master node addresses"},
			{short: "b", long: "bind", def: "127.0.0.1:10000", hasDef: true, help: "the local address to bind to"},
			{short: "D", long: "dynamic-master-list", kind: kindPath, help: "path of the file containing dynamic master node list"},
			{short: "A", long: "autostart", kind: kindInt, help: "minimum number of pending storage nodes to automatically start new cluster"},
			{short: "C", long: "upstream-cluster", help: "the name of cluster to backup"},
			{short: "M", long: "upstream-masters", help: "list of master nodes in the cluster to backup"},
			{short: "B", long: "backup", kind: kindBool, help: "transition automatically toward BACKINGUP instead of RUNNING if the cluster is empty"},
			{short: "i", long: "nid", kind: kindInt, help: "specify an NID to use for this process (testing purpose)"},
			{short: "r", long: "replicas", kind: kindInt, def: "0", hasDef: true, help: "replicas number"},
			{short: "p", long: "partitions", kind: kindInt, def: "100", hasDef: true, help: "partitions number"},
		},
	}
}

// configFromOptions turns parsed option values into a master Config. It
// returns the log file path too.
func configFromOptions(v map[string]string) (master.Config, string, error) {
	var cfg master.Config
	var err error
	cfg.Cluster = v["cluster"]
	if cfg.Bind, err = master.ParseAddr(v["bind"], 0); err != nil {
		return cfg, "", fmt.Errorf("--bind: %w", err)
	}
	if cfg.Masters, err = parseMasterList(v["masters"]); err != nil {
		return cfg, "", fmt.Errorf("--masters: %w", err)
	}
	if cfg.UpstreamMasters, err = parseMasterList(v["upstream_masters"]); err != nil {
		return cfg, "", fmt.Errorf("--upstream-masters: %w", err)
	}
	cfg.DynamicMasterList = v["dynamic_master_list"]
	cfg.UpstreamCluster = v["upstream_cluster"]
	cfg.Backup = v["backup"] == "true"
	atoi := func(k string) int {
		n, _ := strconv.Atoi(strings.TrimSpace(v[k]))
		return n
	}
	cfg.Partitions = atoi("partitions")
	if cfg.Partitions <= 0 {
		return cfg, "", fmt.Errorf("--partitions %d: partitions must be more than zero", cfg.Partitions)
	}
	cfg.Replicas = atoi("replicas")
	if cfg.Replicas < 0 {
		return cfg, "", fmt.Errorf("--replicas %d: replicas must be a positive integer", cfg.Replicas)
	}
	cfg.Autostart = atoi("autostart")
	cfg.NID = proto.NodeID(atoi("nid"))
	ca, cert, key := v["ca"], v["cert"], v["key"]
	if ca != "" || cert != "" || key != "" {
		if ca == "" || cert == "" || key == "" {
			return cfg, "", errors.New("To enable encryption, 3 files must be provided: the CA certificate, and the certificate of this node with its private key.")
		}
		if cfg.TLS, err = neonet.LoadTLS(ca, cert, key); err != nil {
			return cfg, "", err
		}
	}
	return cfg, v["logfile"], nil
}

func parseMasterList(s string) ([]proto.Addr, error) {
	var out []proto.Addr
	for _, f := range strings.Fields(s) {
		a, err := master.ParseAddr(f, 0)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// run is main without os.Exit: it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	p := masterOptions()
	values, err := p.parse(args, stdout)
	var ue *usageError
	switch {
	case errors.Is(err, errHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, p.usage())
		fmt.Fprintf(stderr, "%s: error: %s\n", p.prog, ue.msg)
		return 2
	case err != nil:
		fmt.Fprintf(stderr, "%s: %v\n", p.prog, err)
		return 1
	}
	for _, w := range p.warnings {
		fmt.Fprintf(stderr, "%s: warning: %s\n", p.prog, w)
	}
	cfg, logfile, err := configFromOptions(values)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", p.prog, err)
		return 1
	}
	var logw io.Writer = stderr
	if logfile != "" {
		f, err := os.OpenFile(logfile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", p.prog, err)
			return 1
		}
		defer f.Close()
		logw = f
	}
	level := slog.LevelInfo
	if os.Getenv("NEO_DEBUG") != "" {
		level = slog.LevelDebug
	}
	cfg.Logger = slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: level})).With("node", "master", "cluster", cfg.Cluster)
	for _, w := range p.warnings {
		cfg.Logger.Warn(w)
	}
	srv, err := master.NewServer(cfg)
	if err != nil {
		cfg.Logger.Error("master not started", "err", err)
		fmt.Fprintf(stderr, "%s: %v\n", p.prog, err)
		return 1
	}
	if err := srv.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		cfg.Logger.Error("master stopped", "err", err)
		fmt.Fprintf(stderr, "%s: %v\n", p.prog, err)
		return 1
	}
	return 0
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stopProfile := cpuprof.Start(os.Stderr)
	status := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stopProfile()
	os.Exit(status)
}
