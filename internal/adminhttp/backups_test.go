package adminhttp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/neogo/neo/client"
	"github.com/neogo/neo/internal/adminhttp"
	"github.com/neogo/neo/internal/neotest"
	"github.com/neogo/neo/proto"
)

// backupClusters starts a cluster with a commit, whose admin's HTTP side
// it serves and which monitors a backup cluster of it, started too; it
// returns both, the URL and the upstream's last tid.
func backupClusters(t *testing.T) (up, bk *neotest.Cluster, url string, last proto.Tid) {
	t.Helper()
	name := neotest.NewName()
	up, _, url = adminClusterOf(t, neotest.Options{Storages: 1, Partitions: 2, MonitorBackups: []string{name}})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cl := up.Open(t, client.Config{})
	oid, err := cl.NewOID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if last, err = neotest.Commit(ctx, cl, oid, 0, []byte("backed up")); err != nil {
		t.Fatal(err)
	}
	bk = neotest.Start(t, neotest.Options{Name: name, Storages: 1, Partitions: 2, Admin: true, Upstream: up})
	return up, bk, url, last
}

// waitBackups polls GET /api/v1/backups until ok accepts its answer.
func waitBackups(t *testing.T, url, what string, ok func([]adminhttp.BackupJSON) bool) []adminhttp.BackupJSON {
	t.Helper()
	var got []adminhttp.BackupJSON
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(url + "/api/v1/backups")
		if err != nil {
			t.Fatal(err)
		}
		var v struct{ Backups []adminhttp.BackupJSON }
		err = json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got = v.Backups; ok(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: backups %+v after 30 s", what, got)
		}
	}
}

// TestAPIBackups: GET /api/v1/backups tells the monitored backup
// cluster's state, backup tid and lag, as its admin reports them, and
// its change of state once it leaves backup mode.
func TestAPIBackups(t *testing.T) {
	_, bk, url, last := backupClusters(t)
	b := waitBackups(t, url, "backup in sync", func(b []adminhttp.BackupJSON) bool {
		return len(b) == 1 && b[0].State == "BACKINGUP" && b[0].BackupTid != nil && *b[0].BackupTid == fmt.Sprintf("0x%016x", uint64(last))
	})[0]
	if !b.Connected || b.LagSeconds == nil || *b.LagSeconds != 0 || b.Lagging || b.Severity != "OK" ||
		*b.BackupTidTime != proto.FormatTidTime(last) || !strings.HasPrefix(b.Summary, "BACKINGUP; UP_TO_DATE=2; ltid=") {
		t.Errorf("backup in sync: %+v", b)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := bk.Ctl(t).SetClusterState(ctx, proto.STOPPING_BACKUP); err != nil {
		t.Fatal(err)
	}
	b = waitBackups(t, url, "backup RUNNING", func(b []adminhttp.BackupJSON) bool {
		return len(b) == 1 && b[0].State == "RUNNING" && b[0].LastTid != nil
	})[0]
	if b.Severity != "WARNING" || b.LagSeconds != nil || b.BackupTid != nil || *b.LastTid != fmt.Sprintf("0x%016x", uint64(last)) {
		t.Errorf("former backup: %+v", b)
	}

	// The admin of a cluster without backups answers an empty list.
	_, _, other := adminCluster(t)
	if st, v := call(t, "GET", other+"/api/v1/backups", ""); st != 200 || fmt.Sprint(v["backups"]) != "[]" {
		t.Errorf("no backups: %d %v", st, v)
	}
}

// TestDashboardBackups loads the dashboard of an upstream cluster in
// headless Chromium: it shows the backup cluster it monitors, its
// state, backup tid and lag.
func TestDashboardBackups(t *testing.T) {
	browser := chromium(t)
	_, bk, url, last := backupClusters(t)
	waitBackups(t, url, "backup in sync", func(b []adminhttp.BackupJSON) bool {
		return len(b) == 1 && b[0].State == "BACKINGUP" && b[0].LagSeconds != nil && *b[0].LagSeconds == 0
	})
	dom := render(t, browser, url+"/", "backups")
	want := fmt.Sprintf(`<tr data-backup="%s"><td>%s</td><td class="backup-state">BACKINGUP</td><td class="ids">0x%016x (%s UTC)</td><td class="backup-lag">in sync</td><td class="sev-OK">OK</td></tr>`,
		bk.Name(), bk.Name(), uint64(last), proto.FormatTidTime(last))
	if !strings.Contains(dom, want) {
		t.Errorf("page does not show the backup:\nwant %s\n%s", want, dom)
	}
	if strings.Contains(dom, `<div id="backups-box" hidden`) {
		t.Error("backups hidden")
	}
}
