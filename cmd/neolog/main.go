// Command neolog prints NEO log files (the SQLite logs that -l of every
// node writes, ours and neoppod's) as neoppod's neolog does, with its
// options: several files merged by date, packets decoded by package
// proto (-a), -f to follow.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/neogo/neo/internal/nodelog"
)

const usage = `usage: neolog [-h] [-a] [-A] [-c] [-d FORMAT] [-f] [-F PID] [-n NODE]
              [-s N] [--from N] [-C | -N]
              file [file ...]

NEO Log Reader: prints the log files that the -l option of NEO nodes
writes (SQLite, ours and neoppod's), several files merged by date. A
packet line is "#MSGID NAME > PEER" for a packet sent to PEER, "<" for
one received from it.

positional arguments:
  file                  log file, compressed (gz, bz2, xz or zst) or not

options:
  -h, --help            show this help message and exit
  -a, --all             decode body of packets (with our proto package)
  -A, --decompress      decompress data when decode body of packets (implies
                        --all)
  -c, --color           color lines according to severity, remove severity
                        column
  -d FORMAT, --date FORMAT
                        custom date format, according to strftime(3)
  -f, --follow          output appended data as the file grows
  -F PID, --flush PID   with -f, tell process PID to flush logs (SIGRTMIN)
                        approximately every N seconds (see -s); our nodes
                        ignore SIGRTMIN (Go cannot catch it): use
                        neoctl flush_log
  -n NODE, --node NODE  only show log entries from the given node (only
                        useful for logs produced by threaded tests), special
                        value '-' hides the column
  -s N, --sleep-interval N
                        with -f, sleep for approximately N seconds (default
                        1.0) between iterations
  --from N              show records more recent that timestamp N if N > 0,
                        or now+N if N < 0; N can also be a date
                        (2006-01-02 15:04:05[.frac], local time, or RFC 3339)
  -C, --cluster         show cluster name in node column
  -N, --no-nid          always show node name (instead of NID) in node column
`

// options are neolog's command line.
type options struct {
	decode     int // 0, 1 (-a), 2 (-A)
	color      bool
	dateFormat string
	follow     bool
	flushPIDs  []int
	nodes      []string
	nodeColumn bool
	sleep      float64
	from       float64
	cluster    bool
	noNID      bool
	files      []string
}

// parse parses args as neoppod's neolog (argparse): options and files in
// any order.
func parse(args []string, stderr io.Writer) (*options, error) {
	o := &options{dateFormat: "%F %T", sleep: 1, nodeColumn: true}
	fs := flag.NewFlagSet("neolog", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var all, decompress bool
	var date, from string
	for _, n := range []string{"a", "all"} {
		fs.BoolVar(&all, n, false, "")
	}
	for _, n := range []string{"A", "decompress"} {
		fs.BoolVar(&decompress, n, false, "")
	}
	for _, n := range []string{"c", "color"} {
		fs.BoolVar(&o.color, n, false, "")
	}
	for _, n := range []string{"d", "date"} {
		fs.StringVar(&date, n, "", "")
	}
	for _, n := range []string{"f", "follow"} {
		fs.BoolVar(&o.follow, n, false, "")
	}
	for _, n := range []string{"F", "flush"} {
		fs.Func(n, "", func(s string) error {
			pid, err := strconv.Atoi(s)
			if err != nil {
				return fmt.Errorf("invalid int value: %q", s)
			}
			o.flushPIDs = append(o.flushPIDs, pid)
			return nil
		})
	}
	for _, n := range []string{"n", "node"} {
		fs.Func(n, "", func(s string) error { o.nodes = append(o.nodes, s); return nil })
	}
	for _, n := range []string{"s", "sleep-interval"} {
		fs.Float64Var(&o.sleep, n, 1, "")
	}
	fs.StringVar(&from, "from", "", "")
	for _, n := range []string{"C", "cluster"} {
		fs.BoolVar(&o.cluster, n, false, "")
	}
	for _, n := range []string{"N", "no-nid"} {
		fs.BoolVar(&o.noNID, n, false, "")
	}
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		o.files = append(o.files, fs.Arg(0))
		args = fs.Args()[1:]
	}
	switch {
	case len(o.files) == 0:
		return nil, errors.New("the following arguments are required: file")
	case o.cluster && o.noNID:
		return nil, errors.New("argument -N/--no-nid: not allowed with argument -C/--cluster")
	case o.sleep <= 0:
		return nil, errors.New("sleep_interval must be positive")
	}
	if date != "" {
		o.dateFormat = date
	}
	switch {
	case decompress:
		o.decode = 2
	case all:
		o.decode = 1
	}
	if i := indexOf(o.nodes, "-"); i >= 0 {
		o.nodes = append(o.nodes[:i], o.nodes[i+1:]...)
		o.nodeColumn = false
	}
	if from != "" {
		f, err := parseFrom(from)
		if err != nil {
			return nil, err
		}
		o.from = f
	}
	return o, nil
}

func indexOf(l []string, s string) int {
	for i, x := range l {
		if x == s {
			return i
		}
	}
	return -1
}

// parseFrom parses --from: a UNIX time (now+N if negative) or a date.
func parseFrom(s string) (float64, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f < 0 {
			f += nowUnix()
		}
		return f, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return float64(t.UnixNano()) / 1e9, nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return float64(t.UnixNano()) / 1e9, nil
		}
	}
	return 0, fmt.Errorf("argument --from: cannot parse %q as a timestamp or a date", s)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without os.Exit: it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	for _, a := range args {
		if a == "-h" || a == "--help" {
			fmt.Fprint(stdout, usage)
			return 0
		}
	}
	o, err := parse(args, stderr)
	if err != nil {
		fmt.Fprint(stderr, strings.SplitN(usage, "\n\n", 2)[0]+"\n")
		fmt.Fprintf(stderr, "neolog: error: %v\n", err)
		return 2
	}
	var srcs []*source
	defer func() {
		for _, s := range srcs {
			s.close()
		}
	}()
	for _, f := range o.files {
		s, err := openSource(o, f)
		if err != nil {
			fmt.Fprintf(stderr, "neolog: %v\n", err)
			return 1
		}
		srcs = append(srcs, s)
	}
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	for {
		if err := emitMany(o, srcs, w); err != nil {
			w.Flush()
			fmt.Fprintf(stderr, "neolog: %v\n", err)
			return 1
		}
		if err := w.Flush(); err != nil {
			return 1 // EPIPE: the reader went away
		}
		if !o.follow {
			return 0
		}
		for _, pid := range o.flushPIDs {
			syscall.Kill(pid, nodelog.SigFlush)
		}
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(time.Duration(o.sleep * float64(time.Second))):
		}
	}
}

// emitMany prints the new events of every source, merged by date: the
// source with the earliest next event prints while its events are not
// later than the others' next.
func emitMany(o *options, srcs []*source, w io.Writer) error {
	type head struct {
		s    *source
		next func() (event, bool)
		e    event
	}
	var heads []*head
	for _, s := range srcs {
		next, done, err := s.pass()
		if err != nil {
			return err
		}
		defer done()
		if e, ok := next(); ok {
			heads = append(heads, &head{s, next, e})
		}
	}
	for len(heads) > 0 {
		min := 0
		for i, h := range heads {
			if h.e.date < heads[min].e.date {
				min = i
			}
		}
		h := heads[min]
		limit := float64(0)
		first := true
		for i, x := range heads {
			if i != min && (first || x.e.date < limit) {
				limit, first = x.e.date, false
			}
		}
		for {
			emit(o, h.s, h.e, w)
			e, ok := h.next()
			if !ok {
				heads = append(heads[:min], heads[min+1:]...)
				break
			}
			h.e = e
			if !first && e.date > limit {
				break
			}
		}
	}
	return nil
}

// colors of the levels with -c, as neoppod's neolog.
var colors = map[string]string{"DEBUG": "34", "INFO": "32", "WARNING": "33", "ERROR": "31", "CRITICAL": "31;01"}

// emit prints one event, each of its lines behind the same prefix.
func emit(o *options, s *source, e event, w io.Writer) {
	name := e.node
	if name == "" {
		name = s.name
	}
	if len(o.nodes) > 0 && indexOf(o.nodes, name) < 0 {
		return
	}
	prefix := ""
	if o.dateFormat != "" {
		d := math.Floor(e.date)
		prefix = strftime(o.dateFormat, time.Unix(int64(d), 0)) + fmt.Sprintf(".%04d ", int((e.date-d)*10000))
	}
	if !o.color {
		prefix += fmt.Sprintf("%-9s ", e.level)
	}
	if o.nodeColumn {
		prefix += fmt.Sprintf("%-10s ", name)
	}
	if c, ok := colors[e.level]; ok && o.color {
		for _, l := range e.lines {
			fmt.Fprintf(w, "\x1b[%sm%s%s\x1b[39;49;0m\n", c, prefix, l)
		}
		return
	}
	for _, l := range e.lines {
		fmt.Fprintf(w, "%s%s\n", prefix, l)
	}
}
