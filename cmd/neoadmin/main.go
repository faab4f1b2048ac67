// Command neoadmin runs a NEO admin node, the node neoctl talks to. It
// takes neoppod's options (cluster.md §9.1, §9.4), so that it can replace
// neoppod's neoadmin in a deployment or a test harness:
//
//	neoadmin -c CLUSTER [-m MASTERS] [-b BIND] [-i NID] [-D DYNAMIC_MASTER_LIST]
//	         [--monitor-maxlag SECONDS] [--monitor-email ADDR]... [--monitor-backup NAME]...
//	         [--smtp HOST[:PORT]] [--smtp-tls] [--smtp-auth USER:PASS]
//	         [-l LOGFILE] [--ca CA --cert CERT --key KEY] [-f FILE [-s SECTION]]
//
// A bad command line exits with status 2, a configuration error with 1.
// The admin exits with status 0 when the cluster is shut down.
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

	"github.com/neogo/neo/admin"
	"github.com/neogo/neo/internal/cliopt"
	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
)

func adminOptions() *cliopt.Parser {
	return &cliopt.Parser{
		Prog:        "neoadmin",
		Description: "NEO Admin node",
		Options: []*cliopt.Option{
			{Short: "l", Long: "logfile", Kind: cliopt.Path, Help: "log debugging information to specified file"},
			{Long: "ca", Kind: cliopt.Path, Help: "(SSL) certificate authority in PEM format"},
			{Long: "cert", Kind: cliopt.Path, Help: "(SSL) certificate in PEM format"},
			{Long: "key", Kind: cliopt.Path, Help: "(SSL) private key in PEM format"},
			{Short: "f", Long: "file", Kind: cliopt.Path, Help: "specify a configuration file"},
			{Short: "s", Long: "section", Default: "admin", HasDefault: true, Help: "specify a configuration section"},
			{Short: "c", Long: "cluster", Required: true, Help: "the cluster name"},
			{Short: "m", Long: "masters", Default: "127.0.0.1:10000", HasDefault: true, Help: "space-separated list of master node addresses"},
			{Short: "b", Long: "bind", Default: "127.0.0.1:9999", HasDefault: true, Help: "the local address to bind to"},
			{Short: "D", Long: "dynamic-master-list", Kind: cliopt.Path, Help: "path of the file containing dynamic master node list"},
			{Long: "monitor-maxlag", Kind: cliopt.Float, Default: "0.0", HasDefault: true, Help: "warn if a backup cluster is too late at replicating upstream"},
			{Long: "monitor-email", Multiple: true, Help: "recipient email for notifications (the option can be repeated)"},
			{Long: "monitor-backup", Multiple: true, Help: "name of backup cluster to monitor (the option can be repeated)"},
			{Long: "smtp", Help: "SMTP for email notifications"},
			{Long: "smtp-tls", Kind: cliopt.Bool, Help: "use STARTTLS"},
			{Long: "smtp-auth", Help: "SMTP credentials"},
			{Short: "i", Long: "nid", Kind: cliopt.Int, Help: "specify an NID to use for this process (testing purpose)"},
		},
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
	ca, cert, key := v["ca"], v["cert"], v["key"]
	if ca != "" || cert != "" || key != "" {
		if ca == "" || cert == "" || key == "" {
			return cfg, "", errors.New("To enable encryption, 3 files must be provided: the CA certificate, and the certificate of this node with its private key.")
		}
		if cfg.TLS, err = neonet.LoadTLS(ca, cert, key); err != nil {
			return cfg, "", err
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, "", err
	}
	return cfg, v["logfile"], nil
}

// run is main without os.Exit: it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	p := adminOptions()
	values, status, ok := p.ParseCommandLine(args, stdout, stderr)
	if !ok {
		return status
	}
	cfg, logfile, err := configFromOptions(values)
	if err != nil {
		return p.Fail(stderr, err)
	}
	log, closeLog, err := p.Logger(logfile, stderr, "node", "admin", "cluster", cfg.Cluster)
	if err != nil {
		return p.Fail(stderr, err)
	}
	defer closeLog()
	cfg.Logger = log
	node, err := admin.NewNode(cfg)
	if err != nil {
		cfg.Logger.Error("admin not started", "err", err)
		return p.Fail(stderr, err)
	}
	err = node.Run(ctx)
	switch {
	case err == nil, errors.Is(err, admin.ErrStopped), errors.Is(err, context.Canceled):
		return 0
	}
	cfg.Logger.Error("admin stopped", "err", err)
	return p.Fail(stderr, err)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}
