//go:build integration

package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/neogo/neo/internal/freeport"
)

// Bounds of every wait of the harness.
const (
	cmdTimeout   = 30 * time.Second // one neoctl run, one script call
	startTimeout = 60 * time.Second // neo-py-cluster.sh start
	pollInterval = 100 * time.Millisecond
)

// peers locates the Python NEO installed by ../shared/peers/setup.sh.
type peers struct {
	dir        string // holds env.sh and neo-py-cluster.sh
	py         string // python interpreter
	pythonpath string
	neoppod    string // neoppod's source tree
}

var (
	peersOnce sync.Once
	peersVal  *peers
	peersErr  error
)

// needPeers returns the peers, or skips the test when they are missing
// (fails instead under CI=true: CI must run these tests).
func needPeers(t *testing.T) *peers {
	t.Helper()
	peersOnce.Do(func() { peersVal, peersErr = findPeers() })
	if peersErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("python peers missing under CI=true: %v", peersErr)
		}
		t.Skipf("python peers missing: %v", peersErr)
	}
	return peersVal
}

func findPeers() (*peers, error) {
	dir := os.Getenv("NEO_PEERS")
	if dir == "" {
		root, err := moduleRoot()
		if err != nil {
			return nil, err
		}
		dir = filepath.Join(root, "..", "shared", "peers")
	}
	for _, f := range []string{"env.sh", "neo-py-cluster.sh"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return nil, fmt.Errorf("peers dir %s: %w", dir, err)
		}
	}
	out, err := exec.Command("bash", "-c",
		`. "$1/env.sh" && printf '%s\n%s\n%s\n' "$PY" "$PYTHONPATH" "$PEERS"`, "_", dir).Output()
	if err != nil {
		return nil, fmt.Errorf("source %s/env.sh: %w", dir, err)
	}
	f := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(f) != 3 {
		return nil, fmt.Errorf("source %s/env.sh: unexpected output %q", dir, out)
	}
	p := &peers{dir: dir, py: f[0], pythonpath: f[1], neoppod: filepath.Join(f[2], "neoppod")}
	if _, err := os.Stat(filepath.Join(f[2], "neoppod", "neo", "scripts", "neoctl.py")); err != nil {
		return nil, fmt.Errorf("neoppod not unpacked (run %s/setup.sh): %w", dir, err)
	}
	if _, err := exec.LookPath(p.py); err != nil {
		return nil, fmt.Errorf("python: %w", err)
	}
	return p, nil
}

func moduleRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate the test source")
	}
	return filepath.Join(filepath.Dir(file), "..", ".."), nil
}

// cmdBuild is a build of programs of ./cmd, made at most once per run.
type cmdBuild struct {
	once sync.Once
	dir  string
	err  error
}

// dirWith returns a directory holding the programs names: $NEO_BIN if it
// has them all, else the build, made once per run in a new temporary
// directory named after prefix.
func (b *cmdBuild) dirWith(t *testing.T, prefix string, names ...string) string {
	t.Helper()
	if d := os.Getenv("NEO_BIN"); d != "" {
		ok := true
		for _, n := range names {
			if _, err := os.Stat(filepath.Join(d, n)); err != nil {
				ok = false
			}
		}
		if ok {
			return d
		}
	}
	b.once.Do(func() { b.dir, b.err = buildCmds(prefix, names) })
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.dir
}

// buildCmds builds ./cmd/NAME for each of names into a new temporary
// directory.
func buildCmds(prefix string, names []string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", err
	}
	args := []string{"build", "-o", dir}
	for _, n := range names {
		args = append(args, "./cmd/"+n)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return dir, fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return dir, nil
}

// neoctlBuild is the build of ourNeoctl, removed by TestMain.
var neoctlBuild cmdBuild

// ourNeoctl returns the path of our neoctl: $NEO_NEOCTL, else $NEO_BIN's,
// else a build made once per test run.
func ourNeoctl(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("NEO_NEOCTL"); p != "" {
		return p
	}
	return filepath.Join(neoctlBuild.dirWith(t, "neoctl-build-", "neoctl"), "neoctl")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if pyctlVal != nil {
		pyctlVal.stop()
	}
	if neoctlBuild.dir != "" {
		os.RemoveAll(neoctlBuild.dir)
	}
	if neomigrateBuild.dir != "" {
		os.RemoveAll(neomigrateBuild.dir)
	}
	os.Exit(code)
}

// result is what a command printed and its exit status.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// run runs a command to completion within cmdTimeout.
func run(t *testing.T, env []string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && ctx.Err() == nil:
		r.code = exit.ExitCode()
	default:
		t.Fatalf("%s %q: %v (ctx: %v)\n%s", name, args, err, ctx.Err(), r)
	}
	return r
}

func (p *peers) env() []string { return []string{"PYTHONPATH=" + p.pythonpath} }

// script runs neoppod's console script (neoctl, neostorage...) in the foreground.
func (p *peers) script(t *testing.T, name string, args ...string) result {
	t.Helper()
	return run(t, p.env(), p.py, append(pyMain(name), args...)...)
}

// pyMain is the python command line that runs neoppod's script name.
func pyMain(name string) []string {
	return []string{"-c", fmt.Sprintf(
		"import sys; from neo.scripts.%s import main; sys.argv[0]=%q; sys.exit(main())", name, name)}
}

// testDir returns a directory for node files, kept when the test fails
// or when $NEO_KEEP_FILES is set (to read the node logs of a passing run).
func testDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", strings.ReplaceAll(t.Name(), "/", "_")+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("NEO_KEEP_FILES") != "" {
			t.Logf("node files kept in %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	return dir
}

// cluster is a neoppod cluster on loopback.
type cluster struct {
	p      *peers
	name   string
	dir    string
	master string   // host:port
	admin  string   // host:port
	tls    []string // --ca --cert --key options of every node and neoctl
}

// startCluster starts a neoppod cluster with neo-py-cluster.sh and waits
// until it is RUNNING; it is stopped at the end of the test.
func startCluster(t *testing.T, p *peers, storages, replicas, partitions int) *cluster {
	t.Helper()
	return startClusterEnv(t, p, "ctl", nil, storages, replicas, partitions)
}

// startClusterEnv is startCluster with a cluster name made of prefix and
// the master's port, and extra environment for neo-py-cluster.sh
// (NEO_GO_BIN, NEO_GO_ROLES).
func startClusterEnv(t *testing.T, p *peers, prefix string, extra []string, storages, replicas, partitions int) *cluster {
	t.Helper()
	ports := freeport.Ports(t, 2)
	c := &cluster{
		p:      p,
		name:   fmt.Sprintf("%s%d", prefix, ports[0]),
		dir:    filepath.Join(testDir(t), "cluster"),
		master: fmt.Sprintf("127.0.0.1:%d", ports[0]),
		admin:  fmt.Sprintf("127.0.0.1:%d", ports[1]),
	}
	env := append([]string{
		"NEO_DIR=" + c.dir,
		"NEO_STORAGES=" + strconv.Itoa(storages),
		"NEO_REPLICAS=" + strconv.Itoa(replicas),
		"NEO_PARTITIONS=" + strconv.Itoa(partitions),
		fmt.Sprintf("NEO_START_TIMEOUT=%d", int(startTimeout/time.Second)-10),
	}, extra...)
	script := filepath.Join(p.dir, "neo-py-cluster.sh")
	args := []string{c.name, strconv.Itoa(ports[0]), strconv.Itoa(ports[1])}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, script, append([]string{"stop"}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		if t.Failed() {
			cmd.Env = append(cmd.Env, "NEO_KEEP=1")
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("stop cluster %s: %v\n%s", c.name, err, out)
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), startTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, script, append([]string{"start"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("start cluster %s: %v\n%s%s", c.name, err, out, stderr.String())
	}
	if got := strings.TrimSpace(lastLine(string(out))); got != c.master {
		t.Fatalf("start cluster %s: printed master %q, want %q", c.name, got, c.master)
	}
	return c
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	return s[strings.LastIndexByte(s, '\n')+1:]
}

// spawn starts neoppod's script name in the background, in its own process
// group, logging to dir/log; it is stopped (SIGTERM, then SIGKILL after
// 10 s) at the end of the test.
func (p *peers) spawn(t *testing.T, dir, log, name string, args ...string) {
	t.Helper()
	p.spawnPy(t, dir, log, append(pyMain(name), args...)...)
}

// spawnPy is spawn for any python command line.
func (p *peers) spawnPy(t *testing.T, dir, log string, args ...string) {
	t.Helper()
	out, err := os.Create(filepath.Join(dir, log+".out"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(p.py, args...)
	cmd.Env = append(os.Environ(), p.env()...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		out.Close()
		t.Fatalf("start %s: %v", log, err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		out.Close()
		close(done)
	}()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
}

// addStorage starts one more SQLite storage that joins cluster c.
func (c *cluster) addStorage(t *testing.T, i int) {
	t.Helper()
	c.p.spawn(t, c.dir, fmt.Sprintf("extra_%d", i), "neostorage", append(c.tls,
		"--cluster", c.name, "--masters", c.master, "--bind", "127.0.0.1:0",
		"--adapter", "SQLite", "--database", filepath.Join(c.dir, fmt.Sprintf("extra_%d.sqlite", i)),
		"--logfile", filepath.Join(c.dir, fmt.Sprintf("extra_%d.log", i)))...)
}

// startManualCluster starts a master without --autostart, storages and an
// admin, all neoppod: the cluster stays RECOVERING with PENDING storages
// until someone runs `neoctl start`. tls, if not empty, are the --ca
// --cert --key options given to every node.
func startManualCluster(t *testing.T, p *peers, storages int, tls ...string) *cluster {
	t.Helper()
	ports := freeport.Ports(t, 2)
	c := &cluster{
		p:      p,
		name:   fmt.Sprintf("man%d", ports[0]),
		dir:    testDir(t),
		master: fmt.Sprintf("127.0.0.1:%d", ports[0]),
		admin:  fmt.Sprintf("127.0.0.1:%d", ports[1]),
		tls:    tls,
	}
	common := append(tls[:len(tls):len(tls)], "--cluster", c.name, "--masters", c.master)
	p.spawn(t, c.dir, "master", "neomaster", append(common, "--bind", c.master,
		"--partitions", "4", "--replicas", "0", "--logfile", filepath.Join(c.dir, "master.log"))...)
	for i := range storages {
		c.addStorage(t, i)
	}
	p.spawn(t, c.dir, "admin", "neoadmin", append(common, "--bind", c.admin,
		"--logfile", filepath.Join(c.dir, "admin.log"))...)
	c.waitFor(t, "all storages PENDING in RECOVERING", func() bool {
		r := c.py(t, "print", "cluster")
		if r.stdout != "RECOVERING\n" {
			return false
		}
		return strings.Count(c.py(t, "print", "node", "STORAGE").stdout, "| PENDING |") == storages
	})
	return c
}

// py runs neoppod's neoctl against the admin of c.
func (c *cluster) py(t *testing.T, args ...string) result {
	t.Helper()
	return c.p.ctlServer(t).run(t, c.args(args)...)
}

// gon runs our neoctl against the admin of c.
func (c *cluster) gon(t *testing.T, args ...string) result {
	t.Helper()
	return run(t, nil, ourNeoctl(t), c.args(args)...)
}

// args are the options to reach the admin of c, then args.
func (c *cluster) args(args []string) []string {
	return append(append([]string{"-a", c.admin}, c.tls...), args...)
}

// waitFor polls cond until it holds, failing the test after startTimeout.
func (c *cluster) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("cluster %s: %s: not after %v (logs in %s)", c.name, what, startTimeout, c.dir)
		}
		select {
		case <-tick.C:
		case <-t.Context().Done():
			t.Fatalf("cluster %s: %s: %v", c.name, what, t.Context().Err())
		}
	}
}
