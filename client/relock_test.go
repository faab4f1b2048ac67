package client_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/neogo/neo/client"
	"github.com/neogo/neo/internal/neotest"
	"github.com/neogo/neo/proto"
)

// Two clients store the same two objects in opposite orders, each
// holding the lock the other waits for (cluster.md §6.6): the storage
// tells the younger transaction's client (NotifyDeadlock), which
// releases its lock (AskRelockObject). The older transaction commits;
// the younger one gets a ConflictError at vote. Neither hangs.
func TestRelockAfterDeadlock(t *testing.T) {
	for _, tc := range []struct{ storages, replicas int }{{1, 0}, {2, 1}} {
		t.Run(fmt.Sprintf("%d storages", tc.storages), func(t *testing.T) {
			c := neotest.Start(t, neotest.Options{Storages: tc.storages, Replicas: tc.replicas, Partitions: 1})
			a, b := c.Open(t, client.Config{}), c.Open(t, client.Config{})
			ctx := opContext(t)
			oidA, _ := a.NewOID(ctx)
			oidB, _ := a.NewOID(ctx)
			var mu sync.Mutex
			var notified []string
			for name, cl := range map[string]*client.Client{"a": a, "b": b} {
				cl.OnDeadlockForTest(func(ttid proto.Tid, oid proto.Oid) {
					mu.Lock()
					defer mu.Unlock()
					notified = append(notified, fmt.Sprint(name, " ", ttid, " ", oid))
				})
			}

			older, err := a.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			younger, err := b.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if younger.TTID() <= older.TTID() {
				t.Fatalf("ttids %v then %v not increasing", older.TTID(), younger.TTID())
			}
			// Each takes the lock of its first object...
			store := func(txn *client.Txn, oid proto.Oid, data string) {
				t.Helper()
				if err := txn.Store(ctx, oid, proto.ZeroTid, []byte(data)); err != nil {
					t.Fatal(err)
				}
			}
			store(younger, oidA, "younger A")
			if err := younger.WaitStoresForTest(ctx); err != nil {
				t.Fatal(err)
			}
			store(older, oidB, "older B")
			if err := older.WaitStoresForTest(ctx); err != nil {
				t.Fatal(err)
			}
			// ...then asks for the other's.
			store(older, oidA, "older A")
			store(younger, oidB, "younger B")

			var wg sync.WaitGroup
			var olderTid proto.Tid
			var olderErr, youngerErr error
			wg.Go(func() { olderTid, olderErr = neotest.VoteAndFinish(ctx, older) })
			wg.Go(func() { _, youngerErr = neotest.VoteAndFinish(ctx, younger) })
			wg.Wait()
			if ctx.Err() != nil {
				t.Fatalf("transactions still waiting at the end of the test's context: older %v, younger %v", olderErr, youngerErr)
			}
			if olderErr != nil {
				t.Fatalf("older transaction: %v", olderErr)
			}
			var ce *client.ConflictError
			if !errors.As(youngerErr, &ce) {
				t.Fatalf("younger transaction: %v; want a ConflictError", youngerErr)
			}
			if ce.Serial != olderTid || (ce.Oid != oidA && ce.Oid != oidB) {
				t.Errorf("conflict %+v; want on oid %v or %v with serial %v", *ce, oidA, oidB, olderTid)
			}
			mu.Lock()
			got := slices.Compact(slices.Sorted(slices.Values(notified)))
			mu.Unlock()
			want := []string{fmt.Sprint("b ", younger.TTID(), " ", oidA)}
			if !slices.Equal(got, want) {
				t.Errorf("NotifyDeadlock received: %v; want %v", got, want)
			}

			// The older transaction's data is there, the lock is free.
			if err := b.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			for oid, data := range map[proto.Oid]string{oidA: "older A", oidB: "older B"} {
				obj, err := b.Load(ctx, oid, proto.InvalidTid)
				if err != nil || string(obj.Data) != data {
					t.Errorf("Load %v = %q, %v; want %q", oid, obj.Data, err, data)
				}
			}
			if _, err := neotest.Commit(ctx, b, oidA, olderTid, []byte("after")); err != nil {
				t.Errorf("commit after the deadlock: %v", err)
			}
		})
	}
}
