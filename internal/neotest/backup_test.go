package neotest_test

import (
	"context"
	"errors"
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
		if err != nil {
			// NOT_READY before the admin reached its master closes
			// the link.
			cl = c.Ctl(t)
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
	write(10)
	// A backup storage, then an upstream one, stop and come back.
	bk.Stop(neotest.Storage(1))
	write(5)
	bk.Restart(neotest.Storage(1))
	up.Stop(neotest.Storage(0))
	write(5)
	up.Restart(neotest.Storage(0))
	write(5)
	last := revs[len(revs)-1].tid
	bctl := bk.Ctl(t)
	// Every cell of the backup back to UP_TO_DATE and at the last tid.
	for {
		pt, err := bctl.PartitionList(ctx, 0, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		all := true
		for _, row := range pt.RowList {
			for _, c := range row {
				all = all && c.State == proto.UP_TO_DATE
			}
		}
		if all {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("backup cells not all UP_TO_DATE: %v", pt.RowList)
		case <-time.After(10 * time.Millisecond):
		}
	}
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
	// Read-only clients see every commit once every cell has it: their
	// last tid is the min/min backup tid, learnt at each Sync.
	ro := bk.Open(t, client.Config{ReadOnly: true})
	for {
		if err := ro.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := ro.LastTid(ctx)
		if err != nil || got > last {
			t.Fatalf("read-only client: last tid %v (%v), upstream %v", got, err, last)
		}
		if got == last {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("read-only client: last tid %v, want %v", got, last)
		case <-time.After(10 * time.Millisecond):
		}
	}
	for _, r := range revs {
		obj, err := ro.Load(ctx, r.oid, proto.InvalidTid)
		if err != nil || string(obj.Data) != r.data || obj.Serial != r.tid {
			t.Fatalf("backup load %v: %q at %v (%v), want %q at %v", r.oid, obj.Data, obj.Serial, err, r.data, r.tid)
		}
	}
	ro.Close()
	if cl, err := client.Open(ctx, client.Config{Masters: bk.Masters(), Cluster: bk.Name()}); !errors.Is(err, proto.ErrReadOnlyAccess) {
		if cl != nil {
			cl.Close()
		}
		t.Fatalf("read-write client of a backup cluster: %v, want READ_ONLY_ACCESS", err)
	}
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
