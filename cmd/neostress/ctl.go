package main

// neoctl, as the cluster's own ctl role: our Go neoctl run per command, or
// neoppod's kept running in a helper process (worker.py ctl), since
// starting Python for every poll of the partition table would take the
// CPU the cluster needs. And the parsing of its outputs.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ctl runs neoctl commands against the admin. Safe for concurrent use.
type ctl interface {
	// run returns the command's output, or an error carrying what
	// neoctl printed on failure.
	run(ctx context.Context, args ...string) (string, error)
	close()
}

// ctlTimeout bounds every neoctl command.
const ctlTimeout = 10 * time.Second

// goCtl runs bin/neoctl once per command.
type goCtl struct {
	bin, admin string
}

func (g *goCtl) run(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, ctlTimeout)
	defer cancel()
	x := exec.CommandContext(ctx, g.bin, append([]string{"-a", g.admin}, args...)...)
	var stdout, stderr bytes.Buffer
	x.Stdout, x.Stderr = &stdout, &stderr
	if err := x.Run(); err != nil {
		return stdout.String(), fmt.Errorf("neoctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

func (g *goCtl) close() {}

// pyCtl keeps one 'worker.py ctl ADMIN' process: a JSON list of
// arguments per line in, {"out", "err"} per line out. mu serializes the
// commands; a helper that does not answer within ctlTimeout is killed
// and the next command starts a new one.
type pyCtl struct {
	py            pyEnv
	script, admin string

	mu struct {
		sync.Mutex
		cmd   *exec.Cmd
		in    io.WriteCloser
		lines chan string
	}
}

func (p *pyCtl) start() error {
	x := exec.Command(p.py.PY, p.script, "ctl", p.admin)
	x.Env = p.py.env()
	x.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	in, err := x.StdinPipe()
	if err != nil {
		return err
	}
	out, err := x.StdoutPipe()
	if err != nil {
		return err
	}
	if err := x.Start(); err != nil {
		return fmt.Errorf("start neoppod neoctl helper: %w", err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
		_ = x.Wait()
	}()
	p.mu.cmd, p.mu.in, p.mu.lines = x, in, lines
	return nil
}

func (p *pyCtl) stopLocked() {
	if p.mu.cmd == nil {
		return
	}
	p.mu.in.Close()
	_ = syscall.Kill(-p.mu.cmd.Process.Pid, syscall.SIGKILL)
	for range p.mu.lines {
	}
	p.mu.cmd = nil
}

func (p *pyCtl) run(ctx context.Context, args ...string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.cmd == nil {
		if err := p.start(); err != nil {
			return "", err
		}
	}
	req, _ := json.Marshal(args)
	if _, err := p.mu.in.Write(append(req, '\n')); err != nil {
		p.stopLocked()
		return "", fmt.Errorf("neoctl %s: helper: %w", strings.Join(args, " "), err)
	}
	t := time.NewTimer(ctlTimeout)
	defer t.Stop()
	select {
	case line, ok := <-p.mu.lines:
		if !ok {
			p.stopLocked()
			return "", fmt.Errorf("neoctl %s: helper exited", strings.Join(args, " "))
		}
		var res struct {
			Out *string `json:"out"`
			Err *string `json:"err"`
		}
		if err := json.Unmarshal([]byte(line), &res); err != nil {
			return "", fmt.Errorf("neoctl %s: helper: %w", strings.Join(args, " "), err)
		}
		if res.Err != nil {
			return "", fmt.Errorf("neoctl %s: %s", strings.Join(args, " "), *res.Err)
		}
		out := ""
		if res.Out != nil {
			out = *res.Out + "\n"
		}
		return out, nil
	case <-t.C:
		p.stopLocked()
		return "", fmt.Errorf("neoctl %s: no answer in %v", strings.Join(args, " "), ctlTimeout)
	case <-ctx.Done():
		p.stopLocked()
		return "", ctx.Err()
	}
}

func (p *pyCtl) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopLocked()
}

// ptRow is one storage's line of 'print pt': its NID, node state letter
// (R running, D down, ...) and one letter per partition (U up to date,
// O out of date, F feeding, C corrupted, . no cell).
type ptRow struct {
	NID   string
	State byte
	Cells string
}

// partTable is a parsed 'print pt'.
type partTable struct {
	PTid     int
	Replicas int
	Rows     []ptRow
}

var errPTFormat = errors.New("unexpected print pt output")

// parsePT parses the matrix form of 'neoctl print pt' (cluster.md §9.5).
func parsePT(out string) (partTable, error) {
	var pt partTable
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) == 0 {
		return pt, errPTFormat
	}
	if _, err := fmt.Sscanf(lines[0], "# ptid: %d, replicas: %d", &pt.PTid, &pt.Replicas); err != nil {
		return pt, fmt.Errorf("%w: %q", errPTFormat, lines[0])
	}
	np := -1
	for _, l := range lines[1:] {
		if l == "" || l[0] == ' ' {
			continue // the "10v" ruler
		}
		f := strings.Fields(l)
		if len(f) != 3 || len(f[1]) != 1 {
			return pt, fmt.Errorf("%w: %q", errPTFormat, l)
		}
		if np >= 0 && len(f[2]) != np {
			return pt, fmt.Errorf("%w: rows of different lengths", errPTFormat)
		}
		np = len(f[2])
		pt.Rows = append(pt.Rows, ptRow{NID: f[0], State: f[1][0], Cells: f[2]})
	}
	return pt, nil
}

// np is the number of partitions.
func (pt partTable) np() int {
	if len(pt.Rows) == 0 {
		return 0
	}
	return len(pt.Rows[0].Cells)
}

// allUpToDate reports whether storages storages are all running and
// every cell is UP_TO_DATE (no O, F or C cell, every partition with
// replicas+1 cells).
func (pt partTable) allUpToDate(storages int) bool {
	if len(pt.Rows) != storages {
		return false
	}
	for _, r := range pt.Rows {
		if r.State != 'R' {
			return false
		}
	}
	for p := 0; p < pt.np(); p++ {
		n := 0
		for _, r := range pt.Rows {
			switch r.Cells[p] {
			case 'U':
				n++
			case '.':
			default:
				return false
			}
		}
		if n != pt.Replicas+1 {
			return false
		}
	}
	return true
}

// survives reports whether losing storage nid leaves every partition an
// UP_TO_DATE cell on another running storage.
func (pt partTable) survives(nid string) bool {
	for p := 0; p < pt.np(); p++ {
		ok := false
		for _, r := range pt.Rows {
			if r.NID != nid && r.State == 'R' && r.Cells[p] == 'U' {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// corrupted lists the CORRUPTED cells as "NID:partition".
func (pt partTable) corrupted() []string {
	var out []string
	for _, r := range pt.Rows {
		for p := range r.Cells {
			if r.Cells[p] == 'C' {
				out = append(out, r.NID+":"+strconv.Itoa(p))
			}
		}
	}
	return out
}

// nodeInfo is one line of 'print node'.
type nodeInfo struct {
	NID, Type, Addr, State string
}

// parseNodes parses 'neoctl print node' ("NID | TYPE | addr | STATE | date").
func parseNodes(out string) []nodeInfo {
	var nodes []nodeInfo
	for _, l := range strings.Split(out, "\n") {
		f := strings.Split(l, "|")
		if len(f) < 4 {
			continue
		}
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
		}
		nodes = append(nodes, nodeInfo{NID: f[0], Type: f[1], Addr: f[2], State: f[3]})
	}
	return nodes
}

// printPT runs and parses 'print pt'.
func printPT(ctx context.Context, c ctl) (partTable, error) {
	out, err := c.run(ctx, "print", "pt")
	if err != nil {
		return partTable{}, err
	}
	return parsePT(out)
}

// printOne runs a 'print X' that answers one word (cluster, primary).
func printOne(ctx context.Context, c ctl, what string) (string, error) {
	out, err := c.run(ctx, "print", what)
	return strings.TrimSpace(out), err
}
