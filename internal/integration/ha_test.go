//go:build integration

package integration

import (
	"testing"
	"time"

	"github.com/neogo/neo/proto"
)

// TestMixedReplicationBothWays runs a cluster of one neoppod storage and
// one of ours (6 partitions) whose cells are first split between them
// (replicas 0), then doubled (replicas 1): each storage replicates the
// other's partitions from it at the same time. neoppod uses one link in
// both directions, so its replicator may send its AskFetch* requests on
// the link our replicator dialled to it (protocol.md §5), which our
// storage must serve. Then each storage in turn is killed and every
// acknowledged revision is read from the other one alone. Under our
// master and admin, and under neoppod's.
func TestMixedReplicationBothWays(t *testing.T) {
	for _, master := range []string{"go", "py"} {
		t.Run(master+"-master", func(t *testing.T) { testMixedReplicationBothWays(t, master) })
	}
}

func testMixedReplicationBothWays(t *testing.T, masterKind string) {
	start := time.Now()
	kinds := []string{"py", "go"} // storage0, storage1
	c := newMixedCluster(t, masterKind, kinds...)
	client := &goCluster{t: t, dir: c.dir, name: c.name, master: c.masters[0]}
	acked := revisions{}
	client.commitTxns(c.p, mxTxns, mxTxns, "before", acked)

	c.neoctl("set", "replicas", "0")
	c.neoctl("tweak")
	c.waitPT("one cell per partition, on both storages", mxWait, func(v ptView) bool {
		if v.pt.NumReplicas != 0 || !v.allUpToDate() || len(v.storages) != 2 {
			return false
		}
		total := 0
		for nid := range v.storages {
			n := v.cells(nid)[proto.UP_TO_DATE]
			if n == 0 {
				return false
			}
			total += n
		}
		return total == mxPartitions
	})
	// Each storage alone gets the commits of its partitions.
	client.commitTxns(c.p, mxTxns, mxTxns, "split", acked)

	doubled := time.Now()
	c.neoctl("set", "replicas", "1")
	c.neoctl("tweak")
	up := c.waitPT("both storages replicated the other's partitions: two UP_TO_DATE cells per partition", mxWait, func(v ptView) bool {
		if v.pt.NumReplicas != 1 || !v.allUpToDate() || len(v.storages) != 2 {
			return false
		}
		for nid := range v.storages {
			if v.cells(nid)[proto.UP_TO_DATE] != mxPartitions {
				return false
			}
		}
		return true
	})
	t.Logf("both storages replicated each other %v after the tweak", up.Sub(doubled).Round(time.Millisecond))
	client.commitTxns(c.p, mxTxns, mxTxns, "doubled", acked)

	// Each storage alone has everything: the py one first, with ours
	// down, then ours once the py one is down and ours caught up again.
	for _, victim := range []int{1, 0} {
		c.kill9(storageName(victim))
		c.waitPT(kinds[1-victim]+" storage alone readable", mxWait, func(v ptView) bool {
			for nid, n := range v.storages {
				if n.State == proto.DOWN && v.cells(nid)[proto.OUT_OF_DATE] == mxPartitions {
					return v.state == proto.RUNNING
				}
			}
			return false
		})
		client.checkTxns(c.p, acked, true)
		t.Logf("%d transactions read back from the %s storage alone", len(acked), kinds[1-victim])
		c.startStorage(victim)
		c.waitPT("restarted storage caught up", mxWait, func(v ptView) bool {
			return len(v.storages) == 2 && v.allUpToDate() && v.state == proto.RUNNING && func() bool {
				for nid := range v.storages {
					if v.storages[nid].State != proto.NODE_RUNNING || v.cells(nid)[proto.UP_TO_DATE] != mxPartitions {
						return false
					}
				}
				return true
			}()
		})
	}
	t.Logf("master %s: %v in all", masterKind, time.Since(start).Round(time.Millisecond))
}
