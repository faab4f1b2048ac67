//go:build integration

package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/neogo/neo/ctl"
	"github.com/neogo/neo/internal/freeport"
	"github.com/neogo/neo/internal/inproc"
	"github.com/neogo/neo/proto"
)

// Tests of a cluster made only of our nodes (neomaster, neostorage,
// neoadmin from $NEO_BIN), run as real processes and used by neoppod's
// unchanged Python client.

// Bounds of the waits of these tests.
const (
	goStartTimeout  = 60 * time.Second // cluster RUNNING
	goClientTimeout = 90 * time.Second // one Python client run
	goStopTimeout   = 10 * time.Second // SIGTERM before SIGKILL
)

// goBinBuild is the build of goClusterBin.
var goBinBuild cmdBuild

// goClusterBin returns a directory holding neomaster, neostorage and
// neoadmin: $NEO_BIN if it has them all (make integration), else a build
// made once per run in a temporary directory (left behind).
func goClusterBin(t *testing.T) string {
	t.Helper()
	return goBinBuild.dirWith(t, "gocluster-build-", "neomaster", "neostorage", "neoadmin")
}

// goCluster is a cluster of our binaries: 1 master, storages, 1 admin,
// with fixed master and admin ports so that it can be restarted on the
// same databases.
type goCluster struct {
	t          *testing.T
	bin, dir   string
	name       string
	master     string // host:port
	admin      string // host:port
	storages   int
	replicas   int
	partitions int
	procs      []*goProc
}

// newGoCluster prepares (does not start) a cluster in a test directory.
func newGoCluster(t *testing.T, storages, replicas, partitions int) *goCluster {
	t.Helper()
	ports := freeport.Ports(t, 2)
	c := &goCluster{
		t:          t,
		bin:        goClusterBin(t),
		dir:        testDir(t),
		name:       fmt.Sprintf("go%d", ports[0]),
		master:     fmt.Sprintf("127.0.0.1:%d", ports[0]),
		admin:      fmt.Sprintf("127.0.0.1:%d", ports[1]),
		storages:   storages,
		replicas:   replicas,
		partitions: partitions,
	}
	t.Cleanup(c.stop)
	return c
}

// spawn starts one node; its output goes to DIR/name.out.
func (c *goCluster) spawn(name, prog string, args ...string) {
	c.t.Helper()
	c.procs = append(c.procs, startProc(c.t, c.dir, name, nil, filepath.Join(c.bin, prog), args...))
}

// start starts every node and waits until the cluster is RUNNING. The
// master gets --autostart, which only matters for a new database.
func (c *goCluster) start() {
	c.t.Helper()
	common := []string{"--cluster", c.name, "--masters", c.master}
	c.spawn("master", "neomaster", append(common, "--bind", c.master,
		"--partitions", strconv.Itoa(c.partitions), "--replicas", strconv.Itoa(c.replicas),
		"--autostart", strconv.Itoa(c.storages), "--logfile", filepath.Join(c.dir, "master.log"))...)
	for i := range c.storages {
		n := fmt.Sprintf("storage_%d", i)
		c.spawn(n, "neostorage", append(common, "--bind", "127.0.0.1:0", "--adapter", "SQLite",
			"--database", filepath.Join(c.dir, n+".sqlite"), "--logfile", filepath.Join(c.dir, n+".log"))...)
	}
	c.spawn("admin", "neoadmin", append(common, "--bind", c.admin, "--logfile", filepath.Join(c.dir, "admin.log"))...)
	c.waitRunning()
}

// waitRunning polls the admin until the cluster state is RUNNING, failing
// if a node exits or after goStartTimeout.
func (c *goCluster) waitRunning() {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.t.Context(), goStartTimeout)
	defer cancel()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	last := "no answer"
	for {
		st, err := c.clusterState(ctx)
		if err == nil && st == proto.RUNNING {
			return
		}
		if err != nil {
			last = err.Error()
		} else {
			last = st.String()
		}
		for _, p := range c.procs {
			if p.exited() {
				c.t.Fatalf("cluster %s: %s exited before RUNNING: %v\n%s", c.name, p.name, p.err, c.tail(p.name))
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			c.t.Fatalf("cluster %s: not RUNNING after %v (last: %s); files in %s", c.name, goStartTimeout, last, c.dir)
		}
	}
}

func (c *goCluster) clusterState(ctx context.Context) (proto.ClusterState, error) {
	return inproc.ClusterState(ctx, ctl.Config{Addr: c.admin})
}

// tail returns the end of a node's output and log, for failure messages.
func (c *goCluster) tail(name string) string {
	var b strings.Builder
	for _, f := range []string{name + ".out", name + ".log"} {
		data, err := os.ReadFile(filepath.Join(c.dir, f))
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > 15 {
			lines = lines[len(lines)-15:]
		}
		fmt.Fprintf(&b, "--- %s\n%s\n", f, strings.Join(lines, "\n"))
	}
	return b.String()
}

// kill9 sends SIGKILL to every node at once and waits for them: no node
// gets a chance to flush or to say goodbye.
func (c *goCluster) kill9() {
	c.t.Helper()
	for _, p := range c.procs {
		p.cmd.Process.Signal(syscall.SIGKILL)
	}
	for _, p := range c.procs {
		select {
		case <-p.done:
		case <-time.After(goStopTimeout):
			c.t.Fatalf("%s (pid %d) still alive %v after SIGKILL", p.name, p.cmd.Process.Pid, goStopTimeout)
		}
	}
	c.procs = nil
}

// stop ends the nodes still running: SIGTERM, then SIGKILL after
// goStopTimeout.
func (c *goCluster) stop() {
	stopProcs(c.t, c.procs)
	c.procs = nil
}

// goClientPy is the Python side: neoppod's unchanged client used through
// the storage API, so that every committed revision is known exactly.
//
//	commit MASTERS CLUSTER TXNS SEED: TXNS transactions, each creating 2
//	  objects and updating the first object created so far; after each
//	  tpc_finish returns, prints "TID <tid> <oid>=<data> ..." (hex).
//	check MASTERS CLUSTER exact|atleast: reads {"tid": {"oid": "data"}}
//	  (hex) on stdin, checks that every transaction is listed by the
//	  storage iterator, that loadSerial returns each revision and that load
//	  returns the last revision of each object (atleast: or a later one, as
//	  transactions may have committed unacknowledged); prints "OK <n>" or
//	  the differences.
const goClientPy = `
import json, os, sys
from binascii import hexlify, unhexlify
from neo.client.Storage import Storage
from ZODB.Connection import TransactionMetaData
from ZODB.tests.MinPO import MinPO
from ZODB.tests.StorageTestBase import zodb_pickle
from ZODB.utils import z64, u64, p64

def hx(b): return hexlify(b).decode()

mode, masters, name = sys.argv[1:4]
st = Storage(master_nodes=masters, name=name)
if mode == 'commit':
    n, seed = int(sys.argv[4]), sys.argv[5]
    first = None  # (oid, serial)
    for i in range(n):
        t = TransactionMetaData(description=('gocluster %s %d' % (seed, i)).encode())
        st.tpc_begin(t)
        items = []
        for j in range(2):
            oid = st.new_oid()
            data = zodb_pickle(MinPO('%s-%d-%d-%s' % (seed, i, j, hx(os.urandom(8)))))
            st.store(oid, z64, data, '', t)
            items.append((oid, data))
        if first is not None:
            data = zodb_pickle(MinPO('%s-%d-update' % (seed, i)))
            st.store(first[0], first[1], data, '', t)
            items.append((first[0], data))
        st.tpc_vote(t)
        tid = st.tpc_finish(t)
        if first is None:
            first = (items[0][0], tid)
        else:
            first = (first[0], tid)
        print('TID %s %s' % (hx(tid), ' '.join('%s=%s' % (hx(o), hx(d)) for o, d in items)), flush=True)
    print('DONE', flush=True)
elif mode == 'check':
    exact = sys.argv[4] == 'exact'
    want = json.load(sys.stdin)
    errs = []
    listed = set(hx(txn.tid) for txn in st.iterator())
    last = {}
    for tid in sorted(want):
        if tid not in listed:
            errs.append('transaction %s acknowledged but not listed by iterator()' % tid)
        for oid, data in want[tid].items():
            last[oid] = (tid, data)
            try:
                got = st.loadSerial(unhexlify(oid), unhexlify(tid))
            except Exception as e:
                errs.append('loadSerial(%s, %s): %s: %s' % (oid, tid, type(e).__name__, e))
                continue
            if got != unhexlify(data):
                errs.append('loadSerial(%s, %s): wrong data' % (oid, tid))
    for oid, (tid, data) in sorted(last.items()):
        try:
            got, serial = st.load(unhexlify(oid), '')
        except Exception as e:
            errs.append('load(%s): %s: %s' % (oid, type(e).__name__, e))
            continue
        if hx(serial) != tid and (exact or hx(serial) < tid):
            errs.append('load(%s): serial %s, want %s' % (oid, hx(serial), tid))
        elif hx(serial) == tid and got != unhexlify(data):
            errs.append('load(%s): wrong data' % oid)
    for e in errs[:20]:
        print(e)
    if not errs:
        print('OK %d' % len(want))
st.close()
`

// revisions are the acknowledged transactions: tid -> oid -> data (hex).
type revisions map[string]map[string]string

// commitTxns runs the Python client that commits n transactions and adds
// what it acknowledged to acked. It returns as soon as the client printed
// DONE, while the client may still be closing; or, if stopAfter < n, once
// stopAfter transactions were acknowledged, while the client goes on
// committing.
func (c *goCluster) commitTxns(p *peers, n, stopAfter int, seed string, acked revisions) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.t.Context(), goClientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.py, "-c", goClientPy, "commit", c.master, c.name, strconv.Itoa(n), seed)
	cmd.Env = append(os.Environ(), p.env()...)
	stderr, err := os.Create(filepath.Join(c.dir, "client-"+seed+".err"))
	if err != nil {
		c.t.Fatal(err)
	}
	defer stderr.Close()
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	// After DONE the client is not waited for: the cluster is killed
	// under it while it closes. It is killed at the end of ctx at the
	// latest.
	defer func() {
		go func() {
			io.Copy(io.Discard, stdout)
			cmd.Wait()
		}()
	}()
	sc := bufio.NewScanner(stdout)
	sc.Buffer(nil, 1<<20)
	got := 0
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 1 && f[0] == "DONE" {
			if got != n {
				c.t.Fatalf("client %s: DONE after %d transactions, want %d", seed, got, n)
			}
			return
		}
		if len(f) < 3 || f[0] != "TID" {
			c.t.Fatalf("client %s: unexpected output %q", seed, sc.Text())
		}
		objs := map[string]string{}
		for _, kv := range f[2:] {
			oid, data, ok := strings.Cut(kv, "=")
			if !ok {
				c.t.Fatalf("client %s: bad object %q", seed, kv)
			}
			objs[oid] = data
		}
		if _, dup := acked[f[1]]; dup {
			c.t.Fatalf("client %s: tid %s acknowledged twice", seed, f[1])
		}
		acked[f[1]] = objs
		got++
		if got == stopAfter && stopAfter < n {
			return
		}
	}
	errOut, _ := os.ReadFile(stderr.Name())
	c.t.Fatalf("client %s: output ended after %d of %d transactions (ctx: %v)\nstderr:\n%s", seed, got, n, ctx.Err(), errOut)
}

// checkTxns runs the Python checker on what was acknowledged.
func (c *goCluster) checkTxns(p *peers, acked revisions, exact bool) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.t.Context(), goClientTimeout)
	defer cancel()
	in, err := json.Marshal(acked)
	if err != nil {
		c.t.Fatal(err)
	}
	mode := "atleast"
	if exact {
		mode = "exact"
	}
	cmd := exec.CommandContext(ctx, p.py, "-c", goClientPy, "check", c.master, c.name, mode)
	cmd.Env = append(os.Environ(), p.env()...)
	cmd.Stdin = strings.NewReader(string(in))
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if want := fmt.Sprintf("OK %d\n", len(acked)); err != nil || stdout.String() != want {
		c.t.Fatalf("after restart, the acknowledged transactions are not all there (err %v, ctx %v):\n%s\nstderr:\n%s\nfiles in %s",
			err, ctx.Err(), stdout.String(), stderr.String(), c.dir)
	}
}

// TestGoClusterKill9 commits through neoppod's client, kills every node
// with SIGKILL right after the commits returned, restarts the cluster on
// the same databases and checks that every acknowledged transaction and
// its objects are there; twice, so that the second restart also recovers
// a database that went through a crash.
func TestGoClusterKill9(t *testing.T) {
	testGoClusterKill9(t, 20, 20, true)
}

// TestGoClusterKill9DuringCommits kills every node while a client is in
// the middle of its commits: what was acknowledged before must survive,
// and the restart must cope with the transactions caught half-way
// (recovery and verification of unfinished transactions).
func TestGoClusterKill9DuringCommits(t *testing.T) {
	testGoClusterKill9(t, 1000, 15, false)
}

// testGoClusterKill9 runs two rounds of: commitTxns(txns, stopAfter),
// SIGKILL of every node, restart, checkTxns(exact).
func testGoClusterKill9(t *testing.T, txns, stopAfter int, exact bool) {
	p := needPeers(t)
	c := newGoCluster(t, 2, 1, 12)
	c.start()
	acked := revisions{}
	for round := range 2 {
		seed := fmt.Sprintf("r%d", round)
		c.commitTxns(p, txns, stopAfter, seed, acked)
		c.kill9()
		c.start()
		c.checkTxns(p, acked, exact)
	}
}
