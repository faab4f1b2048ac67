package cliopt

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
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

// Logger returns the daemon's logger: text lines appended to logfile, or
// written to stderr when logfile is "", at debug level when the
// environment sets NEO_DEBUG. The logger has attrs, and has logged the
// parser's warnings, so that the log file says them too. closeLog closes the
// log file.
func (p *Parser) Logger(logfile string, stderr io.Writer, attrs ...any) (log *slog.Logger, closeLog func() error, err error) {
	w, closeLog := stderr, func() error { return nil }
	if logfile != "" {
		f, err := os.OpenFile(logfile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, nil, err
		}
		w, closeLog = f, f.Close
	}
	level := slog.LevelInfo
	if os.Getenv("NEO_DEBUG") != "" {
		level = slog.LevelDebug
	}
	log = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})).With(attrs...)
	for _, m := range p.Warnings {
		log.Warn(m)
	}
	return log, closeLog, nil
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
