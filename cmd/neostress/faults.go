package main

// Fault injection and the measurements around it: a watcher polls the
// partition table every 50 ms while someone waits on it, the injector
// waits until a fault is survivable, injects it, and a tracker per fault
// records when every cell is UP_TO_DATE again.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// pollInterval is the period of partition-table polls.
const pollInterval = 50 * time.Millisecond

// snapshot is one poll of the partition table; start and end bound when
// the admin answered.
type snapshot struct {
	start, end time.Time
	pt         partTable
	err        error
}

// watcher polls 'print pt' every pollInterval while at least one caller
// waits in next. mu guards the fields in it.
type watcher struct {
	ctl  ctl
	wake chan struct{}

	mu struct {
		sync.Mutex
		last    snapshot
		changed chan struct{} // closed and replaced at each new snapshot
		waiting int
	}
}

func newWatcher(c ctl) *watcher {
	w := &watcher{ctl: c, wake: make(chan struct{}, 1)}
	w.mu.changed = make(chan struct{})
	return w
}

// run polls until ctx is done.
func (w *watcher) run(ctx context.Context) {
	for {
		w.mu.Lock()
		idle := w.mu.waiting == 0
		w.mu.Unlock()
		if idle {
			select {
			case <-ctx.Done():
				return
			case <-w.wake:
			}
		}
		s := snapshot{start: time.Now()}
		s.pt, s.err = printPT(ctx, w.ctl)
		s.end = time.Now()
		if ctx.Err() != nil {
			return
		}
		w.mu.Lock()
		w.mu.last = s
		close(w.mu.changed)
		w.mu.changed = make(chan struct{})
		w.mu.Unlock()
		if sleepCtx(ctx, pollInterval-time.Since(s.start)) != nil {
			return
		}
	}
}

// next returns the first snapshot whose poll started after after.
func (w *watcher) next(ctx context.Context, after time.Time) (snapshot, error) {
	w.mu.Lock()
	w.mu.waiting++
	defer func() {
		w.mu.Lock()
		w.mu.waiting--
		w.mu.Unlock()
	}()
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	for {
		w.mu.Lock()
		s, ch := w.mu.last, w.mu.changed
		w.mu.Unlock()
		if s.start.After(after) {
			return s, nil
		}
		select {
		case <-ctx.Done():
			return snapshot{}, ctx.Err()
		case <-ch:
		}
	}
}

// waitUpToDate waits until every cell is UP_TO_DATE; it returns the
// snapshot that showed it.
func (w *watcher) waitUpToDate(ctx context.Context, storages int) (snapshot, error) {
	after := time.Now()
	for {
		s, err := w.next(ctx, after)
		if err != nil {
			return s, err
		}
		if s.err == nil && s.pt.allUpToDate(storages) {
			return s, nil
		}
		after = s.start
	}
}

// faultEvent is one injected fault and its measurements (seconds). The
// pointers are nil when the thing was not seen.
type faultEvent struct {
	N        int       `json:"n"`
	Kind     string    `json:"kind"`
	Target   string    `json:"target,omitempty"` // node name in the pids file
	NID      string    `json:"nid,omitempty"`
	At       time.Time `json:"at"`                // kill or reset
	Offset   float64   `json:"offset_s"`          // At since the workload started
	SafeWait float64   `json:"safe_wait_s"`       // waited for the fault to be survivable
	Skipped  string    `json:"skipped,omitempty"` // not injected, why
	Restart  *float64  `json:"restart_s,omitempty"`
	Sockets  int       `json:"reset_sockets,omitempty"`
	Delayed  int       `json:"delayed_chunks,omitempty"` // delay: chunks of data delayed
	Until    time.Time `json:"until,omitempty"`          // delay: lifted
	// FirstCommit: to the first commit of a transaction begun after At.
	FirstCommit *float64 `json:"first_commit_s"`
	// UpToDate: to the first poll showing every cell UP_TO_DATE again.
	UpToDate *float64 `json:"up_to_date_s"`
	Degraded bool     `json:"degraded_seen"`          // a poll saw non-UP_TO_DATE cells
	Failover *float64 `json:"failover_s,omitempty"`   // master-kill: another primary known
	AdminUp  *float64 `json:"admin_back_s,omitempty"` // admin-kill: admin answers again
	Err      string   `json:"error,omitempty"`
}

func secs(d time.Duration) *float64 {
	s := d.Seconds()
	return &s
}

// injector injects faults; mu guards the events' fields written by the
// trackers.
type injector struct {
	cfg   *config
	cl    *cluster
	w     *watcher
	rnd   *rand.Rand
	start time.Time
	log   io.Writer // live fault lines, nil unless -v

	trackers sync.WaitGroup
	mu       sync.Mutex
	events   []*faultEvent
	slow     *slowDisk // slow-disk
}

// minObserve is how long after a fault a poll must start to tell
// whether the cluster recovered from it: the master must have noticed.
const minObserve = 100 * time.Millisecond

// run injects a fault every FaultEvery until ctx is done. trackCtx bounds
// the trackers, which outlive run.
func (in *injector) run(ctx, trackCtx context.Context) {
	next := time.Now().Add(in.cfg.FaultEvery)
	for i := 1; ; i++ {
		if sleepCtx(ctx, time.Until(next)) != nil {
			return
		}
		ev := &faultEvent{N: i, Kind: in.pick(i)}
		in.inject(ctx, trackCtx, ev)
		if ctx.Err() != nil && ev.At.IsZero() {
			return // interrupted before anything happened: not a fault
		}
		in.mu.Lock()
		in.events = append(in.events, ev)
		in.mu.Unlock()
		if in.log != nil {
			extra := ""
			if isReset(ev.Kind) {
				extra = fmt.Sprintf(", %d sockets reset", ev.Sockets)
			}
			if ev.Kind == "delay" {
				extra = fmt.Sprintf(", %d chunks delayed", ev.Delayed)
			}
			fmt.Fprintf(in.log, "  fault %d %s %s %s at +%.1fs (waited %.1fs%s) %s%s\n", ev.N, ev.Kind, ev.Target, ev.NID,
				ev.Offset, ev.SafeWait, extra, ev.Skipped, ev.Err)
		}
		if ev.At.IsZero() {
			next = time.Now().Add(in.cfg.FaultEvery)
		} else {
			next = ev.At.Add(in.cfg.FaultEvery)
		}
	}
}

// pick is the i-th fault's kind: admin-kill every AdminEvery-th fault,
// else one of the other kinds at random.
func (in *injector) pick(i int) string {
	var others []string
	for _, f := range in.cfg.Faults {
		if f != "admin-kill" {
			others = append(others, f)
		}
	}
	if contains(in.cfg.Faults, "admin-kill") && (i%in.cfg.AdminEvery == 0 || len(others) == 0) {
		return "admin-kill"
	}
	return others[in.rnd.Intn(len(others))]
}

// snapshotEvents copies the events (for the report, after the trackers).
func (in *injector) snapshotEvents() []*faultEvent {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make([]*faultEvent, len(in.events))
	copy(out, in.events)
	return out
}

func (in *injector) inject(ctx, trackCtx context.Context, ev *faultEvent) {
	var err error
	switch ev.Kind {
	case "storage-kill", "tcp-reset", "client-reset", "slow-disk", "delay":
		err = in.faultStorage(ctx, trackCtx, ev)
	case "admin-kill":
		err = in.killAdmin(ctx, trackCtx, ev)
	case "master-kill":
		err = in.killMaster(ctx, trackCtx, ev)
	}
	if err != nil && ctx.Err() == nil {
		ev.Err = err.Error()
	}
	if !ev.At.IsZero() {
		ev.Offset = ev.At.Sub(in.start).Seconds()
	}
}

// target is a storage the cluster can lose.
type target struct {
	name, nid string
	pid       int
}

// waitSafe polls until pick finds a target (or SafeTimeout), recording
// the wait in ev.
func (in *injector) waitSafe(ctx context.Context, ev *faultEvent, pick func(snapshot) (target, bool)) (target, bool) {
	t0 := time.Now()
	deadline := t0.Add(in.cfg.SafeTimeout)
	after := t0
	for {
		s, err := in.w.next(ctx, after)
		if err != nil {
			return target{}, false
		}
		after = s.start
		if s.err == nil {
			if t, ok := pick(s); ok {
				if state, err := printOne(ctx, in.cl.ctl, "cluster"); err == nil && state == "RUNNING" {
					ev.SafeWait = time.Since(t0).Seconds()
					return t, true
				}
			}
		}
		if time.Now().After(deadline) {
			ev.SafeWait = time.Since(t0).Seconds()
			ev.Skipped = fmt.Sprintf("not survivable for %v (last poll: %s)", in.cfg.SafeTimeout, describeSnapshot(s))
			return target{}, false
		}
	}
}

func describeSnapshot(s snapshot) string {
	if s.err != nil {
		return s.err.Error()
	}
	var b strings.Builder
	for _, r := range s.pt.Rows {
		fmt.Fprintf(&b, "%s %c %s; ", r.NID, r.State, r.Cells)
	}
	return strings.TrimSuffix(b.String(), "; ")
}

// storageTargets maps the running storages of the partition table to
// their processes: pid (pids file) -> listening port (ss) -> NID (print
// node).
func (in *injector) storageTargets(ctx context.Context) (map[string]target, error) {
	out, err := in.cl.ctl.run(ctx, "print", "node", "STORAGE")
	if err != nil {
		return nil, err
	}
	byAddr := map[string]string{}
	for _, n := range parseNodes(out) {
		byAddr[n.Addr] = n.NID
	}
	pids, err := in.cl.pids()
	if err != nil {
		return nil, err
	}
	targets := map[string]target{}
	for name, pid := range pids {
		if !strings.HasPrefix(name, "storage_") || processDead(pid) {
			continue
		}
		port, err := listenPort(ctx, pid)
		if err != nil {
			return nil, err
		}
		if nid, ok := byAddr[fmt.Sprintf("127.0.0.1:%d", port)]; ok && port != 0 {
			targets[nid] = target{name: name, nid: nid, pid: pid}
		}
	}
	return targets, nil
}

func (in *injector) faultStorage(ctx, trackCtx context.Context, ev *faultEvent) error {
	var lastErr error
	t, ok := in.waitSafe(ctx, ev, func(s snapshot) (target, bool) {
		var nids []string
		for _, r := range s.pt.Rows {
			if r.State == 'R' && s.pt.survives(r.NID) {
				nids = append(nids, r.NID)
			}
		}
		if len(nids) == 0 {
			return target{}, false
		}
		targets, err := in.storageTargets(ctx)
		if err != nil {
			lastErr = err
			return target{}, false
		}
		var ok []target
		for _, nid := range nids {
			if t, found := targets[nid]; found {
				ok = append(ok, t)
			}
		}
		if len(ok) == 0 {
			return target{}, false
		}
		sort.Slice(ok, func(i, j int) bool { return ok[i].nid < ok[j].nid })
		return ok[in.rnd.Intn(len(ok))], true
	})
	if !ok {
		if lastErr != nil && ev.Skipped != "" {
			ev.Skipped += "; " + lastErr.Error()
		}
		return nil
	}
	ev.Target, ev.NID = t.name, t.nid
	if isReset(ev.Kind) {
		accepted := 0 // tcp-reset: every connection
		if ev.Kind == "client-reset" {
			port, err := listenPort(ctx, t.pid)
			if err != nil {
				return err
			}
			accepted = port
		}
		ev.At = time.Now()
		n, err := resetConnections(ctx, t.pid, accepted)
		ev.Sockets = n
		in.track(trackCtx, ev, ev.At)
		if err == nil && n == 0 {
			err = errors.New("no connection to reset")
		}
		return err
	}
	if ev.Kind == "delay" {
		p := in.cl.delay.proxies[t.name]
		if p == nil {
			return fmt.Errorf("no proxy in front of %s", t.name)
		}
		before := p.set(in.cfg.Delay, in.cfg.DelayJitter)
		ev.At = time.Now()
		in.track(trackCtx, ev, ev.At)
		// Not interrupted by the end of the workload, as slow-disk.
		_ = sleepCtx(trackCtx, in.cfg.DelayFor)
		ev.Delayed = p.set(0, 0) - before
		in.mu.Lock()
		ev.Until = time.Now()
		in.mu.Unlock()
		return nil
	}
	if ev.Kind == "slow-disk" {
		ev.At = time.Now()
		in.track(trackCtx, ev, ev.At)
		// Not interrupted by the end of the workload: the disk must be
		// fast again for the verification.
		return in.slow.slow(trackCtx, t.pid, in.cfg.SlowFor)
	}
	return in.killRestart(ctx, trackCtx, ev, t.name, t.pid)
}

// killRestart kills name with SIGKILL and restarts it after RestartDelay.
func (in *injector) killRestart(ctx, trackCtx context.Context, ev *faultEvent, name string, pid int) error {
	snap, err := in.kill(ctx, ev, name, pid)
	if err != nil {
		return err
	}
	return in.restart(trackCtx, ev, snap)
}

// kill kills name with SIGKILL, setting ev.At, and returns what its
// restart needs.
func (in *injector) kill(ctx context.Context, ev *faultEvent, name string, pid int) (procSnapshot, error) {
	snap, err := snapshotProc(name, pid)
	if err != nil {
		return snap, err
	}
	ev.At = time.Now()
	return snap, kill9(ctx, pid)
}

// restart restarts a killed node after RestartDelay. It is not
// interrupted by the end of the workload: a node killed must come back.
func (in *injector) restart(trackCtx context.Context, ev *faultEvent, snap procSnapshot) error {
	_ = sleepCtx(trackCtx, in.cfg.RestartDelay)
	if _, err := in.cl.respawn(snap); err != nil {
		return err
	}
	ev.Restart = secs(time.Since(ev.At))
	if ev.Kind != "admin-kill" {
		in.track(trackCtx, ev, time.Now())
	}
	return nil
}

// track records in ev when every cell is UP_TO_DATE again: the first
// poll started after readyAfter (a restart, or a moment after a reset:
// the master has seen the fault by then) showing it.
func (in *injector) track(ctx context.Context, ev *faultEvent, readyAfter time.Time) {
	at := ev.At
	if min := at.Add(minObserve); readyAfter.Before(min) {
		readyAfter = min
	}
	in.trackers.Add(1)
	go func() {
		defer in.trackers.Done()
		after := at
		for {
			s, err := in.w.next(ctx, after)
			if err != nil {
				return
			}
			after = s.start
			if s.err != nil {
				continue
			}
			if !s.pt.allUpToDate(in.cfg.Storages) {
				in.mu.Lock()
				ev.Degraded = true
				in.mu.Unlock()
				continue
			}
			if s.start.After(readyAfter) {
				in.mu.Lock()
				ev.UpToDate = secs(s.start.Sub(at))
				in.mu.Unlock()
				return
			}
		}
	}()
}

func (in *injector) killAdmin(ctx, trackCtx context.Context, ev *faultEvent) error {
	pids, err := in.cl.pids()
	if err != nil {
		return err
	}
	pid, ok := pids["admin"]
	if !ok {
		return errors.New("no admin in the pids file")
	}
	ev.Target = "admin"
	// The cells do not depend on the admin: no tracking of them.
	if err := in.killRestart(ctx, trackCtx, ev, "admin", pid); err != nil {
		return err
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := printOne(trackCtx, in.cl.ctl, "cluster"); err == nil {
			ev.AdminUp = secs(time.Since(ev.At))
			return nil
		}
		if sleepCtx(trackCtx, pollInterval) != nil {
			return nil
		}
	}
	return errors.New("admin not back after 60s")
}

func (in *injector) killMaster(ctx, trackCtx context.Context, ev *faultEvent) error {
	var old nodeInfo
	_, ok := in.waitSafe(ctx, ev, func(s snapshot) (target, bool) {
		if !s.pt.allUpToDate(in.cfg.Storages) {
			return target{}, false
		}
		out, err := in.cl.ctl.run(ctx, "print", "node", "MASTER")
		if err != nil {
			return target{}, false
		}
		nodes := parseNodes(out)
		running := 0
		for _, n := range nodes {
			if n.State == "RUNNING" {
				running++
			}
		}
		primary, err := printOne(ctx, in.cl.ctl, "primary")
		if err != nil || running != in.cfg.Masters {
			return target{}, false
		}
		for _, n := range nodes {
			if n.NID == primary {
				old = n
				return target{nid: n.NID}, true
			}
		}
		return target{}, false
	})
	if !ok {
		return nil
	}
	name := ""
	for i, a := range in.cl.masters {
		if a == old.Addr {
			name = "master"
			if i > 0 {
				name = "master_" + strconv.Itoa(i)
			}
		}
	}
	if name == "" {
		return fmt.Errorf("primary %s at %s is none of our masters", old.NID, old.Addr)
	}
	ev.Target, ev.NID = name, old.NID
	pids, err := in.cl.pids()
	if err != nil {
		return err
	}
	snap, err := in.kill(ctx, ev, name, pids[name])
	if err != nil {
		return err
	}
	// failover: the admin knows a primary other than the killed one
	at := ev.At
	failover := make(chan struct{})
	go func() {
		defer close(failover)
		deadline := at.Add(60 * time.Second)
		for time.Now().Before(deadline) {
			if p, err := printOne(trackCtx, in.cl.ctl, "primary"); err == nil && p != "" && p != old.NID {
				in.mu.Lock()
				ev.Failover = secs(time.Since(at))
				in.mu.Unlock()
				return
			}
			if sleepCtx(trackCtx, pollInterval) != nil {
				return
			}
		}
	}()
	err = in.restart(trackCtx, ev, snap)
	<-failover
	return err
}

// isReset tells the faults that reset connections instead of killing.
func isReset(kind string) bool { return kind == "tcp-reset" || kind == "client-reset" }

// resetConnections resets every established TCP connection of pid, both
// ends (ss -K on loopback), and returns how many sockets were destroyed.
// With accepted != 0, only the connections accepted on that local port
// (clients, replicating storages), not the node's own links (master).
func resetConnections(ctx context.Context, pid, accepted int) (int, error) {
	lines, err := ssLines(ctx, "-tnpH", "state", "connected")
	if err != nil {
		return 0, err
	}
	var terms []string
	for _, l := range lines {
		if ssPid(l) != pid {
			continue
		}
		lport, pport, ok := ssPorts(l)
		if !ok || accepted != 0 && lport != accepted {
			continue
		}
		terms = append(terms,
			fmt.Sprintf("( sport = :%d and dport = :%d )", lport, pport),
			fmt.Sprintf("( sport = :%d and dport = :%d )", pport, lport))
	}
	if len(terms) == 0 {
		return 0, nil
	}
	args := append([]string{"-K", "-tnH", "state", "connected"}, strings.Fields(strings.Join(terms, " or "))...)
	out, err := ssLines(ctx, args...)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, l := range out {
		if strings.TrimSpace(l) != "" {
			n++
		}
	}
	return n, nil
}

// ssPorts is the local and peer ports of an ss line: the first two
// fields that end in :PORT (the State column may or may not precede).
func ssPorts(line string) (local, peer int, ok bool) {
	var ports []int
	for _, f := range strings.Fields(line) {
		if strings.HasPrefix(f, "users:") {
			break
		}
		if _, p, ok := cutLastColon(f); ok {
			ports = append(ports, p)
		}
	}
	if len(ports) < 2 {
		return 0, 0, false
	}
	return ports[0], ports[1], true
}

// probeReset checks that ss -K can reset a loopback connection on this
// kernel (it needs CONFIG_INET_DIAG_DESTROY): it resets a connection of
// its own and expects the other end to see the connection end.
func probeReset(ctx context.Context) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	d, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		return err
	}
	defer d.Close()
	a, ok := <-accepted
	if !ok {
		return errors.New("probe: accept failed")
	}
	defer a.Close()
	lport := l.Addr().(*net.TCPAddr).Port
	dport := d.LocalAddr().(*net.TCPAddr).Port
	if _, err := ssLines(ctx, "-K", "-tnH", "state", "connected", "(", "sport", "=", fmt.Sprintf(":%d", dport),
		"and", "dport", "=", fmt.Sprintf(":%d", lport), ")"); err != nil {
		return err
	}
	_ = a.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = a.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() {
		return errors.New("ss -K did not reset a loopback connection (kernel without CONFIG_INET_DIAG_DESTROY?)")
	}
	return nil
}

// sigRTMin is Linux's SIGRTMIN as glibc and Python number it (neoppod's
// nodes flush their log buffer on it, cluster.md §10.2).
const sigRTMin = syscall.Signal(34)
