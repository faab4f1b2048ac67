//go:build integration

package integration

import (
	"database/sql"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	drv "github.com/go-sql-driver/mysql"
)

// startMariaDB starts a private MariaDB server with ../shared/peers'
// mariadb.sh in a directory of the test and creates databases names; it is
// stopped at the end of the test. It returns the server's directory and
// socket. Without mariadbd (outside CI), the test is skipped.
func startMariaDB(t *testing.T, p *peers, names ...string) (dir, sock string) {
	t.Helper()
	if _, err := exec.LookPath("mariadbd"); err != nil {
		if _, err := os.Stat("/usr/sbin/mariadbd"); err != nil && os.Getenv("CI") != "true" {
			t.Skip("no mariadbd: MariaDB is not installed (.ci/run installs it)")
		}
	}
	// A short path: the socket's must stay under 108 bytes.
	dir, err := os.MkdirTemp("", "neo-it-mdb-")
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(p.dir, "mariadb.sh")
	t.Cleanup(func() {
		if out, err := exec.Command(script, "stop", dir).CombinedOutput(); err != nil {
			t.Errorf("mariadb.sh stop: %v\n%s", err, out)
		}
		os.RemoveAll(dir)
	})
	cmd := exec.Command(script, "start", dir)
	cmd.Env = append(os.Environ(), "MARIADB_DATABASES="+strings.Join(names, " "))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("mariadb.sh start %s: %v", dir, err)
	}
	return dir, strings.TrimSpace(lastLine(string(out)))
}

// newGoMySQLCluster prepares a Go cluster of one master, two storages on
// MySQL databases dbs of a private MariaDB server (in dir, socket sock)
// and an admin; start starts its nodes, again after a kill.
func newGoMySQLCluster(t *testing.T, p *peers, prefix string) (c *foCluster, dbs []string, dir, sock string, start func()) {
	t.Helper()
	c = newGoFoCluster(t, prefix, 1)
	c.p = p
	dbs = []string{fmt.Sprintf("%s_0", c.name), fmt.Sprintf("%s_1", c.name)}
	dir, sock = startMariaDB(t, p, dbs...)
	start = func() {
		c.startMaster(0, "go")
		for i, db := range dbs {
			c.node(fmt.Sprintf("storage%d", i), "go", "neostorage", "--bind", "127.0.0.1:0", "--adapter", "MySQL",
				"--database", "root@"+db+sock)
		}
		c.node("admin", "go", "neoadmin", "--bind", c.admin)
	}
	return c, dbs, dir, sock, start
}

// TestGoClusterMySQLRestart restarts the MariaDB server of our two MySQL
// storages while our client commits in a loop: commits in flight may fail,
// none acknowledged is lost, and the cluster serves again by itself once
// the server is back (neoppod's storages die with "MySQL server has gone
// away" there).
func TestGoClusterMySQLRestart(t *testing.T) {
	p := needPeers(t)
	c, dbs, dir, sock, start := newGoMySQLCluster(t, p, "gcmy")
	start()

	l := startLoop(t, c.masters, c.name, clientLogger(t, c.dir))
	l.waitAcks(l.first, 20, "commits before the restart")
	restarted := time.Now()
	if out, err := exec.Command(filepath.Join(p.dir, "mariadb.sh"), "restart", dir).CombinedOutput(); err != nil {
		t.Fatalf("mariadb.sh restart: %v\n%s", err, out)
	}
	back := time.Now()
	first := l.waitAcks(back, 1, "first commit after the restart")
	t.Logf("server down for %v; first commit %v after it was back", back.Sub(restarted).Round(time.Millisecond),
		first.at.Sub(back).Round(time.Millisecond))
	l.waitAcks(back, 20, "commits after the restart")
	l.check(c.masters, c.name)

	// While the server was down, the storages identified, failed to read
	// their database and dropped the link: with no pause before the next
	// try they did so about once a millisecond (338 identifications for a
	// 1.7 s outage), flooding the logs.
	mlog, err := os.ReadFile(filepath.Join(c.dir, "master0.out")) // the log's text on stderr
	if err != nil {
		t.Fatal(err)
	}
	n := strings.Count(string(mlog), "type=STORAGE")
	if n > 60 {
		t.Errorf("%d storage identifications at the master for a %v outage: reconnections not paced", n, back.Sub(restarted).Round(time.Millisecond))
	}
	t.Logf("%d storage identifications at the master", n)

	// Both databases hold the committed rows (1 replica).
	cfg := drv.NewConfig()
	cfg.User, cfg.Net, cfg.Addr = "root", "unix", sock
	conn, err := drv.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	for _, name := range dbs {
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM " + name + ".trans").Scan(&n); err != nil || n < 40 {
			t.Errorf("%s: %d transactions, %v", name, n, err)
		}
	}
}

// TestGoClusterMySQLKill9 kills with SIGKILL, at once, every node of a Go
// cluster on MySQL storages and their MariaDB server while our client
// commits in a loop, then restarts them all: every acknowledged commit is
// there (cluster.md §6.10: vote and lock are durable before the client's
// commit returns; InnoDB recovers its log).
func TestGoClusterMySQLKill9(t *testing.T) {
	p := needPeers(t)
	c, _, dir, _, start := newGoMySQLCluster(t, p, "gck9")
	start()
	l := startLoop(t, c.masters, c.name, clientLogger(t, c.dir))
	l.waitAcks(l.first, 30, "commits before the kill")

	pidData, err := os.ReadFile(filepath.Join(dir, "mariadbd.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(pidData)))
	if err != nil {
		t.Fatalf("mariadbd.pid: %v", err)
	}
	procs := slices.Collect(maps.Values(c.procs))
	syscall.Kill(pid, syscall.SIGKILL)
	for _, pr := range procs {
		pr.cmd.Process.Signal(syscall.SIGKILL)
	}
	for _, pr := range procs {
		<-pr.done
		delete(c.procs, pr.name)
	}
	for syscall.Kill(pid, 0) == nil {
		time.Sleep(10 * time.Millisecond) // mariadbd is not our child: polled until gone
	}
	l.cancel() // nothing to wait for: every server is dead
	l.stop()
	l.mu.Lock()
	acked := len(l.acks)
	l.mu.Unlock()

	if out, err := exec.Command(filepath.Join(p.dir, "mariadb.sh"), "start", dir).CombinedOutput(); err != nil {
		t.Fatalf("mariadb.sh start after SIGKILL: %v\n%s", err, out)
	}
	start()
	t.Logf("%d commits acknowledged before the kill", acked)
	l.check(c.masters, c.name)
}
