//go:build integration

package integration

import (
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/neogo/neo/internal/freeport"
	"github.com/neogo/neo/proto"
)

// Tests of clusters that mix our nodes with neoppod's in one cluster:
// replication between one of our storages and one of neoppod's, in both
// directions (cluster.md §4.5, §8.6), with neoppod's client.

// Bounds and sizes of the mixed tests.
const (
	mxWait       = 30 * time.Second // one state of the partition table
	mxPartitions = 6
	mxTxns       = 8 // transactions of each commit batch
)

// mixedCluster is a master and an admin of one kind ("go" or "py") and
// storages of per-storage kinds, replicas 1; it reuses slCluster's
// waits and node handling.
type mixedCluster struct {
	*slCluster
	storageKinds []string
}

// newMixedCluster starts the cluster and waits until it is RUNNING with
// every cell UP_TO_DATE. Storage i is of kind storageKinds[i].
func newMixedCluster(t *testing.T, masterKind string, storageKinds ...string) *mixedCluster {
	t.Helper()
	p := needPeers(t)
	ports := freeport.Ports(t, 2)
	c := &mixedCluster{
		slCluster: &slCluster{
			foCluster: &foCluster{t: t, p: p, bin: goClusterBin(t), dir: testDir(t),
				name:    fmt.Sprintf("mx%d", ports[0]),
				masters: []string{fmt.Sprintf("127.0.0.1:%d", ports[0])},
				admin:   fmt.Sprintf("127.0.0.1:%d", ports[1]), procs: map[string]*goProc{}},
			// Not "go": slCluster must not SIGQUIT neoppod's nodes on a timeout.
			kind: "mixed", partitions: mxPartitions, replicas: 1,
		},
		storageKinds: storageKinds,
	}
	t.Cleanup(c.stop)
	c.node("master", masterKind, "neomaster", "--bind", c.masters[0], "--partitions", strconv.Itoa(mxPartitions),
		"--replicas", "1", "--autostart", strconv.Itoa(len(storageKinds)))
	for i := range storageKinds {
		c.startStorage(i)
	}
	c.node("admin", masterKind, "neoadmin", "--bind", c.admin)
	c.waitPT("cluster RUNNING with every cell UP_TO_DATE", mxWait, func(v ptView) bool {
		return v.state == proto.RUNNING && len(v.storages) == len(storageKinds) && v.allUpToDate()
	})
	return c
}

// startStorage starts storage i, of its kind, on its database (created
// the first time) on a new port.
func (c *mixedCluster) startStorage(i int) {
	c.t.Helper()
	n := storageName(i)
	c.node(n, c.storageKinds[i], "neostorage", "--bind", "127.0.0.1:0", "--adapter", "SQLite",
		"--database", filepath.Join(c.dir, n+".sqlite"))
}

// TestMixedReplication runs a cluster of one neoppod storage and one of
// ours (replicas 1): commits, kills one storage with SIGKILL, commits more
// (to the other one alone), restarts it and waits until it caught up
// (every cell UP_TO_DATE), then kills the other one and reads every
// acknowledged revision (iterator, loadSerial, load) from the caught-up
// storage alone. Both directions (our storage catches up from neoppod's,
// neoppod's from ours), each under our master and admin and under
// neoppod's.
func TestMixedReplication(t *testing.T) {
	kinds := []string{"py", "go"} // storage0, storage1
	for _, tc := range []struct {
		name   string
		master string // kind of the master and the admin
		victim int    // index in kinds of the storage that catches up
	}{
		{"GoFromPy/go-master", "go", 1},
		{"PyFromGo/py-master", "py", 0},
		{"GoFromPy/py-master", "py", 1},
		{"PyFromGo/go-master", "go", 0},
	} {
		t.Run(tc.name, func(t *testing.T) { testMixedReplication(t, tc.master, kinds, tc.victim) })
	}
}

func testMixedReplication(t *testing.T, masterKind string, kinds []string, victim int) {
	start := time.Now()
	c := newMixedCluster(t, masterKind, kinds...)
	// goCluster's client helpers only need these fields.
	client := &goCluster{t: t, dir: c.dir, name: c.name, master: c.masters[0]}
	acked := revisions{}
	client.commitTxns(c.p, mxTxns, mxTxns, "before", acked)

	c.kill9(storageName(victim))
	var lost proto.NodeID
	c.waitPT("killed storage DOWN, its cells OUT_OF_DATE", mxWait, func(v ptView) bool {
		for nid, n := range v.storages {
			if n.State == proto.DOWN && v.cells(nid)[proto.OUT_OF_DATE] > 0 {
				lost = nid
				return true
			}
		}
		return false
	})
	client.commitTxns(c.p, mxTxns, mxTxns, "while-down", acked)

	restarted := time.Now()
	c.startStorage(victim)
	var other proto.NodeID
	up := c.waitPT("restarted storage caught up: every cell UP_TO_DATE", mxWait, func(v ptView) bool {
		n, ok := v.storages[lost]
		if !ok || n.State != proto.NODE_RUNNING || len(v.storages) != 2 || !v.allUpToDate() {
			return false
		}
		for nid := range v.storages {
			if nid != lost {
				other = nid
			}
		}
		return v.cells(lost)[proto.UP_TO_DATE] == mxPartitions
	})
	t.Logf("%s storage (%v) caught up from the %s storage %v after its restart",
		kinds[victim], lost, kinds[1-victim], up.Sub(restarted).Round(time.Millisecond))

	c.kill9(storageName(1 - victim))
	c.waitPT("other storage DOWN, the caught-up one alone readable", mxWait, func(v ptView) bool {
		return v.state == proto.RUNNING && v.storages[other].State == proto.DOWN &&
			v.cells(lost)[proto.UP_TO_DATE] == mxPartitions
	})
	client.checkTxns(c.p, acked, true)
	t.Logf("%d transactions read back from the %s storage alone (master %s); %v in all",
		len(acked), kinds[victim], masterKind, time.Since(start).Round(time.Millisecond))
}
