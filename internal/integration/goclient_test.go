//go:build integration

package integration

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/neogo/neo/client"
	"github.com/neogo/neo/internal/freeport"
	"github.com/neogo/neo/internal/neotest"
	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
)

// Tests of our Go client (package client) against a cluster of our
// binaries: it must ride through the loss of the primary master and of
// a storage by itself, without losing an acknowledged commit.

// Bounds of the waits of the Go client tests.
const (
	gcOpTimeout  = 60 * time.Second // one commit of the loop, one check
	gcAckTimeout = 60 * time.Second // some commits acknowledged
)

// gcAck is one commit acknowledged to the loop.
type gcAck struct {
	oid  proto.Oid
	tid  proto.Tid
	data string
	at   time.Time
}

// gcLoop commits one new object per transaction until stopped.
type gcLoop struct {
	t      *testing.T
	cl     *client.Client
	cancel context.CancelFunc
	done   chan struct{}
	// quit asks the loop to end after the commit in progress; quitOnce
	// closes it.
	quit     chan struct{}
	quitOnce sync.Once

	mu       sync.Mutex
	acks     []gcAck
	errs     []string      // failed commits
	lostErrs int           // those that matched client.ErrMasterLost or ErrNoStorage
	readErrs []string      // failed reads of an acknowledged commit
	kick     chan struct{} // cap 1: a new ack
	first    time.Time     // when the loop started
}

// clientLogger returns a logger writing to dir/client.log.
func clientLogger(t *testing.T, dir string) *slog.Logger {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, "client.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// startLoop opens a client on masters and starts committing.
func startLoop(t *testing.T, masters []string, name string, log *slog.Logger) *gcLoop {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), goStartTimeout)
	defer cancel()
	cl, err := client.Open(ctx, client.Config{Masters: masters, Cluster: name, Logger: log})
	if err != nil {
		t.Fatalf("open client: %v", err)
	}
	lctx, lcancel := context.WithCancel(t.Context())
	l := &gcLoop{t: t, cl: cl, cancel: lcancel, done: make(chan struct{}), quit: make(chan struct{}),
		kick: make(chan struct{}, 1), first: time.Now()}
	go l.run(lctx)
	t.Cleanup(l.stop)
	return l
}

func (l *gcLoop) run(ctx context.Context) {
	defer close(l.done)
	for i := 1; ctx.Err() == nil; i++ {
		select {
		case <-l.quit:
			return
		default:
		}
		data := fmt.Sprintf("value %d", i)
		oid, tid, err := l.commit(ctx, data)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			l.mu.Lock()
			l.errs = append(l.errs, fmt.Sprintf("%d: %v", i, err))
			// The storages close their client links when they lose
			// the primary too: the vote may see that first.
			if errors.Is(err, client.ErrMasterLost) || errors.Is(err, client.ErrNoStorage) {
				l.lostErrs++
			}
			l.mu.Unlock()
			// A retry pause, so that a persistent error does not spin.
			tm := time.NewTimer(20 * time.Millisecond)
			select {
			case <-tm.C:
			case <-ctx.Done():
				tm.Stop()
			}
			continue
		}
		l.mu.Lock()
		l.acks = append(l.acks, gcAck{oid: oid, tid: tid, data: data, at: time.Now()})
		l.mu.Unlock()
		// Read it back at once: Load waits through a reconnection (and
		// read retries a read cut by one).
		if err := l.read(ctx, oid, tid, data); err != nil && ctx.Err() == nil {
			l.mu.Lock()
			l.readErrs = append(l.readErrs, err.Error())
			l.mu.Unlock()
		}
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
}

func (l *gcLoop) read(ctx context.Context, oid proto.Oid, tid proto.Tid, data string) error {
	ctx, cancel := context.WithTimeout(ctx, gcOpTimeout)
	defer cancel()
	obj, err := l.cl.Load(ctx, oid, proto.InvalidTid)
	// A read that loses the master, or finds no storage while the
	// table changes, says so rather than waiting (cluster.md §7.2): it
	// is to be tried again.
	for err != nil && ctx.Err() == nil && (errors.Is(err, client.ErrMasterLost) || errors.Is(err, client.ErrNoStorage)) {
		tm := time.NewTimer(20 * time.Millisecond)
		select {
		case <-tm.C:
		case <-ctx.Done():
			tm.Stop()
		}
		obj, err = l.cl.Load(ctx, oid, proto.InvalidTid)
	}
	switch {
	case err != nil:
		return fmt.Errorf("read back oid %v: %w", oid, err)
	case string(obj.Data) != data || obj.Serial != tid:
		return fmt.Errorf("read back oid %v: %q at %v, want %q at %v", oid, obj.Data, obj.Serial, data, tid)
	}
	return nil
}

// openClient opens our client with cfg, closed when t ends.
func openClient(t *testing.T, ctx context.Context, cfg client.Config) *client.Client {
	t.Helper()
	cl, err := client.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("client of cluster %s: %v", cfg.Cluster, err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

func (l *gcLoop) commit(ctx context.Context, data string) (proto.Oid, proto.Tid, error) {
	ctx, cancel := context.WithTimeout(ctx, gcOpTimeout)
	defer cancel()
	oid, err := l.cl.NewOID(ctx)
	if err != nil {
		return 0, 0, err
	}
	tid, err := neotest.Commit(ctx, l.cl, oid, proto.ZeroTid, []byte(data))
	return oid, tid, err
}

// waitAcks waits until n commits were acknowledged after since and
// returns the first of them.
func (l *gcLoop) waitAcks(since time.Time, n int, what string) gcAck {
	l.t.Helper()
	deadline := time.NewTimer(gcAckTimeout)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		var after []gcAck
		for _, a := range l.acks {
			if a.at.After(since) {
				after = append(after, a)
			}
		}
		errs := len(l.errs)
		l.mu.Unlock()
		if len(after) >= n {
			return after[0]
		}
		select {
		case <-l.kick:
		case <-deadline.C:
			l.mu.Lock()
			defer l.mu.Unlock()
			l.t.Fatalf("%s: %d of %d commits acknowledged after %v; %d errors, last: %q",
				what, len(after), n, gcAckTimeout, errs, l.lastErrs(5))
		}
	}
}

// lastErrs returns the last n errors; callers hold l.mu.
func (l *gcLoop) lastErrs(n int) []string {
	return l.errs[max(0, len(l.errs)-n):]
}

// gcQuitGrace is how long stop lets the commit in progress end before
// it cancels it.
const gcQuitGrace = 10 * time.Second

// stop ends the loop and closes its client. The commit in progress is
// let end first: one cancelled in tpc_finish still commits on the master,
// after stop returned, and a test reading the last tid then would see it
// change (TestBackupCheck, once in CI).
func (l *gcLoop) stop() {
	l.quitOnce.Do(func() { close(l.quit) })
	select {
	case <-l.done:
	case <-time.After(gcQuitGrace):
		l.cancel()
		select {
		case <-l.done:
		case <-time.After(gcOpTimeout):
			l.t.Errorf("commit loop still running %v after stop", gcOpTimeout)
		}
	}
	l.cancel()
	l.cl.Close()
}

// check reads every acknowledged commit back with a fresh client.
func (l *gcLoop) check(masters []string, name string) {
	l.t.Helper()
	l.stop()
	ctx, cancel := context.WithTimeout(l.t.Context(), gcOpTimeout)
	defer cancel()
	cl, err := client.Open(ctx, client.Config{Masters: masters, Cluster: name})
	if err != nil {
		l.t.Fatalf("open checking client: %v", err)
	}
	defer cl.Close()
	l.mu.Lock()
	acks, errs, readErrs := l.acks, l.errs, l.readErrs
	l.mu.Unlock()
	if len(readErrs) > 0 {
		l.t.Errorf("reads of acknowledged commits failed during the loop: %q", readErrs[:min(len(readErrs), 10)])
	}
	var bad []string
	for _, a := range acks {
		obj, err := cl.Load(ctx, a.oid, proto.InvalidTid)
		switch {
		case err != nil:
			bad = append(bad, fmt.Sprintf("oid %v: %v", a.oid, err))
		case string(obj.Data) != a.data || obj.Serial != a.tid:
			bad = append(bad, fmt.Sprintf("oid %v: %q at %v, want %q at %v", a.oid, obj.Data, obj.Serial, a.data, a.tid))
		}
		if len(bad) >= 10 {
			break
		}
	}
	if len(bad) > 0 {
		l.t.Fatalf("acknowledged commits lost: %q", bad)
	}
	l.t.Logf("%d acknowledged commits read back; %d failed commits: %q", len(acks), len(errs), errs[:min(len(errs), 10)])
}

// newGoFoCluster prepares a foCluster of our binaries only.
func newGoFoCluster(t *testing.T, prefix string, masters int) *foCluster {
	t.Helper()
	ports := freeport.Ports(t, masters+1)
	c := &foCluster{t: t, bin: goClusterBin(t), dir: testDir(t), name: fmt.Sprintf("%s%d", prefix, ports[0]),
		admin: fmt.Sprintf("127.0.0.1:%d", ports[masters]), procs: map[string]*goProc{}}
	for i := range masters {
		c.masters = append(c.masters, fmt.Sprintf("127.0.0.1:%d", ports[i]))
	}
	t.Cleanup(c.stop)
	return c
}

// startStoragesAdmin starts 2 storages of ours and the admin.
func (c *foCluster) startStoragesAdmin() {
	c.t.Helper()
	for i := range 2 {
		n := fmt.Sprintf("storage%d", i)
		c.node(n, "go", "neostorage", "--bind", "127.0.0.1:0", "--adapter", "SQLite",
			"--database", filepath.Join(c.dir, n+".sqlite"))
	}
	c.node("admin", "go", "neoadmin", "--bind", c.admin)
}

// kill9 kills a node of the cluster and waits for its end.
func (c *foCluster) kill9(name string) time.Time {
	c.t.Helper()
	p := c.procs[name]
	at := time.Now()
	p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(goStopTimeout):
		c.t.Fatalf("%s still alive %v after SIGKILL", name, goStopTimeout)
	}
	delete(c.procs, name)
	return at
}

// TestGoClientFailover kills the primary of two masters while our client
// commits in a loop: the loop goes on through the reconnection and no
// acknowledged commit is lost.
func TestGoClientFailover(t *testing.T) {
	c := newGoFoCluster(t, "gcfo", 2)
	c.startMaster(0, "go")
	c.waitListening(c.masters[0])
	c.startMaster(1, "go")
	c.startStoragesAdmin()

	l := startLoop(t, c.masters, c.name, clientLogger(t, c.dir))
	l.waitAcks(l.first, 20, "commits before the kill")
	victim, primary := c.waitPrimaryNode(t.Context())
	killed := c.kill9(victim)
	first := l.waitAcks(killed, 1, "first commit after the kill")
	t.Logf("first commit %v after killing the primary %s", first.at.Sub(killed).Round(time.Millisecond), victim)
	l.waitAcks(killed, 20, "commits after the kill")
	c.waitNewPrimary(t.Context(), primary)
	l.check(c.masters, c.name)
	// A commit in flight may fail, but only because the master or the
	// storages' links went away.
	if other := len(l.errs) - l.lostErrs; other > 0 {
		t.Errorf("%d failed commits match neither client.ErrMasterLost nor ErrNoStorage: %q", other, l.errs)
	}
}

// TestGoClientStorageLoss kills one of two storages (1 replica) while our
// client commits in a loop: commits go on with the survivor and no
// acknowledged commit is lost.
func TestGoClientStorageLoss(t *testing.T) {
	c := newGoFoCluster(t, "gcsl", 1)
	c.startMaster(0, "go")
	c.startStoragesAdmin()

	l := startLoop(t, c.masters, c.name, clientLogger(t, c.dir))
	l.waitAcks(l.first, 20, "commits before the kill")
	killed := c.kill9("storage1")
	first := l.waitAcks(killed, 1, "first commit after the kill")
	t.Logf("first commit %v after killing storage1", first.at.Sub(killed).Round(time.Millisecond))
	l.waitAcks(killed, 50, "commits after the kill")
	l.check(c.masters, c.name)
}

// TestGoClientPyCluster runs our client against neoppod's master and
// storages: commits, loads of current and old revisions, invalidations
// seen by a second client.
func TestGoClientPyCluster(t *testing.T) {
	p := needPeers(t)
	c := startCluster(t, p, 2, 1, 4)
	ctx, cancel := context.WithTimeout(t.Context(), gcOpTimeout)
	defer cancel()
	open := func() *client.Client {
		return openClient(t, ctx, client.Config{Masters: []string{c.master}, Cluster: c.name})
	}
	a, b := open(), open()
	events := b.Watch(ctx)
	oid, err := a.NewOID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	l := &gcLoop{t: t, cl: a}
	serial := proto.ZeroTid
	var tids []proto.Tid
	for i := range 3 {
		txn, err := a.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		data := []byte(fmt.Sprintf("revision %d %s", i, strings.Repeat("x", 100*i)))
		if err := txn.Store(ctx, oid, serial, data); err != nil {
			t.Fatal(err)
		}
		if err := txn.Vote(ctx); err != nil {
			t.Fatal(err)
		}
		if serial, err = txn.Finish(ctx); err != nil {
			t.Fatal(err)
		}
		tids = append(tids, serial)
		if err := l.read(ctx, oid, serial, string(data)); err != nil {
			t.Error(err)
		}
	}
	for i, want := range tids {
		select {
		case inv := <-events:
			if inv.Tid != want || len(inv.Oids) != 1 || inv.Oids[0] != oid {
				t.Errorf("invalidation %d = %+v; want %v [%v]", i, inv, want, oid)
			}
		case <-ctx.Done():
			t.Fatalf("invalidation %d not received", i)
		}
	}
	obj, err := b.Load(ctx, oid, tids[2])
	if err != nil || obj.Serial != tids[1] || obj.NextSerial != tids[2] || !strings.HasPrefix(string(obj.Data), "revision 1 ") {
		t.Errorf("load before %v = %.20q %v next %v, %v", tids[2], obj.Data, obj.Serial, obj.NextSerial, err)
	}
	if _, err := b.LoadSerial(ctx, oid, tids[0]); err != nil {
		t.Errorf("load serial %v: %v", tids[0], err)
	}
}

// TestGoClientStoragesDown kills both storages (1 replica) of our
// cluster: a read of our client fails promptly (cluster.md §7.2), with
// ErrNoStorage if it notices the storages' end first, ErrMasterLost if
// it notices the master's leaving operation, instead of waiting until
// its context ends.
func TestGoClientStoragesDown(t *testing.T) {
	c := newGoFoCluster(t, "gcsd", 1)
	c.startMaster(0, "go")
	c.startStoragesAdmin()
	ctx, cancel := context.WithTimeout(t.Context(), gcOpTimeout)
	defer cancel()
	cl := openClient(t, ctx, client.Config{Masters: c.masters, Cluster: c.name, Logger: clientLogger(t, c.dir)})
	l := &gcLoop{t: t, cl: cl}
	oid, tid, err := l.commit(ctx, "before the loss")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.read(ctx, oid, tid, "before the loss"); err != nil {
		t.Fatal(err)
	}
	c.kill9("storage0")
	c.kill9("storage1")
	readsFailPromptly(t, ctx, cl, oid)
}

// readsFailPromptly checks that reads of oid fail within
// storagesDownBound, with ErrNoStorage or ErrMasterLost, twice: the
// second read comes when the first one's failure may have made the
// client's state change (storages marked failed, master link dropped).
func readsFailPromptly(t *testing.T, ctx context.Context, cl *client.Client, oid proto.Oid) {
	t.Helper()
	for i := range 2 {
		start := time.Now()
		_, err := cl.Load(ctx, oid, proto.InvalidTid)
		d := time.Since(start)
		t.Logf("read %d with both storages down: %v after %v", i, err, d.Round(time.Millisecond))
		if !errors.Is(err, client.ErrNoStorage) && !errors.Is(err, client.ErrMasterLost) {
			t.Errorf("read %d: %v; want ErrNoStorage or ErrMasterLost", i, err)
		}
		if d > storagesDownBound {
			t.Errorf("read %d took %v; want at most %v", i, d, storagesDownBound)
		}
	}
}

// storagesDownBound bounds a read with every storage of its partition
// down: far below the read's context (gcOpTimeout).
const storagesDownBound = 15 * time.Second

// TestGoClientPyStoragesDown is TestGoClientStoragesDown with neoppod's
// master and storages.
func TestGoClientPyStoragesDown(t *testing.T) {
	p := needPeers(t)
	c := startCluster(t, p, 2, 1, 4)
	ctx, cancel := context.WithTimeout(t.Context(), gcOpTimeout)
	defer cancel()
	cl := openClient(t, ctx, client.Config{Masters: []string{c.master}, Cluster: c.name, Logger: clientLogger(t, c.dir)})
	l := &gcLoop{t: t, cl: cl}
	oid, tid, err := l.commit(ctx, "before the loss")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.read(ctx, oid, tid, "before the loss"); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"storage_0", "storage_1"} {
		pid := c.nodePID(t, n)
		syscall.Kill(pid, syscall.SIGKILL)
		deadline := time.After(goStopTimeout)
		tick := time.NewTicker(pollInterval)
		for syscall.Kill(pid, 0) == nil {
			select {
			case <-tick.C:
			case <-deadline:
				t.Fatalf("%s (%d) alive %v after SIGKILL", n, pid, goStopTimeout)
			}
		}
		tick.Stop()
	}
	readsFailPromptly(t, ctx, cl, oid)
}

// TestGoClientPyTLS: our client commits and reads over TLS with
// neoppod's master and storage (neoppod's test certificates); without
// TLS it cannot connect.
func TestGoClientPyTLS(t *testing.T) {
	p := needPeers(t)
	certs := filepath.Join(p.neoppod, "neo", "tests")
	ca, cert, key := filepath.Join(certs, "ca.crt"), filepath.Join(certs, "node.crt"), filepath.Join(certs, "node.key")
	if _, err := os.Stat(ca); err != nil {
		t.Skipf("neoppod's test certificates: %v", err)
	}
	tlsCfg, err := neonet.LoadTLS(ca, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	c := startManualCluster(t, p, 1, "--ca", ca, "--cert", cert, "--key", key)
	if r := c.py(t, "start"); r.code != 0 {
		t.Fatalf("start over TLS:\n%s", r)
	}
	c.waitFor(t, "RUNNING", func() bool { return c.py(t, "print", "cluster").stdout == "RUNNING\n" })

	ctx, cancel := context.WithTimeout(t.Context(), gcOpTimeout)
	defer cancel()
	cl := openClient(t, ctx, client.Config{Masters: []string{c.master}, Cluster: c.name, TLS: tlsCfg,
		Logger: clientLogger(t, c.dir)})
	l := &gcLoop{t: t, cl: cl}
	for i := range 3 {
		data := fmt.Sprintf("over TLS %d", i)
		oid, tid, err := l.commit(ctx, data)
		if err != nil {
			t.Fatalf("commit %d over TLS: %v", i, err)
		}
		if err := l.read(ctx, oid, tid, data); err != nil {
			t.Error(err)
		}
	}

	plainCtx, plainCancel := context.WithTimeout(ctx, 2*time.Second)
	defer plainCancel()
	if plain, err := client.Open(plainCtx, client.Config{Masters: []string{c.master}, Cluster: c.name}); err == nil {
		plain.Close()
		t.Error("a client without TLS opened the TLS cluster")
	}
}

// TestGoClientPyRelock: two of our clients store the same two objects in
// opposite orders on neoppod's storage, each holding the lock the other
// waits for. The storage notifies the younger transaction's client
// (NotifyDeadlock), which relocks (AskRelockObject, cluster.md §6.6):
// the older transaction commits, the younger gets a ConflictError; none
// hangs. neoppod's storage handles a link's packets in order, so a load
// answered after a store on the same link means the store was handled:
// that orders the two transactions' stores.
func TestGoClientPyRelock(t *testing.T) {
	p := needPeers(t)
	c := startCluster(t, p, 1, 0, 1)
	ctx, cancel := context.WithTimeout(t.Context(), gcOpTimeout)
	defer cancel()
	open := func() *client.Client {
		return openClient(t, ctx, client.Config{Masters: []string{c.master}, Cluster: c.name, Logger: clientLogger(t, c.dir)})
	}
	a, b := open(), open()
	oids := make([]proto.Oid, 3)
	for i := range oids {
		oid, err := a.NewOID(ctx)
		if err != nil {
			t.Fatal(err)
		}
		oids[i] = oid
	}
	oidA, oidB, marker := oids[0], oids[1], oids[2]
	if _, err := neotest.Commit(ctx, a, marker, proto.ZeroTid, []byte("marker")); err != nil {
		t.Fatal(err)
	}
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	// handled waits until cl's stores so far were handled by the storage.
	handled := func(cl *client.Client) {
		t.Helper()
		if _, err := cl.Load(ctx, marker, proto.InvalidTid); err != nil {
			t.Fatalf("load behind the stores: %v", err)
		}
	}
	store := func(txn *client.Txn, oid proto.Oid, data string) {
		t.Helper()
		if err := txn.Store(ctx, oid, proto.ZeroTid, []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	older, err := a.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	younger, err := b.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	store(younger, oidA, "younger A")
	handled(b)
	store(older, oidB, "older B")
	handled(a)
	store(older, oidA, "older A")
	store(younger, oidB, "younger B")

	var wg sync.WaitGroup
	var olderErr, youngerErr error
	wg.Go(func() { _, olderErr = neotest.VoteAndFinish(ctx, older) })
	wg.Go(func() { _, youngerErr = neotest.VoteAndFinish(ctx, younger) })
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatalf("transactions still waiting at the end of the context: older %v, younger %v", olderErr, youngerErr)
	}
	if olderErr != nil {
		t.Errorf("older transaction: %v", olderErr)
	}
	var ce *client.ConflictError
	if !errors.As(youngerErr, &ce) {
		t.Errorf("younger transaction: %v; want a ConflictError", youngerErr)
	}
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	for oid, data := range map[proto.Oid]string{oidA: "older A", oidB: "older B"} {
		obj, err := b.Load(ctx, oid, proto.InvalidTid)
		if err != nil || string(obj.Data) != data {
			t.Errorf("load %v = %q, %v; want %q", oid, obj.Data, err, data)
		}
	}
}
