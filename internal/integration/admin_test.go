//go:build integration

package integration

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/neogo/neo/internal/freeport"
)

// Tests of our neoadmin between neoppod's master and storages and
// neoppod's (or our) neoctl: what neoctl prints must be what it prints
// with an all-neoppod cluster, apart from addresses and dates.

// adminBuild is the build of ourAdminBin.
var adminBuild cmdBuild

// ourAdminBin returns a directory holding our neoadmin: $NEO_BIN if it has
// one, else a build of ./cmd/neoadmin made once per run.
func ourAdminBin(t *testing.T) string {
	t.Helper()
	return adminBuild.dirWith(t, "neoadmin-build-", "neoadmin")
}

// nodePID returns the pid neo-py-cluster.sh recorded for node name.
func (c *cluster) nodePID(t *testing.T, name string) int {
	t.Helper()
	f, err := os.Open(filepath.Join(c.dir, "pids"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pid, n, _ := strings.Cut(sc.Text(), " ")
		if n == name {
			p, err := strconv.Atoi(pid)
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
	}
	t.Fatalf("no pid for %s in %s/pids", name, c.dir)
	return 0
}

var (
	reAddr = regexp.MustCompile(`127\.0\.0\.1:\d+`)
	reDate = regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?`)
)

// normalized hides what differs between two clusters: addresses, dates.
func normalized(r result) result {
	f := func(s string) string { return reDate.ReplaceAllString(reAddr.ReplaceAllString(s, "ADDR"), "DATE") }
	return result{stdout: f(r.stdout), stderr: f(r.stderr), code: r.code}
}

// sameAsNeoppod runs neoppod's neoctl against both clusters and requires
// the same normalized result; it returns ours.
func sameAsNeoppod(t *testing.T, ours, ref *cluster, args ...string) result {
	t.Helper()
	got, want := ours.py(t, args...), ref.py(t, args...)
	if normalized(got) != normalized(want) {
		t.Errorf("neoctl %s: our admin differs from neoppod's\n--- neoppod's admin:\n%s\n--- our admin:\n%s",
			strings.Join(args, " "), want, got)
	}
	return got
}

// TestAdminSameAsNeoppod drives our admin, between neoppod's master and
// storages, with neoppod's neoctl and ours, side by side with an
// all-neoppod cluster receiving the same commands.
func TestAdminSameAsNeoppod(t *testing.T) {
	p := needPeers(t)
	bin := ourAdminBin(t)
	ours := startClusterEnv(t, p, "adm", []string{"NEO_GO_BIN=" + bin, "NEO_GO_ROLES=admin"}, 2, 1, 12)
	ref := startClusterEnv(t, p, "ref", nil, 2, 1, 12)

	for _, args := range [][]string{
		{"print", "cluster"},
		{"print", "node"},
		{"print", "node", "STORAGE"},
		{"print", "node", "ADMIN"},
		{"print", "pt"},
		{"print", "pt", "0", "3"},
		{"print", "pt", "10"},
		{"print", "pt", "3", "2"},
		{"print", "pt", "0", "13"}, // out of range: neoctl fails on the Error packet
		{"print", "ids"},
		{"print", "primary"},
		{"print", "summary"},
		{"tweak", "-n"},
		{"kill", "S9"},
		{"set", "cluster", "RECOVERING"},
		{"set", "replicas", "1"},
	} {
		sameAsNeoppod(t, ours, ref, args...)
	}

	t.Run("our neoctl", func(t *testing.T) {
		for _, args := range [][]string{
			{"print", "cluster"}, {"print", "pt"}, {"print", "ids"}, {"print", "summary"}, {"tweak", "-n"},
		} {
			got, want := normalized(ours.gon(t, args...)), normalized(ref.py(t, args...))
			if got != want {
				t.Errorf("neoctl %s: ours via our admin differs from neoppod's via neoppod's\n--- want:\n%s\n--- got:\n%s",
					strings.Join(args, " "), want, got)
			}
		}
	})

	// A third storage joins both clusters, PENDING until added.
	ours.addStorage(t, 0)
	ref.addStorage(t, 0)
	for _, c := range []*cluster{ours, ref} {
		c.waitFor(t, "third storage PENDING", func() bool {
			return strings.Contains(c.py(t, "print", "node", "STORAGE").stdout, "S3 | STORAGE | ")
		})
	}
	uptodate := func(c *cluster) func() bool {
		return func() bool {
			out := c.py(t, "print", "pt").stdout
			return strings.Contains(out, "S3 R") && !strings.ContainsAny(strings.Join(strings.Split(out, "\n")[2:], ""), "OF")
		}
	}
	for _, args := range [][]string{
		{"print", "node", "STORAGE"},
		{"tweak"}, // S3 is pending: listed nowhere, no change
		{"add", "S3"},
		{"add", "all"},
		{"tweak", "-n"},
		{"tweak", "-n", "S1"},
		{"tweak"},
	} {
		sameAsNeoppod(t, ours, ref, args...)
	}
	ours.waitFor(t, "replication done", uptodate(ours))
	ref.waitFor(t, "replication done", uptodate(ref))
	for _, args := range [][]string{
		{"print", "pt"},
		{"print", "summary"},
		{"set", "replicas", "2"},
		{"print", "pt", "0", "2"},
		{"drop", "S3"},
		{"kill", "S3"},
		{"kill", "S3"},
		{"print", "summary"},
		{"print", "pt"},
		{"drop", "S3"},
		{"drop", "S3"},
		{"print", "node", "STORAGE"},
	} {
		sameAsNeoppod(t, ours, ref, args...)
	}

	t.Run("STOPPING stops our admin", func(t *testing.T) {
		pid := ours.nodePID(t, "admin")
		r := ours.gon(t, "set", "cluster", "STOPPING")
		if r.code != 0 || r.stdout != "Cluster state changed\n" {
			t.Fatalf("set cluster STOPPING: %s", r)
		}
		deadline := time.Now().Add(startTimeout)
		for syscall.Kill(pid, 0) == nil {
			if time.Now().After(deadline) {
				t.Fatalf("admin %d still running %v after STOPPING", pid, startTimeout)
			}
			time.Sleep(pollInterval) // polling a process, bounded by the deadline
		}
	})
}

// TestAdminNotConnected: without master, our admin answers neoctl as
// neoppod's does.
func TestAdminNotConnected(t *testing.T) {
	p := needPeers(t)
	bin := ourAdminBin(t)
	ports := freeport.Ports(t, 3) // master (nobody), our admin, neoppod's admin
	dir := testDir(t)
	master := fmt.Sprintf("127.0.0.1:%d", ports[0])
	ours := &cluster{p: p, name: "nc", dir: dir, master: master, admin: fmt.Sprintf("127.0.0.1:%d", ports[1])}
	ref := &cluster{p: p, name: "nc", dir: dir, master: master, admin: fmt.Sprintf("127.0.0.1:%d", ports[2])}

	cmd := exec.Command(filepath.Join(bin, "neoadmin"), "-c", "nc", "-m", master, "-b", ours.admin, "-l", filepath.Join(dir, "admin.log"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	p.spawn(t, dir, "pyadmin", "neoadmin", "-c", "nc", "-m", master, "-b", ref.admin, "-l", filepath.Join(dir, "pyadmin.log"))
	for _, c := range []*cluster{ours, ref} {
		c.waitFor(t, "admin listening", func() bool { return c.py(t, "print", "cluster").stderr != "ERROR: not connected\n" })
	}
	for _, args := range [][]string{
		{"print", "cluster"}, {"print", "node"}, {"print", "summary"}, {"start"}, {"flush_log"},
	} {
		got := sameAsNeoppod(t, ours, ref, args...)
		if args[0] != "flush_log" && (got.code != 1 || got.stderr != "ERROR: Not connected to a primary master.\n") {
			t.Errorf("neoctl %s: %s", strings.Join(args, " "), got)
		}
	}
	if got, want := normalized(ours.gon(t, "print", "cluster")), normalized(ref.py(t, "print", "cluster")); got != want {
		t.Errorf("our neoctl: got\n%s\nwant\n%s", got, want)
	}
}

// TestAdminTLS: our admin in a TLS cluster of neoppod nodes, with
// neoppod's test certificates, driven by both neoctls.
func TestAdminTLS(t *testing.T) {
	p := needPeers(t)
	bin := ourAdminBin(t)
	certs := filepath.Join(strings.Split(p.pythonpath, ":")[0], "neo", "tests")
	ssl := []string{"--ca", filepath.Join(certs, "ca.crt"), "--cert", filepath.Join(certs, "node.crt"), "--key", filepath.Join(certs, "node.key")}
	if _, err := os.Stat(filepath.Join(certs, "ca.crt")); err != nil {
		t.Skipf("neoppod's test certificates: %v", err)
	}
	ports := freeport.Ports(t, 2)
	dir := testDir(t)
	c := &cluster{p: p, name: fmt.Sprintf("tls%d", ports[0]), dir: dir,
		master: fmt.Sprintf("127.0.0.1:%d", ports[0]), admin: fmt.Sprintf("127.0.0.1:%d", ports[1])}
	common := append([]string{"--cluster", c.name, "--masters", c.master}, ssl...)
	p.spawn(t, dir, "master", "neomaster", append(common, "--bind", c.master, "--partitions", "4",
		"--replicas", "0", "--autostart", "1", "--logfile", filepath.Join(dir, "master.log"))...)
	p.spawn(t, dir, "storage", "neostorage", append(common, "--bind", "127.0.0.1:0", "--adapter", "SQLite",
		"--database", filepath.Join(dir, "storage.sqlite"), "--logfile", filepath.Join(dir, "storage.log"))...)
	cmd := exec.Command(filepath.Join(bin, "neoadmin"), append(common, "--bind", c.admin, "--logfile", filepath.Join(dir, "admin.log"))...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	pyNeoctl := func(args ...string) result {
		return p.script(t, "neoctl", append(append([]string{"-a", c.admin}, ssl...), args...)...)
	}
	c.waitFor(t, "RUNNING over TLS", func() bool { return pyNeoctl("print", "cluster").stdout == "RUNNING\n" })
	if r := pyNeoctl("print", "pt"); r.stdout != "# ptid: 1, replicas: 0\nS1 R UUUU\n" {
		t.Errorf("neoppod's neoctl: print pt:\n%s", r)
	}
	if r := run(t, nil, ourNeoctl(t), append(append([]string{"-a", c.admin}, ssl...), "print", "pt")...); r.stdout != "# ptid: 1, replicas: 0\nS1 R UUUU\n" {
		t.Errorf("our neoctl: print pt:\n%s", r)
	}
	// Without TLS, neoctl gets nothing from a TLS admin.
	if r := c.p.script(t, "neoctl", "-a", c.admin, "print", "cluster"); r.code != 1 || r.stdout != "" {
		t.Errorf("plain neoctl against a TLS admin:\n%s", r)
	}
}
