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
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/neogo/neo/internal/cliopt"
	"github.com/neogo/neo/internal/cpuprof"
	"github.com/neogo/neo/master"
	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
)

func masterOptions() *cliopt.Parser {
	return &cliopt.Parser{
		Prog:        "neomaster",
		Description: "NEO Master node",
		Options: []*cliopt.Option{
			{Short: "l", Long: "logfile", Kind: cliopt.Path, Help: "log debugging information to specified file"},
			{Long: "ca", Kind: cliopt.Path, Help: "(SSL) certificate authority in PEM format"},
			{Long: "cert", Kind: cliopt.Path, Help: "(SSL) certificate in PEM format"},
			{Long: "key", Kind: cliopt.Path, Help: "(SSL) private key in PEM format"},
			{Short: "f", Long: "file", Kind: cliopt.Path, Help: "specify a configuration file"},
			{Short: "s", Long: "section", Default: "master", HasDefault: true, Help: "specify a configuration section"},
			{Short: "c", Long: "cluster", Required: true, Help: "the cluster name"},
			{Short: "m", Long: "masters", Help: "space-separated list of master node addresses"},
			{Short: "b", Long: "bind", Default: "127.0.0.1:10000", HasDefault: true, Help: "the local address to bind to"},
			{Short: "D", Long: "dynamic-master-list", Kind: cliopt.Path, Help: "path of the file containing dynamic master node list"},
			{Short: "A", Long: "autostart", Kind: cliopt.Int, Help: "minimum number of pending storage nodes to automatically start new cluster"},
			{Short: "C", Long: "upstream-cluster", Help: "the name of cluster to backup"},
			{Short: "M", Long: "upstream-masters", Help: "list of master nodes in the cluster to backup"},
			{Short: "B", Long: "backup", Kind: cliopt.Bool, Help: "transition automatically toward BACKINGUP instead of RUNNING if the cluster is empty"},
			{Short: "i", Long: "nid", Kind: cliopt.Int, Help: "specify an NID to use for this process (testing purpose)"},
			{Short: "r", Long: "replicas", Kind: cliopt.Int, Default: "0", HasDefault: true, Help: "replicas number"},
			{Short: "p", Long: "partitions", Kind: cliopt.Int, Default: "100", HasDefault: true, Help: "partitions number"},
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
	values, status, ok := p.ParseCommandLine(args, stdout, stderr)
	if !ok {
		return status
	}
	cfg, logfile, err := configFromOptions(values)
	if err != nil {
		return p.Fail(stderr, err)
	}
	log, closeLog, err := p.Logger(logfile, stderr, "node", "master", "cluster", cfg.Cluster)
	if err != nil {
		return p.Fail(stderr, err)
	}
	defer closeLog()
	cfg.Logger = log
	srv, err := master.NewServer(cfg)
	if err != nil {
		cfg.Logger.Error("master not started", "err", err)
		return p.Fail(stderr, err)
	}
	if err := srv.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		cfg.Logger.Error("master stopped", "err", err)
		return p.Fail(stderr, err)
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
