//go:build integration

package integration

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/neogo/neo/ctl"
	"github.com/neogo/neo/internal/freeport"
	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
)

// Tests of master failover: two masters (ours, neoppod's, or one of each)
// with neoppod's storages, admin and client. The primary is killed with
// SIGKILL while the client commits in a loop: the loop must go on with
// the other master and every acknowledged commit must stay readable.

// Bounds of the waits of the failover tests.
const (
	foAckTimeout   = 60 * time.Second // some commits acknowledged
	foPrimaryWait  = 30 * time.Second // a primary known by the admin
	foClientFinish = 60 * time.Second // the client checks and exits
)

// foClientPy commits in a loop through neoppod's client with every master
// in its list: one object per transaction, key k<i> = i. It prints
// "ACK <i> <unix time>" after each acknowledged commit and "ERR <i> ..."
// for a failed one ("REOPEN <i> ..." when the client broke and was
// replaced), stops when the file argv[3] exists, then reads every
// acknowledged key back with a fresh client and prints "CHECK OK <n>" or
// "CHECK MISSING <keys>".
const foClientPy = `
import os, sys, time, transaction
from ZODB import DB
from neo.client.Storage import Storage
masters, name, stop = sys.argv[1:4]
db = DB(Storage(master_nodes=masters, name=name))
acked = []
i = 0
while not os.path.exists(stop):
    i += 1
    tm = transaction.TransactionManager()
    try:
        conn = db.open(tm)
    except Exception as e:
        # The client is broken (its poll thread died): start a new one.
        print('REOPEN %d %s: %s' % (i, type(e).__name__, str(e).replace('\n', ' ')), flush=True)
        try: db.close()
        except Exception: pass
        db = DB(Storage(master_nodes=masters, name=name))
        continue
    try:
        conn.root()['k%d' % i] = i
        tm.commit()
        acked.append(i)
        print('ACK %d %.6f' % (i, time.time()), flush=True)
    except Exception as e:
        print('ERR %d %s: %s' % (i, type(e).__name__, str(e).replace('\n', ' ')), flush=True)
        try: tm.abort()
        except Exception: pass
        time.sleep(0.05)
    finally:
        try: conn.close()
        except Exception: pass
db.close()
db = DB(Storage(master_nodes=masters, name=name))
root = db.open().root()
missing = [k for k in acked if root.get('k%d' % k) != k]
if missing:
    print('CHECK MISSING %s' % ' '.join(map(str, missing[:20])), flush=True)
else:
    print('CHECK OK %d' % len(acked), flush=True)
db.close()
`

// foCluster is two masters of the given kinds ("go" or "py"), two
// neoppod storages and a neoppod admin.
type foCluster struct {
	t       *testing.T
	p       *peers
	bin     string
	dir     string
	name    string
	masters []string // host:port
	admin   string
	procs   map[string]*goProc
}

func (c *foCluster) spawn(name string, env []string, prog string, args ...string) *goProc {
	c.t.Helper()
	p := startProc(c.t, c.dir, name, env, prog, args...)
	c.procs[name] = p
	return p
}

// node starts neoppod's script or our binary of the same name.
func (c *foCluster) node(name, kind, script string, args ...string) {
	c.t.Helper()
	common := []string{"--cluster", c.name, "--masters", strings.Join(c.masters, " "),
		"--logfile", filepath.Join(c.dir, name+".log")}
	args = append(common, args...)
	if kind == "go" {
		c.spawn(name, nil, filepath.Join(c.bin, script), args...)
		return
	}
	c.spawn(name, c.p.env(), c.p.py, append(pyMain(script), args...)...)
}

func (c *foCluster) startMaster(i int, kind string) {
	c.t.Helper()
	c.node(fmt.Sprintf("master%d", i), kind, "neomaster", "--bind", c.masters[i],
		"--partitions", "12", "--replicas", "1", "--autostart", "2")
}

// waitListening polls until addr accepts TCP connections.
func (c *foCluster) waitListening(addr string) {
	c.t.Helper()
	deadline := time.After(startTimeout)
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return
		}
		select {
		case <-tick.C:
		case <-deadline:
			c.t.Fatalf("%s not listening after %v; files in %s", addr, startTimeout, c.dir)
		}
	}
}

func (c *foCluster) stop() {
	stopProcs(c.t, slices.Collect(maps.Values(c.procs)))
}

// primary asks the admin which master is primary; "" if none yet.
func (c *foCluster) primary(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cl, err := ctl.Dial(ctx, ctl.Config{Addr: c.admin})
	if err != nil {
		return ""
	}
	defer cl.Close()
	nid, err := cl.Primary(ctx)
	if err != nil {
		return ""
	}
	nodes, err := cl.NodeList(ctx, proto.Some(proto.MASTER))
	if err != nil {
		return ""
	}
	for _, n := range nodes {
		if n.NID == nid {
			return n.Addr.String()
		}
	}
	return ""
}

// waitPrimary polls the admin until it names a primary.
func (c *foCluster) waitPrimary(ctx context.Context) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(ctx, foPrimaryWait)
	defer cancel()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		if p := c.primary(ctx); p != "" {
			return p
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			c.t.Fatalf("no primary known by the admin after %v; files in %s", foPrimaryWait, c.dir)
		}
	}
}

// waitPrimaryNode is waitPrimary with the name of the primary's node
// ("master0", ...).
func (c *foCluster) waitPrimaryNode(ctx context.Context) (node, addr string) {
	c.t.Helper()
	addr = c.waitPrimary(ctx)
	for i, m := range c.masters {
		if m == addr {
			return fmt.Sprintf("master%d", i), addr
		}
	}
	c.t.Fatalf("primary %q is none of %v", addr, c.masters)
	return "", ""
}

// waitElection polls both masters until one redirects to the other:
// storages started while a neoppod master is still a candidate may get a
// node id from it that the winner already gave another storage, and are
// then refused by the winner ("already connected") forever.
func (c *foCluster) waitElection(ctx context.Context) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(ctx, foPrimaryWait)
	defer cancel()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		for i, m := range c.masters {
			if p := c.redirect(ctx, m); p != "" && p == c.masters[1-i] {
				return
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			c.t.Fatalf("the masters did not elect a primary within %v; files in %s", foPrimaryWait, c.dir)
		}
	}
}

// redirect identifies to the master at addr as an admin and returns the
// primary its NotPrimaryMaster names, "" if it accepts or fails.
func (c *foCluster) redirect(ctx context.Context, addr string) string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	link, err := neonet.Dial(ctx, "tcp", addr, neonet.Config{})
	if err != nil {
		return ""
	}
	defer link.Close()
	req := &proto.RequestIdentification{NodeType: proto.ADMIN, ClusterName: c.name, Extra: proto.Dict{}}
	if err := link.Ask(ctx, req, &proto.AcceptIdentification{}); err == nil {
		return ""
	}
	for {
		r, err := link.Recv(ctx)
		if err != nil {
			return ""
		}
		if npm, ok := r.Msg.(*proto.NotPrimaryMaster); ok {
			if i, ok := npm.Primary.Get(); ok && int(i) < len(npm.KnownMasters) {
				return npm.KnownMasters[i].String()
			}
			return ""
		}
	}
}

// waitNewPrimary polls the admin until it names a primary other than old.
func (c *foCluster) waitNewPrimary(ctx context.Context, old string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(ctx, foPrimaryWait)
	defer cancel()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	last := ""
	for {
		if last = c.primary(ctx); last != "" && last != old {
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			c.t.Errorf("primary after failover: %q (was %q) after %v", last, old, foPrimaryWait)
			return
		}
	}
}

// TestFailover runs every pair of master kinds; py-py is the reference
// (neoppod alone) for the failover time logged.
func TestFailover(t *testing.T) {
	for _, kinds := range [][2]string{{"go", "go"}, {"py", "go"}, {"go", "py"}, {"py", "py"}} {
		t.Run(kinds[0]+"-"+kinds[1], func(t *testing.T) { testFailover(t, kinds) })
	}
}

// testFailover starts master 0 first (it should win the election), kills
// the primary during a commit loop and checks the loop.
func testFailover(t *testing.T, kinds [2]string) {
	p := needPeers(t)
	ports := freeport.Ports(t, 3)
	c := &foCluster{t: t, p: p, bin: goClusterBin(t), dir: testDir(t), name: fmt.Sprintf("fo%d", ports[0]),
		masters: []string{fmt.Sprintf("127.0.0.1:%d", ports[0]), fmt.Sprintf("127.0.0.1:%d", ports[1])},
		admin:   fmt.Sprintf("127.0.0.1:%d", ports[2]), procs: map[string]*goProc{}}
	t.Cleanup(c.stop)
	c.startMaster(0, kinds[0])
	c.waitListening(c.masters[0])
	c.startMaster(1, kinds[1])
	c.waitElection(t.Context())
	for i := range 2 {
		n := fmt.Sprintf("storage%d", i)
		c.node(n, "py", "neostorage", "--bind", "127.0.0.1:0", "--adapter", "SQLite",
			"--database", filepath.Join(c.dir, n+".sqlite"))
	}
	c.node("admin", "py", "neoadmin", "--bind", c.admin)

	// The client's output, line by line.
	stopFile := filepath.Join(c.dir, "stop-client")
	ctx, cancel := context.WithTimeout(t.Context(), foAckTimeout+foPrimaryWait+foClientFinish)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.py, "-c", foClientPy, strings.Join(c.masters, " "), c.name, stopFile)
	cmd.Env = append(os.Environ(), p.env()...)
	stderr, err := os.Create(filepath.Join(c.dir, "client.err"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var errs, reopens []string
	// next returns the next ACK time, or the CHECK line.
	next := func(deadline <-chan time.Time, what string) (time.Time, string) {
		t.Helper()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("client exited while waiting for %s (errors: %q); files in %s", what, errs, c.dir)
				}
				f := strings.Fields(l)
				switch {
				case len(f) == 3 && f[0] == "ACK":
					s, _ := strconv.ParseFloat(f[2], 64)
					return time.Unix(0, int64(s*1e9)), ""
				case len(f) > 0 && f[0] == "CHECK":
					return time.Time{}, l
				case len(f) > 0 && f[0] == "REOPEN":
					reopens = append(reopens, l)
				default:
					errs = append(errs, l)
				}
			case <-deadline:
				t.Fatalf("no %s within the deadline (errors: %q); files in %s", what, errs, c.dir)
			}
		}
	}
	ackDeadline := time.After(foAckTimeout)
	for range 20 {
		next(ackDeadline, "commit before the kill")
	}

	victim, primary := c.waitPrimaryNode(ctx)
	if victim != "master0" {
		t.Logf("master1 won the election (%s master slow to start)", kinds[0])
	}
	killed := time.Now()
	pr := c.procs[victim]
	pr.cmd.Process.Signal(syscall.SIGKILL)
	<-pr.done
	delete(c.procs, victim)

	// Commits resume: the first acknowledgement after the kill gives the
	// failover time seen by the client.
	after := time.After(foAckTimeout)
	var first time.Time
	for first.IsZero() || !first.After(killed) {
		first, _ = next(after, "commit after the kill")
	}
	t.Logf("%s-%s: first commit %v after killing the primary %s", kinds[0], kinds[1], first.Sub(killed).Round(time.Millisecond), victim)
	for range 20 {
		next(after, "commit after the kill")
	}
	c.waitNewPrimary(ctx, primary)
	// neoppod's master answers the client's abort of a transaction begun
	// on the old primary with an Error, which kills the client's poll
	// thread when read before the close; ours must not.
	survivor := kinds[1]
	if victim == "master1" {
		survivor = kinds[0]
	}
	if len(reopens) > 0 {
		if survivor == "go" {
			t.Errorf("client broken after failover to our master: %q", reopens)
		} else {
			t.Logf("client broken after failover to neoppod's master (its known flaw): %q", reopens)
		}
	}
	if err := os.WriteFile(stopFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	finish := time.After(foClientFinish)
	for {
		_, check := next(finish, "client check")
		if check == "" {
			continue
		}
		if !strings.HasPrefix(check, "CHECK OK") {
			t.Fatalf("%s (errors: %q)", check, errs)
		}
		t.Logf("%s; failed commits: %q", check, errs)
		break
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("client: %v", err)
	}
}
