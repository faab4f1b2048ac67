package mysql_test

import (
	"bytes"
	"crypto/sha1"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/neogo/neo/internal/freeport"
	"github.com/neogo/neo/internal/peerpy"
	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
	"github.com/neogo/neo/storage/backend/backendtest"
	"github.com/neogo/neo/storage/backend/mysql"
)

// A database written by this backend is read the same by neoppod's MySQL
// backend, with the script and expectations of the SQLite backend's
// interoperability test: same schema, encodings and semantics.
func TestPythonReadsOurDatabase(t *testing.T) {
	needServer(t)
	peerpy.Require(t)
	ctx := t.Context()
	name := "neot_pyread"
	createDB(t, name)
	b, err := mysql.Open(ctx, "mysql:"+dsn(name), backend.Options{Reset: true})
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(backendtest.WritePyReadHistory(ctx, b))
	// neoppod sees the lock we hold: it exits with "database is locked".
	out, err := backendtest.PyRead(t, dsn(name), "MySQL")
	if err == nil || !strings.Contains(err.Error(), "error: database is locked") {
		t.Errorf("neoppod opening the database we hold: %v\n%s", err, out)
	}
	must(b.Close())

	out, err = backendtest.PyRead(t, dsn(name), "MySQL")
	if err != nil {
		t.Fatal(err)
	}
	if got := string(out); got != backendtest.PyReadWant {
		t.Errorf("neoppod reads:\n%s\nwant:\n%s", got, backendtest.PyReadWant)
	}
}

// commitScript commits with neoppod's client: the root 5 times, then a
// value too big for one row (17 MiB of random bytes), and prints the size
// of that record's pickle.
const commitScript = `import os, sys, transaction, ZODB
from neo.client.Storage import Storage
db = ZODB.DB(Storage(master_nodes=sys.argv[1], name=sys.argv[2]))
c = db.open()
r = c.root()
for i in range(5):
    r['x'] = i
    transaction.get().note(u'txn %d' % i)
    transaction.commit()
r['big'] = os.urandom(17 << 20)
transaction.commit()
db.close()
`

// A database written by neoppod's MySQL storage, through its client,
// opens in place here: configuration, partition table, a transaction left
// locked, transactions and records, a value split in bigdata rows
// included.
func TestReadNeoppodDatabase(t *testing.T) {
	needServer(t)
	peers := peerpy.Require(t)
	const cluster = "neot-pywrite"
	// Ports and state directory of this run only, so that concurrent runs
	// of the test do not meet.
	ports := freeport.Ports(t, 2)
	mport, aport := strconv.Itoa(ports[0]), strconv.Itoa(ports[1])
	stateDir := t.TempDir()
	cmd := func(args ...string) string {
		t.Helper()
		c := exec.CommandContext(t.Context(), filepath.Join(peers, "neo-py-cluster.sh"), args...)
		c.Env = append(c.Environ(), "NEO_DIR="+stateDir, "NEO_ADAPTER=MySQL", "NEO_DB_SOCKET="+socket, "NEO_STORAGES=1", "NEO_REPLICAS=0", "NEO_PARTITIONS=4")
		var stderr bytes.Buffer
		c.Stderr = &stderr
		out, err := c.Output()
		if err != nil {
			t.Fatalf("neo-py-cluster.sh %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
		}
		return strings.TrimSpace(string(out))
	}
	name := "neot_pywrite_0" // neo-py-cluster.sh's database of storage 0
	createDB(t, name)        // dropped at the end
	out := strings.Split(cmd("start", cluster, mport, aport), "\n")
	master := out[len(out)-1]
	stopped := false
	defer func() {
		if !stopped {
			cmd("stop", cluster, mport, aport)
		}
	}()
	if out, err := peerpy.Run(t, []byte(commitScript), nil, "-", master, cluster); err != nil {
		t.Fatalf("commit with neoppod's client: %v\n%s", err, out)
	}
	cmd("stop", cluster, mport, aport)
	stopped = true

	ctx := t.Context()
	b, err := mysql.Open(ctx, "mysql:"+dsn(name), backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	m, err := b.Meta(ctx)
	if err != nil || m.Name != cluster || m.NID == 0 || m.PTID == 0 {
		t.Errorf("meta = %+v, %v", m, err)
	}
	_, _, cells, err := b.PartitionTable(ctx)
	if err != nil || len(cells) != 4 || cells[3] != (backend.Cell{Partition: 3, NID: m.NID, State: proto.UP_TO_DATE, Pack: 0}) {
		t.Errorf("partition table = %+v, %v", cells, err)
	}
	// neoppod's storage defers the commit of an unlock: stopped right
	// after the last commit, it left it locked. Verification validates it.
	locked, err := b.LockedTransactions(ctx)
	if err != nil || len(locked) != 1 {
		t.Fatalf("locked transactions = %v, %v; want the last one", locked, err)
	}
	for ttid, tid := range locked {
		if err := b.ValidateTransaction(ctx, ttid, tid); err != nil {
			t.Fatal(err)
		}
	}
	all := []uint32{0, 1, 2, 3}
	tids, err := b.TIDs(ctx, 0, 10, all)
	// The database creation, 5 commits and the big one.
	if err != nil || len(tids) != 7 {
		t.Fatalf("tids = %v, %v", tids, err)
	}
	txn, err := b.Transaction(ctx, tids[2])
	if err != nil || string(txn.Description) != "txn 3" || len(txn.Oids) != 1 {
		t.Errorf("transaction %s = %+v, %v", tids[2], txn, err)
	}
	o, err := b.Load(ctx, 0, proto.InvalidTid, proto.InvalidTid)
	if err != nil || o.Serial != tids[0] || o.NextSerial != proto.InvalidTid || len(o.Data) < 17<<20 || sha1.Sum(o.Data) != o.Checksum {
		t.Fatalf("load root = serial %s, %d bytes, %v", o.Serial, len(o.Data), err)
	}
	h, err := b.History(ctx, 0, 0, 1)
	if err != nil || h[0].Size != len(o.Data) {
		t.Errorf("history of the root = %+v, %v; want the size %d", h, err, len(o.Data))
	}
	if n := query(t, name, "SELECT COUNT(*) FROM $DB.bigdata"); n != "3\n" {
		t.Errorf("bigdata rows: %q, want 3 (17 MiB in 8 MiB rows)", n)
	}
	o, err = b.Load(ctx, 0, proto.InvalidTid, tids[0])
	if err != nil || o.Serial != tids[1] || o.NextSerial != tids[0] || sha1.Sum(o.Data) != o.Checksum {
		t.Errorf("load root before %s = %+v, %v", tids[0], o, err)
	}
}
