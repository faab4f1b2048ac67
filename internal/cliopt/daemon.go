package cliopt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/neogo/neo/internal/nodehttp"
	"github.com/neogo/neo/internal/nodelog"
	"github.com/neogo/neo/neonet"
)

// ParseCommandLine parses args as [Parser.Parse] does and reports the
// outcome on stderr as neoppod's daemons do. When ok is false the command
// must exit with status: 0 after -h; 2 after the usage line and
// "PROG: error: MSG" for a bad command line; 1 after "PROG: ERR" for a
// bad config file. When ok is true, each warning was written as
// "PROG: warning: MSG".
func (p *Parser) ParseCommandLine(args []string, stdout, stderr io.Writer) (values map[string]string, status int, ok bool) {
	values, err := p.Parse(args, stdout)
	var ue *UsageError
	switch {
	case errors.Is(err, ErrHelp):
		return nil, 0, false
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, p.Usage())
		fmt.Fprintf(stderr, "%s: error: %s\n", p.Prog, ue.Msg)
		return nil, 2, false
	case err != nil:
		return nil, p.Fail(stderr, err), false
	}
	for _, w := range p.Warnings {
		fmt.Fprintf(stderr, "%s: warning: %s\n", p.Prog, w)
	}
	return values, 0, true
}

// Fail writes "PROG: ERR" to stderr and returns 1, the exit status of a
// daemon that cannot start or stops on an error.
func (p *Parser) Fail(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "%s: %v\n", p.Prog, err)
	return 1
}

// NodeLog is a command's log: a slog.Logger writing readable text to
// stderr and, with -l PATH, every record to the log file in neoppod's
// SQLite format (package nodelog).
type NodeLog struct {
	*slog.Logger
	File *nodelog.Log // nil without a log file
}

// Logger returns the command's log: text lines on stderr and, when
// logfile is not "", records and every packet in that log file; both at
// debug level when the environment sets NEO_DEBUG, else info. The logger has attrs, and has logged
// the parser's warnings, so that the log file says them too. The caller
// closes it.
func (p *Parser) Logger(logfile string, stderr io.Writer, attrs ...any) (*NodeLog, error) {
	level := slog.LevelInfo
	if os.Getenv("NEO_DEBUG") != "" {
		level = slog.LevelDebug
	}
	var h slog.Handler = slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})
	l := &NodeLog{}
	if logfile != "" {
		f, err := nodelog.Open(logfile, nodelog.Options{Level: level})
		if err != nil {
			return nil, err
		}
		l.File, h = f, f.Handler(h)
	}
	l.Logger = slog.New(h).With(attrs...)
	for _, m := range p.Warnings {
		l.Warn(m)
	}
	if err := l.File.CatchCrashes(); err != nil {
		l.Warn("crash reports will not reach the log file", "err", err)
	}
	return l, nil
}

// Observer returns obs (which may be nil) combined with the recording of
// every packet in the log file, if any: what to give the node's links.
func (l *NodeLog) Observer(obs neonet.Observer) neonet.Observer {
	if l.File == nil {
		return obs
	}
	return neonet.Observers(obs, l.File.Observer())
}

// Flush writes the records buffered for the log file (neoctl flush_log).
func (l *NodeLog) Flush() { l.File.Flush() }

// HandleSignals handles the log signals (SIGRTMIN...SIGRTMIN+2, package
// nodelog) until stop is called; dump, if not nil, logs the node's state.
func (l *NodeLog) HandleSignals(ctx context.Context, dump func(*slog.Logger)) (stop func()) {
	return nodelog.HandleSignals(ctx, l.File, l.Logger, dump)
}

// PreMortem logs, at error level (which writes the log file out), why the
// node ends: err, or the panic being recovered with its stack, and the
// stacks of every goroutine (what the node was doing); neoppod's
// "Pre-mortem data". A panic is raised again. A panic of another
// goroutine kills the process without a deferred call: the runtime's
// report goes to the log at its next start ([nodelog.Log.CatchCrashes]).
func (l *NodeLog) PreMortem(err error) {
	// The stacks in the message, not an attribute: neolog then shows
	// them as the runtime prints them, one frame a line. The current
	// goroutine's, with the panic's frames, comes first.
	if r := recover(); r != nil {
		l.Error("Pre-mortem data:\n"+nodelog.AllStacks(), "panic", fmt.Sprint(r))
		l.Close()
		panic(r)
	}
	if err != nil {
		l.Error("Pre-mortem data:\n"+nodelog.AllStacks(), "err", err)
	}
}

// Close writes the buffered records and closes the log file.
func (l *NodeLog) Close() error { return l.File.Close() }

// ServerOptions returns the options that neoppod's server nodes (master,
// admin) take before their own, in neoppod's order (its BaseApplication
// and addCommonServerOptions): log file, TLS files, config file and
// section (section by default), cluster, masters (masters by default,
// none if ""), bind (bind by default) and the dynamic master list; then
// ours, [HTTPOptions].
func ServerOptions(section, masters, bind string) []*Option {
	return append([]*Option{
		{Short: "l", Long: "logfile", Kind: Path, Help: "log debugging information to specified file"},
		{Long: "ca", Kind: Path, Help: "(SSL) certificate authority in PEM format"},
		{Long: "cert", Kind: Path, Help: "(SSL) certificate in PEM format"},
		{Long: "key", Kind: Path, Help: "(SSL) private key in PEM format"},
		{Short: "f", Long: "file", Kind: Path, Help: "specify a configuration file"},
		{Short: "s", Long: "section", Default: section, HasDefault: true, Help: "specify a configuration section"},
		{Short: "c", Long: "cluster", Required: true, Help: "the cluster name"},
		{Short: "m", Long: "masters", Default: masters, HasDefault: masters != "", Help: "space-separated list of master node addresses"},
		{Short: "b", Long: "bind", Default: bind, HasDefault: true, Help: "the local address to bind to"},
		{Short: "D", Long: "dynamic-master-list", Kind: Path, Help: "path of the file containing dynamic master node list"},
	}, HTTPOptions()...)
}

// HTTPOptions returns the options of a node's HTTP endpoints (package
// nodehttp), which neoppod lacks: --http HOST:PORT (off unless given) and
// --http-pprof. [StartHTTP] acts on them.
func HTTPOptions() []*Option {
	return []*Option{
		{Long: "http", Help: "serve /healthz, /readyz and /metrics (Prometheus) on HOST:PORT (not in neoppod)"},
		{Long: "http-pprof", Kind: Bool, Help: "serve /debug/pprof/ too, with --http (not in neoppod)"},
	}
}

// NewHTTP returns the handler of the node's HTTP endpoints when the
// option values ask for them (--http), else nil: the node then attaches
// and observes nothing (a nil *nodehttp.Handler is valid).
func NewHTTP(values map[string]string) *nodehttp.Handler {
	if values["http"] == "" {
		return nil
	}
	return nodehttp.New(nodehttp.Options{Pprof: values["http_pprof"] == "true"})
}

// StartHTTP serves h, if not nil, on the address of --http until ctx
// ends or stop is called: HTTPS with the node's certificate when it has
// one (--ca, --cert, --key), where a client presenting a certificate of
// the cluster's CA may use the admin's write API from afar.
func StartHTTP(ctx context.Context, values map[string]string, h *nodehttp.Handler, log *slog.Logger) (stop func(), err error) {
	if h == nil {
		return func() {}, nil
	}
	nodeTLS, err := LoadTLS(values)
	if err != nil {
		return nil, err
	}
	var tc *tls.Config
	if nodeTLS != nil {
		tc = nodeTLS.HTTPServerConfig()
	}
	srv, err := nodehttp.ListenTLS(ctx, values["http"], h, tc, log)
	if err != nil {
		return nil, err
	}
	return func() { srv.Close() }, nil
}

// LoadTLS returns the TLS config that the options ca, cert and key (of
// [ServerOptions]) name: nil when none is given, an error when only some
// are or when the files cannot be loaded.
func LoadTLS(values map[string]string) (*neonet.TLSConfig, error) {
	ca, cert, key := values["ca"], values["cert"], values["key"]
	if ca == "" && cert == "" && key == "" {
		return nil, nil
	}
	if ca == "" || cert == "" || key == "" {
		return nil, errors.New("To enable encryption, 3 files must be provided: the CA certificate, and the certificate of this node with its private key.")
	}
	return neonet.LoadTLS(ca, cert, key)
}

// Node is what a daemon runs: Run returns when the node stops.
type Node interface {
	Run(ctx context.Context) error
}

// StateDumper is a Node that can log its state (links, node table,
// partition table, transactions), on SIGRTMIN+2.
type StateDumper interface {
	LogState(log *slog.Logger)
}

// Daemon is the run of a daemon whose config says everything it needs
// (neomaster, neoadmin): parse the command line, make the config, open
// the log, make the node and run it until it stops.
type Daemon[C any] struct {
	Options *Parser
	Role    string // "master", "admin": the log's node attribute and the first word of its messages

	// Config turns the option values into the node's config and the
	// path of its log file ("" for stderr).
	Config func(values map[string]string) (cfg C, logfile string, err error)
	// New makes the node of cfg, which logs to log, whose links have
	// log.Observer(h.NetObserver()) as observer, and which flushes log
	// on FlushLog. With --http, h is the node's HTTP side, to attach
	// the node to; else h is nil, which its methods accept.
	New func(cfg C, log *NodeLog, h *nodehttp.Handler) (Node, error)
	// Stopped, if not nil, says which errors of the node's Run are a
	// normal end of the daemon, besides nil and [context.Canceled].
	Stopped func(err error) bool
}

// Run runs the daemon with the command-line arguments args and returns
// the exit status: that of [Parser.ParseCommandLine] for a command line
// that does not start the node; 1 after "PROG: ERR" on stderr when the
// config is bad, the log file cannot be opened, or the node cannot start
// or stops on an error (both logged too); 0 when the node stops normally.
func (d *Daemon[C]) Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	p := d.Options
	values, status, ok := p.ParseCommandLine(args, stdout, stderr)
	if !ok {
		return status
	}
	cfg, logfile, err := d.Config(values)
	if err != nil {
		return p.Fail(stderr, err)
	}
	nl, err := p.Logger(logfile, stderr, "node", d.Role, "cluster", values["cluster"])
	if err != nil {
		return p.Fail(stderr, err)
	}
	defer nl.Close()
	defer nl.PreMortem(nil)
	nl.File.SetCluster(values["cluster"])
	log := nl.Logger
	h := NewHTTP(values)
	node, err := d.New(cfg, nl, h)
	if err != nil {
		log.Error(d.Role+" not started", "err", err)
		return p.Fail(stderr, err)
	}
	stopHTTP, err := StartHTTP(ctx, values, h, log)
	if err != nil {
		log.Error(d.Role+" not started", "err", err)
		return p.Fail(stderr, err)
	}
	defer stopHTTP()
	var dump func(*slog.Logger)
	if sd, ok := node.(StateDumper); ok {
		dump = sd.LogState
	}
	defer nl.HandleSignals(ctx, dump)()
	err = node.Run(ctx)
	if err == nil || errors.Is(err, context.Canceled) || d.Stopped != nil && d.Stopped(err) {
		return 0
	}
	log.Error(d.Role+" stopped", "err", err)
	nl.PreMortem(err)
	return p.Fail(stderr, err)
}

// Lines returns the values of a Multiple option (one a line), without
// empty lines.
func Lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}
