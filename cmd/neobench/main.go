// Command neobench measures a NEO cluster's storage speed through the
// native Go client (package client), so that the client's own CPU cost
// stays small next to the servers': run against a cluster of our nodes
// and against a neoppod cluster, it shows the servers' difference, which
// a benchmark through neoppod's Python client hides.
//
//	neobench --masters "127.0.0.1:21600" --cluster NAME [-n N] [-s S] [-k K]
//	         [-l L] [-t T] [-c C] [--phase-seconds SEC] [--label L] [--json]
//	         [-w W] [--pids FILE] [--fsync-dir DIR]
//
// The phases are those of neoppod's zbench.py (see usage), so that their
// JSON lines can be compared field by field; scripts/neobench runs it on
// both kinds of cluster and prints the ratios.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/neogo/neo/client"
	"github.com/neogo/neo/internal/cliopt"
	"github.com/neogo/neo/proto"
)

const usage = `usage: neobench --masters "HOST:PORT ..." --cluster NAME [options]

Storage benchmark of a NEO cluster (Go or neoppod nodes) through NEO's
native Go client. The phases, each bounded by its count and by
--phase-seconds, are those of neoppod's zbench.py, after the yardsticks:

  yardstick     the machine's raw limits, measured in the same run: a
                loopback TCP round trip to another process (a request of
                32 bytes, an answer of S bytes: a load without any server
                work; rtt_p50_us, and its CPU time in this process,
                client_cpu_us_per_op), and an append of S bytes + fsync to
                a file in --fsync-dir (fsync_p50_us)
  populate      N new objects of S incompressible bytes, K per transaction
                (NewOID, Store, Vote, Finish): commits/s, objects/s, latency
                of a commit
  load_cold     L random objects never read before, through a fresh client
                (the Go client has no cache: every load asks a storage),
                once with 1 goroutine, then with T goroutines sharing the
                client on another, disjoint sample of L: loads/s, latency
  load_warm     the same two samples again, through another fresh client:
                the storages' caches are warm
  small_commit  C transactions of 1 object each, the update of an existing
                object with its known serial: commits/s, latency
  commit_goroutines  W committers at once (-w) through one client, each
                updating its own objects, one per transaction, C commits
                in all: aggregate commits/s, latency (p99: the tail that
                concurrent committers meet)
  commit_clients     the same through W clients, one committer each

Loads ask for the revision current when the pass starts (before = last
tid + 1). Every loaded object is compared with what was stored (data and
serial); mismatches and failed loads are counted in "errors", and the
exit status is 1 if there was any. Progress goes to stderr; the results go
to stdout, as a table or, with --json, as one JSON line per metric with
zbench.py's field names (bench, label, metric, n, elapsed_s,
commits_per_s / objects_per_s / loads_per_s, p50_us, p99_us, ...), and
the client's own CPU time per operation (client_cpu_us_per_op) and as a
share of the wall time (client_share; 1 = one core busy throughout),
which tell whether the client, rather than the cluster, bounds a figure.
With --pids, each line also gives the CPU time of the cluster's nodes
during the phase (servers_cpu_ms, and servers_cpu_us_per_op), and "total"
theirs over the whole run, with each node's CPU time (nodes_cpu_ms, by
name) peak RSS (peak_rss_mib), and resident memory at the end,
anonymous (rss_anon_mib) and mapped file pages (rss_file_mib). The ratios to the raw limits: p50_per_rtt (of
the load passes: p50 / raw round trip) and p50_per_commit_limit (of
small_commit: p50 / (3 raw round trips + 1 raw fsync), a commit's least
cost: store, vote, finish, one durable write).

options:
  --masters ADDRS        master address(es), "host:port", separated by spaces
                         or commas (required)
  --cluster NAME         cluster name (required)
  -n N                   objects to populate (default 20000)
  -s S                   size of each object in bytes (default 1024)
  -k K                   objects per populate transaction (default 100)
  -l L                   loads per load pass (default 10000; at most half of
                         the objects populated, minus one)
  -t T                   goroutines of the parallel load passes (default 4)
  -c C                   small commits (default 1000; 0 skips the phase),
                         and commits of each concurrent phase
  -w W                   committers of the concurrent phases (default 16;
                         0 skips them)
  --phase-seconds SEC    time bound of each phase (default 25)
  --connect-timeout D    how long to wait for the cluster (default 30s)
  --seed SEED            seed of the samples and payloads (default 1)
  --label L              free-form tag copied in each JSON line
  --json                 one JSON line per metric instead of a table
  --debug                client log at debug level on stderr
  --cpuprofile FILE      write a CPU profile of the whole run (go tool pprof)
  --pids FILE            the cluster's processes, "PID NAME" lines (the pids
                         file of neo-py-cluster.sh): their CPU time per phase
                         (utime+stime, from /proc/PID/stat), and each one's
                         memory at the end (/proc/PID/status: VmHWM, RssAnon,
                         RssFile)
  --fsync-dir DIR        where the raw fsync is timed: a directory on the
                         storages' filesystem (default: the system's
                         temporary directory)
  -h, --help             this help

exit status: 0 success, 1 benchmark failure (cluster unreachable, failed
commit, load errors), 2 bad usage.

example:
  neobench --masters 127.0.0.1:21600 --cluster zbench-go -n 5000 -l 2000 -c 500
`

// options are neobench's command-line settings.
type options struct {
	masters        []string
	cluster        string
	objects        int
	size           int
	txnObjects     int
	loads          int
	threads        int
	smallCommits   int
	committers     int
	phaseSeconds   float64
	connectTimeout time.Duration
	seed           uint64
	label          string
	json           bool
	debug          bool
	cpuProfile     string
	pids           string
	fsyncDir       string
}

// parseArgs parses args; a usage error is a *[cliopt.UsageError], and -h
// prints the usage on out and returns [flag.ErrHelp].
func parseArgs(args []string, out io.Writer) (*options, error) {
	o := &options{}
	var masters string
	fs := flag.NewFlagSet("neobench", flag.ContinueOnError)
	fs.StringVar(&masters, "masters", "", "master addresses")
	fs.StringVar(&o.cluster, "cluster", "", "cluster name")
	fs.IntVar(&o.objects, "n", 20000, "objects to populate")
	fs.IntVar(&o.size, "s", 1024, "object size in bytes")
	fs.IntVar(&o.txnObjects, "k", 100, "objects per populate transaction")
	fs.IntVar(&o.loads, "l", 10000, "loads per load pass")
	fs.IntVar(&o.threads, "t", 4, "goroutines of the parallel load passes")
	fs.IntVar(&o.smallCommits, "c", 1000, "small commits")
	fs.IntVar(&o.committers, "w", 16, "concurrent committers")
	fs.Float64Var(&o.phaseSeconds, "phase-seconds", 25, "time bound of each phase")
	fs.DurationVar(&o.connectTimeout, "connect-timeout", 30*time.Second, "how long to wait for the cluster")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the samples and payloads")
	fs.StringVar(&o.label, "label", "", "tag of the JSON lines")
	fs.BoolVar(&o.json, "json", false, "JSON lines")
	fs.BoolVar(&o.debug, "debug", false, "client debug log")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "CPU profile of the client")
	fs.StringVar(&o.pids, "pids", "", "pids file of the cluster's nodes")
	fs.StringVar(&o.fsyncDir, "fsync-dir", os.TempDir(), "directory of the raw fsync")
	if err := cliopt.ParseFlags(fs, args, usage, out); err != nil {
		return nil, err
	}
	o.masters = strings.FieldsFunc(masters, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
	if err := o.check(); err != nil {
		return nil, err
	}
	return o, nil
}

// check validates the options.
func (o *options) check() error {
	switch {
	case len(o.masters) == 0:
		return &cliopt.UsageError{Msg: `--masters "HOST:PORT ..." is required`}
	case o.cluster == "" || strings.ContainsAny(o.cluster, " \t\n"):
		return &cliopt.UsageError{Msg: fmt.Sprintf("--cluster %q: a cluster name (one non-empty word) is required", o.cluster)}
	case o.objects < 1:
		return &cliopt.UsageError{Msg: fmt.Sprintf("-n %d: at least one object is needed", o.objects)}
	case o.size < 1:
		// An empty store is a deletion in NEO's protocol.
		return &cliopt.UsageError{Msg: fmt.Sprintf("-s %d: objects need at least one byte", o.size)}
	case o.txnObjects < 1:
		return &cliopt.UsageError{Msg: fmt.Sprintf("-k %d: at least one object per transaction is needed", o.txnObjects)}
	case o.loads < 1:
		return &cliopt.UsageError{Msg: fmt.Sprintf("-l %d: at least one load per pass is needed", o.loads)}
	case o.threads < 1:
		return &cliopt.UsageError{Msg: fmt.Sprintf("-t %d: at least one goroutine is needed", o.threads)}
	case o.smallCommits < 0:
		return &cliopt.UsageError{Msg: fmt.Sprintf("-c %d: cannot be negative", o.smallCommits)}
	case o.committers < 0:
		return &cliopt.UsageError{Msg: fmt.Sprintf("-w %d: cannot be negative", o.committers)}
	case o.smallCommits > 0 && o.committers > o.objects-1:
		// One object warms the clients; each committer needs its own.
		return &cliopt.UsageError{Msg: fmt.Sprintf("-w %d: more committers than objects to update (-n %d, minus one)", o.committers, o.objects)}
	case !(o.phaseSeconds > 0) || math.IsInf(o.phaseSeconds, 0):
		return &cliopt.UsageError{Msg: fmt.Sprintf("--phase-seconds %v: must be positive", o.phaseSeconds)}
	case o.connectTimeout <= 0:
		return &cliopt.UsageError{Msg: fmt.Sprintf("--connect-timeout %v: must be positive", o.connectTimeout)}
	}
	for _, m := range o.masters {
		host, port, err := net.SplitHostPort(m)
		if err != nil {
			return &cliopt.UsageError{Msg: fmt.Sprintf("--masters: %q is not host:port", m)}
		}
		if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 || host == "" {
			return &cliopt.UsageError{Msg: fmt.Sprintf("--masters: %q is not host:port", m)}
		}
	}
	return nil
}

// record is one result line; the field names are zbench.py's. Absent
// fields are those that do not apply to the metric.
type record struct {
	Bench       string   `json:"bench"`
	System      string   `json:"system"`
	Label       string   `json:"label"`
	Metric      string   `json:"metric"`
	Threads     int      `json:"threads,omitempty"`
	Commits     *int     `json:"commits,omitempty"`
	N           *int     `json:"n,omitempty"`
	ElapsedS    float64  `json:"elapsed_s"`
	CommitsPerS *float64 `json:"commits_per_s,omitempty"`
	ObjectsPerS *float64 `json:"objects_per_s,omitempty"`
	LoadsPerS   *float64 `json:"loads_per_s,omitempty"`
	P50us       *int64   `json:"p50_us,omitempty"`
	P99us       *int64   `json:"p99_us,omitempty"`
	MeanUs      *int64   `json:"mean_us,omitempty"`
	// CPU time of this process (the client) per operation, and as a
	// share of the phase's wall time (1 = one core busy all along).
	ClientCPUus *float64 `json:"client_cpu_us_per_op,omitempty"`
	ClientShare *float64 `json:"client_share,omitempty"`
	// CPU time of the cluster's nodes (--pids) during the phase.
	ServersCPUms      *float64 `json:"servers_cpu_ms,omitempty"`
	ServersCPUusPerOp *float64 `json:"servers_cpu_us_per_op,omitempty"`
	// The raw limits (metric yardstick) and the ratios to them.
	RTTp50us          *float64 `json:"rtt_p50_us,omitempty"`
	RTTp99us          *float64 `json:"rtt_p99_us,omitempty"`
	FsyncP50us        *float64 `json:"fsync_p50_us,omitempty"`
	FsyncP99us        *float64 `json:"fsync_p99_us,omitempty"`
	P50perRTT         *float64 `json:"p50_per_rtt,omitempty"`
	P50perCommitLimit *float64 `json:"p50_per_commit_limit,omitempty"`
	// CPU time of each node (--pids) over the run, in ms, by name.
	NodesCPUms map[string]float64 `json:"nodes_cpu_ms,omitempty"`
	// Peak RSS of each node (--pids; VmHWM), in MiB, at the end of the run.
	PeakRSSMiB map[string]float64 `json:"peak_rss_mib,omitempty"`
	// The resident anonymous memory (heap, stacks) and mapped file pages
	// (page cache, e.g. SQLite's mmap) of each node at the end, in MiB.
	RSSAnonMiB map[string]float64 `json:"rss_anon_mib,omitempty"`
	RSSFileMiB map[string]float64 `json:"rss_file_mib,omitempty"`
	Errors     *int               `json:"errors,omitempty"`
	FirstError *string            `json:"first_error,omitempty"`
	Complete   *bool              `json:"complete,omitempty"`
	OK         *bool              `json:"ok,omitempty"`
	Objects    int                `json:"objects"`
	Size       int                `json:"size"`
	TxnObjects int                `json:"txn_objects"`
}

func ptr[T any](v T) *T { return &v }

// round rounds x to d decimals, as the JSON figures are.
func round(x float64, d int) float64 {
	p := math.Pow(10, float64(d))
	return math.Round(x*p) / p
}

// rate is n per second over el, rounded to 0.1.
func rate(n int, el time.Duration) *float64 {
	if el <= 0 {
		return nil
	}
	return ptr(round(float64(n)/el.Seconds(), 1))
}

// latencies sorts lat and returns its p50, p99 and mean in µs (nil if
// empty); the percentile is zbench.py's: the nearest rank.
func latencies(lat []time.Duration) (p50, p99, mean *int64) {
	if len(lat) == 0 {
		return nil, nil, nil
	}
	slices.Sort(lat)
	pct := func(q float64) *int64 {
		return ptr(lat[rank(len(lat), q)].Microseconds())
	}
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	return pct(.5), pct(.99), ptr((sum / time.Duration(len(lat))).Microseconds())
}

// cpuTime returns the CPU time this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// clientCPU fills r's client CPU fields from the CPU time cpu spent
// over el for ops operations.
func (r *record) clientCPU(cpu, el time.Duration, ops int) {
	if ops > 0 {
		r.ClientCPUus = ptr(round(float64(cpu.Microseconds())/float64(ops), 1))
	}
	if el > 0 {
		r.ClientShare = ptr(round(cpu.Seconds()/el.Seconds(), 3))
	}
}

// meter measures a phase: its wall time, the client's CPU time and the
// nodes' CPU time.
type meter struct {
	t0          time.Time
	client, srv time.Duration
	b           *bench
}

func (b *bench) meter() (*meter, error) {
	srv, err := serversCPU(b.nodes)
	if err != nil {
		return nil, err
	}
	return &meter{t0: time.Now(), client: cpuTime(), srv: srv, b: b}, nil
}

// stop fills r's elapsed time and CPU fields for ops operations.
func (m *meter) stop(r *record, ops int) error {
	el, cpu := time.Since(m.t0), cpuTime()-m.client
	r.ElapsedS = round(el.Seconds(), 3)
	r.clientCPU(cpu, el, ops)
	if len(m.b.nodes) == 0 {
		return nil
	}
	srv, err := serversCPU(m.b.nodes)
	if err != nil {
		return err
	}
	srv -= m.srv
	r.ServersCPUms = ptr(round(float64(srv.Microseconds())/1000, 1))
	if ops > 0 {
		r.ServersCPUusPerOp = ptr(round(float64(srv.Microseconds())/float64(ops), 1))
	}
	return nil
}

// bench is one benchmark run.
type bench struct {
	o        *options
	out      io.Writer
	progress io.Writer
	log      *slog.Logger
	rand     *rand.Rand
	noise    []byte // incompressible payload material (NEO compresses)
	next     int    // offset in noise of the next payload
	expected map[proto.Oid][]byte
	serial   map[proto.Oid]proto.Tid
	warmOid  proto.Oid
	header   bool
	nodes    []node // --pids
	// The raw limits measured by yardstick.
	rttP50, fsyncP50 time.Duration
}

func newBench(o *options, out, progress io.Writer, log *slog.Logger) *bench {
	b := &bench{o: o, out: out, progress: progress, log: log,
		rand:     rand.New(rand.NewPCG(o.seed, 0x6e656f)),
		expected: map[proto.Oid][]byte{}, serial: map[proto.Oid]proto.Tid{}}
	var seed [32]byte
	seed[0] = byte(o.seed)
	noise := rand.NewChaCha8(seed)
	// One offset per payload, each a distinct window of the noise: no
	// two objects share their data (a storage stores equal data once,
	// which would shrink a scale benchmark's database). Payloads: the
	// objects, the small commits, and the two concurrent phases' one per
	// object at most.
	b.noise = make([]byte, max(1<<20, 2*o.size)+3*o.objects+o.smallCommits)
	noise.Read(b.noise)
	return b
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.progress, "neobench: "+format+"\n", args...)
}

// payload returns S bytes of noise from the next offset: a slice of
// b.noise, which nothing writes (Store does not keep or change its data),
// not a copy, so that the client's CPU per operation counts no copying of
// the benchmark's own.
func (b *bench) payload() []byte {
	off := b.next % (len(b.noise) - b.o.size + 1)
	b.next++
	return b.noise[off : off+b.o.size : off+b.o.size]
}

// emit writes r as a JSON line or as a table row.
func (b *bench) emit(r record) error {
	r.Bench, r.System, r.Label = "neobench", "neo", b.o.label
	r.Objects, r.Size, r.TxnObjects = b.o.objects, b.o.size, b.o.txnObjects
	if b.o.json {
		line, err := json.Marshal(r)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(b.out, "%s\n", line)
		return err
	}
	if !b.header {
		b.header = true
		fmt.Fprintf(b.out, "%-17s %3s %7s %9s %11s %-10s %8s %8s %9s %9s %6s\n",
			"metric", "thr", "n", "elapsed_s", "rate", "unit", "p50_us", "p99_us", "cpu_us/op", "srv_cpu_ms", "errors")
	}
	if r.Metric == "yardstick" {
		_, err := fmt.Fprintf(b.out, "%-17s raw round trip p50 %.1f us p99 %.1f us (%.1f us CPU); raw append+fsync p50 %.1f us p99 %.1f us\n",
			r.Metric, *r.RTTp50us, *r.RTTp99us, *r.ClientCPUus, *r.FsyncP50us, *r.FsyncP99us)
		return err
	}
	num := func(p *int64) string {
		if p == nil {
			return "-"
		}
		return strconv.FormatInt(*p, 10)
	}
	var rt *float64
	unit := ""
	switch {
	case r.LoadsPerS != nil:
		rt, unit = r.LoadsPerS, "loads/s"
	case r.CommitsPerS != nil:
		rt, unit = r.CommitsPerS, "commits/s"
	}
	cols := []string{"-", "-", "-", "-", "-"}
	if r.N != nil {
		cols[0] = strconv.Itoa(*r.N)
	}
	if rt != nil {
		cols[1] = strconv.FormatFloat(*rt, 'f', 1, 64)
	}
	if r.Errors != nil {
		cols[2] = strconv.Itoa(*r.Errors)
	}
	thr := ""
	if r.Threads > 0 {
		thr = strconv.Itoa(r.Threads)
	}
	if r.OK != nil {
		cols[2] = map[bool]string{true: "ok", false: "FAILED"}[*r.OK]
	}
	if r.ClientCPUus != nil {
		cols[3] = strconv.FormatFloat(*r.ClientCPUus, 'f', 1, 64)
	}
	if r.ServersCPUms != nil {
		cols[4] = strconv.FormatFloat(*r.ServersCPUms, 'f', 0, 64)
	}
	_, err := fmt.Fprintf(b.out, "%-17s %3s %7s %9.3f %11s %-10s %8s %8s %9s %9s %6s\n",
		r.Metric, thr, cols[0], r.ElapsedS, cols[1], unit, num(r.P50us), num(r.P99us), cols[3], cols[4], cols[2])
	for _, name := range slices.Sorted(maps.Keys(r.PeakRSSMiB)) {
		if err == nil {
			_, err = fmt.Fprintf(b.out, "%-17s %s: CPU %.0f ms, peak RSS %.1f MiB, at the end anonymous %.1f MiB + file pages %.1f MiB\n",
				"", name, r.NodesCPUms[name], r.PeakRSSMiB[name], r.RSSAnonMiB[name], r.RSSFileMiB[name])
		}
	}
	if err == nil && r.ObjectsPerS != nil {
		_, err = fmt.Fprintf(b.out, "%-17s %3s %7s %9s %11.1f %s\n", "", "", "", "", *r.ObjectsPerS, "objects/s")
	}
	return err
}

// open connects a new client to the cluster, within --connect-timeout.
func (b *bench) open(ctx context.Context) (*client.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, b.o.connectTimeout)
	defer cancel()
	c, err := client.Open(ctx, client.Config{Masters: b.o.masters, Cluster: b.o.cluster, Logger: b.log})
	if err != nil {
		return nil, fmt.Errorf("cannot reach cluster %s via %s within %v: %w",
			b.o.cluster, strings.Join(b.o.masters, " "), b.o.connectTimeout, err)
	}
	return c, nil
}

// phase is the time bound of a phase (--phase-seconds).
func (o *options) phase() time.Duration {
	return time.Duration(o.phaseSeconds * float64(time.Second))
}

// phaseSlack bounds, after the end of a phase, the operation in
// progress: one that hangs ends the benchmark rather than blocking it.
const phaseSlack = time.Minute

// commit stores items in one transaction and returns its tid.
func commit(ctx context.Context, c *client.Client, oids []proto.Oid, serials []proto.Tid, data [][]byte) (proto.Tid, error) {
	txn, err := c.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	fail := func(err error) (proto.Tid, error) {
		txn.Abort(ctx)
		return 0, err
	}
	for i, oid := range oids {
		if err := txn.Store(ctx, oid, serials[i], data[i]); err != nil {
			return fail(fmt.Errorf("store oid %v: %w", oid, err))
		}
	}
	if err := txn.Vote(ctx); err != nil {
		return fail(fmt.Errorf("vote: %w", err))
	}
	tid, err := txn.Finish(ctx)
	if err != nil {
		return 0, fmt.Errorf("finish: %w", err)
	}
	return tid, nil
}

// us is d in µs.
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// pctUs is the nearest-rank percentile q of the sorted lat in µs,
// rounded to 0.1.
func pctUs(lat []time.Duration, q float64) *float64 {
	return ptr(round(us(lat[rank(len(lat), q)]), 1))
}

// rank is the index of the nearest-rank percentile q of n sorted values
// (zbench.py's).
func rank(n int, q float64) int { return min(n-1, int(q*float64(n-1)+0.5)) }

// yardstick measures the machine's raw limits (see usage).
func (b *bench) yardstick(ctx context.Context) error {
	b.logf("yardstick: %d raw round trips, %d raw appends + fsyncs in %s", rttCount, fsyncCount, b.o.fsyncDir)
	rtt, rttCPU, err := rawRTT(ctx, b.o.size)
	if err != nil {
		return err
	}
	fsync, err := rawFsync(b.o.fsyncDir, b.o.size)
	if err != nil {
		return err
	}
	slices.Sort(rtt)
	slices.Sort(fsync)
	r := record{Metric: "yardstick", RTTp50us: pctUs(rtt, .5), RTTp99us: pctUs(rtt, .99),
		FsyncP50us: pctUs(fsync, .5), FsyncP99us: pctUs(fsync, .99), ClientCPUus: ptr(round(us(rttCPU), 1))}
	b.rttP50, b.fsyncP50 = rtt[rank(len(rtt), .5)], fsync[rank(len(fsync), .5)]
	return b.emit(r)
}

// populate stores the objects, K per transaction.
func (b *bench) populate(ctx context.Context, c *client.Client) error {
	o := b.o
	ctx, cancel := context.WithTimeout(ctx, o.phase()+phaseSlack)
	defer cancel()
	deadline := time.Now().Add(o.phase())
	var lat []time.Duration
	n := 0
	m, err := b.meter()
	if err != nil {
		return err
	}
	for n < o.objects && time.Now().Before(deadline) {
		k := min(o.txnObjects, o.objects-n)
		oids := make([]proto.Oid, k)
		serials := make([]proto.Tid, k)
		data := make([][]byte, k)
		for i := range k {
			oid, err := c.NewOID(ctx)
			if err != nil {
				return fmt.Errorf("populate: new oid: %w", err)
			}
			oids[i], serials[i], data[i] = oid, proto.ZeroTid, b.payload()
		}
		t1 := time.Now()
		tid, err := commit(ctx, c, oids, serials, data)
		if err != nil {
			return fmt.Errorf("populate: transaction %d: %w", len(lat)+1, err)
		}
		lat = append(lat, time.Since(t1))
		for i, oid := range oids {
			b.expected[oid] = data[i]
			b.serial[oid] = tid
		}
		n += k
	}
	el := time.Since(m.t0)
	p50, p99, mean := latencies(lat)
	r := record{Metric: "populate", Commits: ptr(len(lat)), N: ptr(n),
		CommitsPerS: rate(len(lat), el), ObjectsPerS: rate(n, el), P50us: p50, P99us: p99, MeanUs: mean,
		Complete: ptr(n == o.objects)}
	if err := m.stop(&r, len(lat)); err != nil {
		return err
	}
	return b.emit(r)
}

// loadErrors collects the failures of a load pass.
type loadErrors struct {
	mu    sync.Mutex
	n     int
	first string
}

func (e *loadErrors) add(msg string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.n == 0 {
		e.first = msg
	}
	e.n++
}

// loadLoop loads oids in turn as of before, checking each against what
// was stored, and appends the latencies to *lat; it stops at the first
// failed load (as zbench.py) or after deadline.
func (b *bench) loadLoop(ctx context.Context, c *client.Client, oids []proto.Oid, before proto.Tid,
	lat *[]time.Duration, deadline time.Time, errs *loadErrors) {
	for _, oid := range oids {
		t1 := time.Now()
		obj, err := c.Load(ctx, oid, before)
		if err != nil {
			errs.add(err.Error())
			return
		}
		*lat = append(*lat, time.Since(t1))
		switch {
		case !bytes.Equal(obj.Data, b.expected[oid]):
			errs.add(fmt.Sprintf("bad data for oid %v: %d bytes, want %d", oid, len(obj.Data), len(b.expected[oid])))
		case obj.Serial != b.serial[oid]:
			errs.add(fmt.Sprintf("bad serial for oid %v: %v, want %v", oid, obj.Serial, b.serial[oid]))
		}
		if len(*lat)%64 == 0 && time.Now().After(deadline) {
			return
		}
	}
}

// loadPass loads oids through c with threads goroutines on disjoint
// parts of oids; it reports whether every load succeeded.
func (b *bench) loadPass(ctx context.Context, c *client.Client, metric string, oids []proto.Oid, threads int) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, b.o.phase()+phaseSlack)
	defer cancel()
	last, err := c.LastTid(ctx)
	if err != nil {
		return false, fmt.Errorf("%s: last tid: %w", metric, err)
	}
	before := last + 1
	deadline := time.Now().Add(b.o.phase())
	var errs loadErrors
	lats := make([][]time.Duration, threads)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range threads {
		var part []proto.Oid
		for j := i; j < len(oids); j += threads {
			part = append(part, oids[j])
		}
		wg.Go(func() {
			<-start
			b.loadLoop(ctx, c, part, before, &lats[i], deadline, &errs)
		})
	}
	m, err := b.meter()
	if err != nil {
		close(start)
		wg.Wait()
		return false, err
	}
	close(start)
	wg.Wait()
	el := time.Since(m.t0)
	lat := slices.Concat(lats...)
	p50, p99, mean := latencies(lat)
	r := record{Metric: metric, Threads: threads, N: ptr(len(lat)),
		LoadsPerS: rate(len(lat), el), P50us: p50, P99us: p99, MeanUs: mean, Errors: ptr(errs.n)}
	if err := m.stop(&r, len(lat)); err != nil {
		return false, err
	}
	if p50 != nil && b.rttP50 > 0 {
		r.P50perRTT = ptr(round(float64(*p50)/us(b.rttP50), 2))
	}
	if errs.n > 0 {
		r.FirstError = ptr(errs.first)
	}
	return errs.n == 0, b.emit(r)
}

// smallCommits updates the first C objects of oids, one per transaction.
func (b *bench) smallCommits(ctx context.Context, c *client.Client, oids []proto.Oid) error {
	o := b.o
	ctx, cancel := context.WithTimeout(ctx, o.phase()+phaseSlack)
	defer cancel()
	deadline := time.Now().Add(o.phase())
	var lat []time.Duration
	m, err := b.meter()
	if err != nil {
		return err
	}
	for _, oid := range oids[:min(o.smallCommits, len(oids))] {
		data := b.payload()
		t1 := time.Now()
		tid, err := commit(ctx, c, []proto.Oid{oid}, []proto.Tid{b.serial[oid]}, [][]byte{data})
		if err != nil {
			return fmt.Errorf("small commit %d: %w", len(lat)+1, err)
		}
		lat = append(lat, time.Since(t1))
		b.serial[oid], b.expected[oid] = tid, data
		if time.Now().After(deadline) {
			break
		}
	}
	el := time.Since(m.t0)
	p50, p99, mean := latencies(lat)
	r := record{Metric: "small_commit", N: ptr(len(lat)),
		CommitsPerS: rate(len(lat), el), P50us: p50, P99us: p99, MeanUs: mean}
	if err := m.stop(&r, len(lat)); err != nil {
		return err
	}
	if limit := 3*b.rttP50 + b.fsyncP50; p50 != nil && limit > 0 {
		r.P50perCommitLimit = ptr(round(float64(*p50)/us(limit), 2))
	}
	return b.emit(r)
}

// concurrentCommits runs o.committers committers at once, through the
// clients cs (one shared by all, or one each), each updating its own
// objects of oids in turn, one per transaction, o.smallCommits commits in
// all; it emits metric with the aggregate rate and the latencies.
func (b *bench) concurrentCommits(ctx context.Context, metric string, cs []*client.Client, oids []proto.Oid) error {
	o := b.o
	w := o.committers
	ctx, cancel := context.WithTimeout(ctx, o.phase()+phaseSlack)
	defer cancel()
	deadline := time.Now().Add(o.phase())
	type committer struct {
		oids    []proto.Oid
		serials []proto.Tid
		data    [][]byte
		lat     []time.Duration
		err     error
	}
	// Disjoint objects: the committers never conflict.
	per := len(oids) / w
	if per == 0 {
		return fmt.Errorf("%s: -w %d committers need as many objects, only %d (raise -n)", metric, w, len(oids))
	}
	ws := make([]*committer, w)
	for i := range ws {
		m := &committer{oids: oids[i*per : (i+1)*per]}
		for _, oid := range m.oids {
			m.serials = append(m.serials, b.serial[oid])
			m.data = append(m.data, b.payload())
		}
		ws[i] = m
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, m := range ws {
		c := cs[i%len(cs)]
		n := o.smallCommits / w
		if i < o.smallCommits%w {
			n++
		}
		wg.Go(func() {
			<-start
			for j := range n {
				k := j % len(m.oids)
				t1 := time.Now()
				tid, err := commit(ctx, c, m.oids[k:k+1], m.serials[k:k+1], m.data[k:k+1])
				if err != nil {
					m.err = fmt.Errorf("%s: commit %d of committer %d: %w", metric, j+1, i, err)
					return
				}
				m.lat = append(m.lat, time.Since(t1))
				m.serials[k] = tid
				if time.Now().After(deadline) {
					return
				}
			}
		})
	}
	mt, err := b.meter()
	if err != nil {
		close(start)
		wg.Wait()
		return err
	}
	close(start)
	wg.Wait()
	el := time.Since(mt.t0)
	var lat []time.Duration
	for _, m := range ws {
		if m.err != nil {
			return m.err
		}
		lat = append(lat, m.lat...)
		for k, oid := range m.oids {
			if m.serials[k] != b.serial[oid] {
				b.serial[oid], b.expected[oid] = m.serials[k], m.data[k]
			}
		}
	}
	p50, p99, mean := latencies(lat)
	r := record{Metric: metric, Threads: w, N: ptr(len(lat)),
		CommitsPerS: rate(len(lat), el), P50us: p50, P99us: p99, MeanUs: mean}
	if err := mt.stop(&r, len(lat)); err != nil {
		return err
	}
	return b.emit(r)
}

// fresh opens a new client and warms its connections with one load,
// outside the measurements.
func (b *bench) fresh(ctx context.Context) (*client.Client, error) {
	c, err := b.open(ctx)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := c.Load(wctx, b.warmOid, proto.InvalidTid); err != nil {
		c.Close()
		return nil, fmt.Errorf("warm-up load of oid %v: %w", b.warmOid, err)
	}
	return c, nil
}

// run runs every phase; it returns whether every load was right, and
// the error that stopped the benchmark if any.
func (b *bench) run(ctx context.Context) (bool, error) {
	o := b.o
	if o.pids != "" {
		nodes, err := readPids(o.pids)
		if err != nil {
			return false, fmt.Errorf("--pids: %w", err)
		}
		b.nodes = nodes
	}
	total, err := b.meter()
	if err != nil {
		return false, err
	}
	nodes0, err := nodesCPU(b.nodes)
	if err != nil {
		return false, err
	}
	c, err := b.open(ctx)
	if err != nil {
		return false, err
	}
	if err := b.yardstick(ctx); err != nil {
		c.Close()
		return false, err
	}
	b.logf("populate: %d objects x %d bytes, %d per transaction", o.objects, o.size, o.txnObjects)
	err = b.populate(ctx, c)
	c.Close()
	if err != nil {
		return false, err
	}
	oids := make([]proto.Oid, 0, len(b.expected))
	for oid := range b.expected {
		oids = append(oids, oid)
	}
	slices.Sort(oids)
	b.warmOid = oids[0]
	pool := oids[1:]
	b.rand.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
	l := min(o.loads, len(pool)/2)
	if l < o.loads {
		b.logf("-l %d: only %d objects per sample (half of the %d populated, minus one)", o.loads, l, len(oids))
	}
	samples := [][]proto.Oid{pool[:l], pool[l : 2*l]}
	ok := true
	if l > 0 {
		for _, metric := range []string{"load_cold", "load_warm"} {
			for i, threads := range []int{1, o.threads} {
				b.logf("%s threads=%d n=%d", metric, threads, l)
				c, err := b.fresh(ctx)
				if err != nil {
					return false, err
				}
				passOK, err := b.loadPass(ctx, c, metric, samples[i], threads)
				c.Close()
				if err != nil {
					return false, err
				}
				ok = ok && passOK
			}
		}
	}
	if o.smallCommits > 0 {
		b.logf("small commits: %d", o.smallCommits)
		c, err := b.fresh(ctx)
		if err != nil {
			return false, err
		}
		b.rand.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
		err = b.smallCommits(ctx, c, pool)
		if err == nil && o.committers > 0 {
			b.logf("concurrent commits: %d by %d goroutines through one client", o.smallCommits, o.committers)
			err = b.concurrentCommits(ctx, "commit_goroutines", []*client.Client{c}, pool)
		}
		c.Close()
		if err != nil {
			return false, err
		}
		if o.committers > 0 {
			b.logf("concurrent commits: %d by %d clients", o.smallCommits, o.committers)
			cs := make([]*client.Client, 0, o.committers)
			for range o.committers {
				c, err := b.fresh(ctx)
				if err != nil {
					err = fmt.Errorf("client %d of commit_clients: %w", len(cs)+1, err)
				} else {
					cs = append(cs, c)
				}
				if err != nil {
					for _, c := range cs {
						c.Close()
					}
					return false, err
				}
			}
			err = b.concurrentCommits(ctx, "commit_clients", cs, pool)
			for _, c := range cs {
				c.Close()
			}
			if err != nil {
				return false, err
			}
		}
	}
	r := record{Metric: "total", OK: ptr(ok)}
	if err := total.stop(&r, 0); err != nil {
		return false, err
	}
	r.ClientCPUus, r.ClientShare = nil, nil
	if len(b.nodes) > 0 {
		peak, anon, file, err := nodesMemory(b.nodes)
		if err != nil {
			return false, err
		}
		r.PeakRSSMiB, r.RSSAnonMiB, r.RSSFileMiB = peak, anon, file
		nodes1, err := nodesCPU(b.nodes)
		if err != nil {
			return false, err
		}
		r.NodesCPUms = map[string]float64{}
		for name, cpu := range nodes1 {
			r.NodesCPUms[name] = round(float64((cpu-nodes0[name]).Microseconds())/1000, 1)
		}
	}
	return ok, b.emit(r)
}

// run is main without os.Exit: it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseArgs(args, stdout)
	if err != nil {
		return cliopt.UsageStatus("neobench", err, stderr)
	}
	level := slog.LevelError
	if o.debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "neobench: --cpuprofile: %v\n", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "neobench: --cpuprofile %s: %v\n", o.cpuProfile, err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	b := newBench(o, stdout, stderr, log)
	ok, err := b.run(ctx)
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "neobench: %v\n", err)
		return 1
	case !ok:
		fmt.Fprintln(stderr, "neobench: some loads failed or returned wrong data (see errors, first_error)")
		return 1
	}
	return 0
}

func main() {
	if size, ok := os.LookupEnv(echoEnv); ok {
		if err := echoServe(size, os.Stdout); err != nil {
			fmt.Fprintf(os.Stderr, "neobench echo process: %v\n", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
