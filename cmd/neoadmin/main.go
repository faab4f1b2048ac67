// Command neoadmin runs a NEO admin node, the node neoctl talks to. It
// takes neoppod's options (cluster.md §9.1, §9.4), so that it can replace
// neoppod's neoadmin in a deployment or a test harness:
//
//	neoadmin -c CLUSTER [-m MASTERS] [-b BIND] [-i NID] [-D DYNAMIC_MASTER_LIST]
//	         [--monitor-maxlag SECONDS] [--monitor-email ADDR]... [--monitor-backup NAME]...
//	         [--smtp HOST[:PORT]] [--smtp-tls] [--smtp-auth USER:PASS]
//	         [-l LOGFILE] [--ca CA --cert CERT --key KEY] [-f FILE [-s SECTION]]
//	         [--http HOST:PORT [--http-pprof] [--http-peers NAME=URL,...]]
//
// --http (ours, not neoppod's) serves /healthz, /readyz and /metrics
// (package internal/nodehttp) and the dashboard; --http-peers names the
// other nodes' /metrics, from which the dashboard shows their progress. A bad command line exits with status 2, a configuration error with 1.
// The admin exits with status 0 when the cluster is shut down.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/neogo/neo/admin"
	"github.com/neogo/neo/internal/adminhttp"
	"github.com/neogo/neo/internal/cliopt"
	"github.com/neogo/neo/internal/nodehttp"
	"github.com/neogo/neo/proto"
)

func adminOptions() *cliopt.Parser {
	return &cliopt.Parser{
		Prog:        "neoadmin",
		Description: "NEO Admin node",
		Options: slices.Concat(cliopt.ServerOptions("admin", "127.0.0.1:10000", "127.0.0.1:9999"), []*cliopt.Option{
			{Long: "monitor-maxlag", Kind: cliopt.Float, Default: "0.0", HasDefault: true, Help: "warn if a backup cluster is too late at replicating upstream"},
			{Long: "monitor-email", Multiple: true, Help: "recipient email for notifications (the option can be repeated)"},
			{Long: "monitor-backup", Multiple: true, Help: "name of backup cluster to monitor (the option can be repeated)"},
			{Long: "smtp", Help: "SMTP for email notifications"},
			{Long: "smtp-tls", Kind: cliopt.Bool, Help: "use STARTTLS"},
			{Long: "smtp-auth", Help: "SMTP credentials"},
			{Short: "i", Long: "nid", Kind: cliopt.Int, Help: "specify an NID to use for this process (testing purpose)"},
			{Long: "http-peers", Multiple: true, Help: "other nodes' metrics for the dashboard's progress bars and rates: NAME=URL of each node's /metrics (its --http), comma-separated or repeated; needs --http"},
		}),
	}
}

// configFromOptions turns parsed option values into an admin Config. It
// returns the log file path too.
func configFromOptions(v map[string]string) (admin.Config, string, error) {
	var cfg admin.Config
	var err error
	cfg.Cluster = v["cluster"]
	if cfg.Bind, err = admin.ParseAddr(v["bind"], 0); err != nil {
		return cfg, "", fmt.Errorf("--bind: %w", err)
	}
	for _, f := range strings.Fields(v["masters"]) {
		a, err := admin.ParseAddr(f, 10000)
		if err != nil {
			return cfg, "", fmt.Errorf("--masters: %w", err)
		}
		cfg.Masters = append(cfg.Masters, a)
	}
	cfg.DynamicMasterList = v["dynamic_master_list"]
	if s := strings.TrimSpace(v["nid"]); s != "" {
		n, _ := strconv.Atoi(s)
		cfg.NID = proto.NodeID(n)
	}
	cfg.Monitor.MaxLag, _ = strconv.ParseFloat(strings.TrimSpace(v["monitor_maxlag"]), 64)
	cfg.Monitor.Emails = cliopt.Lines(v["monitor_email"])
	cfg.Monitor.Backups = cliopt.Lines(v["monitor_backup"])
	cfg.Monitor.SMTP = v["smtp"]
	cfg.Monitor.SMTPTLS = v["smtp_tls"] == "true"
	if auth, ok := v["smtp_auth"]; ok {
		user, pass, ok := strings.Cut(auth, ":")
		if !ok {
			return cfg, "", errors.New("--smtp-auth: expected USER:PASS")
		}
		cfg.Monitor.SMTPUser, cfg.Monitor.SMTPPassword = user, pass
	}
	if cfg.TLS, err = cliopt.LoadTLS(v); err != nil {
		return cfg, "", err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, "", err
	}
	return cfg, v["logfile"], nil
}

// run is main without os.Exit: it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var peers map[string]string
	d := cliopt.Daemon[admin.Config]{
		Options: adminOptions(),
		Role:    "admin",
		Config: func(v map[string]string) (admin.Config, string, error) {
			cfg, logfile, err := configFromOptions(v)
			if err != nil {
				return cfg, logfile, err
			}
			if peers, err = adminhttp.ParsePeerTargets(cliopt.Lines(v["http_peers"])); err != nil {
				return cfg, logfile, fmt.Errorf("--http-peers: %w", err)
			}
			if len(peers) > 0 && strings.TrimSpace(v["http"]) == "" {
				return cfg, logfile, errors.New("--http-peers needs --http: the dashboard shows what it reads")
			}
			return cfg, logfile, nil
		},
		New: func(cfg admin.Config, nl *cliopt.NodeLog, h *nodehttp.Handler) (cliopt.Node, error) {
			log := nl.Logger
			cfg.Logger = log
			cfg.NetObserver = nl.Observer(h.NetObserver())
			cfg.FlushLog = nl.Flush
			n, err := admin.NewNode(cfg)
			if err == nil && h != nil {
				h.SetAdmin(n)
				adminhttp.Attach(h, n, cfg.TLS, log)
				if len(peers) > 0 {
					var tc *tls.Config
					if cfg.TLS != nil {
						tc = cfg.TLS.HTTPClientConfig()
					}
					adminhttp.AttachPeers(h, adminhttp.ScrapePeers(peers, tc))
				}
			}
			return n, err
		},
		Stopped: func(err error) bool { return errors.Is(err, admin.ErrStopped) },
	}
	return d.Run(ctx, args, stdout, stderr)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}
