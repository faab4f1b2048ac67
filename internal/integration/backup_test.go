//go:build integration

package integration

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/neogo/neo/client"
	"github.com/neogo/neo/ctl"
	"github.com/neogo/neo/internal/freeport"
	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
	_ "github.com/neogo/neo/storage/backend/sqlite"
)

// Tests of backup clusters (cluster.md §8.9): a cluster of our nodes
// backs up another one under write load, through the loss of a storage
// on either side, then leaves backup mode; its data must then equal the
// upstream's, record by record.

// bkWait bounds the waits for the backup to catch up.
const bkWait = 60 * time.Second

// caughtUpBackup commits n transactions on up, then starts a backup
// cluster of up (newBackupCluster) and waits until it has backed up the
// last of them, whose tid it returns.
func caughtUpBackup(t *testing.T, up *slCluster, n int, kind string, storages, replicas int) (*slCluster, proto.Tid) {
	t.Helper()
	loop := startLoop(t, up.masters, up.name, clientLogger(t, up.dir))
	loop.waitAcks(time.Time{}, n, "upstream commits")
	loop.stop()
	last, _, err := up.ids(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	bk := newBackupCluster(t, kind, up, storages, replicas)
	bk.waitBackupTid("backup caught up", last)
	return bk, last
}

// newBackupCluster starts an empty cluster of the given kind in backup
// mode (--backup) of up, and waits until it is BACKINGUP with every cell
// UP_TO_DATE.
func newBackupCluster(t *testing.T, kind string, up *slCluster, storages, replicas int) *slCluster {
	t.Helper()
	ports := freeport.Ports(t, 2)
	c := &slCluster{
		foCluster: &foCluster{t: t, p: up.p, bin: up.bin, dir: filepath.Join(up.dir, "backup-"+kind),
			name:    fmt.Sprintf("bk%d", ports[0]),
			masters: []string{fmt.Sprintf("127.0.0.1:%d", ports[0])},
			admin:   fmt.Sprintf("127.0.0.1:%d", ports[1]), procs: map[string]*goProc{}},
		kind: kind, partitions: up.partitions, replicas: replicas,
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.stop)
	c.node("master", kind, "neomaster", "--bind", c.masters[0], "--partitions", strconv.Itoa(up.partitions),
		"--replicas", strconv.Itoa(replicas), "--autostart", strconv.Itoa(storages),
		"--backup", "--upstream-cluster", up.name, "--upstream-masters", up.masters[0])
	for i := range storages {
		c.startStorage(i)
	}
	c.node("admin", kind, "neoadmin", "--bind", c.admin)
	c.waitPT("backup cluster BACKINGUP with every cell UP_TO_DATE", slWait, func(v ptView) bool {
		return v.state == proto.BACKINGUP && len(v.storages) == storages && v.allUpToDate()
	})
	return c
}

// ids returns the last committed tid and the backup tid, through the
// admin. Not neoctl print ids' last_tid (AskLastIDs): that counts the
// ttids of pending transactions (cluster.md §6.1), and the one the
// write load leaves when it stops is aborted, never committed: a backup
// waiting for it waits forever (seen 2 runs in 150 of TestBackupGoOfGo).
func (c *slCluster) ids(ctx context.Context) (last, backup proto.Tid, err error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cl, err := ctl.Dial(ctx, ctl.Config{Addr: c.admin})
	if err != nil {
		return 0, 0, err
	}
	defer cl.Close()
	last, err = cl.LastTransaction(ctx)
	if err != nil {
		return 0, 0, err
	}
	rec, err := cl.Recovery(ctx)
	if err != nil {
		return 0, 0, err
	}
	return last, rec.BackupTid, nil
}

// waitBackupTid waits until the backup tid of c is at least tid.
func (c *slCluster) waitBackupTid(what string, tid proto.Tid) {
	c.t.Helper()
	var last proto.Tid
	var lastErr error
	deadline := time.Now().Add(bkWait)
	for time.Now().Before(deadline) {
		_, bt, err := c.ids(c.t.Context())
		if err == nil && bt != proto.InvalidTid && bt >= tid {
			return
		}
		last, lastErr = bt, err
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("%s: backup tid %v, want >= %v after %v (last error %v); files in %s", what, last, tid, bkWait, lastErr, c.dir)
}

// setState asks the admin for a cluster state change.
func (c *slCluster) setState(st proto.ClusterState) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.t.Context(), 5*time.Second)
	defer cancel()
	cl, err := ctl.Dial(ctx, ctl.Config{Addr: c.admin})
	if err != nil {
		c.t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.SetClusterState(ctx, st); err != nil {
		c.t.Fatalf("set cluster %v: %v", st, err)
	}
}

// Our backup cluster of our cluster.
func TestBackupGoOfGo(t *testing.T) { testBackup(t, "go", "go", killBoth) }

// Our backup cluster of neoppod's cluster.
func TestBackupGoOfPy(t *testing.T) { testBackup(t, "py", "go", killBoth) }

// Neoppod's backup cluster of our cluster. Only the upstream storage is
// killed: a neoppod backup storage killed with SIGKILL loses object
// records it had fetched (its commits are deferred) yet resumes past
// them, and neoppod's backup of neoppod's cluster loses them the same
// way (seen with this test's iterator comparison, 1 run in 3).
func TestBackupPyOfGo(t *testing.T) { testBackup(t, "go", "py", killUpstream) }

// testBackup: under a write load on the upstream cluster (of kind
// upKind), a backup cluster (bkKind) catches up through kills (kill
// returns the last commit it waited for); it reaches the upstream's
// last tid, serves read-only clients (ours and neoppod's) up to it, and
// STOPPING_BACKUP brings it to RUNNING with the upstream's data, record
// by record.
func testBackup(t *testing.T, upKind, bkKind string, kill func(*testing.T, *slCluster, *slCluster, *gcLoop)) {
	up := newSLCluster(t, upKind, 2, 1, 12)
	loop := startLoop(t, up.masters, up.name, clientLogger(t, up.dir))
	loop.waitAcks(time.Time{}, 20, "upstream commits before the backup")
	bk := newBackupCluster(t, bkKind, up, 2, 1)
	t.Cleanup(func() {
		if t.Failed() { // where each node waits, in NAME.out
			up.dumpGoroutines()
			bk.dumpGoroutines()
		}
	})
	first := loop.waitAcks(time.Now(), 20, "upstream commits while backing up")
	bk.waitBackupTid("backup catching up", first.tid)

	kill(t, up, bk, loop)
	a := loop.waitAcks(time.Now(), 10, "upstream commits at the end")
	loop.stop()

	ctx := t.Context()
	upLast, _, err := up.ids(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if upLast < a.tid {
		t.Fatalf("upstream last tid %v below an acknowledged commit %v", upLast, a.tid)
	}
	bk.waitBackupTid("backup reaching the upstream's last tid", upLast)
	// Every cell of the backup equals the upstream's.
	bk.checkAll()

	// A read-only client of the backup sees what was acknowledged, and
	// cannot write.
	// Its last tid is the min/min backup tid, learnt at each Sync (a
	// backup master sends no invalidation): wait for every cell.
	ro, err := client.Open(ctx, client.Config{Masters: bk.masters, Cluster: bk.name, ReadOnly: true,
		Logger: clientLogger(t, bk.dir)})
	if err != nil {
		t.Fatalf("read-only client of the backup: %v", err)
	}
	for deadline := time.Now().Add(bkWait); ; {
		if err := ro.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		last, err := ro.LastTid(ctx)
		if err != nil || last > upLast {
			t.Fatalf("read-only client: last tid %v (%v), upstream %v", last, err, upLast)
		}
		if last == upLast {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("read-only client: last tid %v, not %v after %v", last, upLast, bkWait)
		}
		time.Sleep(50 * time.Millisecond)
	}
	obj, err := ro.Load(ctx, a.oid, proto.InvalidTid)
	if err != nil || string(obj.Data) != a.data || obj.Serial != a.tid {
		t.Fatalf("read-only load of %v: %q at %v (%v), want %q at %v", a.oid, obj.Data, obj.Serial, err, a.data, a.tid)
	}
	if _, err := ro.Begin(ctx); err == nil {
		t.Fatal("read-only client of a backup cluster began a transaction")
	}
	ro.Close()
	readOnlyNeoppod(t, bk, upLast, a.oid, a.tid)

	bk.setState(proto.STOPPING_BACKUP)
	bk.waitPT("backup cluster RUNNING after STOPPING_BACKUP", slWait, func(v ptView) bool {
		return v.state == proto.RUNNING && v.allUpToDate()
	})
	bkLast, bt, err := bk.ids(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if bkLast != upLast || bt != proto.InvalidTid {
		t.Fatalf("former backup: last tid %v backup tid %v, want %v and none", bkLast, bt, upLast)
	}
	sameIterators(t, up, bk, upLast)
	up.stop()
	bk.stop()
	if upKind != "go" || bkKind != "go" {
		// neoppod's storages defer their commits: what a stopped one
		// left in its database may lack the last transactions, which
		// the next start replays. The live check above compared.
		t.Logf("databases not compared: neoppod's storage defers its commits")
		return
	}
	want := dumpCluster(t, up)
	got := dumpCluster(t, bk)
	for p := range up.partitions {
		w, g := want[uint32(p)], got[uint32(p)]
		if !slices.Equal(w, g) {
			t.Errorf("partition %d differs: upstream %d records, backup %d; first difference:\n%s", p, len(w), len(g), firstDiff(w, g))
		}
	}
	records := 0
	for _, l := range want {
		records += len(l)
	}
	if records < 2*len(loop.acks) {
		t.Errorf("%d records in the upstream for %d commits", records, len(loop.acks))
	}
	t.Logf("upstream and backup equal: %d partitions, %d records, %d commits, last tid %v", len(want), records, len(loop.acks), upLast)
}

// dumpCluster reads, from the databases of the stopped cluster c, every
// transaction and object record of each partition, from one storage
// with a readable cell of it, as lines.
func dumpCluster(t *testing.T, c *slCluster) map[uint32][]string {
	t.Helper()
	ctx := t.Context()
	out := map[uint32][]string{}
	for i := 0; ; i++ {
		path := filepath.Join(c.dir, storageName(i)+".sqlite")
		if _, err := os.Stat(path); err != nil {
			break
		}
		db, err := backend.Open(ctx, path, backend.Options{})
		if err != nil {
			t.Fatal(err)
		}
		meta, err := db.Meta(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, _, cells, err := db.PartitionTable(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, cl := range cells {
			if cl.NID != meta.NID || !cl.State.Readable() {
				continue
			}
			if _, done := out[cl.Partition]; done {
				continue
			}
			out[cl.Partition] = dumpPartition(t, db, cl.Partition)
		}
		db.Close()
	}
	if len(out) != c.partitions {
		t.Fatalf("%s: %d partitions readable in the databases, want %d", c.name, len(out), c.partitions)
	}
	return out
}

func dumpPartition(t *testing.T, db backend.Backend, p uint32) []string {
	t.Helper()
	ctx := t.Context()
	var lines []string
	tids, err := db.TIDsFrom(ctx, p, proto.ZeroTid, proto.MaxTid, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	for _, tid := range tids {
		m, err := db.Transaction(ctx, tid)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, fmt.Sprintf("txn %v user=%q desc=%q ext=%x packed=%v oids=%v", tid, m.User, m.Description, m.Ext, m.Packed, m.Oids))
	}
	keys, err := db.ObjectsFrom(ctx, p, proto.ZeroTid, proto.MaxTid, proto.ZeroOid, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		o, err := db.Load(ctx, k.Oid, k.Tid, proto.InvalidTid)
		if err != nil && !errors.Is(err, backend.ErrOidDoesNotExist) {
			t.Fatal(err)
		}
		if o == nil {
			lines = append(lines, fmt.Sprintf("obj %v@%v deleted", k.Oid, k.Tid))
			continue
		}
		lines = append(lines, fmt.Sprintf("obj %v@%v next=%v comp=%d sum=%x data=%x data_serial=%v",
			k.Oid, k.Tid, o.NextSerial, o.Compression, o.Checksum, o.Data, o.DataSerial))
	}
	return lines
}

func firstDiff(a, b []string) string {
	for i := range max(len(a), len(b)) {
		var x, y string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			return fmt.Sprintf("  #%d upstream: %s\n  #%d backup:   %s", i, x, i, y)
		}
	}
	return ""
}

// TestBackupLag measures the backup lag (upstream commit acknowledged →
// backup tid past it) of our backup cluster and of neoppod's, both
// backing up one cluster of ours under one write load.
func TestBackupLag(t *testing.T) {
	up := newSLCluster(t, "go", 2, 1, 12)
	goBk := newBackupCluster(t, "go", up, 2, 1)
	pyBk := newBackupCluster(t, "py", up, 2, 1)
	loop := startLoop(t, up.masters, up.name, clientLogger(t, up.dir))
	type watch struct {
		name string
		c    *slCluster
		seen []bkSample
	}
	ws := []*watch{{name: "go", c: goBk}, {name: "py", c: pyBk}}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	for _, w := range ws {
		go func() {
			defer func() { done <- struct{}{} }()
			w.seen = pollBackupTid(ctx, w.c.admin)
		}()
	}
	const n = 300
	loop.waitAcks(time.Time{}, n, "commits under watch")
	loop.stop()
	upLast, _, err := up.ids(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		w.c.waitBackupTid(w.name+" backup catching up", upLast)
	}
	cancel()
	for range ws {
		<-done
	}
	loop.mu.Lock()
	acks := slices.Clone(loop.acks)
	loop.mu.Unlock()
	for _, w := range ws {
		lags := backupLags(acks, w.seen)
		if len(lags) < len(acks)*9/10 {
			t.Fatalf("%s: lag known for %d of %d commits", w.name, len(lags), len(acks))
		}
		slices.Sort(lags)
		pct := func(q float64) time.Duration { return lags[min(len(lags)-1, int(q*float64(len(lags))))] }
		t.Logf("backup lag %s: n=%d p50=%v p99=%v max=%v", w.name, len(lags), pct(0.50), pct(0.99), lags[len(lags)-1])
	}
}

// bkSample is the backup tid an admin reported at a time.
type bkSample struct {
	at  time.Time
	tid proto.Tid
}

// pollBackupTid asks the admin for the backup tid as often as it
// answers, until ctx ends, and returns each change with its time.
func pollBackupTid(ctx context.Context, admin string) []bkSample {
	var out []bkSample
	for ctx.Err() == nil {
		cl, err := ctl.Dial(ctx, ctl.Config{Addr: admin})
		if err != nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		for ctx.Err() == nil {
			rec, err := cl.Recovery(ctx)
			if err != nil {
				break
			}
			if rec.BackupTid != proto.InvalidTid && (len(out) == 0 || rec.BackupTid > out[len(out)-1].tid) {
				out = append(out, bkSample{time.Now(), rec.BackupTid})
			}
			time.Sleep(2 * time.Millisecond)
		}
		cl.Close()
	}
	return out
}

// backupLags returns, for each acknowledged commit, the time from its
// acknowledgement to the first sample past it (none if never seen).
func backupLags(acks []gcAck, seen []bkSample) []time.Duration {
	var lags []time.Duration
	for _, a := range acks {
		i, _ := slices.BinarySearchFunc(seen, a.tid, func(s bkSample, tid proto.Tid) int {
			if s.tid < tid {
				return -1
			}
			if s.tid > tid {
				return 1
			}
			return 0
		})
		if i < len(seen) {
			lags = append(lags, max(0, seen[i].at.Sub(a.at)))
		}
	}
	return lags
}

// Our backup cluster of a neoppod cluster, monitored by a neoppod admin
// of the upstream (--monitor-backup): our master tells our admin where
// that admin is, ours reports to it, and its summary shows the backup
// up to date; our STOPPING_BACKUP brings the backup to RUNNING.
func TestBackupMonitoredByNeoppod(t *testing.T) {
	p := needPeers(t)
	bin := goClusterBin(t)
	up := startCluster(t, p, 1, 0, 4)
	ports := freeport.Ports(t, 3)
	bk := &cluster{p: p, name: fmt.Sprintf("bk%d", ports[0]), dir: testDir(t),
		master: fmt.Sprintf("127.0.0.1:%d", ports[0]), admin: fmt.Sprintf("127.0.0.1:%d", ports[1])}
	monitor := &cluster{p: p, name: up.name, dir: bk.dir, master: up.master, admin: fmt.Sprintf("127.0.0.1:%d", ports[2])}
	p.spawn(t, bk.dir, "monitor", "neoadmin", "--cluster", up.name, "--masters", up.master,
		"--bind", monitor.admin, "--monitor-backup", bk.name, "--logfile", filepath.Join(bk.dir, "monitor.log"))
	var procs []*goProc
	t.Cleanup(func() { stopProcs(t, procs) })
	common := []string{"--cluster", bk.name, "--masters", bk.master}
	procs = append(procs, startProc(t, bk.dir, "master", nil, filepath.Join(bin, "neomaster"), append(common,
		"--bind", bk.master, "--partitions", "4", "--replicas", "0", "--autostart", "1", "--backup",
		"--upstream-cluster", up.name, "--upstream-masters", up.master, "--logfile", filepath.Join(bk.dir, "master.log"))...))
	procs = append(procs, startProc(t, bk.dir, "storage", nil, filepath.Join(bin, "neostorage"), append(common,
		"--bind", "127.0.0.1:0", "--adapter", "SQLite", "--database", filepath.Join(bk.dir, "storage.sqlite"),
		"--logfile", filepath.Join(bk.dir, "storage.log"))...))
	procs = append(procs, startProc(t, bk.dir, "admin", nil, filepath.Join(bin, "neoadmin"), append(common,
		"--bind", bk.admin, "--logfile", filepath.Join(bk.dir, "admin.log"))...))
	bk.waitFor(t, "BACKINGUP", func() bool { return bk.gon(t, "print", "cluster").stdout == "BACKINGUP\n" })

	last := pyClientCommits(t, p, up, "0")[1]
	bk.waitFor(t, "backup up to date", func() bool {
		return strings.HasPrefix(bk.gon(t, "print", "ids").stdout, "backup_tid = 0x"+strings.TrimLeft(last, "0")+" ")
	})
	monitor.waitFor(t, "monitor sees the backup up to date", func() bool {
		return strings.Contains(monitor.py(t, "print", "summary").stdout, "ltid="+last+"; lag=")
	})
	if r := bk.gon(t, "set", "cluster", "STOPPING_BACKUP"); r.stdout != "Cluster state changed\n" || r.code != 0 {
		t.Fatalf("set cluster STOPPING_BACKUP:\n%s", r)
	}
	bk.waitFor(t, "RUNNING", func() bool { return bk.gon(t, "print", "cluster").stdout == "RUNNING\n" })
	monitor.waitFor(t, "monitor sees the backup RUNNING", func() bool {
		return strings.Contains(monitor.py(t, "print", "summary").stdout, "\n    RUNNING;")
	})
	if ids := bk.gon(t, "print", "ids").stdout; !strings.Contains(ids, "last_tid = 0x"+strings.TrimLeft(last, "0")+" ") {
		t.Fatalf("former backup: %s, want last tid %s", ids, last)
	}
}

// Our upstream admin monitoring a backup cluster (--monitor-backup), ours
// or neoppod's: the backup's admin reports to it, and neoctl print
// summary on the upstream shows the backup's name, state and lag (0.0:
// in sync). The admin is started last: the backup master learns it from
// the upstream master's node notifications.
func TestBackupMonitoredByOurs(t *testing.T) {
	for _, kind := range []string{"go", "py"} {
		t.Run(kind, func(t *testing.T) {
			up := newSLCluster(t, "go", 1, 0, 4)
			bk, last := caughtUpBackup(t, up, 3, kind, 1, 0)
			mon := fmt.Sprintf("127.0.0.1:%d", freeport.Ports(t, 1)[0])
			up.node("monitor", "go", "neoadmin", "--bind", mon, "--monitor-backup", bk.name)

			want := fmt.Sprintf("# {}\nRUNNING; UP_TO_DATE=4; ltid=%016x (%s)\n\n%s\n    BACKINGUP; UP_TO_DATE=4; ltid=%016x; lag=0.0\n",
				uint64(last), proto.FormatTidTime(last), bk.name, uint64(last))
			var r result
			for deadline := time.Now().Add(bkWait); time.Now().Before(deadline); time.Sleep(pollInterval) {
				if r = run(t, nil, ourNeoctl(t), "-a", mon, "print", "summary"); r.stdout == want {
					return
				}
			}
			t.Fatalf("print summary on the upstream:\n%s\nwant stdout:\n%s", r, want)
		})
	}
}

// killBoth kills with SIGKILL and restarts a storage of the backup, then
// one of the upstream, under the write load, each time waiting for the
// backup to follow.
func killBoth(t *testing.T, up, bk *slCluster, loop *gcLoop) {
	t.Helper()
	killBackup(t, up, bk, loop)
	killUpstream(t, up, bk, loop)
}

// killBackup kills with SIGKILL and restarts a storage of the backup
// under the write load, waiting for the backup to follow.
func killBackup(t *testing.T, up, bk *slCluster, loop *gcLoop) {
	t.Helper()
	bk.kill9(storageName(1))
	bk.waitPT("backup storage lost", slWait, func(v ptView) bool {
		return v.state == proto.BACKINGUP && !v.allUpToDate()
	})
	a := loop.waitAcks(time.Now(), 10, "upstream commits while a backup storage is down")
	bk.waitBackupTid("backup with a storage down", a.tid)
	bk.startStorage(1)
	bk.waitPT("backup storage back", slWait, func(v ptView) bool {
		return v.state == proto.BACKINGUP && v.allUpToDate()
	})
}

// killUpstream kills with SIGKILL and restarts a storage of the upstream
// under the write load, waiting for the backup to follow.
func killUpstream(t *testing.T, up, bk *slCluster, loop *gcLoop) {
	t.Helper()
	up.kill9(storageName(0))
	a := loop.waitAcks(time.Now(), 10, "upstream commits while an upstream storage is down")
	bk.waitBackupTid("backup with an upstream storage down", a.tid)
	up.startStorage(0)
	up.waitPT("upstream storage back", slWait, func(v ptView) bool {
		return v.state == proto.RUNNING && v.allUpToDate()
	})
}

// sameIterators compares, record by record, the transaction iterators of
// the upstream and of the former backup (both RUNNING) up to last: our
// client's Iterate, and ZODB's iterator through neoppod's client.
func sameIterators(t *testing.T, up, bk *slCluster, last proto.Tid) {
	t.Helper()
	ctx := t.Context()
	open := func(c *slCluster) *client.TxnIter {
		cl := openClient(t, ctx, client.Config{Masters: c.masters, Cluster: c.name, ReadOnly: true,
			Logger: clientLogger(t, c.dir)})
		return cl.Iterate(proto.ZeroTid, last)
	}
	ui, bi := open(up), open(bk)
	defer ui.Close()
	defer bi.Close()
	n := 0
	for ; ; n++ {
		u, uerr := ui.Next(ctx)
		b, berr := bi.Next(ctx)
		if errors.Is(uerr, io.EOF) && errors.Is(berr, io.EOF) {
			break
		}
		if uerr != nil || berr != nil {
			t.Fatalf("transaction #%d: upstream %v, backup %v", n, uerr, berr)
		}
		if got, want := fmt.Sprintf("%+v", *b), fmt.Sprintf("%+v", *u); got != want {
			t.Fatalf("transaction #%d differs:\n  upstream %s\n  backup   %s", n, want, got)
		}
	}
	if n == 0 {
		t.Fatal("no transaction iterated")
	}
	pu, pb := iterDump(t, up.p, up.masters[0], up.name), iterDump(t, bk.p, bk.masters[0], bk.name)
	if pu != pb {
		a, b := strings.Split(pu, "\n"), strings.Split(pb, "\n")
		t.Fatalf("neoppod's iterator differs (%d vs %d lines):\n%s", len(a), len(b), firstDiff(a, b))
	}
	t.Logf("iterators equal: %d transactions (our client), %d lines (neoppod's)", n, strings.Count(pu, "\n"))
}

// readOnlyPy checks, through neoppod's client with read_only, a backup
// cluster: its last tid is at most argv[3], oid argv[4] loads with
// serial argv[5], and a commit fails with ReadOnlyError.
const readOnlyPy = `
import sys
from binascii import unhexlify
from ZODB.POSException import ReadOnlyError
from neo.client.Storage import Storage
masters, name, maxtid, oid, serial = sys.argv[1:6]
st = Storage(master_nodes=masters, name=name, read_only=True)
last = st.lastTransaction()
assert last <= unhexlify(maxtid), (last.hex(), maxtid)
data, s = st.load(unhexlify(oid))
assert s == unhexlify(serial), (s.hex(), serial)
try:
    st.tpc_begin(__import__('transaction').Transaction())
except ReadOnlyError:
    print('READONLY', last.hex())
else:
    sys.exit('tpc_begin accepted on a read-only backup')
st.close()
`

// readOnlyNeoppod runs readOnlyPy against the backup cluster bk.
func readOnlyNeoppod(t *testing.T, bk *slCluster, maxTid proto.Tid, oid proto.Oid, serial proto.Tid) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), goClientTimeout)
	defer cancel()
	hex := func(x uint64) string { return fmt.Sprintf("%016x", x) }
	cmd := exec.CommandContext(ctx, bk.p.py, "-c", readOnlyPy, bk.masters[0], bk.name, hex(uint64(maxTid)), hex(uint64(oid)), hex(uint64(serial)))
	cmd.Env = append(os.Environ(), bk.p.env()...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || !strings.HasPrefix(string(out), "READONLY ") {
		t.Fatalf("neoppod's read-only client of the backup: %v\n%s%s", err, out, stderr.String())
	}
}

// neoctl check of our backup cluster against its upstream (§8.9): clean
// after catching up; then an object record deleted from the database of
// a backup storage (stopped meanwhile) is reported by the check (the
// master logs it: CORRUPTED cells are experimental, §8.6).
func TestBackupCheck(t *testing.T) {
	up := newSLCluster(t, "go", 2, 1, 4)
	bk, upLast := caughtUpBackup(t, up, 20, "go", 2, 1)
	bk.checkBackup(upLast, 0, 1, 2, 3)
	if corrupted := bk.logLines("master", `msg="partition corrupted"`); len(corrupted) > 0 {
		t.Fatalf("check of a clean backup: %s", corrupted)
	}

	// A record of storage1 lost while it is stopped.
	name := storageName(1)
	stopProcs(t, []*goProc{bk.procs[name]})
	delete(bk.procs, name)
	db, err := sql.Open("sqlite", filepath.Join(bk.dir, name+".sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	var p uint32
	var oid, tid int64
	if err := db.QueryRow("SELECT partition, oid, tid FROM obj ORDER BY tid DESC LIMIT 1").Scan(&p, &oid, &tid); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("DELETE FROM obj WHERE partition=? AND oid=? AND tid=?", p, oid, tid); err != nil {
		t.Fatal(err)
	}
	db.Close()
	bk.startStorage(1)
	bk.waitPT("backup storage back", slWait, func(v ptView) bool {
		return v.state == proto.BACKINGUP && v.allUpToDate()
	})
	bk.checkBackup(upLast, p)
	var nid string
	for _, l := range bk.logLines(name, `msg="identified to the primary master"`) {
		nid = l[strings.LastIndex(l, " nid=")+len(" nid="):]
	}
	// The storage logs before it reports: wait for the master's line.
	var corrupted []string
	for deadline := time.Now().Add(slWait); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if corrupted = bk.logLines("master", `msg="partition corrupted"`); len(corrupted) > 0 {
			break
		}
	}
	if len(corrupted) != 1 || !strings.HasSuffix(corrupted[0], fmt.Sprintf(" partition=%d nodes=[%s]", p, nid)) {
		t.Fatalf("record %x@%x of partition %d deleted from %s: master reports %q", oid, tid, p, name, corrupted)
	}
	t.Logf("deleted record reported: %s", corrupted[0])
}

// checkBackup runs neoctl check of the partitions of backup cluster c
// until each is checked up to maxTid at least or found corrupted (a check covers
// what every cell has, which may be less while a cell catches up).
func (c *slCluster) checkBackup(maxTid proto.Tid, parts ...uint32) {
	c.t.Helper()
	args := []string{"check"}
	for _, p := range parts {
		args = append(args, fmt.Sprintf("%d:", p))
	}
	deadline := time.Now().Add(slWait)
	for {
		const outcome = `msg="partition c` // checked, or corrupted
		before := len(c.logLines("storage", outcome))
		c.neoctl(args...)
		done := map[uint32]bool{}
		for time.Now().Before(deadline) {
			lines := c.logLines("storage", outcome)
			for _, l := range lines[min(before, len(lines)):] {
				for _, p := range parts {
					if strings.Contains(l, fmt.Sprintf(" partition=%d ", p)) {
						done[p] = checkedUpTo(l) >= maxTid || strings.Contains(l, "corrupted")
					}
				}
			}
			if len(done) == len(parts) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		all := len(done) == len(parts)
		for _, ok := range done {
			all = all && ok
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("check of %v not done up to %v after %v: %v; files in %s", parts, maxTid, slWait, done, c.dir)
		}
	}
}

// checkedUpTo returns the max_tid of a "partition checked" log line, 0
// if it has none. The check may go past the tid the test waited for: a
// commit whose client gave up waiting (the loop stopped) still ends on
// the master, after the test read the upstream's last tid.
func checkedUpTo(line string) proto.Tid {
	_, v, ok := strings.Cut(line, " max_tid=")
	if !ok {
		return 0
	}
	v, _, _ = strings.Cut(v, " ")
	x, err := strconv.ParseUint(v, 16, 64)
	if err != nil {
		return 0
	}
	return proto.Tid(x)
}

// logLines returns the lines containing s in the logs of the nodes of c
// whose name starts with prefix.
func (c *slCluster) logLines(prefix, s string) []string {
	var out []string
	for name := range c.procs {
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		for _, l := range strings.Split(string(c.logText(name)), "\n") {
			if strings.Contains(l, s) {
				out = append(out, l)
			}
		}
	}
	return out
}

// packPy writes three revisions of one object through neoppod's client
// (mode "write": prints "REVS <oid> <tid1> <tid2> <tid3> <root tid>", the
// last field the root's first revision) or packs the
// database at the current time (mode "pack": prints "PACKED <tid>", the
// pack transaction).
const packPy = `
import sys, time
from neo.client.Storage import Storage
from persistent.mapping import PersistentMapping
from ZODB.serialize import referencesf
import ZODB, transaction
masters, name, mode = sys.argv[1:4]
s = Storage(master_nodes=masters, name=name)
if mode == 'write':
    db = ZODB.DB(s)
    c = db.open(); r = c.root()
    root0 = r._p_serial.hex()
    r['p'] = PersistentMapping(); transaction.commit()
    tids = []
    for i in range(3):
        r['p']['v'] = i; transaction.commit(); tids.append(r['p']._p_serial.hex())
    print('REVS', r['p']._p_oid.hex(), *tids, root0, flush=True)
    db.close()
else:
    time.sleep(0.01)
    s.pack(time.time(), referencesf)
    print('PACKED', s.lastTransaction().hex(), flush=True)
    s.close()
`

// runPackPy runs packPy and returns the fields of its output line.
func runPackPy(t *testing.T, c *slCluster, mode string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), goClientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.p.py, "-c", packPy, c.masters[0], c.name, mode)
	cmd.Env = append(os.Environ(), c.p.env()...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s through neoppod's client: %v\n%s%s", mode, err, out, stderr.String())
	}
	return strings.Fields(string(out))
}

// Pack during backup (§8.9): the upstream's pack order reaches our backup
// cluster, which applies it once it has all data up to the pack: the old
// revisions go there too, and the former backup iterates as the
// upstream.
func TestBackupPack(t *testing.T) {
	up := newSLCluster(t, "go", 2, 1, 4)
	bk := newBackupCluster(t, "go", up, 2, 1)
	revs := runPackPy(t, up, "write")
	if len(revs) != 6 || revs[0] != "REVS" {
		t.Fatalf("write: %q", revs)
	}
	parse := func(s string) uint64 {
		x, err := strconv.ParseUint(s, 16, 64)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	oid, first, last, root0 := proto.Oid(parse(revs[1])), proto.Tid(parse(revs[2])), proto.Tid(parse(revs[4])), proto.Tid(parse(revs[5]))
	bk.waitBackupTid("backup of the revisions", last)
	ctx := t.Context()
	open := func(c *slCluster) *client.Client {
		cl := openClient(t, ctx, client.Config{Masters: c.masters, Cluster: c.name, ReadOnly: true,
			Logger: clientLogger(t, c.dir)})
		return cl
	}
	upc, bkc := open(up), open(bk)
	// Every cell has the revisions once the read-only client's last tid
	// (min over cells, not the admin's min/max) passes them.
	for deadline := time.Now().Add(bkWait); ; time.Sleep(50 * time.Millisecond) {
		if err := bkc.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if l, err := bkc.LastTid(ctx); err == nil && l >= last {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("read-only client of the backup: last tid not %v after %v", last, bkWait)
		}
	}
	if o, err := bkc.LoadSerial(ctx, oid, first); err != nil || o.Serial != first {
		t.Fatalf("backup before the pack: revision %v of %v: %v %v", first, oid, o.Serial, err)
	}

	packed := runPackPy(t, up, "pack")
	if len(packed) != 2 || packed[0] != "PACKED" {
		t.Fatalf("pack: %q", packed)
	}
	packTid := proto.Tid(parse(packed[1]))
	// The old revisions go (the last one stays), upstream then in the
	// backup, in the partitions of both objects (each packs on its own).
	gone := func(what string, cl *client.Client) {
		deadline := time.Now().Add(bkWait)
		for _, r := range []struct {
			oid proto.Oid
			tid proto.Tid
		}{{oid, first}, {0, root0}} {
			for {
				_, err := cl.LoadSerial(ctx, r.oid, r.tid)
				if errors.Is(err, proto.ErrOidNotFound) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: revision %v of %v still there %v after the pack at %v (%v)", what, r.tid, r.oid, bkWait, packTid, err)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	gone("upstream", upc)
	bk.waitBackupTid("backup past the pack", packTid)
	gone("backup", bkc)
	if o, err := bkc.LoadSerial(ctx, oid, last); err != nil || o.Serial != last {
		t.Fatalf("backup after the pack: revision %v of %v: %v %v", last, oid, o.Serial, err)
	}
	upc.Close()
	bkc.Close()
	bk.setState(proto.STOPPING_BACKUP)
	bk.waitPT("backup cluster RUNNING after STOPPING_BACKUP", slWait, func(v ptView) bool {
		return v.state == proto.RUNNING && v.allUpToDate()
	})
	sameIterators(t, up, bk, packTid)
}
