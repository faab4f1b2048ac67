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
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/neogo/neo/admin"
	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
)

func adminOptions() *optParser {
	return &optParser{
		prog:  "neoadmin",
		descr: "NEO Admin node",
		specs: []*optSpec{
			{short: "l", long: "logfile", kind: kindPath, help: "log debugging information to specified file"},
			{long: "ca", kind: kindPath, help: "(SSL) certificate authority in PEM format"},
			{long: "cert", kind: kindPath, help: "(SSL) certificate in PEM format"},
			{long: "key", kind: kindPath, help: "(SSL) private key in PEM format"},
			{short: "f", long: "file", kind: kindPath, help: "specify a configuration file"},
			{short: "s", long: "section", def: "admin", hasDef: true, help: "specify a configuration section"},
			{short: "c", long: "cluster", required: true, help: "the cluster name"},
			{short: "m", long: "masters", def: "127.0.0.1:10000", hasDef: true, help: "space-separated list of master node addresses"},
			{short: "b", long: "bind", def: "127.0.0.1:9999", hasDef: true, help: "the local address to bind to"},
			{short: "D", long: "dynamic-master-list", kind: kindPath, help: "path of the file containing dynamic master node list"},
			{long: "monitor-maxlag", kind: kindFloat, def: "0.0", hasDef: true, help: "warn if a backup cluster is too late at replicating upstream"},
			{long: "monitor-email", multiple: true, help: "recipient email for notifications (the option can be repeated)"},
			{long: "monitor-backup", multiple: true, help: "name of backup cluster to monitor (the option can be repeated)"},
			{long: "smtp", help: "SMTP for email notifications"},
			{long: "smtp-tls", kind: kindBool, help: "use STARTTLS"},
			{long: "smtp-auth", help: "SMTP credentials"},
			{short: "i", long: "nid", kind: kindInt, help: "specify an NID to use for this process (testing purpose)"},
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
	cfg.Monitor.Emails = lines(v["monitor_email"])
	cfg.Monitor.Backups = lines(v["monitor_backup"])
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

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// run is main without os.Exit: it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	p := adminOptions()
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
	cfg.Logger = slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: level})).With("node", "admin", "cluster", cfg.Cluster)
	for _, w := range p.warnings {
		cfg.Logger.Warn(w)
	}
	node, err := admin.NewNode(cfg)
	if err != nil {
		cfg.Logger.Error("admin not started", "err", err)
		fmt.Fprintf(stderr, "%s: %v\n", p.prog, err)
		return 1
	}
	err = node.Run(ctx)
	switch {
	case err == nil, errors.Is(err, admin.ErrStopped), errors.Is(err, context.Canceled):
		return 0
	}
	cfg.Logger.Error("admin stopped", "err", err)
	fmt.Fprintf(stderr, "%s: %v\n", p.prog, err)
	return 1
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}
