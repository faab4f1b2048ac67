//go:build integration

package integration

import (
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	drv "github.com/go-sql-driver/mysql"

	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
	_ "github.com/neogo/neo/storage/backend/mysql"
	_ "github.com/neogo/neo/storage/backend/sqlite"
)

// TestNewNID clones our storage with --new-nid (cluster.md §8.11): a raw
// copy of its database taken while the cluster is stopped is refused while
// RECOVERING, joins once the cluster runs, gets a new NID with OUT_OF_DATE
// cells and exits; the source takes more commits; restarted normally, the
// clone replicates only those (counted by the clone itself) and becomes
// UP_TO_DATE, `neoctl check` finds no difference, and the clone alone
// serves every commit. On SQLite and MySQL, under our master and
// neoppod's.
func TestNewNID(t *testing.T) {
	for _, tc := range []struct{ master, adapter string }{
		{"go", "SQLite"}, {"py", "SQLite"}, {"go", "MySQL"},
	} {
		t.Run(tc.master+"_master_"+tc.adapter, func(t *testing.T) { testNewNID(t, tc.master, tc.adapter) })
	}
}

func testNewNID(t *testing.T, masterKind, adapter string) {
	// Our storages (kind "go": checkAll reads their logs), masterKind's
	// master and admin.
	c := slClusterOf(t, "nn", "go", 0, 4)
	p := c.p
	var db *cloneDB
	if adapter == "MySQL" {
		db = newMySQLCloneDB(t, p, c.name)
	} else {
		db = &cloneDB{arg: func(name string) string { return filepath.Join(c.dir, name+".sqlite") }}
		db.dsn = db.arg
		db.copy = func(from, to string) { copySQLite(t, db.arg(from), db.arg(to)) }
	}
	storage := func(name string, more ...string) {
		c.node(name, "go", "neostorage", append([]string{"--bind", "127.0.0.1:0", "--adapter", adapter, "--database", db.arg(name)}, more...)...)
	}
	c.node("master", masterKind, "neomaster", "--bind", c.masters[0], "--partitions", "4", "--replicas", "0", "--autostart", "1")
	storage("storage0")
	c.node("admin", masterKind, "neoadmin", "--bind", c.admin)
	c.waitPT("cluster RUNNING", slWait, func(v ptView) bool {
		return v.state == proto.RUNNING && len(v.storages) == 1 && v.allUpToDate()
	})
	c.commitKeys("a", 10)
	before, err := c.view(t.Context())
	if err != nil {
		t.Fatal(err)
	}

	// The copy: storage0 stopped, so the cluster is back to RECOVERING.
	c.term("storage0")
	c.waitPT("cluster RECOVERING", slWait, func(v ptView) bool { return v.state == proto.RECOVERING })
	db.copy("storage0", "clone")
	// The last commit may be locked but not yet unlocked in the copy (the
	// client's commit ends at the lock): the clone drops it and fetches it
	// again.
	unfinished := db.unfinished(t, "clone")
	storage("clone", "--new-nid")
	c.waitLog("clone", `msg="master not available"`)
	if v, err := c.view(t.Context()); err != nil || len(v.storages) != 1 || c.procs["clone"].exited() {
		t.Fatalf("clone while RECOVERING: %v %v (exited: %v): not refused", v, err, c.procs["clone"].exited())
	}
	storage("storage0")
	pr := c.procs["clone"]
	c.waitExit("clone")
	if pr.err != nil {
		t.Fatalf("clone with --new-nid: %v; files in %s", pr.err, c.dir)
	}
	var clone proto.NodeID
	c.waitPT("clone DOWN with OUT_OF_DATE cells", slWait, func(v ptView) bool {
		clone = newNID(before, v)
		return v.state == proto.RUNNING && clone != 0 && v.storages[clone].State == proto.DOWN && v.cells(clone)[proto.OUT_OF_DATE] == 4
	})
	if !strings.Contains(string(c.logText("clone")), "cells taken over") {
		t.Fatalf("clone: no cells taken over in its log; files in %s", c.dir)
	}

	// Written after the copy: all the clone must fetch.
	c.commitKeys("b", 10)
	storage("clone")
	c.waitPT("clone UP_TO_DATE", slWait, func(v ptView) bool {
		return v.storages[clone].State == proto.NODE_RUNNING && v.allUpToDate() && v.cells(clone)[proto.UP_TO_DATE] == 4
	})
	txns, objs := c.replicated("clone")
	t.Logf("the clone replicated %d transactions, %d object revisions", txns, objs)
	if txns != 10+unfinished {
		t.Errorf("the clone replicated %d transactions, want the 10 committed after the copy and the %d unfinished in it", txns, unfinished)
	}
	c.checkAll()

	// The clone alone has everything.
	src := c.nidOf(0)
	c.kill9("storage0")
	c.waitPT("storage0 lost", slWait, func(v ptView) bool {
		return v.state == proto.RUNNING && v.storages[src].State == proto.DOWN
	})
	c.checkKeys("a", 10, true)
	c.checkKeys("b", 10, true)
}

// cloneDB names the databases of a test's storages and copies them raw.
type cloneDB struct {
	arg  func(name string) string // --database of storage name
	dsn  func(name string) string // for backend.Open
	copy func(from, to string)
}

// unfinished counts the transactions of database name that are voted or
// locked, not unlocked.
func (db *cloneDB) unfinished(t *testing.T, name string) int {
	t.Helper()
	b, err := backend.Open(t.Context(), db.dsn(name), backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	m, err := b.LockedTransactions(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

// newMySQLCloneDB starts a private MariaDB server with the databases of
// storage0 and the clone; the copy is table by table.
func newMySQLCloneDB(t *testing.T, p *peers, cluster string) *cloneDB {
	dbName := func(name string) string { return cluster + "_" + name }
	_, sock := startMariaDB(t, p, dbName("storage0"), dbName("clone"))
	cfg := drv.NewConfig()
	cfg.User, cfg.Net, cfg.Addr = "root", "unix", sock
	conn, err := drv.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sqldb := sql.OpenDB(conn)
	t.Cleanup(func() { sqldb.Close() })
	return &cloneDB{
		arg: func(name string) string { return "root@" + dbName(name) + sock },
		dsn: func(name string) string { return "mysql:root@" + dbName(name) + sock },
		copy: func(from, to string) {
			rows, err := sqldb.Query("SELECT table_name FROM information_schema.tables WHERE table_schema=?", dbName(from))
			if err != nil {
				t.Fatal(err)
			}
			var tables []string
			for rows.Next() {
				var s string
				if err := rows.Scan(&s); err != nil {
					t.Fatal(err)
				}
				tables = append(tables, s)
			}
			rows.Close()
			for _, tb := range tables {
				for _, q := range []string{
					fmt.Sprintf("CREATE TABLE %s.%s LIKE %s.%s", dbName(to), tb, dbName(from), tb),
					fmt.Sprintf("INSERT INTO %s.%s SELECT * FROM %s.%s", dbName(to), tb, dbName(from), tb),
				} {
					if _, err := sqldb.Exec(q); err != nil {
						t.Fatalf("copy %s: %s: %v", from, q, err)
					}
				}
			}
		},
	}
}

// copySQLite copies a closed SQLite database with its journal files.
func copySQLite(t *testing.T, from, to string) {
	t.Helper()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		in, err := os.Open(from + suffix)
		if os.IsNotExist(err) && suffix != "" {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.Create(to + suffix)
		if err == nil {
			_, err = io.Copy(out, in)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
		}
		in.Close()
		if err != nil {
			t.Fatalf("copy %s: %v", from+suffix, err)
		}
	}
}

// term stops node name with SIGTERM and waits until it exited.
func (c *slCluster) term(name string) {
	c.t.Helper()
	c.procs[name].cmd.Process.Signal(syscall.SIGTERM)
	c.waitExit(name)
}

// waitLog waits until the log of node name matches re.
func (c *slCluster) waitLog(name, re string) {
	c.t.Helper()
	rx := regexp.MustCompile(re)
	c.waitPT(name+" log: "+re, slWait, func(ptView) bool {
		return rx.Match(c.logText(name))
	})
}

// replicated returns the transactions and object revisions node name
// replicated, from its last "partition replicated" log line.
func (c *slCluster) replicated(name string) (txns, objs int) {
	c.t.Helper()
	data := c.logText(name)
	m := regexp.MustCompile(`msg="partition replicated".* replicated_txns=(\d+) replicated_objects=(\d+)`).FindAllSubmatch(data, -1)
	if len(m) == 0 {
		c.t.Fatalf("%s: no partition replicated in its log", name)
	}
	last := m[len(m)-1]
	txns, _ = strconv.Atoi(string(last[1]))
	objs, _ = strconv.Atoi(string(last[2]))
	return txns, objs
}
