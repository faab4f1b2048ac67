package main

// One run: cluster, workload, faults, verification, check, report.

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

//go:embed worker.py
var workerPy []byte

// result is one run's summary (--json).
type result struct {
	Scenario string    `json:"scenario"`
	Servers  string    `json:"servers"`
	Client   string    `json:"client"`
	Storages int       `json:"storages"`
	Masters  int       `json:"masters"`
	Replicas int       `json:"replicas"`
	Faults   []string  `json:"faults"`
	Seed     int64     `json:"seed"`
	WorkDir  string    `json:"work_dir"`
	Started  time.Time `json:"started"`

	WorkloadSeconds float64        `json:"workload_s"`
	Commits         int            `json:"commits"`
	CommitsPerSec   float64        `json:"commits_per_s"`
	ByOp            map[string]int `json:"commits_by_op"`
	Conflicts       int            `json:"conflicts"`
	StaleReads      int            `json:"stale_reads,omitempty"` // Go client: own commit not seen
	StaleMsgs       []string       `json:"stale_read_examples,omitempty"`
	GaveUp          int            `json:"gave_up"`
	Unknown         int            `json:"unknown_outcome"`
	Exceptions      int            `json:"exceptions"`
	ExcAfterFault   int            `json:"exceptions_after_fault"` // within afterFault of a fault
	// ExcInFlight: exceptions of attempts begun before a primary master
	// kill and ended by the exception after it.
	ExcInFlight  int        `json:"exceptions_in_flight_at_master_kill"`
	ExcGroups    []excGroup `json:"exception_groups"`
	Latency      latency    `json:"latency"`
	LongestStall float64    `json:"longest_stall_s"` // longest time without any commit
	// Delayed: the workload while a delay fault was on, and outside.
	Delayed *delayedStats `json:"delayed,omitempty"`

	Verify     *verdict         `json:"verify"`
	Hangs      []hang           `json:"hangs"`
	Died       []string         `json:"died,omitempty"`
	Events     []*faultEvent    `json:"faults_injected"`
	FaultStats []faultKindStats `json:"fault_stats"`
	UpToDate   bool             `json:"up_to_date_at_end"`
	RecoverEnd float64          `json:"recover_at_end_s"`
	Check      *checkResult     `json:"check"`

	Interrupted bool `json:"interrupted,omitempty"`
	workStart   time.Time
	verbose     bool
	Errors      []string `json:"errors,omitempty"` // of the tool or the cluster's start
	Failures    []string `json:"failures"`
	Pass        bool     `json:"pass"`
}

// delayedStats compares the transactions begun while a delay fault was
// on with the others.
type delayedStats struct {
	Seconds      float64 `json:"seconds"` // total time with a delay on
	CommitsPerS  float64 `json:"commits_per_s"`
	OtherPerS    float64 `json:"other_commits_per_s"`
	P50          float64 `json:"p50_s"` // of the transactions begun with a delay on
	P99          float64 `json:"p99_s"`
	OtherP50     float64 `json:"other_p50_s"`
	OtherP99     float64 `json:"other_p99_s"`
	Transactions int     `json:"transactions"`
}

// delayStats splits the acknowledged transactions by whether they began
// while a delay fault was on.
func delayStats(h *history, events []*faultEvent, start, end float64) *delayedStats {
	type window struct{ from, to float64 }
	var ws []window
	total := 0.0
	for _, ev := range events {
		if ev.Kind == "delay" && !ev.At.IsZero() && !ev.Until.IsZero() {
			w := window{unix(ev.At), unix(ev.Until)}
			ws = append(ws, w)
			total += w.to - w.from
		}
	}
	if len(ws) == 0 {
		return nil
	}
	in := func(t float64) bool {
		for _, w := range ws {
			if t >= w.from && t < w.to {
				return true
			}
		}
		return false
	}
	var on, off []float64
	for _, txns := range h.Txns {
		for _, t := range txns {
			if t.outcome() != committed {
				continue
			}
			if d := t.End.T - t.Begin.T; in(t.Begin.T) {
				on = append(on, d)
			} else {
				off = append(off, d)
			}
		}
	}
	s := &delayedStats{Seconds: total, Transactions: len(on)}
	if total > 0 {
		s.CommitsPerS = float64(len(on)) / total
	}
	if rest := end - start - total; rest > 0 {
		s.OtherPerS = float64(len(off)) / rest
	}
	pct := func(xs []float64, p int) float64 {
		if len(xs) == 0 {
			return 0
		}
		sort.Float64s(xs)
		return xs[min(len(xs)-1, len(xs)*p/100)]
	}
	s.P50, s.P99, s.OtherP50, s.OtherP99 = pct(on, 50), pct(on, 99), pct(off, 50), pct(off, 99)
	return s
}

// latency of acknowledged transactions, first attempt to acknowledgement.
type latency struct {
	P50   float64 `json:"p50_s"`
	P99   float64 `json:"p99_s"`
	Max   float64 `json:"max_s"`
	MaxOf string  `json:"max_of"`
}

func (r *result) fail(format string, args ...any) {
	r.Failures = append(r.Failures, fmt.Sprintf(format, args...))
}

// runOne runs one scenario and prints its summary.
func runOne(ctx context.Context, cfg config, stdout io.Writer) *result {
	r := &result{Scenario: cfg.describe(), Servers: cfg.Servers, Client: cfg.Client, Storages: cfg.Storages, Masters: cfg.Masters,
		Replicas: cfg.Replicas, Faults: cfg.Faults, Seed: cfg.Seed, Started: time.Now(), verbose: cfg.Verbose}
	if r.Faults == nil {
		r.Faults = []string{}
	}
	work, err := os.MkdirTemp(cfg.WorkParent, "neostress-")
	if err != nil {
		r.Errors = append(r.Errors, err.Error())
		r.finish(stdout, &cfg)
		return r
	}
	r.WorkDir = work
	fmt.Fprintf(stdout, "neostress: %s seed=%d\n  work dir %s\n", r.Scenario, cfg.Seed, work)
	script := filepath.Join(work, "worker.py")
	cl, lay, err := r.setup(ctx, &cfg, work, script, stdout)
	defer func() {
		if cl != nil {
			if err := cl.stop(); err != nil {
				r.Errors = append(r.Errors, err.Error())
			}
		}
		if ctx.Err() != nil {
			r.Interrupted = true
		}
		r.finish(stdout, &cfg)
		r.cleanWork(stdout, &cfg)
	}()
	if err != nil {
		r.Errors = append(r.Errors, err.Error())
		return r
	}
	r.exercise(ctx, &cfg, cl, lay, work, script)
	return r
}

// setup writes the worker script, starts the cluster and creates the
// database's structures (with the Go client: the layout of its
// objects). The cluster is returned (to be stopped) even with an error.
func (r *result) setup(ctx context.Context, cfg *config, work, script string, stdout io.Writer) (*cluster, *goLayout, error) {
	if err := os.WriteFile(script, workerPy, 0o755); err != nil {
		return nil, nil, err
	}
	records := filepath.Join(work, "records")
	if err := os.MkdirAll(records, 0o755); err != nil {
		return nil, nil, err
	}
	py, err := loadPyEnv(ctx, cfg.PeersDir)
	if err != nil {
		return nil, nil, err
	}
	if contains(cfg.Faults, "tcp-reset") || contains(cfg.Faults, "client-reset") {
		if err := probeReset(ctx); err != nil {
			return nil, nil, fmt.Errorf("tcp-reset/client-reset: %w", err)
		}
	}
	if contains(cfg.Faults, "delay") {
		if err := probeDelay(ctx); err != nil {
			return nil, nil, err
		}
	}
	t0 := time.Now()
	cl, err := startCluster(ctx, cfg, work, py)
	if err != nil {
		return cl, nil, err
	}
	fmt.Fprintf(stdout, "  cluster RUNNING in %.1fs: masters %s admin %s\n", time.Since(t0).Seconds(), cl.mastersString(), cl.admin)
	var names []string
	for p := 0; p < cfg.Procs; p++ {
		for t := 0; t < cfg.Threads; t++ {
			names = append(names, fmt.Sprintf("%d.%d", p, t))
		}
	}
	if cfg.Client == "go" {
		lay, err := goInit(ctx, cl.masters, cl.name, names, records)
		return cl, lay, err
	}
	ictx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	x := exec.CommandContext(ictx, py.PY, script, "init", cl.mastersString(), cl.name, "--workers", strings.Join(names, ","))
	x.Env = py.env()
	if out, err := x.CombinedOutput(); err != nil {
		return cl, nil, fmt.Errorf("worker.py init: %w\n%s", err, lastLines(string(out), 30))
	}
	return cl, nil, nil
}

// exercise runs the workload and the faults, then verifies.
func (r *result) exercise(ctx context.Context, cfg *config, cl *cluster, lay *goLayout, work, script string) {
	w := newWatcher(cl.ctl)
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	go w.run(wctx)

	ws := &workers{cfg: cfg, dir: filepath.Join(work, "records"), script: script, py: cl.py}
	start := time.Now()
	if err := ws.start(cl.mastersString(), cl.name); err != nil {
		r.Errors = append(r.Errors, err.Error())
		ws.kill()
		return
	}
	var progress io.Writer
	if cfg.Verbose {
		progress = os.Stdout
	}
	in := &injector{cfg: cfg, cl: cl, w: w, rnd: rand.New(rand.NewSource(cfg.Seed)), start: start, log: progress}
	if contains(cfg.Faults, "slow-disk") {
		sd, err := newSlowDisk(cl.dir, cfg.SlowIOPS)
		if err != nil {
			r.Errors = append(r.Errors, err.Error())
			ws.kill()
			return
		}
		defer sd.close()
		in.slow = sd
	}
	fctx, fcancel := context.WithCancel(ctx)
	tctx, tcancel := context.WithCancel(ctx) // trackers: until the end of the final wait
	defer tcancel()
	faultsDone := make(chan struct{})
	go func() {
		defer close(faultsDone)
		if len(cfg.Faults) > 0 {
			in.run(fctx, tctx)
		}
	}()
	hangs, died := ws.watch(ctx, start.Add(cfg.Duration), progress)
	fcancel()
	<-faultsDone
	r.Hangs = append(r.Hangs, hangs...)
	r.Died = died
	r.Hangs = append(r.Hangs, ws.stop()...)
	r.WorkloadSeconds = time.Since(start).Seconds()
	if ctx.Err() != nil {
		r.Interrupted = true
		tcancel()
		in.trackers.Wait()
		r.Events = in.snapshotEvents()
		if h, err := loadHistory(ws.dir); err == nil {
			r.summarize(h, start)
		}
		return
	}

	// Every cell UP_TO_DATE again (the restarts of the last faults have
	// happened: the injector is done), and the trackers of the last
	// faults saw it.
	t0 := time.Now()
	rctx, rcancel := context.WithTimeout(ctx, cfg.Recover)
	_, err := w.waitUpToDate(rctx, cfg.Storages)
	r.RecoverEnd = time.Since(t0).Seconds()
	r.UpToDate = err == nil
	trackersDone := make(chan struct{})
	go func() {
		in.trackers.Wait()
		close(trackersDone)
	}()
	select {
	case <-trackersDone:
	case <-rctx.Done():
	}
	rcancel()
	tcancel()
	<-trackersDone
	r.Events = in.snapshotEvents()

	h, err := loadHistory(ws.dir)
	if err != nil {
		r.Errors = append(r.Errors, err.Error())
		return
	}
	r.summarize(h, start)
	if ctx.Err() != nil {
		return
	}

	// Read the database back with a fresh client (after a last pack that
	// every storage finished, so that replicas compare equal).
	var db *dbState
	if cfg.Client == "go" {
		db, err = goDump(ctx, cl.masters, cl.name, lay)
	} else {
		packAge := 0.0
		if cfg.PackEvery > 0 {
			packAge = cfg.PackAge.Seconds()
		}
		db, err = dumpDB(ctx, cl, script, packAge)
	}
	if err != nil {
		r.Errors = append(r.Errors, err.Error())
	} else {
		v := verify(h, db)
		r.Verify = &v
	}
	if ctx.Err() != nil {
		return
	}
	if r.UpToDate {
		c := runCheck(ctx, cl, script)
		r.Check = &c
	}
}

// dumpDB reads the database with 'worker.py dump' (bounded: 3 minutes).
func dumpDB(ctx context.Context, cl *cluster, script string, packAge float64) (*dbState, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	x := exec.CommandContext(ctx, cl.py.PY, script, "dump", cl.mastersString(), cl.name, "--pack-age", fmt.Sprint(packAge))
	x.Env = cl.py.env()
	var stderr strings.Builder
	x.Stderr = &stderr
	out, err := x.Output()
	if err != nil {
		return nil, fmt.Errorf("read the database back (worker.py dump): %w\n%s", err, lastLines(stderr.String(), 40))
	}
	var db dbState
	if err := json.Unmarshal(out, &db); err != nil {
		return nil, fmt.Errorf("worker.py dump: %w", err)
	}
	return &db, nil
}

// summarize computes the workload's figures from the records.
func (r *result) summarize(h *history, start time.Time) {
	r.ByOp = map[string]int{}
	r.Conflicts = h.Conflicts
	r.StaleReads, r.StaleMsgs = h.Stale, h.StaleMsg
	var lat []float64
	var acks []float64
	for _, txns := range h.Txns {
		for _, t := range txns {
			switch t.outcome() {
			case committed:
				r.Commits++
				r.ByOp[t.Begin.Op]++
				d := t.End.T - t.Begin.T
				lat = append(lat, d)
				if d > r.Latency.Max {
					r.Latency.Max = d
					r.Latency.MaxOf = fmt.Sprintf("%s, worker %s seq %d, %d attempts, at +%.1fs", t.Begin.Op, t.Worker,
						t.Begin.Seq, t.End.Attempts, t.Begin.T-unix(start))
				}
				acks = append(acks, t.End.T)
			case unknownOutcome:
				r.Unknown++
			default:
				if t.End != nil && t.End.K == "gaveup" {
					r.GaveUp++
				}
			}
		}
	}
	r.workStart = start
	r.Exceptions = len(h.Errors)
	r.ExcGroups = groupErrors(h.Errors)
	for _, e := range h.Errors {
		for _, ev := range r.Events {
			if d := e.T - unix(ev.At); !ev.At.IsZero() && d >= 0 && d <= afterFault.Seconds() {
				r.ExcAfterFault++
				break
			}
		}
		if inFlightAtMasterKill(e.record, r.Events) {
			r.ExcInFlight++
		}
	}
	if r.WorkloadSeconds > 0 {
		r.CommitsPerSec = float64(r.Commits) / r.WorkloadSeconds
	}
	sort.Float64s(lat)
	if len(lat) > 0 {
		r.Latency.P50 = lat[len(lat)/2]
		r.Latency.P99 = lat[min(len(lat)-1, len(lat)*99/100)]
	}
	sort.Float64s(acks)
	prev := unix(start)
	for _, a := range acks {
		r.LongestStall = max(r.LongestStall, a-prev)
		prev = a
	}
	// per fault: the first commit of a transaction whose last attempt
	// began after it
	for _, ev := range r.Events {
		if ev.At.IsZero() {
			continue
		}
		at := unix(ev.At)
		best := -1.0
		for _, txns := range h.Txns {
			for _, t := range txns {
				if t.outcome() == committed && t.End.Ta > at && (best < 0 || t.End.T < best) {
					best = t.End.T
				}
			}
		}
		if best >= 0 {
			ev.FirstCommit = secsF(best - at)
		}
	}
	r.FaultStats = faultStats(r.Events)
	r.Delayed = delayStats(h, r.Events, unix(start), unix(start)+r.WorkloadSeconds)
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func secsF(s float64) *float64 { return &s }

// faultKindStats is the timings of one kind of fault (seconds).
type faultKindStats struct {
	Kind        string `json:"kind"`
	Injected    int    `json:"injected"`
	Skipped     int    `json:"skipped"`
	SafeWait    stat   `json:"safe_wait_s"`
	FirstCommit stat   `json:"first_commit_s"`
	UpToDate    stat   `json:"up_to_date_s"`
	Failover    stat   `json:"failover_s"`
	AdminUp     stat   `json:"admin_back_s"`
	Sockets     stat   `json:"reset_sockets"`
	Delayed     stat   `json:"delayed_chunks"`
	NoCommit    int    `json:"no_commit_after"`
	NoUpToDate  int    `json:"never_up_to_date"`
	Errors      int    `json:"errors"`
}

// stat is the median and maximum of a measurement, N samples.
type stat struct {
	N      int     `json:"n"`
	Median float64 `json:"median"`
	Max    float64 `json:"max"`
}

func statOf(xs []float64) stat {
	if len(xs) == 0 {
		return stat{}
	}
	sort.Float64s(xs)
	return stat{N: len(xs), Median: xs[len(xs)/2], Max: xs[len(xs)-1]}
}

func faultStats(events []*faultEvent) []faultKindStats {
	var kinds []string
	samples := map[string]map[string][]float64{}
	stats := map[string]*faultKindStats{}
	for _, ev := range events {
		s, ok := stats[ev.Kind]
		if !ok {
			s = &faultKindStats{Kind: ev.Kind}
			stats[ev.Kind] = s
			samples[ev.Kind] = map[string][]float64{}
			kinds = append(kinds, ev.Kind)
		}
		m := samples[ev.Kind]
		m["safe"] = append(m["safe"], ev.SafeWait)
		if ev.Err != "" {
			s.Errors++
		}
		if ev.At.IsZero() {
			s.Skipped++
			continue
		}
		s.Injected++
		add := func(k string, p *float64, missing *int) {
			if p != nil {
				m[k] = append(m[k], *p)
			} else if missing != nil {
				*missing++
			}
		}
		add("commit", ev.FirstCommit, &s.NoCommit)
		if ev.Kind != "admin-kill" {
			add("uptodate", ev.UpToDate, &s.NoUpToDate)
		}
		if isReset(ev.Kind) {
			m["sockets"] = append(m["sockets"], float64(ev.Sockets))
		}
		if ev.Kind == "delay" {
			m["delayed"] = append(m["delayed"], float64(ev.Delayed))
		}
		add("failover", ev.Failover, nil)
		add("admin", ev.AdminUp, nil)
	}
	var out []faultKindStats
	for _, k := range kinds {
		s, m := stats[k], samples[k]
		s.SafeWait, s.FirstCommit, s.UpToDate = statOf(m["safe"]), statOf(m["commit"]), statOf(m["uptodate"])
		s.Failover, s.AdminUp = statOf(m["failover"]), statOf(m["admin"])
		s.Sockets, s.Delayed = statOf(m["sockets"]), statOf(m["delayed"])
		out = append(out, *s)
	}
	return out
}

// finish decides the verdict and prints the summary.
func (r *result) finish(w io.Writer, cfg *config) {
	if len(r.Errors) > 0 {
		r.fail("%d error(s) of the tool or the cluster", len(r.Errors))
	}
	if r.Interrupted {
		r.fail("interrupted")
	} else if v := r.Verify; v != nil {
		if v.Lost > 0 {
			r.fail("lost: %d", v.Lost)
		}
		if v.Duplicated > 0 {
			r.fail("duplicated: %d", v.Duplicated)
		}
		if v.Inconsistent > 0 {
			r.fail("inconsistent: %d", v.Inconsistent)
		}
	} else if len(r.Errors) == 0 {
		r.fail("database not verified")
	}
	if r.Interrupted {
		r.Pass = false
		r.print(w)
		return
	}
	switch {
	case !cfg.InFlightOK && r.Exceptions > cfg.MaxExc:
		r.fail("exceptions: %d > --max-exceptions %d", r.Exceptions, cfg.MaxExc)
	case cfg.InFlightOK && r.Exceptions-r.ExcInFlight > cfg.MaxExc:
		r.fail("exceptions not in flight at a master kill: %d > --max-exceptions %d", r.Exceptions-r.ExcInFlight, cfg.MaxExc)
	}
	if r.StaleReads > 0 {
		r.fail("stale reads: %d (a load missed the worker's own last commit)", r.StaleReads)
	}
	if len(r.Hangs) > 0 {
		r.fail("hangs: %d", len(r.Hangs))
	}
	if len(r.Died) > 0 {
		r.fail("workers died: %d", len(r.Died))
	}
	if r.WorkloadSeconds > 0 && !r.UpToDate {
		r.fail("cells not all UP_TO_DATE %v after the workload", cfg.Recover)
	}
	skipped := 0
	for _, ev := range r.Events {
		if ev.Skipped != "" {
			skipped++
		}
	}
	if skipped > 0 {
		r.fail("faults not injected (never survivable within --safe-timeout): %d", skipped)
	}
	if r.Check != nil && !r.Check.Clean {
		r.fail("replica check not clean")
	} else if r.Check == nil && r.Verify != nil && r.UpToDate {
		r.fail("replica check not run")
	}
	if len(cfg.Faults) > 0 && len(r.Events) == 0 && r.Verify != nil {
		r.fail("no fault injected")
	}
	r.Pass = len(r.Failures) == 0
	if r.Failures == nil {
		r.Failures = []string{}
	}
	r.print(w)
}

// cleanWork removes the work directory after a pass, keeps it after a
// failure (without the databases); --keep keeps it whole in both cases.
func (r *result) cleanWork(w io.Writer, cfg *config) {
	if r.WorkDir == "" {
		return
	}
	if r.Pass && !cfg.Keep {
		if err := os.RemoveAll(r.WorkDir); err != nil {
			fmt.Fprintf(w, "  remove %s: %v\n", r.WorkDir, err)
		}
		return
	}
	if !cfg.Keep {
		dbs, _ := filepath.Glob(filepath.Join(r.WorkDir, "cluster", "*.sqlite*"))
		for _, f := range dbs {
			os.Remove(f)
		}
		os.RemoveAll(filepath.Join(r.WorkDir, "bin"))
	}
	fmt.Fprintf(w, "  logs: %s (cluster/NAME.log and NAME.out: nodes; records/: workers' records and stderr)\n", r.WorkDir)
}

// placeInTime describes a UNIX time as an offset in the workload and
// its distance to the fault before it.
func (r *result) placeInTime(t float64) string {
	s := fmt.Sprintf("+%.2fs", t-unix(r.workStart))
	var last *faultEvent
	for _, ev := range r.Events {
		if !ev.At.IsZero() && unix(ev.At) <= t && (last == nil || ev.At.After(last.At)) {
			last = ev
		}
	}
	if last != nil {
		s += fmt.Sprintf(", %.2fs after fault %d (%s %s %s)", t-unix(last.At), last.N, last.Kind, last.Target, last.NID)
	}
	return s
}

// inFlightAtMasterKill tells whether the attempt that raised e was in
// flight at a primary master kill, which no master can save (neoppod's
// client fails a transaction whose primary is lost): it began before
// the kill and raised after it, or it raised, within afterFault of the
// kill, an error of the client's link to the primary (a request sent
// before the client saw the link close, or a ttid of the dead primary:
// worker.py via_primary).
func inFlightAtMasterKill(e record, events []*faultEvent) bool {
	for _, ev := range events {
		if ev.Kind != "master-kill" || ev.At.IsZero() || ev.Skipped != "" {
			continue
		}
		k := unix(ev.At)
		if e.Ta > 0 && e.Ta <= k && k <= e.T {
			return true
		}
		if e.ViaPrimary && k <= e.T && e.T-k <= afterFault.Seconds() {
			return true
		}
	}
	return false
}

// afterFault is the window in which an exception counts as following a
// fault.
const afterFault = 5 * time.Second

// print writes the human summary; verbose prints every distinct
// traceback.
func (r *result) print(w io.Writer) {
	verbose := r.verbose
	fmt.Fprintf(w, "\n== %s\n", r.Scenario)
	for _, e := range r.Errors {
		fmt.Fprintf(w, "ERROR: %s\n", e)
	}
	if r.WorkloadSeconds > 0 {
		fmt.Fprintf(w, "workload: %.0fs, %d commits (%.1f/s), %d conflicts, %d gave up after conflicts, %d unknown outcome, %d exceptions\n",
			r.WorkloadSeconds, r.Commits, r.CommitsPerSec, r.Conflicts, r.GaveUp, r.Unknown, r.Exceptions)
		var ops []string
		for op, n := range r.ByOp {
			ops = append(ops, fmt.Sprintf("%s %d", op, n))
		}
		sort.Strings(ops)
		fmt.Fprintf(w, "  commits by kind: %s\n", strings.Join(ops, ", "))
		fmt.Fprintf(w, "  transaction duration: median %.3fs, p99 %.3fs, worst %.3fs (%s)\n", r.Latency.P50, r.Latency.P99, r.Latency.Max, r.Latency.MaxOf)
		fmt.Fprintf(w, "  longest time without any commit: %.2fs\n", r.LongestStall)
		if r.StaleReads > 0 {
			fmt.Fprintf(w, "  stale reads: %d loads of a worker's own list did not return its last commit, e.g.:\n", r.StaleReads)
			for _, m := range r.StaleMsgs {
				fmt.Fprintf(w, "    %s\n", m)
			}
		}
		if d := r.Delayed; d != nil {
			fmt.Fprintf(w, "  begun with a delay on (%.0fs in all): %.1f commits/s, median %.3fs, p99 %.3fs; otherwise %.1f commits/s, median %.3fs, p99 %.3fs\n",
				d.Seconds, d.CommitsPerS, d.P50, d.P99, d.OtherPerS, d.OtherP50, d.OtherP99)
		}
	}
	if len(r.ExcGroups) > 0 {
		fmt.Fprintf(w, "exceptions: %d (%d within %v after a fault, %d in flight at a master kill), by type and place (first traceback of each; all distinct ones with -v):\n",
			r.Exceptions, r.ExcAfterFault, afterFault, r.ExcInFlight)
		for _, g := range r.ExcGroups {
			fmt.Fprintf(w, "  %d x %s at %s (ops: %s; unknown outcome: %d): %s\n", g.Count, g.Type, g.Where, strings.Join(g.Ops, ","), g.Unknown, oneLine(g.Message))
			fmt.Fprintf(w, "    first at %s\n", r.placeInTime(g.Times[0]))
			tbs := g.Tracebacks
			if !verbose && len(tbs) > 1 {
				tbs = tbs[:1]
			}
			for i, tb := range tbs {
				if i > 0 {
					fmt.Fprintf(w, "    --- variant %d:\n", i+1)
				}
				fmt.Fprintf(w, "%s\n", indent(strings.TrimRight(tb, "\n"), "      "))
			}
		}
	}
	if len(r.Events) > 0 {
		fmt.Fprintf(w, "faults: %d\n", len(r.Events))
		for _, s := range r.FaultStats {
			fmt.Fprintf(w, "  %s: %d injected, %d skipped, %d errors; waited until survivable %s\n", s.Kind, s.Injected, s.Skipped, s.Errors, fmtStat(s.SafeWait))
			fmt.Fprintf(w, "    to first commit begun after it %s (none: %d); to all cells UP_TO_DATE %s (never: %d)\n",
				fmtStat(s.FirstCommit), s.NoCommit, fmtStat(s.UpToDate), s.NoUpToDate)
			if s.Failover.N > 0 {
				fmt.Fprintf(w, "    failover (another primary known) %s\n", fmtStat(s.Failover))
			}
			if s.Sockets.N > 0 {
				fmt.Fprintf(w, "    sockets reset per fault: median %.0f max %.0f\n", s.Sockets.Median, s.Sockets.Max)
			}
			if s.Delayed.N > 0 {
				fmt.Fprintf(w, "    chunks of data delayed per fault: median %.0f max %.0f\n", s.Delayed.Median, s.Delayed.Max)
			}
			if s.AdminUp.N > 0 {
				fmt.Fprintf(w, "    admin answering again %s\n", fmtStat(s.AdminUp))
			}
		}
		for _, ev := range r.Events {
			if ev.Err != "" || ev.Skipped != "" {
				fmt.Fprintf(w, "  fault %d %s %s: %s%s\n", ev.N, ev.Kind, ev.Target, ev.Skipped, ev.Err)
			}
		}
	}
	for _, h := range r.Hangs {
		th := "all threads"
		if h.Thread >= 0 {
			th = fmt.Sprintf("thread %d", h.Thread)
		}
		fmt.Fprintf(w, "HANG: worker %d %s, %s, no progress for %.0fs while %s; stacks:\n%s\n", h.Proc, th, h.Op, h.Idle, h.When,
			indent(strings.TrimRight(h.Stacks, "\n"), "    "))
	}
	for _, d := range r.Died {
		fmt.Fprintf(w, "DIED: %s\n", d)
	}
	if !r.Interrupted && (r.Verify != nil || r.WorkloadSeconds > 0) {
		fmt.Fprintf(w, "cells UP_TO_DATE after the workload: %v (waited %.1fs)\n", r.UpToDate, r.RecoverEnd)
	}
	if v := r.Verify; v != nil {
		fmt.Fprintf(w, "verification: lost %d, duplicated %d, inconsistent %d; %d keys, hot counter %d, %d log entries; unknown outcomes: %d committed, %d not\n",
			v.Lost, v.Duplicated, v.Inconsistent, v.Keys, v.Hot, v.LogEntries, v.UnknownCommitted, v.UnknownAbsent)
		for _, p := range v.Problems {
			fmt.Fprintf(w, "  %s\n", p)
		}
		if n := v.Lost + v.Duplicated + v.Inconsistent; n > len(v.Problems) {
			fmt.Fprintf(w, "  ... (%d more)\n", n-len(v.Problems))
		}
	}
	if c := r.Check; c != nil {
		if c.Skipped != "" {
			fmt.Fprintf(w, "replica check: skipped (%s)\n", c.Skipped)
		} else {
			fmt.Fprintf(w, "replica check (%.1fs): %d/%d partitions checked, aborted %v, not started %v, unfinished %v, corruption reports %d, CORRUPTED cells %v%s\n",
				c.Seconds, len(c.Checked), c.Partitions, c.Aborted, c.NotStarted, c.Unfinished, len(c.Corrupted), c.CorruptedCells, errSuffix(c.Err))
			for _, l := range c.Corrupted {
				fmt.Fprintf(w, "  %s\n", l)
			}
		}
	}
	if r.Pass {
		fmt.Fprintf(w, "RESULT: PASS\n")
	} else {
		fmt.Fprintf(w, "RESULT: FAIL (%s)\n", strings.Join(r.Failures, "; "))
	}
}

func errSuffix(e string) string {
	if e == "" {
		return ""
	}
	return "; error: " + e
}

func fmtStat(s stat) string {
	if s.N == 0 {
		return "-"
	}
	return fmt.Sprintf("median %.2fs max %.2fs (n=%d)", s.Median, s.Max, s.N)
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}

// printSuite prints one line per run of a suite.
func printSuite(w io.Writer, rs []*result) {
	fmt.Fprintf(w, "\n== suite: %d runs\n", len(rs))
	for _, r := range rs {
		verdict := "PASS"
		if !r.Pass {
			verdict = "FAIL: " + strings.Join(r.Failures, "; ")
		}
		lost, dup := 0, 0
		if r.Verify != nil {
			lost, dup = r.Verify.Lost, r.Verify.Duplicated
		}
		fmt.Fprintf(w, "  %-22s %-2s %-24s %6d commits %5d exc %d lost %d dup %d hangs  %s\n", r.Servers+fmt.Sprintf("/m%d/s%d", r.Masters, r.Storages),
			r.Client, strings.Join(r.Faults, "+"), r.Commits, r.Exceptions, lost, dup, len(r.Hangs), verdict)
	}
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("--json: %w", err)
	}
	return nil
}
