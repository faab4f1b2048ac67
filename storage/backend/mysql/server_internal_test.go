package mysql

import (
	"bytes"
	"crypto/sha1"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/neogo/neo/internal/mysqltest"
	"github.com/neogo/neo/internal/peerpy"
	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
	"github.com/neogo/neo/storage/backend/backendtest"
)

// ServerEnv is the environment of mariadb.sh start for the tests' server:
// when Debian's mariadb-plugin-rocksdb is installed, the server loads the
// RocksDB engine (TestConformanceRocksDB).
func ServerEnv() []string {
	if _, err := os.Stat("/usr/lib/mysql/plugin/ha_rocksdb.so"); err != nil {
		return nil
	}
	return []string{"MARIADB_ARGS=--plugin-load-add=ha_rocksdb"}
}

// testDB opens a fresh database on the server TestMain (main_test.go)
// provides, with NP partitions on node me, and an admin connection.
func testDB(t *testing.T, opts backend.Options) (*DB, *sql.DB, string) {
	t.Helper()
	name := "neot_" + strings.NewReplacer("/", "_", "-", "_", "=", "_").Replace(strings.ToLower(t.Name()))
	sock, admin := mysqltest.DB(t, name)
	b, err := Open(t.Context(), "mysql:root@"+name+sock, opts)
	if err != nil {
		t.Fatal(err)
	}
	db := b.(*DB)
	t.Cleanup(func() { db.Close() })
	ctx := t.Context()
	if err := backendtest.Setup(ctx, db, "t", 4); err != nil {
		t.Fatal(err)
	}
	return db, admin, name
}

func record(oid proto.Oid, data []byte) backend.Record {
	return backend.Record{Oid: oid, Data: data, Checksum: sha1.Sum(data), DataSerial: proto.InvalidTid}
}

func commit(t *testing.T, b backend.Backend, tid proto.Tid, recs ...backend.Record) {
	t.Helper()
	ctx := t.Context()
	var oids []proto.Oid
	for _, r := range recs {
		oids = append(oids, r.Oid)
	}
	if err := b.StoreTransaction(ctx, tid, recs, &backend.TxnMeta{TTid: tid, Oids: oids}); err != nil {
		t.Fatal(err)
	}
	if err := b.LockTransaction(ctx, tid, tid, false); err != nil {
		t.Fatal(err)
	}
	if err := b.UnlockTransaction(ctx, tid, tid); err != nil {
		t.Fatal(err)
	}
}

func count(t *testing.T, admin *sql.DB, q string) int {
	t.Helper()
	var n int
	if err := admin.QueryRow(q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// Values of 16 MiB or more are split in 8 MiB rows of bigdata, read back
// whole, sized by their header in history, and deleted with their data.
func TestBigValue(t *testing.T) {
	for _, dedup := range []bool{false, true} {
		t.Run(fmt.Sprintf("dedup=%v", dedup), func(t *testing.T) { testBigValue(t, dedup) })
	}
}

func testBigValue(t *testing.T, dedup bool) {
	db, admin, name := testDB(t, backend.Options{Dedup: dedup})
	ctx := t.Context()
	big := bytes.Repeat([]byte("0123456789abcdef"), (bigValue+bigChunk/2)/16) // 3 chunks
	commit(t, db, 0x10, record(1, big), record(2, []byte("small")))
	commit(t, db, 0x20, record(3, big)) // the same value again
	chunks := 3
	if !dedup {
		chunks = 6
	}
	if n := count(t, admin, "SELECT COUNT(*) FROM "+name+".bigdata"); n != chunks {
		t.Errorf("%d bigdata rows, want %d", n, chunks)
	}
	if n := count(t, admin, "SELECT COUNT(*) FROM "+name+".data WHERE compression=128 AND LENGTH(value)=8"); n != chunks/3 {
		t.Errorf("%d data rows with the big flag and a header, want %d", n, chunks/3)
	}
	for _, oid := range []proto.Oid{1, 3} {
		o, err := db.Load(ctx, oid, proto.InvalidTid, proto.InvalidTid)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(o.Data, big) || o.Compression != 0 || o.Checksum != sha1.Sum(big) {
			t.Errorf("oid %d loaded %d bytes, compression %d", oid, len(o.Data), o.Compression)
		}
		h, err := db.History(ctx, oid, 0, 10)
		if err != nil || len(h) != 1 || h[0].Size != len(big) {
			t.Errorf("history of oid %d = %+v, %v; want size %d", oid, h, err, len(big))
		}
	}
	// Overwrite and pack both: the split values go.
	commit(t, db, 0x30, record(1, []byte("x")), record(3, []byte("y")))
	for p := uint32(0); p < 4; p++ {
		if _, err := db.Pack(ctx, p, 0x30, nil, 0, 100); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(t, admin, "SELECT COUNT(*) FROM "+name+".bigdata"); n != 0 {
		t.Errorf("%d bigdata rows left after pack", n)
	}
}

// A write connection the server dropped between calls is replaced by the
// next write, which takes the lock again; one dropped while a call writes
// fails that call, without retrying it on a new connection.
func TestServerGone(t *testing.T) {
	db, admin, name := testDB(t, backend.Options{})
	ctx := t.Context()
	lock := "'" + name + ".neostorage'"
	holder := func() int64 {
		t.Helper()
		var id sql.NullInt64
		if err := admin.QueryRow("SELECT IS_USED_LOCK(" + lock + ")").Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id.Int64
	}
	kill := func(id int64) {
		t.Helper()
		if _, err := admin.Exec("KILL CONNECTION ?", id); err != nil {
			t.Fatal(err)
		}
	}
	first := holder()
	kill(first)
	commit(t, db, 0x10, record(1, []byte("after kill")))
	if id := holder(); id == 0 || id == first {
		t.Errorf("after reconnection the lock is held by connection %d (killed: %d)", id, first)
	}

	err := db.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO config VALUES ('test', 'lost')`); err != nil {
			return err
		}
		kill(holder())
		_, err := tx.ExecContext(ctx, `INSERT INTO config VALUES ('test2', 'lost')`)
		return err
	})
	if err == nil || !serverGone(err) {
		t.Fatalf("write on a connection killed in the middle: %v, want a lost connection", err)
	}
	if n := count(t, admin, "SELECT COUNT(*) FROM "+name+".config WHERE name LIKE 'test%'"); n != 0 {
		t.Errorf("%d rows of the failed transaction committed", n)
	}
	commit(t, db, 0x20, record(1, []byte("after failure")))
	o, err := db.Load(ctx, 1, proto.InvalidTid, proto.InvalidTid)
	if err != nil || string(o.Data) != "after failure" {
		t.Fatalf("load after reconnection: %v, %v", o, err)
	}
	if _, err := Open(ctx, "mysql:root@"+name+os.Getenv("NEO_MYSQL_SOCKET"), backend.Options{}); !errors.Is(err, backend.ErrLocked) {
		t.Errorf("second open after reconnection: %v, want ErrLocked", err)
	}
}

// neoppod refuses a server whose max_allowed_packet is below 32769 KiB:
// a data row could not be sent.
func TestMaxAllowedPacket(t *testing.T) {
	_, admin, name := testDB(t, backend.Options{})
	var old int
	if err := admin.QueryRow("SELECT @@GLOBAL.max_allowed_packet").Scan(&old); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec("SET GLOBAL max_allowed_packet=16*1024*1024"); err != nil {
		t.Fatal(err)
	}
	defer admin.Exec("SET GLOBAL max_allowed_packet=?", old)
	if _, err := admin.Exec("CREATE DATABASE " + name + "_2"); err != nil {
		t.Fatal(err)
	}
	defer admin.Exec("DROP DATABASE " + name + "_2")
	_, err := Open(t.Context(), "mysql:root@"+name+"_2"+os.Getenv("NEO_MYSQL_SOCKET"), backend.Options{})
	if err == nil || !strings.Contains(err.Error(), "max_allowed_packet is too small (16777216): minimal value must be 32769k") {
		t.Errorf("open with max_allowed_packet=16M: %v", err)
	}
}

// The Importer's destination writes committed transactions in bulk; an
// undo record may point to a record of the same batch.
func TestImportTransactions(t *testing.T) {
	db, _, _ := testDB(t, backend.Options{})
	ctx := t.Context()
	txns := []backend.TxnMeta{{Tid: 0x10, TTid: 0x10, Oids: []proto.Oid{1}}, {Tid: 0x21, TTid: 0x21, Oids: []proto.Oid{1}, Description: []byte("undo")}}
	undo := backend.Record{Oid: 1, Serial: 0x21, DataSerial: 0x10}
	if err := db.ImportTransactions(ctx, txns, []backend.Record{{Oid: 1, Serial: 0x10, Data: []byte("a"), Checksum: sha1.Sum([]byte("a")), DataSerial: proto.InvalidTid}, undo},
		map[string]string{"zodb": "state"}); err != nil {
		t.Fatal(err)
	}
	o, err := db.Load(ctx, 1, proto.InvalidTid, proto.InvalidTid)
	if err != nil || o.Serial != 0x21 || o.DataSerial != 0x10 || string(o.Data) != "a" {
		t.Errorf("load after import = %+v, %v", o, err)
	}
	if m, err := db.Transaction(ctx, 0x21); err != nil || string(m.Description) != "undo" {
		t.Errorf("imported transaction = %+v, %v", m, err)
	}
	if v, ok, err := db.ImportConfig(ctx, "zodb"); v != "state" || !ok || err != nil {
		t.Errorf("import config = %q, %v, %v", v, ok, err)
	}
	if err := db.ImportTransactions(ctx, nil, nil, map[string]string{"zodb": ""}); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := db.ImportConfig(ctx, "zodb"); ok || err != nil {
		t.Errorf("import config after deletion = %q, %v, %v", v, ok, err)
	}
}

// The server restarts while a writer commits in a loop: no acknowledged
// commit is lost, the calls in flight fail (never hang, never commit half),
// and the backend commits and loads again by itself once the server is
// back, as cluster.md §8.1 says of a server that went away.
func TestServerRestartUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts the server")
	}
	db, _, _ := testDB(t, backend.Options{})
	dir := filepath.Dir(os.Getenv("NEO_MYSQL_SOCKET"))
	script := filepath.Join(peerpy.Dir(), "mariadb.sh")
	if _, err := os.Stat(filepath.Join(dir, "my.cnf")); err != nil {
		t.Skipf("server not started by mariadb.sh (no %s/my.cnf): cannot restart it", dir)
	}
	ctx := t.Context()
	type ack struct{ ttid, tid proto.Tid }
	var (
		mu              sync.Mutex
		acked, unlocked []ack
		failures        []string
	)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ttid := proto.Tid(0x1000 + 8*i)
			tid := ttid + 4
			recs := []backend.Record{record(proto.Oid(i%16), []byte(fmt.Sprintf("data %d", i)))}
			meta := &backend.TxnMeta{TTid: ttid, Oids: []proto.Oid{recs[0].Oid}}
			fail := func(what string, err error) {
				mu.Lock()
				failures = append(failures, fmt.Sprintf("%s %s: %v", what, ttid, err))
				mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
			if err := db.StoreTransaction(ctx, ttid, recs, meta); err != nil {
				fail("vote", err)
				continue
			}
			if err := db.LockTransaction(ctx, ttid, tid, false); err != nil {
				fail("lock", err)
				continue
			}
			mu.Lock()
			acked = append(acked, ack{ttid, tid})
			mu.Unlock()
			if err := db.UnlockTransaction(ctx, ttid, tid); err != nil {
				fail("unlock", err)
				continue
			}
			mu.Lock()
			unlocked = append(unlocked, ack{ttid, tid})
			mu.Unlock()
		}
	}()
	progress := func(n int, timeout time.Duration) {
		t.Helper()
		mu.Lock()
		want := len(unlocked) + n
		mu.Unlock()
		deadline := time.Now().Add(timeout)
		for {
			mu.Lock()
			got := len(unlocked)
			mu.Unlock()
			if got >= want {
				return
			}
			if time.Now().After(deadline) {
				close(stop)
				<-done
				t.Fatalf("%d commits in %v, want %d; failures: %v", got, timeout, want, failures)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	progress(20, 30*time.Second)
	restart := exec.Command(script, "restart", dir)
	restart.Env = append(os.Environ(), ServerEnv()...)
	if out, err := restart.CombinedOutput(); err != nil {
		close(stop)
		<-done
		t.Fatalf("%s restart %s: %v\n%s", script, dir, err, out)
	}
	progress(20, 60*time.Second) // by itself, once the server is back
	close(stop)
	<-done

	locked, err := db.LockedTransactions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range acked {
		if _, err := db.Transaction(ctx, a.tid); err == nil {
			continue
		}
		if locked[a.ttid] != a.tid {
			t.Errorf("acknowledged transaction %s (ttid %s) lost", a.tid, a.ttid)
			continue
		}
		if err := db.ValidateTransaction(ctx, a.ttid, a.tid); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.DropUnfinishedData(ctx); err != nil {
		t.Fatal(err)
	}
	for _, a := range acked {
		m, err := db.Transaction(ctx, a.tid)
		if err != nil {
			t.Errorf("transaction %s: %v", a.tid, err)
			continue
		}
		if _, err := db.Load(ctx, m.Oids[0], a.tid, proto.InvalidTid); err != nil {
			t.Errorf("transaction %s: %v", a.tid, err)
		}
	}
	if len(failures) == 0 {
		t.Fatal("no call failed: the restart did not happen under load")
	}
	t.Logf("%d commits acknowledged, %d unlocked; %d failed calls during the restart, the first and last:\n%s\n%s",
		len(acked), len(unlocked), len(failures), failures[0], failures[len(failures)-1])
}

// A batch whose middle statement fails leaves nothing: the statements
// before it are rolled back, those after it never run, and the connection
// serves the next batch, in which a query sees what was sent before it.
func TestBatchAtomic(t *testing.T) {
	db, admin, name := testDB(t, backend.Options{})
	ctx := t.Context()
	err := db.writeCommit(ctx, func(tx *batchTx) error {
		tx.ExecContext(ctx, `INSERT INTO config VALUES ('b1', 'x')`)
		tx.ExecContext(ctx, `INSERT INTO nosuchtable VALUES (1)`)
		_, err := tx.ExecContext(ctx, `INSERT INTO config VALUES ('b2', 'x')`)
		return err
	})
	if err == nil {
		t.Fatal("batch with a failing statement: no error")
	}
	if n := count(t, admin, "SELECT COUNT(*) FROM "+name+".config WHERE name IN ('b1', 'b2')"); n != 0 {
		t.Errorf("%d rows of a failed batch committed", n)
	}
	err = db.writeCommit(ctx, func(tx *batchTx) error {
		tx.ExecContext(ctx, `INSERT INTO config VALUES ('b3', 'y')`)
		var v string
		if err := tx.QueryRowContext(ctx, `SELECT value FROM config WHERE name='b3'`).Scan(&v); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO config VALUES ('b4', ?)`, v)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := count(t, admin, "SELECT COUNT(*) FROM "+name+".config WHERE name IN ('b3', 'b4') AND value='y'"); n != 2 {
		t.Errorf("%d rows of 2 committed", n)
	}
}
