package main

// The cluster under test: started and stopped by the peers'
// neo-py-cluster.sh, whose pids file ("PID NAME" lines) this file keeps
// up to date when it restarts a node, so that 'neo-py-cluster.sh stop'
// still stops everything.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// goBinaries are the Go commands a cluster may run.
var goBinaries = []string{"neomaster", "neostorage", "neoadmin", "neoctl"}

// pyEnv is what the peers' env.sh exports.
type pyEnv struct {
	PY         string
	PythonPath string
}

// loadPyEnv sources env.sh in bash and reads back $PY and $PYTHONPATH.
func loadPyEnv(ctx context.Context, peers string) (pyEnv, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "bash", "-c", `. "$1/env.sh" && printf '%s\n%s\n' "$PY" "$PYTHONPATH"`, "-", peers).Output()
	if err != nil {
		return pyEnv{}, fmt.Errorf("source %s/env.sh: %w", peers, err)
	}
	lines := strings.SplitN(strings.TrimRight(string(out), "\n"), "\n", 2)
	if len(lines) != 2 || lines[0] == "" {
		return pyEnv{}, fmt.Errorf("source %s/env.sh: no $PY/$PYTHONPATH in %q", peers, out)
	}
	return pyEnv{PY: lines[0], PythonPath: lines[1]}, nil
}

// env is the process environment plus PYTHONPATH.
func (p pyEnv) env() []string {
	return append(os.Environ(), "PYTHONPATH="+p.PythonPath)
}

// goRoles are the roles run by Go binaries for each --servers value.
func goRoles(servers string) []string {
	switch servers {
	case "go":
		return []string{"master", "storage", "admin", "ctl"}
	case "mixed-go-master":
		return []string{"master", "admin", "ctl"}
	case "mixed-py-master":
		return []string{"storage"}
	}
	return nil
}

// cluster is a running cluster. mu guards the pids file and children.
type cluster struct {
	cfg     *config
	name    string
	dir     string // NEO_DIR
	bin     string // copy of the Go binaries, "" if none
	py      pyEnv
	masters []string // master addresses, master i = port base + 10*i
	admin   string
	goRoles []string
	ctl     ctl
	delay   *delayNet // with --fault delay: the storages' proxies

	mu struct {
		sync.Mutex
		children []*child // restarted nodes: ours to reap
	}
}

func (c *cluster) isGo(role string) bool { return contains(c.goRoles, role) }

// mastersString is the masters in the form clients take.
func (c *cluster) mastersString() string { return strings.Join(c.masters, " ") }

// scriptEnv is the environment of neo-py-cluster.sh for this cluster.
func (c *cluster) scriptEnv() []string {
	env := append(os.Environ(),
		"NEO_DIR="+c.dir,
		"NEO_KEEP=1", // the work directory is ours to remove
		"NEO_STORAGES="+strconv.Itoa(c.cfg.Storages),
		"NEO_REPLICAS="+strconv.Itoa(c.cfg.Replicas),
		"NEO_PARTITIONS="+strconv.Itoa(c.cfg.Partitions),
		"NEO_MASTER_COUNT="+strconv.Itoa(c.cfg.Masters),
		"NEO_MASTER_PORT_STEP=10",
		"NEO_GO_BIN=",
		"NEO_GO_ROLES=",
	)
	if c.delay != nil {
		env = append(env, "NEO_STORAGE_PORT_BASE="+strconv.Itoa(c.cfg.PortBase+storagePortOffset))
	}
	if len(c.goRoles) > 0 {
		env = append(env, "NEO_GO_BIN="+c.bin, "NEO_GO_ROLES="+strings.Join(c.goRoles, " "))
	}
	return env
}

func (c *cluster) script(ctx context.Context, cmd string) *exec.Cmd {
	mport := strconv.Itoa(c.cfg.PortBase)
	aport := strconv.Itoa(c.cfg.PortBase + 1)
	x := exec.CommandContext(ctx, "bash", filepath.Join(c.cfg.PeersDir, "neo-py-cluster.sh"), cmd, c.name, mport, aport)
	x.Env = c.scriptEnv()
	x.WaitDelay = 5 * time.Second
	return x
}

// startCluster copies the Go binaries into work/bin, starts the cluster
// and its neoctl. On error the caller must still call stop.
func startCluster(ctx context.Context, cfg *config, work string, py pyEnv) (*cluster, error) {
	c := &cluster{cfg: cfg, name: "neostress", dir: filepath.Join(work, "cluster"), py: py,
		goRoles: goRoles(cfg.Servers)}
	c.admin = fmt.Sprintf("127.0.0.1:%d", cfg.PortBase+1)
	for i := 0; i < cfg.Masters; i++ {
		c.masters = append(c.masters, fmt.Sprintf("127.0.0.1:%d", cfg.PortBase+10*i))
	}
	if len(c.goRoles) > 0 {
		c.bin = filepath.Join(work, "bin")
		if err := os.MkdirAll(c.bin, 0o755); err != nil {
			return c, err
		}
		for _, b := range goBinaries {
			if err := copyFile(filepath.Join(cfg.GoBin, b), filepath.Join(c.bin, b), 0o755); err != nil {
				return c, fmt.Errorf("copy Go binaries: %w", err)
			}
		}
	}
	if contains(cfg.Faults, "delay") {
		dn, err := newDelayNet(ctx, cfg.PortBase, cfg.Storages, cfg.Seed)
		if err != nil {
			return c, err
		}
		c.delay = dn
	}
	sctx, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	x := c.script(sctx, "start")
	var stdout, stderr bytes.Buffer
	x.Stdout, x.Stderr = &stdout, &stderr
	if err := x.Run(); err != nil {
		return c, fmt.Errorf("neo-py-cluster.sh start: %w\n%s", err, lastLines(stderr.String(), 30))
	}
	if c.isGo("ctl") {
		c.ctl = &goCtl{bin: filepath.Join(c.bin, "neoctl"), admin: c.admin}
	} else {
		c.ctl = &pyCtl{py: py, script: filepath.Join(work, "worker.py"), admin: c.admin}
	}
	return c, nil
}

// stop stops every node (neo-py-cluster.sh stop, which reads the pids
// file), then kills and reaps the nodes this tool restarted, in case.
func (c *cluster) stop() error {
	if c.ctl != nil {
		c.ctl.close()
	}
	var err error
	if _, serr := os.Stat(filepath.Join(c.dir, "pids")); serr == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		x := c.script(ctx, "stop")
		var out bytes.Buffer
		x.Stdout, x.Stderr = &out, &out
		if rerr := x.Run(); rerr != nil {
			err = fmt.Errorf("neo-py-cluster.sh stop: %w\n%s", rerr, out.String())
		}
		cancel()
	}
	c.mu.Lock()
	children := c.mu.children
	c.mu.children = nil
	c.mu.Unlock()
	for _, ch := range children {
		select {
		case <-ch.done:
		default:
			_ = syscall.Kill(ch.pid, syscall.SIGKILL)
			<-ch.done
		}
	}
	if c.delay != nil {
		c.delay.close()
	}
	return err
}

// pids reads the pids file: node name -> pid.
func (c *cluster) pids() (map[string]int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.readPidsLocked()
}

func (c *cluster) readPidsLocked() (map[string]int, error) {
	data, err := os.ReadFile(filepath.Join(c.dir, "pids"))
	if err != nil {
		return nil, err
	}
	m := map[string]int{}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		pid, err := strconv.Atoi(f[0])
		if err != nil {
			return nil, fmt.Errorf("pids file: bad line %q", line)
		}
		m[f[1]] = pid
	}
	return m, nil
}

// setPid replaces name's pid in the pids file (atomically).
func (c *cluster) setPidLocked(name string, pid int) error {
	path := filepath.Join(c.dir, "pids")
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var b strings.Builder
	found := false
	for _, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[1] == name {
			line = fmt.Sprintf("%d %s", pid, name)
			found = true
		}
		b.WriteString(line + "\n")
	}
	if !found {
		fmt.Fprintf(&b, "%d %s\n", pid, name)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// child is a node this tool restarted; done is closed once reaped.
type child struct {
	pid  int
	done chan struct{}
}

// procSnapshot is what restarting a process needs, read from /proc
// before it is killed.
type procSnapshot struct {
	Name string
	Pid  int
	Exe  string
	Argv []string
	Env  []string
	Cwd  string
}

func snapshotProc(name string, pid int) (procSnapshot, error) {
	s := procSnapshot{Name: name, Pid: pid}
	p := fmt.Sprintf("/proc/%d/", pid)
	cmdline, err := os.ReadFile(p + "cmdline")
	if err != nil {
		return s, fmt.Errorf("%s (pid %d): %w", name, pid, err)
	}
	environ, err := os.ReadFile(p + "environ")
	if err != nil {
		return s, fmt.Errorf("%s (pid %d): %w", name, pid, err)
	}
	if s.Exe, err = os.Readlink(p + "exe"); err != nil {
		return s, fmt.Errorf("%s (pid %d): %w", name, pid, err)
	}
	if s.Cwd, err = os.Readlink(p + "cwd"); err != nil {
		return s, fmt.Errorf("%s (pid %d): %w", name, pid, err)
	}
	s.Argv = splitNul(cmdline)
	s.Env = splitNul(environ)
	if len(s.Argv) == 0 {
		return s, fmt.Errorf("%s (pid %d): empty command line (exited?)", name, pid)
	}
	return s, nil
}

func splitNul(b []byte) []string {
	var out []string
	for _, f := range bytes.Split(bytes.TrimRight(b, "\x00"), []byte{0}) {
		out = append(out, string(f))
	}
	return out
}

// processDead reports whether pid no longer runs (gone or a zombie: the
// nodes started by the script are not our children, and whoever reaps
// them may be slow).
func processDead(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// pid (comm) STATE ...: comm may hold spaces and parentheses
	i := bytes.LastIndexByte(data, ')')
	return i < 0 || i+2 >= len(data) || data[i+2] == 'Z' || data[i+2] == 'X'
}

// kill9 sends SIGKILL to the node and waits (up to 5 s) until it is dead.
func kill9(ctx context.Context, pid int) error {
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	deadline := time.Now().Add(5 * time.Second)
	for !processDead(pid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("pid %d still alive 5s after SIGKILL", pid)
		}
		if err := sleepCtx(ctx, 5*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

// respawn starts the snapshot's process again in its own session with
// output appended to NAME.out, and records its pid in the pids file.
func (c *cluster) respawn(s procSnapshot) (int, error) {
	out, err := os.OpenFile(filepath.Join(c.dir, s.Name+".out"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(out, "\n==== neostress: restarted at %s (was pid %d)\n", time.Now().Format(time.RFC3339Nano), s.Pid)
	x := &exec.Cmd{Path: s.Exe, Args: s.Argv, Env: s.Env, Dir: s.Cwd, Stdout: out, Stderr: out,
		SysProcAttr: &syscall.SysProcAttr{Setsid: true}}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := x.Start(); err != nil {
		out.Close()
		return 0, fmt.Errorf("restart %s: %w", s.Name, err)
	}
	ch := &child{pid: x.Process.Pid, done: make(chan struct{})}
	c.mu.children = append(c.mu.children, ch)
	go func() {
		_ = x.Wait()
		out.Close()
		close(ch.done)
	}()
	if err := c.setPidLocked(s.Name, x.Process.Pid); err != nil {
		return x.Process.Pid, fmt.Errorf("update pids file: %w", err)
	}
	return x.Process.Pid, nil
}

// listenPort is the TCP port pid listens on (from ss -tlnp), 0 if none.
func listenPort(ctx context.Context, pid int) (int, error) {
	lines, err := ssLines(ctx, "-tlnpH")
	if err != nil {
		return 0, err
	}
	for _, l := range lines {
		if ssPid(l) != pid {
			continue
		}
		f := strings.Fields(l)
		if len(f) >= 4 {
			if _, port, ok := cutLastColon(f[3]); ok {
				return port, nil
			}
		}
	}
	return 0, nil
}

func ssLines(ctx context.Context, args ...string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ss", args...).Output()
	if err != nil {
		return nil, fmt.Errorf("ss %s: %w", strings.Join(args, " "), err)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n"), nil
}

// ssPid is the first pid=N of an ss -p line, 0 if none.
func ssPid(line string) int {
	i := strings.Index(line, "pid=")
	if i < 0 {
		return 0
	}
	j := i + 4
	for j < len(line) && line[j] >= '0' && line[j] <= '9' {
		j++
	}
	pid, _ := strconv.Atoi(line[i+4 : j])
	return pid
}

func cutLastColon(addr string) (string, int, bool) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return "", 0, false
	}
	port, err := strconv.Atoi(addr[i+1:])
	return addr[:i], port, err == nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// tailFile is the part of a file from offset on (at most max bytes, the
// end kept).
func tailFile(path string, offset int64, max int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	data, _ := io.ReadAll(bufio.NewReader(f))
	if len(data) > max {
		data = data[len(data)-max:]
	}
	return string(data)
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// sleepCtx sleeps d unless ctx is done first.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
