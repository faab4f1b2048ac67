package neotest_test

import (
	"context"
	"testing"
	"time"

	"github.com/neogo/neo/client"
	"github.com/neogo/neo/ctl"
	"github.com/neogo/neo/internal/neotest"
	"github.com/neogo/neo/proto"
)

func opContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// commit commits a new object through cl.
func commit(t *testing.T, ctx context.Context, cl *client.Client, data string) {
	t.Helper()
	oid, err := cl.NewOID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := neotest.Commit(ctx, cl, oid, proto.ZeroTid, []byte(data)); err != nil {
		t.Fatalf("commit %q: %v", data, err)
	}
}

// waitNode polls the admin until the node listening on addr has state.
func waitNode(t *testing.T, ctx context.Context, adm *ctl.Client, addr proto.Addr, state proto.NodeState) proto.NodeInfo {
	t.Helper()
	for {
		nodes, err := adm.NodeList(ctx, proto.Opt[proto.NodeType]{})
		for _, n := range nodes {
			if n.Addr == addr && n.State == state {
				return n
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no node %v %v: %v %v", addr, state, nodes, err)
		case <-time.After(10 * time.Millisecond): // polling, bounded by ctx
		}
	}
}

// A cluster with an admin is RUNNING when Start returns; a storage
// stopped and restarted comes back on its database.
func TestStopRestartStorage(t *testing.T) {
	c := neotest.Start(t, neotest.Options{Storages: 2, Replicas: 1, Partitions: 3, Admin: true})
	ctx := opContext(t)
	adm := c.Ctl(t)
	if st, err := adm.ClusterState(ctx); err != nil || st != proto.Some(proto.RUNNING) {
		t.Fatalf("cluster state %v, %v; want RUNNING", st, err)
	}
	cl := c.Open(t, client.Config{})
	commit(t, ctx, cl, "two storages")

	old := waitNode(t, ctx, adm, c.Addr(neotest.Storage(1)), proto.NODE_RUNNING)
	c.Stop(neotest.Storage(1))
	waitNode(t, ctx, adm, old.Addr, proto.DOWN)
	commit(t, ctx, cl, "one storage")

	c.Restart(neotest.Storage(1))
	back := waitNode(t, ctx, adm, c.Addr(neotest.Storage(1)), proto.NODE_RUNNING)
	if back.NID != old.NID {
		t.Errorf("restarted storage is %v, was %v", back.NID, old.NID)
	}
	commit(t, ctx, cl, "two storages again")
}

// With two masters, the cluster survives the loss of the primary: a
// client commits through the other one, and the lost one comes back.
func TestMasterFailover(t *testing.T) {
	c := neotest.Start(t, neotest.Options{Masters: 2, Storages: 1, Admin: true})
	ctx := opContext(t)
	cl := c.Open(t, client.Config{})
	commit(t, ctx, cl, "first primary")

	adm := c.Ctl(t)
	nid, err := adm.Primary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := adm.NodeList(ctx, proto.Some(proto.MASTER))
	if err != nil {
		t.Fatal(err)
	}
	primary := ""
	for _, n := range nodes {
		for i := range 2 {
			if n.NID == nid && n.Addr == c.Addr(neotest.Master(i)) {
				primary = neotest.Master(i)
			}
		}
	}
	if primary == "" {
		t.Fatalf("primary %v not among the masters %v", nid, nodes)
	}
	c.Stop(primary)
	commit(t, ctx, cl, "second primary")
	c.Restart(primary)
	commit(t, ctx, cl, "with both")
}
