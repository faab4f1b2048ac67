//go:build integration

package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/neogo/neo/storage/backend"
	"github.com/neogo/neo/storage/backend/sqlite"
)

// Tests of a Go cluster whose storage is the Importer backend (cluster.md
// §8.10, §11.6): a Data.fs written by ZODB (filestorage/testdata/zodbfs.py
// gen) is served at once, read through neoppod's unchanged client during
// and after its import, and the storage is killed mid-import.

const zodbfsPy = "../../filestorage/testdata/zodbfs.py"

// importerClientPy answers, through neoppod's client, the requests of
// zodbfs.py loads (JSON lines on stdin) and prints the ones whose answer
// differs from FileStorage's, then "OK <n>".
const importerClientPy = `
import hashlib, json, sys
from binascii import hexlify, unhexlify
from neo.client.Storage import Storage
from ZODB.POSException import POSKeyError

def hx(b): return None if b is None else hexlify(b).decode()
def sha(b): return hashlib.sha256(b).hexdigest()

masters, name = sys.argv[1:3]
st = Storage(master_nodes=masters, name=name)
n, bad = 0, 0
for line in sys.stdin:
    l = json.loads(line)
    oid = unhexlify(l['oid'])
    tid = l['tid'] and unhexlify(l['tid'])
    try:
        if l['op'] == 'load':
            data, serial = st.load(oid, '')
            r = [sha(data), hx(serial)]
        elif l['op'] == 'loadBefore':
            r = st.loadBefore(oid, tid)
            if r is not None:
                r = [sha(r[0]), hx(r[1]), hx(r[2])]
        else:
            r = sha(st.loadSerial(oid, tid))
    except POSKeyError:
        r = 'POSKeyError'
    n += 1
    if r != l['result']:
        bad += 1
        if bad <= 10:
            print('%s(%s, %s) = %s, FileStorage: %s' % (l['op'], l['oid'], l['tid'], r, l['result']))
if not bad:
    print('OK %d' % n)
st.close()
`

// importerCluster is a goCluster with one Importer storage.
type importerCluster struct {
	*goCluster
	conf string
}

func newImporterCluster(t *testing.T, p *peers, rate string) (*importerCluster, string, []byte) {
	c := &importerCluster{goCluster: newGoCluster(t, 1, 0, 4)}
	fs := filepath.Join(c.dir, "Data.fs")
	if r := run(t, p.env(), p.py, zodbfsPy, "gen", fs); r.code != 0 {
		t.Fatalf("zodbfs.py gen: %v\n%s", r.code, r.stderr)
	}
	loads := run(t, p.env(), p.py, zodbfsPy, "loads", fs)
	if loads.code != 0 {
		t.Fatalf("zodbfs.py loads: %v\n%s", loads.code, loads.stderr)
	}
	c.conf = filepath.Join(c.dir, "importer.conf")
	conf := fmt.Sprintf("[neo]\nadapter=SQLite\ndatabase=%s\nimport_rate=%s\n[root]\nstorage=\n  <filestorage>\n    path %s\n  </filestorage>\n",
		filepath.Join(c.dir, "neo.sqlite"), rate, fs)
	if err := os.WriteFile(c.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return c, fs, []byte(loads.stdout)
}

// start starts the master, the Importer storage (with debug logs: one
// line per import commit) and the admin, and waits until RUNNING.
func (c *importerCluster) start() {
	c.t.Helper()
	common := []string{"--cluster", c.name, "--masters", c.master}
	c.spawn("master", "neomaster", append(common, "--bind", c.master,
		"--partitions", strconv.Itoa(c.partitions), "--replicas", "0",
		"--autostart", "1", "--logfile", filepath.Join(c.dir, "master.log"))...)
	c.procs = append(c.procs, startProc(c.t, c.dir, "storage", []string{"NEO_DEBUG=1"}, filepath.Join(c.bin, "neostorage"),
		append(common, "--bind", "127.0.0.1:0", "--adapter", "Importer", "--database", c.conf,
			"--logfile", filepath.Join(c.dir, "storage.log"))...))
	c.spawn("admin", "neoadmin", append(common, "--bind", c.admin, "--logfile", filepath.Join(c.dir, "admin.log"))...)
	c.waitRunning()
}

// storageLog returns the text of the storage's log, on its stderr
// (storage.out): its -l file is neoppod's SQLite format, records in RAM
// until a warning.
func (c *importerCluster) storageLog() string {
	b, _ := os.ReadFile(filepath.Join(c.dir, "storage.out"))
	return string(b)
}

// waitLog waits until the storage's log has n lines containing s.
func (c *importerCluster) waitLog(s string, n int, timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for strings.Count(c.storageLog(), s) < n {
		if time.Now().After(deadline) {
			c.t.Fatalf("no %q in the storage log after %v\n%s", s, timeout, c.tail("storage"))
		}
		time.Sleep(pollInterval)
	}
}

// importedRe is the count of imported transactions in neoctl's summary.
var importedRe = regexp.MustCompile(`S1: importing [0-9.]+%: ([0-9]+) transactions`)

// waitImported waits until neoctl's summary reports n transactions
// imported (the storage's log is flushed only on warnings).
func (c *importerCluster) waitImported(n int, timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r := run(c.t, nil, ourNeoctl(c.t), "-a", c.admin, "print", "summary")
		if m := importedRe.FindStringSubmatch(r.stdout); m != nil {
			if k, _ := strconv.Atoi(m[1]); k >= n {
				return
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("not %d transactions imported after %v: %s %s", n, timeout, r.stdout, r.stderr)
		}
		time.Sleep(pollInterval)
	}
}

// checkReads runs importerClientPy on the loads of zodbfs.py.
func (c *importerCluster) checkReads(p *peers, loads []byte, when string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.t.Context(), 3*goClientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.py, "-c", importerClientPy, c.master, c.name)
	cmd.Env = append(os.Environ(), p.env()...)
	cmd.Stdin = bytes.NewReader(loads)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	n := bytes.Count(loads, []byte("\n"))
	if want := fmt.Sprintf("OK %d\n", n); err != nil || stdout.String() != want {
		c.t.Fatalf("%s: reads through neoppod's client differ from FileStorage's (err %v):\n%s\nstderr:\n%s\nfiles in %s",
			when, err, stdout.String(), stderr.String(), c.dir)
	}
}

const allImported = "All data are imported"

// TestImporterClusterReads: every answer of FileStorage to load,
// loadBefore and loadSerial, asked through neoppod's client of a cluster
// whose storage imports that Data.fs (slowly, so that the reads run while
// it imports), then again after the import.
func TestImporterClusterReads(t *testing.T) {
	p := needPeers(t)
	c, _, loads := newImporterCluster(t, p, "100K")
	c.start()
	if strings.Contains(c.storageLog(), allImported) {
		t.Fatal("imported before the reads started: import_rate not applied")
	}
	// The progress, through the admin: in neoctl's summary. Asked before
	// the reads: at import_rate the import lasts about 12 s whatever the
	// load, and the reads may take longer than that under load. Until
	// the storage has its partition table, it reports "import not
	// started".
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		r := run(t, nil, ourNeoctl(t), "-a", c.admin, "print", "summary")
		if strings.Contains(r.stdout, "; S1: importing ") {
			break
		}
		if done := strings.Contains(c.storageLog(), allImported); done || time.Now().After(deadline) {
			t.Fatalf("neoctl print summary during the import: %q, want the storage's progress (imported already: %v)\n%s",
				r.stdout, done, r.stderr)
		}
	}
	c.checkReads(p, loads, "during the import")
	c.waitLog(allImported, 1, 60*time.Second)
	c.checkReads(p, loads, "after the import")
	if r := run(t, nil, ourNeoctl(t), "-a", c.admin, "print", "summary"); r.code != 0 || strings.Contains(r.stdout, "importing") {
		t.Errorf("neoctl print summary after the import: %q %v, want no progress\n%s", r.stdout, r.code, r.stderr)
	}
}

// TestImporterKill9: kill -9 of the storage mid-import (after some import
// commits, with new commits made meanwhile), then a restart: the import
// resumes and in the end every source transaction and record is in the
// database exactly once, the new commits too, and reads equal
// FileStorage's.
func TestImporterKill9(t *testing.T) {
	p := needPeers(t)
	// Slow enough that the import cannot end before the kill however
	// slow the machine (1.2 MB at 10 KB/s), at full speed after it.
	c, fs, loads := newImporterCluster(t, p, "10K")
	c.start()
	acked := revisions{}
	c.goCluster.commitTxns(p, 3, 3, "during", acked)
	c.waitImported(2, 60*time.Second)
	if strings.Contains(c.storageLog(), allImported) {
		t.Fatal("import done before the kill")
	}
	c.kill9()

	db := filepath.Join(c.dir, "neo.sqlite")
	imported := importedTid(t, db)
	dump := run(t, p.env(), p.py, zodbfsPy, "dump", fs)
	if dump.code != 0 {
		t.Fatal(dump)
	}
	var txns, records int
	var lastTid string
	sc := bufio.NewScanner(strings.NewReader(dump.stdout))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var l map[string]any
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		if _, ok := l["status"]; ok {
			txns++
			lastTid = l["tid"].(string)
		} else {
			records++
		}
	}
	if imported == 0 || fmt.Sprintf("%016x", imported) >= lastTid {
		t.Fatalf("killed at import position %016x, want one inside the source (last tid %s)", imported, lastTid)
	}
	t.Logf("killed with the import at %016x of %s", imported, lastTid)

	conf, err := os.ReadFile(c.conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.conf, bytes.Replace(conf, []byte("import_rate=10K"), []byte("import_rate=0"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	c.start()
	c.waitLog(allImported, 1, 90*time.Second)
	c.checkReads(p, loads, "after a kill -9 and the import")
	c.checkTxns(p, acked, true)
	c.stop()

	b, err := sqlite.Open(t.Context(), db, backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	st, err := b.(backend.StatsReporter).Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	newRecs := 0
	for _, objs := range acked {
		newRecs += len(objs)
	}
	if st.Transactions != txns+len(acked) || st.Objects != records+newRecs || st.TempTransactions != 0 || st.TempObjects != 0 {
		t.Fatalf("after kill -9 and restart: %+v, want %d transactions and %d objects (source %d + %d, new %d + %d)",
			st, txns+len(acked), records+newRecs, txns, records, len(acked), newRecs)
	}
}

// importedTid reads the import position committed in the database of a
// stopped storage.
func importedTid(t *testing.T, db string) uint64 {
	b, err := sqlite.Open(t.Context(), db, backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	v, ok, err := b.(backend.BulkImporter).ImportConfig(t.Context(), "zodb_tid")
	if err != nil || !ok {
		t.Fatalf("zodb_tid: %q %v %v", v, ok, err)
	}
	x, err := strconv.ParseUint(v, 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// iterDumpPy prints, through neoppod's client, the storage iterator of a
// cluster as JSON lines: each transaction, then its records (data as
// sha256).
const iterDumpPy = `
import hashlib, json, sys
from binascii import hexlify
from neo.client.Storage import Storage

def hx(b): return None if b is None else hexlify(b).decode()

masters, name = sys.argv[1:3]
st = Storage(master_nodes=masters, name=name)
out = sys.stdout
for txn in st.iterator():
    out.write(json.dumps({'tid': hx(txn.tid), 'status': txn.status, 'user': hx(txn.user),
        'description': hx(txn.description), 'extension': hx(txn.extension_bytes)}) + '\n')
    for r in txn:
        out.write(json.dumps({'oid': hx(r.oid), 'tid': hx(r.tid),
            'data': r.data and hashlib.sha256(r.data).hexdigest(), 'data_txn': hx(r.data_txn)}) + '\n')
st.close()
`

func iterDump(t *testing.T, p *peers, master, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*goClientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.py, "-c", iterDumpPy, master, name)
	cmd.Env = append(os.Environ(), p.env()...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("iterator of %s: %v\n%s", name, err, stderr.String())
	}
	return stdout.String()
}

// neologHas reports whether neoppod's log file (an SQLite database) has a
// record containing s (read directly: neoppod's neolog fails on some logs).
func neologHas(t *testing.T, p *peers, log, s string) bool {
	r := run(t, p.env(), p.py, "-c", `import sqlite3, sys
c = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
print(1 if c.execute("select 1 from log where msg like ?", ("%" + sys.argv[2] + "%",)).fetchone() else 0)`, log, s)
	return strings.TrimSpace(r.stdout) == "1"
}

// TestImporterSameAsNeoppod: the same Data.fs (written by ZODB) imported
// by neoppod's Importer and by ours: neoppod's client iterates the same
// transactions and records from both clusters.
func TestImporterSameAsNeoppod(t *testing.T) {
	p := needPeers(t)
	c, fs, _ := newImporterCluster(t, p, "0")
	// neoppod's importer gets its own copy: each takes the file's lock.
	pyDir := filepath.Join(c.dir, "py")
	if err := os.MkdirAll(pyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(fs)
	if err != nil {
		t.Fatal(err)
	}
	pyFS := filepath.Join(pyDir, "Data.fs")
	if err := os.WriteFile(pyFS, data, 0o644); err != nil {
		t.Fatal(err)
	}
	pyConf := filepath.Join(pyDir, "importer.conf")
	conf := fmt.Sprintf("[neo]\nadapter=SQLite\ndatabase=%s\n[root]\nstorage=\n  <filestorage>\n    path %s\n  </filestorage>\n",
		filepath.Join(pyDir, "neo.sqlite"), pyFS)
	if err := os.WriteFile(pyConf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	py := startClusterEnv(t, p, "imp", []string{"NEO_ADAPTER=Importer", "NEO_DATABASES=" + pyConf}, 1, 0, 4)
	c.start()
	c.waitLog(allImported, 1, 60*time.Second)
	pyLog := filepath.Join(py.dir, "storage_0.log")
	deadline := time.Now().Add(60 * time.Second)
	for !neologHas(t, p, pyLog, allImported) {
		if time.Now().After(deadline) {
			t.Fatalf("neoppod's importer: no %q in %s", allImported, pyLog)
		}
		time.Sleep(time.Second)
	}
	ours, theirs := iterDump(t, p, c.master, c.name), iterDump(t, p, py.master, py.name)
	if ours != theirs {
		a, b := strings.Split(ours, "\n"), strings.Split(theirs, "\n")
		for i := 0; i < len(a) || i < len(b); i++ {
			var x, y string
			if i < len(a) {
				x = a[i]
			}
			if i < len(b) {
				y = b[i]
			}
			if x != y {
				t.Fatalf("iterators differ at line %d (of %d, %d):\nours:    %s\nneoppod: %s", i+1, len(a), len(b), x, y)
			}
		}
	}
	t.Logf("%d lines of iterator equal", strings.Count(ours, "\n"))
}
