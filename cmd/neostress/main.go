// Command neostress is the stress and fault-injection test of a NEO
// cluster: it starts a cluster (our Go nodes, neoppod's, or a mix) with
// the peers' neo-py-cluster.sh, runs a ZODB application workload through
// neoppod's unchanged Python client while it kills and restarts nodes or
// resets their TCP connections, then checks that no acknowledged commit
// was lost or duplicated and that the replicas agree. Run it with --help
// for the options, the workload and the verdict.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

const usage = `neostress: stress and fault-injection test of a NEO cluster through
neoppod's unchanged Python client or our Go client (the acceptance test
of fault tolerance).

usage: neostress [options]
       neostress --suite default|SPEC [options]

What one run does:
 1. Starts a cluster with ../shared/peers/neo-py-cluster.sh in a new
    temporary directory: --servers go (our Go binaries, copied from
    --go-bin so a concurrent 'make build' cannot change them), py
    (neoppod), mixed-go-master (Go master, admin and neoctl, neoppod
    storages) or mixed-py-master (neoppod master, admin and neoctl, Go
    storages); --storages, --masters, --replicas, --partitions. Master i
    listens on --port-base + 10*i, the admin on --port-base + 1.
 2. Runs --procs Python processes of --threads threads each (worker.py,
    embedded in this binary). Each thread has its own
    transaction.TransactionManager and ZODB connection and commits, at
    random: inserts of unique keys in a shared OOBTree plus a
    BTrees.Length counter (conflicts resolved by BTrees), increments of a
    hot counter without conflict resolution (ConflictError: the
    application retries, up to 20 attempts; counted as "conflicts", not as
    exceptions), appends to its own PersistentList, appends to a second
    list of its own (--undo percent of transactions) half of which it
    undoes with db.undo a second later (the delay undoLog gives real
    applications: see worker.py), and, from proc 0 thread 0 every
    --pack-every, db.pack(now - --pack-age). Every transaction is recorded before it
    starts and its outcome after (acknowledged = tpc_finish returned, with
    the tid). Any other exception that reaches the application is counted
    with its traceback; the thread aborts and goes on. An exception raised
    inside tpc_finish leaves the outcome unknown: either is accepted.
    With --client go, the workload goes through our Go client (package
    client) instead: --procs processes (this binary, one client.Client
    each) of --threads goroutines, the same records, heartbeats, summary
    and verdict. Each goroutine commits, at random: inserts of 1-3 new
    objects (NewOID + Store of a recorded unique value; 45%), increments
    of a hot counter object (load its serial and value, store value+1
    based on that serial; a *client.ConflictError is the application's
    retry signal, up to 20 attempts, counted as conflicts; 25%), appends
    to its own list object (load, store the list with one more entry;
    30%). No undo, pack or BTrees (package client has no conflict
    resolution, undo or pack): --undo, --pack-every and --pack-age do
    not apply. Any other error that reaches a goroutine is an exception
    (grouped by the client's sentinel it matches and the operation that
    returned it, with its text); an error from Finish leaves the outcome
    unknown, except client.ErrMasterLost, which Finish returns only for
    a transaction that did not commit (held to it). A load of a
    goroutine's own list that misses its last commit is a stale read,
    and fails the run (read-your-writes). The verification reads back, with a fresh Go client, the
    counter, the lists, and every oid below the next one the master
    allocates: present exactly when an insert was acknowledged (or of
    unknown outcome), with its value.
 3. Meanwhile, every --fault-every, injects one fault of --fault:
      storage-kill  kill -9 a storage, restart it after --restart-delay
                    with the same command line, environment and directory
                    (it gets a new port: storages bind 127.0.0.1:0)
      admin-kill    every --admin-every-th fault is a kill -9 + restart of
                    the admin instead
      master-kill   kill -9 the primary master (needs --masters 3), restart
      tcp-reset     reset every TCP connection of a running storage (ss -K,
                    both ends) without killing it, its master link too
      client-reset  reset only the connections a running storage accepted
                    (clients, replicating storages), not its master link
      slow-disk     throttle a running storage's writes to its disk to
                    --slow-iops write operations per second for --slow-for
                    (cgroup v1 blkio: each sync takes a fraction of a
                    second, as on a failing disk); needs root
      delay         add --delay (± --delay-jitter) of latency, each way,
                    to the data of every connection to a running storage
                    for --delay-for, then none again. Through a TCP proxy
                    of this tool per storage, for the whole run (the
                    kernel here has no netem): storage i listens on
                    --port-base + 50 + i, and an iptables DNAT rule
                    (nat OUTPUT, removed at the end) sends the
                    connections to that port to its proxy, which dials
                    the storage from 127.0.0.2. Needs root and iptables.
                    Limits: what a storage dials itself (its master link,
                    replication from other storages) is not delayed; data
                    is delayed by chunk as read, not packets (no effect
                    on TCP's own handshake and ACKs); while the storage
                    is down, its proxy accepts and resets connections
                    instead of refusing them. If the tool dies by
                    SIGKILL, remove its rules with iptables-legacy -t
                    nat -D (iptables-legacy -t nat -S OUTPUT shows them,
                    comment neostress-PID)
    A storage is faulted only when every partition keeps an UP_TO_DATE
    cell on another running storage (neoctl print pt); the tool waits for
    that (up to --safe-timeout) and reports the wait. Per fault it
    measures: time to the first commit begun after it, time until every
    cell is UP_TO_DATE again (print pt every 50 ms), and for master kills
    the failover time (until the admin knows another primary).
 4. After --duration: stops the workers, waits until every cell is
    UP_TO_DATE (--recover-timeout), then with a fresh client packs (if
    packs ran, waiting for the storages to finish it) and reads the
    database: every acknowledged insert present with its value, every
    append present in order unless undone, the hot counter equal to the
    acknowledged increments, no key or entry that was never acknowledged
    (except unknown outcomes), Length == len(tree), BTrees' own checks.
    Then runs 'neoctl check' on every partition and reads the outcome back
    from the storage and master logs (partition checked / corrupted /
    aborted) and from print pt (CORRUPTED cells).
 A worker without progress for --hang-timeout is a hang: its stacks
 are printed (SIGUSR1, faulthandler) and the run stops and fails.

The run fails (exit status 1) if anything was lost or duplicated, if there
were more than --max-exceptions exceptions, on a hang, if the check is not
clean, if the cells are not all UP_TO_DATE at the end, if a fault could not
be injected safely, or on any error of the tool itself (status 2 for bad
usage, 130 when interrupted). Everything the tool started is stopped at
the end, also on error or Ctrl-C (a second Ctrl-C abandons the cleanup).
If the tool itself is killed with SIGKILL, its workers die with it but the
cluster does not: stop it with
  NEO_DIR=WORKDIR/cluster neo-py-cluster.sh stop neostress
(WORKDIR is printed at the start of each run).

Output: a summary on stdout (commits, commits/s, conflicts, exceptions by
type with a traceback each, lost, duplicated, hangs, per-fault timings,
latencies), --json FILE the same as JSON. On failure the work directory
is kept (node logs *.log/*.out, worker records, worker stderr) and its
path printed; the SQLite databases are removed unless --keep, which
also keeps the whole directory after a pass.

With NEOSTRESS_CLIENT_LOG=1 in the environment, each worker process also
writes neoppod's client log (every packet, with times) to
records/client-P.log, read with neoppod's neolog: where a slow
transaction's time went, seen from the client. It slows the client and
distorts latencies: the client keeps a backlog of records in memory and
writes it all to the log at each warning (e.g. "a cell became
non-readable" after every storage kill), which stalls every thread of
the process for up to a second. Measure without it.

--suite runs several scenarios one after the other (each for --duration,
the other options apply to all) and prints a table; SPEC is a
space-separated list of SERVERS[/mN][/sN][/cgo|/cpy]:FAULT[+FAULT...]
(mN masters, sN storages, cgo/cpy the --client; 'default' is
"` + defaultSuite + `").

Examples:
  neostress                                   # 60 s, Go cluster, no faults
  neostress --servers go --fault storage-kill --duration 60s
  neostress --servers py --fault storage-kill,admin-kill --json out.json
  neostress --servers go --masters 3 --fault master-kill
  neostress --servers go --storages 3 --fault tcp-reset --fault storage-kill
  neostress --client go --servers py --fault storage-kill
  neostress --suite default --duration 75s    # what 'make stress' runs

Options:
`

// defaultSuite is what 'make stress' runs.
const defaultSuite = "go:storage-kill+admin-kill go:tcp-reset go/m3:master-kill go:slow-disk go/cgo:storage-kill+tcp-reset " +
	"mixed-go-master:storage-kill mixed-py-master:storage-kill py:storage-kill"

// exit statuses
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
	exitIntr  = 130
)

// config is one run's configuration, from the flags.
type config struct {
	Servers      string
	Client       string // py (worker.py) or go (goworker.go)
	Storages     int
	Masters      int
	Replicas     int
	Partitions   int
	PortBase     int
	Procs        int
	Threads      int
	Duration     time.Duration
	Faults       []string
	FaultEvery   time.Duration
	RestartDelay time.Duration
	SlowIOPS     int
	SlowFor      time.Duration
	Delay        time.Duration
	DelayJitter  time.Duration
	DelayFor     time.Duration
	AdminEvery   int
	PackEvery    time.Duration
	PackAge      time.Duration
	UndoPct      float64
	HangTimeout  time.Duration
	SafeTimeout  time.Duration
	Recover      time.Duration
	CheckTimeout time.Duration
	MaxExc       int
	InFlightOK   bool
	Seed         int64
	Keep         bool
	Verbose      bool
	PeersDir     string
	GoBin        string
	WorkParent   string
}

var (
	validServers = []string{"go", "py", "mixed-go-master", "mixed-py-master"}
	validClients = []string{"py", "go"}
	validFaults  = []string{"storage-kill", "admin-kill", "master-kill", "tcp-reset", "client-reset", "slow-disk", "delay"}
)

// validate checks the configuration, naming the option at fault.
func (c *config) validate() error {
	if !contains(validServers, c.Servers) {
		return fmt.Errorf("--servers %q: one of %s", c.Servers, strings.Join(validServers, ", "))
	}
	if !contains(validClients, c.Client) {
		return fmt.Errorf("--client %q: one of %s", c.Client, strings.Join(validClients, ", "))
	}
	for _, f := range c.Faults {
		if !contains(validFaults, f) {
			return fmt.Errorf("--fault %q: one of %s", f, strings.Join(validFaults, ", "))
		}
	}
	switch {
	case c.Storages < 1:
		return fmt.Errorf("--storages %d: at least 1", c.Storages)
	case c.Masters < 1:
		return fmt.Errorf("--masters %d: at least 1", c.Masters)
	case c.Replicas < 0 || c.Replicas >= c.Storages:
		return fmt.Errorf("--replicas %d: from 0 to --storages - 1 (%d)", c.Replicas, c.Storages-1)
	case c.Partitions < 1:
		return fmt.Errorf("--partitions %d: at least 1", c.Partitions)
	case c.Procs < 1 || c.Threads < 1:
		return fmt.Errorf("--procs %d --threads %d: at least 1 each", c.Procs, c.Threads)
	case c.Duration <= 0:
		return fmt.Errorf("--duration %v: must be positive", c.Duration)
	case c.FaultEvery <= 0:
		return fmt.Errorf("--fault-every %v: must be positive", c.FaultEvery)
	case c.AdminEvery < 1:
		return fmt.Errorf("--admin-every %d: at least 1", c.AdminEvery)
	case c.PortBase < 1024 || c.PortBase+10*c.Masters > 65535:
		return fmt.Errorf("--port-base %d: out of range", c.PortBase)
	case c.HangTimeout <= 0:
		return fmt.Errorf("--hang-timeout %v: must be positive", c.HangTimeout)
	case c.PackEvery > 0 && c.PackAge < 8*time.Second:
		return fmt.Errorf("--pack-age %v: at least 8s (undone appends are up to 5s old and must survive packs)", c.PackAge)
	}
	if (contains(c.Faults, "storage-kill") || contains(c.Faults, "tcp-reset") || contains(c.Faults, "client-reset")) && c.Replicas == 0 {
		return fmt.Errorf("--fault storage-kill/tcp-reset/client-reset needs --replicas >= 1 (nothing survives otherwise)")
	}
	if contains(c.Faults, "delay") {
		switch {
		case c.Delay <= 0 || c.DelayFor <= 0:
			return fmt.Errorf("--delay %v --delay-for %v: both must be positive", c.Delay, c.DelayFor)
		case c.DelayJitter < 0 || c.DelayJitter > c.Delay:
			return fmt.Errorf("--delay-jitter %v: from 0 to --delay (%v)", c.DelayJitter, c.Delay)
		case 10*(c.Masters-1) >= storagePortOffset:
			return fmt.Errorf("--fault delay: at most %d masters (storages listen from --port-base + %d)", storagePortOffset/10, storagePortOffset)
		case c.PortBase+storagePortOffset+c.Storages > 65535:
			return fmt.Errorf("--port-base %d: storages would listen beyond 65535", c.PortBase)
		}
	}
	if contains(c.Faults, "master-kill") && c.Masters < 2 {
		return fmt.Errorf("--fault master-kill needs --masters >= 2 (e.g. 3)")
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// faultList is a repeatable, comma-separated flag.
type faultList []string

func (f *faultList) String() string { return strings.Join(*f, ",") }

func (f *faultList) Set(v string) error {
	for _, x := range strings.Split(v, ",") {
		if x = strings.TrimSpace(x); x != "" && !contains(*f, x) {
			*f = append(*f, x)
		}
	}
	return nil
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without os.Exit: it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == goWorkerMode {
		return goWorkerMain(args[1:], stderr)
	}
	var c config
	var faults faultList
	var jsonOut, suite string
	fs := flag.NewFlagSet("neostress", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	fs.StringVar(&c.Servers, "servers", "go", "cluster nodes: go, py, mixed-go-master or mixed-py-master")
	fs.StringVar(&c.Client, "client", "py", "the workload's client: py (neoppod's, through ZODB) or go (ours, package client)")
	fs.IntVar(&c.Storages, "storages", 2, "storage nodes")
	fs.IntVar(&c.Masters, "masters", 1, "master nodes")
	fs.IntVar(&c.Replicas, "replicas", 1, "replicas of each partition")
	fs.IntVar(&c.Partitions, "partitions", 12, "partitions")
	fs.IntVar(&c.PortBase, "port-base", 22100, "first master port (masters every 10 ports, admin at +1)")
	fs.IntVar(&c.Procs, "procs", 2, "worker processes (one client each)")
	fs.IntVar(&c.Threads, "threads", 2, "application threads (goroutines) per worker process")
	fs.DurationVar(&c.Duration, "duration", 60*time.Second, "workload duration")
	fs.Var(&faults, "fault", "faults to inject (repeatable or comma list): storage-kill, admin-kill, master-kill, tcp-reset, client-reset, slow-disk, delay")
	fs.DurationVar(&c.FaultEvery, "fault-every", 3*time.Second, "interval between faults")
	fs.DurationVar(&c.RestartDelay, "restart-delay", 500*time.Millisecond, "delay between a kill and the restart")
	fs.IntVar(&c.SlowIOPS, "slow-iops", 10, "slow-disk: write operations per second the storage gets")
	fs.DurationVar(&c.SlowFor, "slow-for", 2*time.Second, "slow-disk: how long the storage's disk stays slow")
	fs.DurationVar(&c.Delay, "delay", 50*time.Millisecond, "delay: latency added to the data forwarded to and from the storage, each way")
	fs.DurationVar(&c.DelayJitter, "delay-jitter", 10*time.Millisecond, "delay: each chunk's latency is --delay ± up to this (uniform; order kept)")
	fs.DurationVar(&c.DelayFor, "delay-for", 2*time.Second, "delay: how long the storage's traffic stays delayed")
	fs.IntVar(&c.AdminEvery, "admin-every", 4, "with admin-kill: every Nth fault kills the admin")
	fs.DurationVar(&c.PackEvery, "pack-every", 10*time.Second, "interval between packs by proc 0 thread 0 (0: never)")
	fs.DurationVar(&c.PackAge, "pack-age", 10*time.Second, "packs are at now - this")
	fs.Float64Var(&c.UndoPct, "undo", 5, "percentage of transactions that append to the undoable list (half of those appends are undone)")
	fs.DurationVar(&c.HangTimeout, "hang-timeout", 30*time.Second, "a worker without progress that long is hung")
	fs.DurationVar(&c.SafeTimeout, "safe-timeout", 60*time.Second, "longest wait for a fault to be survivable")
	fs.DurationVar(&c.Recover, "recover-timeout", 60*time.Second, "longest wait at the end for every cell UP_TO_DATE")
	fs.DurationVar(&c.CheckTimeout, "check-timeout", 60*time.Second, "longest wait for neoctl check to finish")
	fs.IntVar(&c.MaxExc, "max-exceptions", 0, "exceptions tolerated before the run fails")
	fs.BoolVar(&c.InFlightOK, "in-flight-ok", false, "with master-kill: exceptions of transactions in flight at a primary kill (begun before it and raised after it, or raised by the client's link to the dead primary within 5 s) do not count against --max-exceptions")
	fs.Int64Var(&c.Seed, "seed", 0, "random seed (0: from the clock)")
	fs.StringVar(&jsonOut, "json", "", "write the summary as JSON to this file")
	fs.BoolVar(&c.Keep, "keep", false, "keep the whole work directory (databases too), after a pass as well: by default a pass removes it and a failure keeps logs and records")
	fs.BoolVar(&c.Verbose, "v", false, "print faults and progress as they happen")
	fs.StringVar(&c.PeersDir, "peers", defaultPeers(), "directory of neo-py-cluster.sh and env.sh (env NEO_PEERS)")
	fs.StringVar(&c.GoBin, "go-bin", defaultGoBin(), "directory of the Go neomaster, neostorage, neoadmin, neoctl")
	fs.StringVar(&c.WorkParent, "work-dir", os.TempDir(), "parent of the temporary work directory")
	fs.StringVar(&suite, "suite", "", "run several scenarios: 'default' or SPEC (see above)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "neostress: unexpected arguments %q (see --help)\n", fs.Args())
		return exitUsage
	}
	c.Faults = faults
	if c.Seed == 0 {
		c.Seed = time.Now().UnixNano() % 1_000_000_007
	}
	var runs []config
	if suite != "" {
		var err error
		if runs, err = parseSuite(suite, c); err != nil {
			fmt.Fprintf(stderr, "neostress: --suite: %v\n", err)
			return exitUsage
		}
	} else {
		runs = []config{c}
	}
	for i := range runs {
		if err := runs[i].validate(); err != nil {
			fmt.Fprintf(stderr, "neostress: %v\n", err)
			return exitUsage
		}
	}
	if err := checkEnvironment(&c, runs); err != nil {
		fmt.Fprintf(stderr, "neostress: %v\n", err)
		return exitUsage
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		// A second Ctrl-C kills the tool without cleaning up.
		stop()
	}()

	var results []*result
	status := exitOK
	for i, rc := range runs {
		rc.PeersDir, rc.GoBin = c.PeersDir, c.GoBin
		if len(runs) > 1 {
			fmt.Fprintf(stdout, "\n=== run %d/%d: %s\n", i+1, len(runs), rc.describe())
		}
		r := runOne(ctx, rc, stdout)
		results = append(results, r)
		if ctx.Err() != nil {
			status = exitIntr
			break
		}
		if !r.Pass && status == exitOK {
			status = exitFail
		}
	}
	if len(runs) > 1 {
		printSuite(stdout, results)
	}
	if jsonOut != "" {
		var v any = results[0]
		if len(runs) > 1 {
			v = results
		}
		if err := writeJSON(jsonOut, v); err != nil {
			fmt.Fprintf(stderr, "neostress: %v\n", err)
			if status == exitOK {
				status = exitFail
			}
		}
	}
	return status
}

// describe is a one-line description of the run's configuration.
func (c *config) describe() string {
	faults := "none"
	if len(c.Faults) > 0 {
		faults = strings.Join(c.Faults, ",") + " every " + c.FaultEvery.String()
	}
	return fmt.Sprintf("servers=%s client=%s storages=%d masters=%d replicas=%d partitions=%d procs=%d threads=%d duration=%v faults=%s",
		c.Servers, c.Client, c.Storages, c.Masters, c.Replicas, c.Partitions, c.Procs, c.Threads, c.Duration, faults)
}

// parseSuite expands --suite into one configuration per scenario, each
// a copy of base with the scenario's servers, masters, storages, client
// and faults.
func parseSuite(spec string, base config) ([]config, error) {
	if spec == "default" {
		spec = defaultSuite
	}
	var runs []config
	for _, item := range strings.Fields(spec) {
		c := base
		servers, faults, _ := strings.Cut(item, ":")
		parts := strings.Split(servers, "/")
		c.Servers = parts[0]
		for _, p := range parts[1:] {
			if cl, ok := strings.CutPrefix(p, "c"); ok && contains(validClients, cl) {
				c.Client = cl
				continue
			}
			var n int
			if len(p) < 2 {
				return nil, fmt.Errorf("%q: bad %q (want mN, sN, cgo or cpy)", item, p)
			}
			if _, err := fmt.Sscanf(p[1:], "%d", &n); err != nil {
				return nil, fmt.Errorf("%q: bad %q (want mN, sN, cgo or cpy)", item, p)
			}
			switch p[0] {
			case 'm':
				c.Masters = n
			case 's':
				c.Storages = n
			default:
				return nil, fmt.Errorf("%q: bad %q (want mN, sN, cgo or cpy)", item, p)
			}
		}
		c.Faults = nil
		for _, f := range strings.Split(faults, "+") {
			if f != "" {
				c.Faults = append(c.Faults, f)
			}
		}
		runs = append(runs, c)
	}
	if len(runs) == 0 {
		return nil, errors.New("no scenario")
	}
	return runs, nil
}

// defaultPeers is $NEO_PEERS, else ../shared/peers beside the repository
// this binary was built into (bin/..), else /work/shared/peers.
func defaultPeers() string {
	if p := os.Getenv("NEO_PEERS"); p != "" {
		return p
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "..", "..", "shared", "peers")
		if _, err := os.Stat(filepath.Join(p, "neo-py-cluster.sh")); err == nil {
			return filepath.Clean(p)
		}
	}
	return "/work/shared/peers"
}

// defaultGoBin is the directory of this binary ('make build' puts every
// command in ./bin).
func defaultGoBin() string {
	if exe, err := os.Executable(); err == nil {
		return filepath.Dir(exe)
	}
	return "bin"
}

// checkEnvironment fails early on a missing peers directory or Go binary.
func checkEnvironment(c *config, runs []config) error {
	for _, f := range []string{"neo-py-cluster.sh", "env.sh"} {
		if _, err := os.Stat(filepath.Join(c.PeersDir, f)); err != nil {
			return fmt.Errorf("--peers %s: %w", c.PeersDir, err)
		}
	}
	needGo := false
	for _, r := range runs {
		needGo = needGo || len(goRoles(r.Servers)) > 0
	}
	for _, b := range goBinaries {
		if !needGo {
			break
		}
		if _, err := os.Stat(filepath.Join(c.GoBin, b)); err != nil {
			return fmt.Errorf("--go-bin %s: %w (run make build)", c.GoBin, err)
		}
	}
	return nil
}
