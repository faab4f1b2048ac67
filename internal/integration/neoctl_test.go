//go:build integration

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/neogo/neo/internal/freeport"
)

// sameOutput runs both neoctls with args and requires identical stdout,
// stderr and exit status.
func sameOutput(t *testing.T, c *cluster, args ...string) result {
	t.Helper()
	want := c.py(t, args...)
	got := c.gon(t, args...)
	if got != want {
		t.Errorf("neoctl %s: outputs differ\n--- neoppod:\n%s\n--- ours:\n%s", strings.Join(args, " "), want, got)
	}
	return got
}

// oneLineError requires exit status 1 and a single line on stderr only.
func oneLineError(t *testing.T, r result, what string) {
	t.Helper()
	if r.code != 1 || r.stdout != "" || strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") {
		t.Errorf("%s: want a one-line error and exit 1, got\n%s", what, r)
	}
}

// The read-only commands print exactly what neoppod's neoctl prints.
func TestNeoctlPrintSameAsNeoppod(t *testing.T) {
	p := needPeers(t)
	c := startCluster(t, p, 2, 1, 12)
	for _, args := range [][]string{
		{"print", "cluster"},
		{"print", "node"},
		{"print", "node", "STORAGE"},
		{"print", "node", "master"},
		{"print", "node", "ADMIN"},
		{"print", "node", "CLIENT"},
		{"print", "pt"},
		{"print", "pt", "0", "3"},
		{"print", "pt", "5"},
		{"print", "pt", "0", "0"},
		{"print", "pt", "2", "4", "S1"},
		{"print", "pt", "11", "12"},
		{"print", "pt", "20"}, // past the end: no row
		{"print", "pt", "5", "3"},
		{"print", "ids"},
		{"print", "primary"},
		{"print", "summary"},
		{"tweak", "-n"},
		{"tweak", "-n", "S2"},
		{"tweak"},
		{"add", "all"},
		{"add", "S1"},
		{"set", "replicas", "1"},
		{"set", "replicas", "-1"},
		{"set", "cluster", "RECOVERING"},
		{"set", "cluster", "running"},
		{"kill", "S9"},
		{"drop", "S1"},
		{"drop", "M1"},
		{"kill", "M1"},
		{"truncate", "tid:0xffff"},
		{"truncate", "1325421296"},
		{"check", "0:", "1:S1"},
		{"prune_orphan", "1", "all"},
		{"flush_log"},
		{"print", "foo"},
		{"foo", "bar"},
		{"print", "ids"}, // unchanged by all of the above
		{"print", "pt"},
	} {
		sameOutput(t, c, args...)
	}
}

// Without a command, both print the same command tree (the help texts are
// worded independently) and the TID syntax note.
func TestNeoctlUsage(t *testing.T) {
	p := needPeers(t)
	want := p.script(t, "neoctl")
	got := run(t, nil, ourNeoctl(t))
	if got.code != 0 || want.code != 0 || got.stderr != "" {
		t.Fatalf("usage: neoppod\n%s\nours\n%s", want, got)
	}
	tree := regexp.MustCompile(`(?m)^ *[a-z_]+$`)
	w, g := tree.FindAllString(want.stdout, -1), tree.FindAllString(got.stdout, -1)
	if strings.Join(w, "\n") != strings.Join(g, "\n") {
		t.Errorf("command tree differs:\nneoppod:\n%s\nours:\n%s", strings.Join(w, "\n"), strings.Join(g, "\n"))
	}
	for _, r := range []result{want, got} {
		lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
		if lines[0] != "Available commands:" || !strings.Contains(lines[len(lines)-1], "tid:") {
			t.Errorf("usage: want 'Available commands:' first and the TID note last, got\n%s", r.stdout)
		}
	}
}

// A wrong or unreachable admin address and an unknown command give a
// one-line error and exit status 1.
func TestNeoctlErrors(t *testing.T) {
	p := needPeers(t)
	closed := fmt.Sprintf("127.0.0.1:%d", freeport.Ports(t, 1)[0])
	refused := []string{"-a", closed, "print", "cluster"}
	want, got := p.script(t, "neoctl", refused...), run(t, nil, ourNeoctl(t), refused...)
	if got != want {
		t.Errorf("refused connection: neoppod\n%s\nours\n%s", want, got)
	}
	oneLineError(t, got, "refused connection")
	for _, args := range [][]string{
		{"-a", "nosuchhost.invalid:1", "print", "cluster"},
		{"-a", "127.0.0.1:notaport", "print", "cluster"},
		{"-a", closed, "no_such_command"},
		{"-a", closed, "print"},
	} {
		want, got := p.script(t, "neoctl", args...), run(t, nil, ourNeoctl(t), args...)
		if got.code != want.code {
			t.Errorf("neoctl %q: exit %d, neoppod %d", args, got.code, want.code)
		}
		oneLineError(t, got, fmt.Sprint(args))
	}
	// An offset past the end: the admin answers PROTOCOL_ERROR (neoppod's
	// neoctl prints a traceback).
	c := startCluster(t, p, 1, 0, 3)
	want, got = c.py(t, "print", "pt", "0", "4"), c.gon(t, "print", "pt", "0", "4")
	if got.code != want.code {
		t.Errorf("print pt 0 4: exit %d, neoppod %d", got.code, want.code)
	}
	oneLineError(t, got, "print pt 0 4")

	// An admin without master answers NOT_READY.
	ports := freeport.Ports(t, 2)
	dir := testDir(t)
	lone := &cluster{p: p, name: "lone", dir: dir, admin: fmt.Sprintf("127.0.0.1:%d", ports[1])}
	p.spawn(t, dir, "admin", "neoadmin", "--cluster", "lone", "--masters", fmt.Sprintf("127.0.0.1:%d", ports[0]),
		"--bind", lone.admin, "--logfile", dir+"/admin.log")
	lone.waitFor(t, "admin listening", func() bool { return lone.py(t, "print", "cluster").stderr != "ERROR: not connected\n" })
	for _, args := range [][]string{{"print", "cluster"}, {"print", "node"}, {"start"}, {"print", "ids"}} {
		r := sameOutput(t, lone, args...)
		if r.stderr != "ERROR: Not connected to a primary master.\n" || r.code != 1 {
			t.Errorf("lone admin: %q:\n%s", args, r)
		}
	}

	unknown := []string{"-a", closed, "no_such_command", "x"}
	want, got = p.script(t, "neoctl", unknown...), run(t, nil, ourNeoctl(t), unknown...)
	if got != want {
		t.Errorf("unknown command: neoppod\n%s\nours\n%s", want, got)
	}
}

// `add`, `tweak`, `kill` and `drop` have the same effect with either tool:
// each adds one pending storage, and the cluster seen through `print`
// is the same afterwards.
func TestNeoctlAddTweakKillDrop(t *testing.T) {
	p := needPeers(t)
	c := startCluster(t, p, 1, 1, 6)
	pending := regexp.MustCompile(`(?m)^(S\d+) +\| STORAGE +\| \S+ +\| PENDING`)
	for i, tool := range []struct {
		name string
		run  func(*testing.T, ...string) result
	}{{"neoppod", c.py}, {"ours", c.gon}} {
		c.addStorage(t, i)
		var nid string
		c.waitFor(t, "a PENDING storage", func() bool {
			m := pending.FindStringSubmatch(c.py(t, "print", "node", "STORAGE").stdout)
			if m != nil {
				nid = m[1]
			}
			return m != nil
		})
		sameOutput(t, c, "print", "node", "STORAGE")
		sameOutput(t, c, "tweak", "-n")
		if r := tool.run(t, "add", nid); r.stdout != "Nodes added: "+nid+"\n" || r.code != 0 {
			t.Fatalf("%s: add %s:\n%s", tool.name, nid, r)
		}
		running := regexp.MustCompile(`(?m)^` + nid + ` +\| STORAGE +\| \S+ +\| RUNNING`)
		c.waitFor(t, nid+" RUNNING", func() bool {
			return running.MatchString(c.py(t, "print", "node", "STORAGE").stdout)
		})
		sameOutput(t, c, "print", "pt")
		sameOutput(t, c, "tweak", "-n")
		if r := tool.run(t, "tweak"); r.code != 0 || !strings.Contains(r.stdout, nid+" R ") {
			t.Fatalf("%s: tweak:\n%s", tool.name, r)
		}
		c.waitFor(t, "replication done", func() bool {
			r := c.py(t, "print", "pt", "0", "6")
			return r.code == 0 && !strings.Contains(r.stdout, "OUT_OF_DATE") && !strings.Contains(r.stdout, "FEEDING")
		})
		sameOutput(t, c, "print", "pt")
		sameOutput(t, c, "print", "pt", "0", "6")
		if r := tool.run(t, "kill", nid); r.stdout != "state changed\n" || r.code != 0 {
			t.Fatalf("%s: kill %s:\n%s", tool.name, nid, r)
		}
		sameOutput(t, c, "kill", nid) // already DOWN
		sameOutput(t, c, "print", "node", "STORAGE")
		sameOutput(t, c, "print", "pt")
		sameOutput(t, c, "print", "summary") // a node down: problem
		sameOutput(t, c, "tweak", "-n")      // down node not listed: denied
		if r := tool.run(t, "drop", nid); r.stdout != "node permanently removed\n" || r.code != 0 {
			t.Fatalf("%s: drop %s:\n%s", tool.name, nid, r)
		}
		sameOutput(t, c, "print", "node", "STORAGE")
		sameOutput(t, c, "print", "pt")
	}
}

// `start` leaves RECOVERING with either tool; `set cluster STOPPING`
// stops the cluster.
func TestNeoctlStartStop(t *testing.T) {
	p := needPeers(t)
	var cs [2]*cluster
	for i, tool := range []string{"neoppod", "ours"} {
		c := startManualCluster(t, p, 1)
		cs[i] = c
		sameOutput(t, c, "print", "cluster")
		sameOutput(t, c, "print", "pt")
		sameOutput(t, c, "print", "ids")
		sameOutput(t, c, "tweak", "-n")               // denied outside RUNNING
		sameOutput(t, c, "set", "cluster", "RUNNING") // denied
		run := c.py
		if tool == "ours" {
			run = c.gon
		}
		r := run(t, "start")
		if r.stdout != "Cluster state changed\n" || r.code != 0 {
			t.Fatalf("%s: start:\n%s", tool, r)
		}
		c.waitFor(t, "RUNNING", func() bool { return c.py(t, "print", "cluster").stdout == "RUNNING\n" })
	}
	for _, c := range cs {
		sameOutput(t, c, "print", "cluster")
		sameOutput(t, c, "print", "pt")
		sameOutput(t, c, "print", "ids")
	}
	if a, b := cs[0].gon(t, "print", "pt").stdout, cs[1].gon(t, "print", "pt").stdout; a != b {
		t.Errorf("print pt after start: neoppod's start\n%s\nour start\n%s", a, b)
	}
	for i, tool := range []string{"neoppod", "ours"} {
		c := cs[i]
		run := c.py
		if tool == "ours" {
			run = c.gon
		}
		r := run(t, "set", "cluster", "STOPPING")
		if r.stdout != "Cluster state changed\n" || r.code != 0 {
			t.Fatalf("%s: set cluster STOPPING:\n%s", tool, r)
		}
		// The admin exits once its master stopped: both tools then fail alike.
		c.waitFor(t, "admin gone", func() bool { return c.py(t, "print", "cluster").code == 1 })
		want := c.py(t, "print", "cluster")
		got := c.gon(t, "print", "cluster")
		if got != want {
			t.Errorf("%s: after STOPPING: neoppod\n%s\nours\n%s", tool, want, got)
		}
	}
}

// With --ca --cert --key, both neoctls talk TLS to a TLS cluster (the
// certificates of neoppod's test suite); without them, both fail alike.
func TestNeoctlTLS(t *testing.T) {
	p := needPeers(t)
	certs := filepath.Join(p.neoppod, "neo", "tests")
	c := startManualCluster(t, p, 1, "--ca", filepath.Join(certs, "ca.crt"),
		"--cert", filepath.Join(certs, "node.crt"), "--key", filepath.Join(certs, "node.key"))
	sameOutput(t, c, "print", "cluster")
	sameOutput(t, c, "print", "node", "STORAGE")
	if r := c.gon(t, "start"); r.stdout != "Cluster state changed\n" || r.code != 0 {
		t.Fatalf("start over TLS:\n%s", r)
	}
	c.waitFor(t, "RUNNING", func() bool { return c.py(t, "print", "cluster").stdout == "RUNNING\n" })
	sameOutput(t, c, "print", "pt")
	sameOutput(t, c, "print", "ids")
	sameOutput(t, c, "print", "node")

	plain := []string{"-a", c.admin, "print", "cluster"}
	want, got := p.script(t, "neoctl", plain...), run(t, nil, ourNeoctl(t), plain...)
	if got.code != want.code {
		t.Errorf("plain neoctl to a TLS admin: neoppod\n%s\nours\n%s", want, got)
	}
	if got != want {
		t.Errorf("plain neoctl to a TLS admin: neoppod\n%s\nours\n%s", want, got)
	}
	oneLineError(t, got, "plain neoctl to a TLS admin")

	plainCluster := startCluster(t, p, 1, 0, 1)
	withTLS := append(append([]string{"-a", plainCluster.admin}, c.tls...), "print", "cluster")
	want, got = p.script(t, "neoctl", withTLS...), run(t, nil, ourNeoctl(t), withTLS...)
	if got != want {
		t.Errorf("TLS neoctl to a plain admin: neoppod\n%s\nours\n%s", want, got)
	}
	oneLineError(t, got, "TLS neoctl to a plain admin")
}

// With a client connected and two transactions committed: the client's
// node line and the ids print the same, and our truncate cuts the last
// transaction off.
func TestNeoctlClientAndTruncate(t *testing.T) {
	p := needPeers(t)
	c := startCluster(t, p, 2, 1, 4)
	tids := pyClientCommits(t, p, c, "120")
	for _, args := range [][]string{
		{"print", "node"},
		{"print", "node", "client"},
		{"print", "ids"},
		{"print", "summary"},
		{"truncate", "tid:0x" + tids[1]}, // the last one: denied
		{"truncate", "tid:1"},            // before the first: denied
	} {
		sameOutput(t, c, args...)
	}
	if r := c.gon(t, "truncate", "tid:0x"+tids[0]); r != (result{}) {
		t.Fatalf("truncate:\n%s", r)
	}
	want := regexp.MustCompile(`(?m)^last_tid = 0x0*` + strings.TrimLeft(tids[0], "0") + ` `)
	c.waitFor(t, "truncated and RUNNING", func() bool {
		return c.py(t, "print", "cluster").stdout == "RUNNING\n" && want.MatchString(c.py(t, "print", "ids").stdout)
	})
	sameOutput(t, c, "print", "ids")
	sameOutput(t, c, "print", "pt")
}

// A backup cluster of a neoppod cluster: print ids shows the backup tid,
// summaries (also of an upstream admin monitoring the backup) print the
// same, and our `set cluster STOPPING_BACKUP` leaves backup mode.
func TestNeoctlBackup(t *testing.T) {
	p := needPeers(t)
	up := startCluster(t, p, 1, 0, 4)
	ports := freeport.Ports(t, 3)
	bk := &cluster{
		p:      p,
		name:   fmt.Sprintf("bk%d", ports[0]),
		dir:    testDir(t),
		master: fmt.Sprintf("127.0.0.1:%d", ports[0]),
		admin:  fmt.Sprintf("127.0.0.1:%d", ports[1]),
	}
	monitor := &cluster{p: p, name: up.name, dir: bk.dir, master: up.master, admin: fmt.Sprintf("127.0.0.1:%d", ports[2])}
	p.spawn(t, bk.dir, "monitor", "neoadmin", "--cluster", up.name, "--masters", up.master,
		"--bind", monitor.admin, "--monitor-backup", bk.name, "--logfile", filepath.Join(bk.dir, "monitor.log"))
	common := []string{"--cluster", bk.name, "--masters", bk.master}
	p.spawn(t, bk.dir, "master", "neomaster", append(common, "--bind", bk.master, "--partitions", "4",
		"--replicas", "0", "--autostart", "1", "--backup", "--upstream-cluster", up.name,
		"--upstream-masters", up.master, "--logfile", filepath.Join(bk.dir, "master.log"))...)
	bk.addStorage(t, 0)
	p.spawn(t, bk.dir, "admin", "neoadmin", append(common, "--bind", bk.admin,
		"--logfile", filepath.Join(bk.dir, "admin.log"))...)
	bk.waitFor(t, "BACKINGUP", func() bool { return bk.py(t, "print", "cluster").stdout == "BACKINGUP\n" })

	last := pyClientCommits(t, p, up, "0")[1]
	bk.waitFor(t, "backup up to date", func() bool {
		return strings.HasPrefix(bk.py(t, "print", "ids").stdout, "backup_tid = 0x"+strings.TrimLeft(last, "0")+" ")
	})
	monitor.waitFor(t, "monitor sees the backup up to date", func() bool {
		return strings.Contains(monitor.py(t, "print", "summary").stdout, "ltid="+last+"; lag=")
	})
	sameOutput(t, bk, "print", "ids")
	sameOutput(t, bk, "print", "summary")
	sameOutput(t, bk, "print", "pt")
	sameOutput(t, bk, "set", "cluster", "STARTING_BACKUP") // denied while BACKINGUP
	sameOutput(t, monitor, "print", "summary")

	if r := bk.gon(t, "set", "cluster", "STOPPING_BACKUP"); r.stdout != "Cluster state changed\n" || r.code != 0 {
		t.Fatalf("set cluster STOPPING_BACKUP:\n%s", r)
	}
	bk.waitFor(t, "RUNNING", func() bool { return bk.py(t, "print", "cluster").stdout == "RUNNING\n" })
	monitor.waitFor(t, "monitor sees the backup RUNNING", func() bool {
		return strings.Contains(monitor.py(t, "print", "summary").stdout, "\n    RUNNING;")
	})
	sameOutput(t, bk, "print", "ids")
	sameOutput(t, bk, "print", "summary")
	sameOutput(t, monitor, "print", "summary")
}

// pyClientCommits runs testdata/client.py on c (neoppod's client: two
// commits, then it stays connected for hold seconds) and returns the tids
// of its two commits once made.
func pyClientCommits(t *testing.T, p *peers, c *cluster, hold string) []string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	p.spawnPy(t, c.dir, "client", filepath.Join(root, "internal", "integration", "testdata", "client.py"),
		c.master, c.name, hold)
	var tids []string
	c.waitFor(t, "client committed", func() bool {
		out, _ := os.ReadFile(filepath.Join(c.dir, "client.out"))
		f := strings.Fields(string(out))
		if len(f) >= 3 && f[0] == "TIDS" {
			tids = f[1:3]
			return true
		}
		return false
	})
	return tids
}
