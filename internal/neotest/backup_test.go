package neotest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/neogo/neo/client"
	"github.com/neogo/neo/internal/neotest"
	"github.com/neogo/neo/proto"
)

// waitState polls the admin until the cluster is in state st.
func waitState(t *testing.T, ctx context.Context, c *neotest.Cluster, st proto.ClusterState) {
	t.Helper()
	cl := c.Ctl(t)
	for {
		got, err := cl.ClusterState(ctx)
		if s, ok := got.Get(); err == nil && ok && s == st {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("cluster state %v (%v), want %v", got, err, st)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// A backup cluster follows its upstream, then leaves backup mode with
// the same data (cluster.md §8.9): the whole path in one process.
func TestBackup(t *testing.T) {
	ctx := opContext(t)
	up := neotest.Start(t, neotest.Options{Storages: 2, Replicas: 1, Partitions: 4, Admin: true})
	ucl := up.Open(t, client.Config{})
	type rev struct {
		oid  proto.Oid
		tid  proto.Tid
		data string
	}
	var revs []rev
	write := func(n int) {
		for range n {
			oid, err := ucl.NewOID(ctx)
			if err != nil {
				t.Fatal(err)
			}
			data := fmt.Sprintf("value of %v", oid)
			tid, err := neotest.Commit(ctx, ucl, oid, proto.ZeroTid, []byte(data))
			if err != nil {
				t.Fatal(err)
			}
			revs = append(revs, rev{oid, tid, data})
		}
	}
	write(10)
	bk := neotest.Start(t, neotest.Options{Storages: 2, Replicas: 1, Partitions: 4, Admin: true, Upstream: up})
	waitState(t, ctx, bk, proto.BACKINGUP)
	write(20)
	last := revs[len(revs)-1].tid
	bctl := bk.Ctl(t)
	for {
		rec, err := bctl.Recovery(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rec.BackupTid == last {
			break
		}
		if rec.BackupTid > last {
			t.Fatalf("backup tid %v past the upstream's last %v", rec.BackupTid, last)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("backup tid %v, want %v", rec.BackupTid, last)
		case <-time.After(10 * time.Millisecond):
		}
	}
	// Read-only clients see every commit; read-write ones are refused.
	ro := bk.Open(t, client.Config{ReadOnly: true})
	for _, r := range revs {
		obj, err := ro.Load(ctx, r.oid, proto.InvalidTid)
		if err != nil || string(obj.Data) != r.data || obj.Serial != r.tid {
			t.Fatalf("backup load %v: %q at %v (%v), want %q at %v", r.oid, obj.Data, obj.Serial, err, r.data, r.tid)
		}
	}
	ro.Close()
	if _, err := bctl.SetClusterState(ctx, proto.STOPPING_BACKUP); err != nil {
		t.Fatal(err)
	}
	waitState(t, ctx, bk, proto.RUNNING)
	rw := bk.Open(t, client.Config{})
	for _, r := range revs {
		obj, err := rw.Load(ctx, r.oid, proto.InvalidTid)
		if err != nil || string(obj.Data) != r.data || obj.Serial != r.tid {
			t.Fatalf("former backup load %v: %q at %v (%v), want %q at %v", r.oid, obj.Data, obj.Serial, err, r.data, r.tid)
		}
	}
	if got, err := rw.LastTid(ctx); err != nil || got != last {
		t.Fatalf("former backup last tid %v (%v), want %v", got, err, last)
	}
}
