package nodehttp_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/neogo/neo/client"
	"github.com/neogo/neo/internal/neotest"
	"github.com/neogo/neo/internal/nodehttp"
	"github.com/neogo/neo/proto"
)

// TestWorkMetrics: the storages' counters of replication, checks and
// packs move when a storage catches up after a restart, when the
// replicas are checked and when a pack is committed.
func TestWorkMetrics(t *testing.T) {
	storages := []string{neotest.Storage(0), neotest.Storage(1)}
	urls := map[string]string{}
	handlers := map[string]*nodehttp.Handler{}
	for _, name := range storages {
		handlers[name], urls[name] = serve(t, nodehttp.Options{})
	}
	c := neotest.Start(t, neotest.Options{
		Storages: 2, Replicas: 1, Partitions: 4, Admin: true,
		HTTP: func(node string) *nodehttp.Handler { return handlers[node] },
	})
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	cl := c.Open(t, client.Config{})
	var oids []proto.Oid
	serials := map[proto.Oid]proto.Tid{}
	commitAll := func(v string) {
		t.Helper()
		for _, oid := range oids {
			s, err := neotest.Commit(ctx, cl, oid, serials[oid], []byte(v))
			if err != nil {
				t.Fatal(err)
			}
			serials[oid] = s
		}
	}
	for range 8 {
		oid, err := cl.NewOID(ctx)
		if err != nil {
			t.Fatal(err)
		}
		oids = append(oids, oid)
	}
	commitAll("v1")
	for _, u := range urls {
		waitReady(t, u, http.StatusOK)
	}
	s1 := urls[storages[1]]
	before := scrape(t, s1)
	// Links by peer type: the master, the client, the other storage at
	// most (replication).
	for series, want := range map[string][2]float64{
		`neo_net_peer_links{peer="MASTER"}`: {1, 1}, `neo_net_peer_links{peer="CLIENT"}`: {1, 1},
		`neo_net_peer_links{peer="STORAGE"}`: {0, 1}, `neo_net_peer_links{peer="ADMIN"}`: {0, 0},
	} {
		if got, ok := before[series]; !ok || got < want[0] || got > want[1] {
			t.Errorf("S1: %s = %v (present %v), want %v to %v", series, got, ok, want[0], want[1])
		}
	}

	// waitFor polls url until cond holds of its metrics.
	waitFor := func(url, what string, cond func(m map[string]float64) bool) map[string]float64 {
		t.Helper()
		for {
			m := poll(t, url)
			if cond(m) {
				return m
			}
			if ctx.Err() != nil {
				t.Fatalf("%s: %s: not seen in %v", url, what, waitTimeout)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// Replication: S1 misses commits while stopped, then catches up.
	c.Stop(storages[1])
	commitAll("v2")
	c.Restart(storages[1])
	// The counters start again at the restart: what S1 fetched.
	waitFor(s1, "the missed commits replicated, every cell UP_TO_DATE", func(m map[string]float64) bool {
		return m["neo_storage_replicated_transactions_total"] >= float64(len(oids)) &&
			m["neo_storage_replicated_objects_total"] >= float64(len(oids)) &&
			m[`neo_storage_cells{state="UP_TO_DATE"}`] == 4 && m["neo_storage_replicating_partitions"] == 0
	})
	if before["neo_storage_replicated_objects_total"] != 0 {
		t.Errorf("S1 replicated %v objects before missing any", before["neo_storage_replicated_objects_total"])
	}

	// Check of every partition, against S0.
	adm := c.Ctl(t)
	var parts []proto.CheckSource
	for p := range uint32(4) {
		parts = append(parts, proto.CheckSource{Partition: p})
	}
	if _, err := adm.CheckReplicas(ctx, parts, proto.ZeroTid, proto.InvalidTid); err != nil {
		t.Fatal(err)
	}
	checked := func(m map[string]float64) float64 { return m[`neo_storage_checks_total{result="ok"}`] }
	for {
		var ok, bad float64
		for _, u := range urls {
			m := poll(t, u)
			ok += checked(m)
			bad += m[`neo_storage_checks_total{result="corrupted"}`] + m[`neo_storage_checks_total{result="aborted"}`]
		}
		if bad != 0 {
			t.Fatalf("checks: %v corrupted or aborted", bad)
		}
		if ok == 4 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("checks: %v of 4 partitions checked ok", ok)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Pack up to the last commit: each storage packs its 4 cells.
	txn, err := cl.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	last := proto.Tid(0)
	for _, s := range serials {
		last = max(last, s)
	}
	txn.Pack = proto.Some(proto.PackRequest{PackTid: last})
	if err := txn.Vote(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := txn.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	for _, u := range urls {
		m := waitFor(u, "4 partitions packed", func(m map[string]float64) bool {
			return m["neo_storage_packed_partitions_total"] >= 4 && m["neo_storage_pack_running"] == 0
		})
		if _, ok := m["neo_storage_pack_progress_ratio"]; ok {
			t.Errorf("%s: neo_storage_pack_progress_ratio with no pack running", u)
		}
		scrape(t, u) // lint
	}
}

// TestBackupLagMetric: a backup's master reports its upstream's last
// commit as soon as it is told of it, and the lag back at 0 once every
// partition has it.
func TestBackupLagMetric(t *testing.T) {
	h, master := serve(t, nodehttp.Options{})
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	up := neotest.Start(t, neotest.Options{Storages: 1, Partitions: 2})
	neotest.Start(t, neotest.Options{Storages: 1, Partitions: 2, Upstream: up, HTTP: only(neotest.Master(0), h)})
	cl := up.Open(t, client.Config{})
	for i := range 3 {
		oid, err := cl.NewOID(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tid, err := neotest.Commit(ctx, cl, oid, 0, []byte("upstream"))
		if err != nil {
			t.Fatal(err)
		}
		want := float64(proto.TidTime(tid).UnixNano()) / 1e9
		for {
			m := poll(t, master)
			got, ok := m["neo_backup_upstream_last_commit_timestamp_seconds"]
			if ok && got >= want && m["neo_backup_lag_seconds"] == 0 {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("commit %d: upstream last commit %v (present %v), want %v; lag %v", i, got, ok, want, m["neo_backup_lag_seconds"])
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	scrape(t, master) // lint
}
