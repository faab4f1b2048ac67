// Command neomaster runs a NEO master node. It takes neoppod's options
// (cluster.md §9.1–9.2), so that it can replace neoppod's neomaster in a
// deployment or a test harness:
//
//	neomaster -c CLUSTER [-m MASTERS] [-b BIND] [-p PARTITIONS] [-r REPLICAS]
//	          [-A AUTOSTART] [-C UPSTREAM_CLUSTER -M UPSTREAM_MASTERS] [-B]
//	          [-i NID] [-D DYNAMIC_MASTER_LIST] [-l LOGFILE]
//	          [--ca CA --cert CERT --key KEY] [-f FILE [-s SECTION]]
//	          [--http HOST:PORT [--http-pprof]]
//
// --http (ours, not neoppod's) serves /healthz, /readyz and /metrics
// (package internal/nodehttp). A bad command line exits with status 2, a configuration error with 1.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/neogo/neo/internal/cliopt"
	"github.com/neogo/neo/internal/cpuprof"
	"github.com/neogo/neo/internal/nodehttp"
	"github.com/neogo/neo/master"
	"github.com/neogo/neo/proto"
)

func masterOptions() *cliopt.Parser {
	return &cliopt.Parser{
		Prog:        "neomaster",
		Description: "NEO Master node",
		Options: slices.Concat(cliopt.ServerOptions("master", "", "127.0.0.1:10000"), []*cliopt.Option{
			{Short: "A", Long: "autostart", Kind: cliopt.Int, Help: "minimum number of pending storage nodes to automatically start new cluster"},
			{Short: "C", Long: "upstream-cluster", Help: "the name of cluster to backup"},
			{Short: "M", Long: "upstream-masters", Help: "list of master nodes in the cluster to backup"},
			{Short: "B", Long: "backup", Kind: cliopt.Bool, Help: "transition automatically toward BACKINGUP instead of RUNNING if the cluster is empty"},
			{Short: "i", Long: "nid", Kind: cliopt.Int, Help: "specify an NID to use for this process (testing purpose)"},
			{Short: "r", Long: "replicas", Kind: cliopt.Int, Default: "0", HasDefault: true, Help: "replicas number"},
			{Short: "p", Long: "partitions", Kind: cliopt.Int, Default: "100", HasDefault: true, Help: "partitions number"},
		}),
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
	if cfg.TLS, err = cliopt.LoadTLS(v); err != nil {
		return cfg, "", err
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
	d := cliopt.Daemon[master.Config]{
		Options: masterOptions(),
		Role:    "master",
		Config:  configFromOptions,
		New: func(cfg master.Config, nl *cliopt.NodeLog, h *nodehttp.Handler) (cliopt.Node, error) {
			cfg.Logger = nl.Logger
			cfg.NetObserver = nl.Observer(h.NetObserver())
			cfg.FlushLog = nl.Flush
			s, err := master.NewServer(cfg)
			if err == nil {
				h.SetMaster(s)
			}
			return s, err
		},
	}
	return d.Run(ctx, args, stdout, stderr)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stopProfile := cpuprof.Start(os.Stderr)
	status := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stopProfile()
	os.Exit(status)
}
