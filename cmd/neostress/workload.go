package main

// The worker processes (worker.py, or this binary as a Go worker):
// started in their own process groups, watched through their heartbeat
// files, stopped with SIGTERM (SIGKILL after a deadline). A worker
// without progress is a hang: its stacks are dumped with SIGUSR1
// (faulthandler; pprof's goroutine profile in a Go worker) before
// anything else happens to it.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// heartbeat is a worker's hb-P.json (worker.py, or goworker.go).
type heartbeat struct {
	T       float64      `json:"t"`
	Pid     int          `json:"pid"`
	Phase   string       `json:"phase"`
	Threads []threadBeat `json:"threads"`
}

// threadBeat is one worker thread (goroutine) in a heartbeat.
type threadBeat struct {
	Thread     int      `json:"thread"`
	Progress   float64  `json:"progress"`
	LastCommit *float64 `json:"last_commit"`
	Op         *string  `json:"op"`
	OpStart    *float64 `json:"op_start"`
	Commits    int      `json:"commits"`
	Conflicts  int      `json:"conflicts"`
	Errors     int      `json:"errors"`
	Alive      bool     `json:"alive"`
}

// hang is a worker found without progress.
type hang struct {
	Proc   int     `json:"proc"`
	Thread int     `json:"thread"` // -1: the whole process
	Op     string  `json:"op,omitempty"`
	Idle   float64 `json:"idle_s"` // without progress, when found
	When   string  `json:"when"`   // "running" or "stopping"
	Stacks string  `json:"stacks"`
}

// workerProc is one worker process; done is closed when it exited.
type workerProc struct {
	idx     int
	cmd     *exec.Cmd
	errPath string
	started time.Time
	done    chan struct{}
	err     error // exit status, valid after done
	hung    bool
}

// workers are the worker processes of a run.
type workers struct {
	cfg    *config
	dir    string // records and heartbeats
	script string
	py     pyEnv
	procs  []*workerProc
}

func (ws *workers) start(masters, cluster string) error {
	for p := 0; p < ws.cfg.Procs; p++ {
		errPath := filepath.Join(ws.dir, fmt.Sprintf("worker-%d.err", p))
		f, err := os.Create(errPath)
		if err != nil {
			return err
		}
		var x *exec.Cmd
		if ws.cfg.Client == "go" {
			self, err := os.Executable()
			if err != nil {
				f.Close()
				return err
			}
			x = exec.Command(self, goWorkerMode, masters, cluster,
				"--proc", strconv.Itoa(p), "--threads", strconv.Itoa(ws.cfg.Threads), "--dir", ws.dir,
				"--seed", strconv.FormatInt(ws.cfg.Seed, 10))
		} else {
			x = exec.Command(ws.py.PY, ws.script, "run", masters, cluster,
				"--proc", strconv.Itoa(p), "--threads", strconv.Itoa(ws.cfg.Threads), "--dir", ws.dir,
				"--seed", strconv.FormatInt(ws.cfg.Seed, 10),
				"--pack-every", fmt.Sprint(ws.cfg.PackEvery.Seconds()),
				"--pack-age", fmt.Sprint(ws.cfg.PackAge.Seconds()),
				"--undo-pct", fmt.Sprint(ws.cfg.UndoPct))
			x.Env = ws.py.env()
		}
		x.Stdout, x.Stderr = f, f
		x.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := x.Start(); err != nil {
			f.Close()
			return fmt.Errorf("start worker %d: %w", p, err)
		}
		wp := &workerProc{idx: p, cmd: x, errPath: errPath, started: time.Now(), done: make(chan struct{})}
		go func() {
			wp.err = x.Wait()
			f.Close()
			close(wp.done)
		}()
		ws.procs = append(ws.procs, wp)
	}
	return nil
}

func (ws *workers) readHeartbeat(p int) (heartbeat, error) {
	var hb heartbeat
	data, err := os.ReadFile(filepath.Join(ws.dir, fmt.Sprintf("hb-%d.json", p)))
	if err != nil {
		return hb, err
	}
	err = json.Unmarshal(data, &hb)
	return hb, err
}

func exited(wp *workerProc) bool {
	select {
	case <-wp.done:
		return true
	default:
		return false
	}
}

// findHangs looks at every live worker's heartbeat.
func (ws *workers) findHangs(now time.Time, when string) []hang {
	var hangs []hang
	limit := ws.cfg.HangTimeout.Seconds()
	t := float64(now.UnixNano()) / 1e9
	for _, wp := range ws.procs {
		if wp.hung || exited(wp) {
			continue
		}
		hb, err := ws.readHeartbeat(wp.idx)
		if err != nil {
			if now.Sub(wp.started).Seconds() > limit {
				hangs = append(hangs, hang{Proc: wp.idx, Thread: -1, Idle: now.Sub(wp.started).Seconds(), When: when,
					Op: "no heartbeat: " + err.Error()})
				wp.hung = true
			}
			continue
		}
		if t-hb.T > limit {
			hangs = append(hangs, hang{Proc: wp.idx, Thread: -1, Idle: t - hb.T, When: when, Op: "heartbeat stopped, phase " + hb.Phase})
			wp.hung = true
			continue
		}
		for _, th := range hb.Threads {
			if th.Op != nil && hb.T-th.Progress > limit {
				hangs = append(hangs, hang{Proc: wp.idx, Thread: th.Thread, Op: *th.Op, Idle: hb.T - th.Progress, When: when})
				wp.hung = true
			}
		}
	}
	return hangs
}

// dumpStacks asks worker p for its Python stacks (SIGUSR1: faulthandler
// writes them to its stderr) and returns them.
func (ws *workers) dumpStacks(wp *workerProc) string {
	off := fileSize(wp.errPath)
	if err := syscall.Kill(wp.cmd.Process.Pid, syscall.SIGUSR1); err != nil {
		return "SIGUSR1: " + err.Error()
	}
	time.Sleep(time.Second)
	return tailFile(wp.errPath, off, 256<<10)
}

// totals sums the heartbeats' counters.
func (ws *workers) totals() (commits, conflicts, errs int) {
	for _, wp := range ws.procs {
		if hb, err := ws.readHeartbeat(wp.idx); err == nil {
			for _, th := range hb.Threads {
				commits += th.Commits
				conflicts += th.Conflicts
				errs += th.Errors
			}
		}
	}
	return
}

// watch checks the workers every second until ctx is done or the
// deadline passes. It stops early, returning them, on hangs or when a
// worker exited by itself (died reports which, with its stderr's end).
func (ws *workers) watch(ctx context.Context, deadline time.Time, progress io.Writer) (hangs []hang, died []string) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastReport := time.Now()
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return nil, nil
		case <-tick.C:
		}
		for _, wp := range ws.procs {
			if exited(wp) {
				died = append(died, fmt.Sprintf("worker %d exited during the run (%v):\n%s", wp.idx, wp.err,
					lastLines(tailFile(wp.errPath, 0, 64<<10), 30)))
			}
		}
		hangs = ws.findHangs(time.Now(), "running")
		dumped := map[int]bool{}
		for i := range hangs {
			if p := hangs[i].Proc; !dumped[p] {
				dumped[p] = true
				hangs[i].Stacks = ws.dumpStacks(ws.procs[p])
			} else {
				hangs[i].Stacks = "(the same process as above)"
			}
		}
		if len(hangs) > 0 || len(died) > 0 {
			return hangs, died
		}
		if progress != nil && time.Since(lastReport) >= 10*time.Second {
			lastReport = time.Now()
			c, k, e := ws.totals()
			fmt.Fprintf(progress, "  %s: %d commits, %d conflicts, %d exceptions\n", time.Now().Format("15:04:05"), c, k, e)
		}
	}
	return nil, nil
}

// stop asks every worker to stop (SIGTERM: each thread ends its current
// transaction) and waits up to HangTimeout; a worker still running then
// is a hang: its stacks are dumped, then its process group killed.
func (ws *workers) stop() []hang {
	for _, wp := range ws.procs {
		if !exited(wp) {
			_ = syscall.Kill(wp.cmd.Process.Pid, syscall.SIGTERM)
		}
	}
	deadline := time.Now().Add(ws.cfg.HangTimeout)
	var hangs []hang
	for _, wp := range ws.procs {
		if wp.hung {
			continue // reported already; killed below
		}
		select {
		case <-wp.done:
			continue
		case <-time.After(time.Until(deadline)):
		}
		h := hang{Proc: wp.idx, Thread: -1, Op: "did not stop", Idle: ws.cfg.HangTimeout.Seconds(), When: "stopping"}
		if hb, err := ws.readHeartbeat(wp.idx); err == nil {
			h.Op = "did not stop (phase " + hb.Phase + ")"
		}
		h.Stacks = ws.dumpStacks(wp)
		hangs = append(hangs, h)
	}
	ws.kill()
	return hangs
}

// kill kills every worker's process group and waits for them (bounded).
func (ws *workers) kill() {
	for _, wp := range ws.procs {
		if !exited(wp) {
			_ = syscall.Kill(-wp.cmd.Process.Pid, syscall.SIGKILL)
		}
	}
	for _, wp := range ws.procs {
		select {
		case <-wp.done:
		case <-time.After(10 * time.Second):
		}
	}
}
