package main

// Replica check (cluster.md §8.6): 'neoctl check' asks the master to have
// one storage per partition compare the partition's readable cells. The
// answer comes before the work is done, and the outcome is reported
// nowhere but in logs (the master logs "Partition N corrupted in: ..."
// unless its experimental flag makes the cells CORRUPTED), so this reads
// it back from the logs of the storages and masters: one of "partition
// checked", "check of partition aborted", "failed to start checking
// partition" per partition, and any corruption report. neoppod nodes log
// into SQLite with a RAM buffer: SIGRTMIN flushes it (§10.1, §10.2).

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// checkResult is what the replica check found.
type checkResult struct {
	Skipped        string   `json:"skipped,omitempty"`
	Partitions     int      `json:"partitions"`
	Checked        []int    `json:"checked"`
	Aborted        []int    `json:"aborted,omitempty"`
	NotStarted     []int    `json:"not_started,omitempty"`
	Unfinished     []int    `json:"unfinished,omitempty"`
	Corrupted      []string `json:"corrupted,omitempty"` // the log lines reporting it
	CorruptedCells []string `json:"corrupted_cells,omitempty"`
	Seconds        float64  `json:"seconds"`
	Clean          bool     `json:"clean"`
	Err            string   `json:"error,omitempty"`
}

// nodeLog is the log file of a storage or master and where the check's
// records start in it.
type nodeLog struct {
	name, path string
	python     bool    // SQLite log (neoppod), else text (our stderr)
	offset     int64   // text: size before the check
	since      float64 // SQLite: UNIX time before the check
}

var (
	goCheckLine = regexp.MustCompile(`msg="?(partition checked|partition corrupted|check of partition aborted|failed to start checking partition)`)
	goPartition = regexp.MustCompile(`\bpartition=(\d+)`)
	pyChecked   = regexp.MustCompile(`^partition (\d+) checked`)
	pyAborted   = regexp.MustCompile(`^check of partition (\d+) aborted`)
	pyFailed    = regexp.MustCompile(`^Failed to start checking partition (\d+)`)
	pyCorrupted = regexp.MustCompile(`^Partition (\d+) corrupted in: `)
)

// checkEvent is one outcome line: kind is checked, aborted, failed or
// corrupted.
type checkEvent struct {
	kind      string
	partition int
	line      string
}

func parseGoCheckLine(line string) (checkEvent, bool) {
	m := goCheckLine.FindStringSubmatch(line)
	if m == nil {
		return checkEvent{}, false
	}
	p := goPartition.FindStringSubmatch(line)
	if p == nil {
		return checkEvent{}, false
	}
	n, _ := strconv.Atoi(p[1])
	kind := map[string]string{"partition checked": "checked", "partition corrupted": "corrupted",
		"check of partition aborted": "aborted", "failed to start checking partition": "failed"}[m[1]]
	return checkEvent{kind: kind, partition: n, line: line}, true
}

func parsePyCheckLine(msg string) (checkEvent, bool) {
	for _, x := range []struct {
		re   *regexp.Regexp
		kind string
	}{{pyChecked, "checked"}, {pyAborted, "aborted"}, {pyFailed, "failed"}, {pyCorrupted, "corrupted"}} {
		if m := x.re.FindStringSubmatch(msg); m != nil {
			n, _ := strconv.Atoi(m[1])
			return checkEvent{kind: x.kind, partition: n, line: msg}, true
		}
	}
	return checkEvent{}, false
}

// runCheck runs 'neoctl check' on every partition and reads the outcome.
func runCheck(ctx context.Context, cl *cluster, script string) checkResult {
	cfg := cl.cfg
	res := checkResult{Partitions: cfg.Partitions}
	if cfg.Replicas == 0 {
		res.Skipped = "no replicas to compare"
		res.Clean = true
		return res
	}
	t0 := time.Now()
	pids, err := cl.pids()
	if err != nil {
		res.Err = err.Error()
		return res
	}
	var logs []*nodeLog
	for name := range pids {
		role := ""
		switch {
		case strings.HasPrefix(name, "storage_"):
			role = "storage"
		case strings.HasPrefix(name, "master"):
			role = "master"
		default:
			continue
		}
		// Our nodes' -l file is neoppod's SQLite format too, but keeps
		// INFO records in RAM until a warning or flush_log (SIGRTMIN can't
		// be caught by Go): their stderr has every INFO record at once.
		l := &nodeLog{name: name, path: filepath.Join(cl.dir, name+".log"), python: !cl.isGo(role)}
		if !l.python {
			l.path = filepath.Join(cl.dir, name+".out")
		}
		l.offset = fileSize(l.path)
		l.since = float64(time.Now().UnixNano()) / 1e9
		logs = append(logs, l)
	}
	sort.Slice(logs, func(i, j int) bool { return logs[i].name < logs[j].name })
	args := []string{"check"}
	for p := 0; p < cfg.Partitions; p++ {
		args = append(args, strconv.Itoa(p)+":")
	}
	if _, err := cl.ctl.run(ctx, args...); err != nil {
		res.Err = err.Error()
		return res
	}
	deadline := time.Now().Add(cfg.CheckTimeout)
	final := map[int]string{}
	corrupted := map[string]bool{}
	for {
		if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
			res.Err = err.Error()
			break
		}
		pids, _ := cl.pids()
		for _, l := range logs {
			if l.python {
				if pid, ok := pids[l.name]; ok {
					_ = syscall.Kill(pid, sigRTMin) // flush the log buffer
				}
			}
		}
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			res.Err = err.Error()
			break
		}
		for _, l := range logs {
			events, err := scanLog(ctx, cl.py, script, l)
			if err != nil {
				res.Err = err.Error()
				continue
			}
			res.Err = ""
			for _, e := range events {
				if e.kind == "corrupted" {
					corrupted[l.name+": "+strings.TrimSpace(e.line)] = true
					continue
				}
				if final[e.partition] == "" || e.kind == "checked" {
					final[e.partition] = e.kind
				}
			}
		}
		if len(final) >= cfg.Partitions || time.Now().After(deadline) {
			break
		}
	}
	for p := 0; p < cfg.Partitions; p++ {
		switch final[p] {
		case "checked":
			res.Checked = append(res.Checked, p)
		case "aborted":
			res.Aborted = append(res.Aborted, p)
		case "failed":
			res.NotStarted = append(res.NotStarted, p)
		default:
			res.Unfinished = append(res.Unfinished, p)
		}
	}
	for l := range corrupted {
		res.Corrupted = append(res.Corrupted, l)
	}
	sort.Strings(res.Corrupted)
	if pt, err := printPT(ctx, cl.ctl); err == nil {
		res.CorruptedCells = pt.corrupted()
	} else if res.Err == "" {
		res.Err = err.Error()
	}
	res.Seconds = time.Since(t0).Seconds()
	res.Clean = res.Err == "" && len(res.Checked) == cfg.Partitions && len(res.Corrupted) == 0 && len(res.CorruptedCells) == 0
	return res
}

// scanLog returns the check outcome lines of l written since the check
// started.
func scanLog(ctx context.Context, py pyEnv, script string, l *nodeLog) ([]checkEvent, error) {
	var events []checkEvent
	if !l.python {
		f, err := os.Open(l.path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if fileSize(l.path) >= l.offset {
			if _, err := f.Seek(l.offset, 0); err != nil {
				return nil, err
			}
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			if e, ok := parseGoCheckLine(sc.Text()); ok {
				events = append(events, e)
			}
		}
		return events, sc.Err()
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	x := exec.CommandContext(ctx, py.PY, script, "logscan", l.path, fmt.Sprint(l.since))
	x.Env = py.env()
	out, err := x.Output()
	if err != nil {
		msg := err.Error()
		if ee, ok := err.(*exec.ExitError); ok {
			msg += ": " + strings.TrimSpace(string(ee.Stderr))
		}
		return nil, fmt.Errorf("read %s: %s", l.path, msg)
	}
	for _, line := range strings.Split(string(out), "\n") {
		var rec []any
		if json.Unmarshal([]byte(line), &rec) != nil || len(rec) != 3 {
			continue
		}
		msg, _ := rec[2].(string)
		if e, ok := parsePyCheckLine(msg); ok {
			events = append(events, e)
		}
	}
	return events, nil
}
