package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/neogo/neo/ctl"
	"github.com/neogo/neo/internal/nodelog"
	"github.com/neogo/neo/neonet"
)

// Main is neoctl: Run parses a command line and executes it.
type Main struct {
	Stdout io.Writer // what the command prints
	Stderr io.Writer // option errors and usage
}

// command is a node of the command tree: a group (subs) or a command
// (run). help is printed, indented, under the name in the command list.
type command struct {
	name string
	help string
	subs []*command
	run  func(ctx context.Context, e *env, args []string) error
}

// commands is the command tree, in the order the command list shows it.
var commands = []*command{
	{name: "print", subs: []*command{cmdPrintIDs, cmdPrintPT, cmdPrintNode, cmdPrintCluster, cmdPrintPrimary, cmdPrintSummary}},
	{name: "set", subs: []*command{cmdSetCluster, cmdSetReplicas}},
	cmdCheck, cmdStart, cmdAdd, cmdTweak, cmdDrop, cmdKill, cmdPruneOrphan, cmdTruncate, cmdFlushLog,
}

// tidSyntax ends the command list.
const tidSyntax = "A TID argument is written tid:<integer> (any case; decimal, or hexadecimal" +
	" with 0x), or as a UNIX time <float> that is converted to a TID:" +
	" 'tid:0x3937af2eeeeeeee', 'tid:257684787499560686' and '1325421296'" +
	" (2012-01-01 12:34:56 UTC) are valid."

// env is what a command runs with: the admin connection, made on first
// use, and the output.
type env struct {
	cfg    ctl.Config
	out    io.Writer
	client *ctl.Client
}

// admin returns the connection to the admin node, connecting if needed.
func (e *env) admin(ctx context.Context) (*ctl.Client, error) {
	if e.client == nil {
		c, err := ctl.Dial(ctx, e.cfg)
		if err != nil {
			return nil, err
		}
		e.client = c
	}
	return e.client, nil
}

// println prints one result line (or several, joined by newlines).
func (e *env) println(s string) { fmt.Fprintln(e.out, s) }

// printAnswer connects to the admin, asks it with ask and prints the
// answer: the end of most commands.
func (e *env) printAnswer(ctx context.Context, ask func(*ctl.Client) (string, error)) error {
	c, err := e.admin(ctx)
	if err != nil {
		return err
	}
	s, err := ask(c)
	if err != nil {
		return err
	}
	e.println(s)
	return nil
}

// Run executes the command line args (without the program name).
func (m *Main) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("neoctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var addr, logfile, ca, cert, key string
	fs.StringVar(&addr, "a", ctl.DefaultAddr, "")
	fs.StringVar(&addr, "address", ctl.DefaultAddr, "")
	fs.StringVar(&logfile, "l", "", "")
	fs.StringVar(&logfile, "logfile", "", "")
	fs.StringVar(&ca, "ca", "", "")
	fs.StringVar(&cert, "cert", "", "")
	fs.StringVar(&key, "key", "", "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(m.Stdout, usage)
			return nil
		}
		fmt.Fprintf(m.Stderr, "%sneoctl: error: %v\n", usage, err)
		return &usageError{err}
	}
	args = fs.Args()
	if len(args) == 0 {
		fmt.Fprintln(m.Stdout, commandList())
		return nil
	}
	cmd, rest := lookup(args)
	if cmd == nil {
		return &invalidCommandError{args}
	}

	e := &env{out: m.Stdout, cfg: ctl.Config{Logger: slog.New(slog.DiscardHandler)}}
	if logfile != "" {
		// neoppod's neoctl -l writes each record at once (no buffer):
		// it exits before anyone could ask it to flush.
		f, err := nodelog.Open(logfile, nodelog.Options{MaxBuffer: -1, Level: slog.LevelDebug})
		if err != nil {
			return fmt.Errorf("open log file: %w", err)
		}
		defer f.Close()
		e.cfg.Logger = slog.New(f.Handler(nil)).With("pid", os.Getpid())
		e.cfg.Observer = f.Observer()
	}
	var err error
	if e.cfg.Addr, err = resolveAddr(ctx, addr); err != nil {
		return err
	}
	switch {
	case ca == "" && cert == "" && key == "":
	case ca == "" || cert == "" || key == "":
		return errors.New("TLS needs all of --ca, --cert and --key")
	default:
		if e.cfg.TLS, err = neonet.LoadTLS(ca, cert, key); err != nil {
			return err
		}
	}
	defer func() {
		if e.client != nil {
			e.client.Close()
		}
	}()
	e.cfg.Logger.Debug("run", "args", args)
	err = cmd.run(ctx, e, rest)
	if err != nil {
		e.cfg.Logger.Debug("failed", "args", args, "err", err)
	}
	return err
}

// lookup finds the command named by the first words of args and returns
// it with its arguments; nil if args name no command (or only a group).
func lookup(args []string) (*command, []string) {
	level := commands
	for i, a := range args {
		var found *command
		for _, c := range level {
			if c.name == a {
				found = c
			}
		}
		switch {
		case found == nil:
			return nil, nil
		case found.run != nil:
			return found, args[i+1:]
		}
		level = found.subs
	}
	return nil, nil
}

// resolveAddr turns the -a value into "ip:port": "host", "host:port",
// "[ipv6]" or "[ipv6]:port", default port 9999; a name is resolved once,
// first address first, as neoppod does.
func resolveAddr(ctx context.Context, addr string) (string, error) {
	host, port := addr, "9999"
	switch {
	case strings.HasPrefix(addr, "["):
		h, p, ok := strings.Cut(addr[1:], "]")
		if !ok || p != "" && !strings.HasPrefix(p, ":") {
			return "", fmt.Errorf("invalid admin address %q", addr)
		}
		host = h
		if p != "" {
			port = p[1:]
		}
	case strings.Count(addr, ":") == 1:
		host, port, _ = strings.Cut(addr, ":")
	}
	if _, err := net.LookupPort("tcp", port); err != nil || port == "" {
		return "", fmt.Errorf("invalid admin address %q: bad port %q", addr, port)
	}
	ips, err := net.DefaultResolver.LookupHost(ctx, host)
	if err != nil {
		return "", fmt.Errorf("invalid admin address %q: %w", addr, err)
	}
	return net.JoinHostPort(ips[0], port), nil
}

// usage is printed for -h and after an invalid option.
const usage = `usage: neoctl [-h] [-l LOGFILE] [--ca CA] [--cert CERT] [--key KEY]
              [-a ADDRESS] [command ...]

Control a NEO cluster through one of its admin nodes.

arguments:
  command               the command and its arguments; without it, the
                        commands are listed

options:
  -h, --help            print this help and exit
  -l LOGFILE, --logfile LOGFILE
                        write a debug log of the exchange to LOGFILE
                        (neoppod's SQLite log, every packet; read it with neolog)
  --ca CA               TLS: certificate authority, PEM
  --cert CERT           TLS: this node's certificate, PEM
  --key KEY             TLS: this node's private key, PEM
  -a ADDRESS, --address ADDRESS
                        admin node to talk to (default: 127.0.0.1:9999)
`

// commandList is what neoctl prints without a command: the command tree
// with the help of each command, and the TID syntax.
func commandList() string {
	var b strings.Builder
	b.WriteString("Available commands:\n")
	var walk func(cs []*command, level int)
	walk = func(cs []*command, level int) {
		indent := strings.Repeat("  ", level)
		for _, c := range cs {
			b.WriteString(indent + c.name + "\n")
			if c.subs != nil {
				walk(c.subs, level+1)
				continue
			}
			for _, line := range strings.Split(strings.Trim(c.help, "\n"), "\n") {
				if line != "" {
					line = indent + "  " + line
				}
				b.WriteString(line + "\n")
			}
		}
	}
	walk(commands, 0)
	b.WriteString(tidSyntax)
	return b.String()
}
