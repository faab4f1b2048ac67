package nodehttp_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/neogo/neo/client"
	"github.com/neogo/neo/internal/neotest"
	"github.com/neogo/neo/internal/nodehttp"
	"github.com/neogo/neo/proto"
)

// waitTimeout bounds the waits for a node's readiness to change.
const waitTimeout = 30 * time.Second

// get returns the status and body of GET url.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	return do(t, http.MethodGet, url)
}

func do(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return resp.StatusCode, string(b)
}

// waitReady waits until GET url/readyz answers status, and returns the
// body.
func waitReady(t *testing.T, url string, status int) string {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		code, body := get(t, url+"/readyz")
		if code == status {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/readyz: %d %q, want status %d", url, code, body, status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// scrape returns the series of url/metrics by their name and labels as
// printed ("name{a=\"x\"}"), after checking them with promtool if it is
// installed.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	return scrapeLint(t, url, true)
}

// poll is scrape without promtool, for the loops that wait for a value.
func poll(t *testing.T, url string) map[string]float64 {
	t.Helper()
	return scrapeLint(t, url, false)
}

func scrapeLint(t *testing.T, url string, lint bool) map[string]float64 {
	t.Helper()
	code, body := get(t, url+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("%s/metrics: %d %s", url, code, body)
	}
	if lint {
		promtoolCheck(t, url, body)
	}
	m := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("%s/metrics: line %q: %v", url, line, err)
		}
		m[line[:i]] = v
	}
	return m
}

// promtoolCheck runs promtool check metrics on a scrape. CI installs
// promtool (Debian's prometheus package, .ci/run); without it the check
// is skipped with a log line, the rest of the test runs.
func promtoolCheck(t *testing.T, url, body string) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Logf("promtool not installed (apt-get install prometheus): %s/metrics not linted", url)
		return
	}
	cmd := exec.CommandContext(t.Context(), path, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Errorf("promtool check metrics of %s/metrics: %v\n%s", url, err, out.String())
	}
}

// serve serves a new handler on a free loopback port until the test ends,
// and returns it with its URL.
func serve(t *testing.T, opts nodehttp.Options) (*nodehttp.Handler, string) {
	t.Helper()
	h := nodehttp.New(opts)
	srv, err := nodehttp.Listen(t.Context(), "127.0.0.1:0", h, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return h, srv.URL()
}

// only is neotest.Options.HTTP giving h to node name, nothing to others.
func only(name string, h *nodehttp.Handler) func(string) *nodehttp.Handler {
	return func(node string) *nodehttp.Handler {
		if node == name {
			return h
		}
		return nil
	}
}

// sum adds the series of several scrapes.
func sum(scrapes []map[string]float64, series string) float64 {
	var s float64
	for _, m := range scrapes {
		s += m[series]
	}
	return s
}

// TestNodeHTTP starts a cluster whose nodes serve their HTTP side, makes
// a commit and a load, and checks that the requests, bytes and caches
// counted moved, that /metrics is clean for promtool, and that /readyz
// follows the nodes: storages stopped, the cluster out of RUNNING, the
// admin without master.
func TestNodeHTTP(t *testing.T) {
	nodes := []string{neotest.Master(0), neotest.Storage(0), neotest.Storage(1), neotest.Admin}
	handlers := map[string]*nodehttp.Handler{}
	urls := map[string]string{}
	for _, name := range nodes {
		handlers[name], urls[name] = serve(t, nodehttp.Options{Pprof: name == neotest.Master(0)})
	}
	master, s0, s1, admin := urls[nodes[0]], urls[nodes[1]], urls[nodes[2]], urls[nodes[3]]

	// Before the nodes start: alive, not ready; bad requests get 4xx.
	if code, body := get(t, master+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := get(t, master+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "node not started") {
		t.Errorf("/readyz before start: %d %q", code, body)
	}
	if code, body := get(t, master+"/nosuch"); code != http.StatusNotFound || !strings.Contains(body, "/nosuch") {
		t.Errorf("/nosuch: %d %q", code, body)
	}
	if code, _ := do(t, http.MethodPost, master+"/metrics"); code != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics: %d, want 405", code)
	}
	if code, _ := get(t, master+"/debug/pprof/"); code != http.StatusOK {
		t.Errorf("/debug/pprof/ with Pprof: %d", code)
	}
	if code, _ := get(t, s0+"/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("/debug/pprof/ without Pprof: %d, want 404", code)
	}

	c := neotest.Start(t, neotest.Options{
		Storages: 2, Replicas: 1, Partitions: 4, Admin: true, CacheSize: 1 << 20,
		HTTP: func(node string) *nodehttp.Handler { return handlers[node] },
	})
	for _, u := range urls {
		waitReady(t, u, http.StatusOK)
	}

	before := map[string]map[string]float64{}
	for _, name := range nodes {
		before[name] = scrape(t, urls[name])
	}
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	cl := c.Open(t, client.Config{})
	oid, err := cl.NewOID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := neotest.Commit(ctx, cl, oid, 0, []byte("metrics")); err != nil {
		t.Fatal(err)
	}
	// A store on a stale serial: a conflict on every storage.
	var conflict *client.ConflictError
	if _, err := neotest.Commit(ctx, cl, oid, 0, []byte("stale")); !errors.As(err, &conflict) {
		t.Fatalf("commit on a stale serial: %v, want a conflict", err)
	}
	// Another client, whose cache cannot answer.
	obj, err := c.Open(t, client.Config{}).Load(ctx, oid, proto.InvalidTid)
	if err != nil || string(obj.Data) != "metrics" {
		t.Fatalf("load %v: %q, %v", oid, obj.Data, err)
	}
	after := map[string]map[string]float64{}
	for _, name := range nodes {
		after[name] = scrape(t, urls[name])
	}

	moved := func(what string, nodes []string, series string, min float64) {
		t.Helper()
		var b, a []map[string]float64
		for _, n := range nodes {
			b, a = append(b, before[n]), append(a, after[n])
		}
		if d := sum(a, series) - sum(b, series); d < min {
			t.Errorf("%s: %s moved by %v, want at least %v", what, series, d, min)
		}
	}
	storages := nodes[1:3]
	moved("master", nodes[:1], `neo_request_duration_seconds_count{request="AskBeginTransaction"}`, 1)
	moved("master", nodes[:1], `neo_request_duration_seconds_count{request="AskFinishTransaction"}`, 1)
	moved("master", nodes[:1], `neo_net_received_bytes_total{packet="AskFinishTransaction"}`, 10)
	moved("master", nodes[:1], `neo_net_packets_sent_total{packet="AnswerTransactionFinished"}`, 1)
	moved("storages", storages, `neo_request_duration_seconds_count{request="AskStoreObject"}`, 2)      // one per replica
	moved("storages", storages, `neo_request_duration_seconds_count{request="AskStoreTransaction"}`, 2) // the vote of the metadata's cells
	moved("storages", storages, `neo_request_duration_seconds_count{request="AskLockInformation"}`, 2)
	moved("storages", storages, `neo_net_packets_received_total{packet="NotifyUnlockInformation"}`, 2)
	moved("storages", storages, `neo_request_duration_seconds_count{request="AskObject"}`, 1)
	moved("storages", storages, `neo_net_sent_bytes_total{packet="AnswerObject"}`, float64(len("metrics")))
	moved("storages", storages, "neo_storage_conflicts_total", 1)
	for _, s := range storages {
		if after[s]["neo_storage_database_bytes"] < 4096 {
			t.Errorf("%s: neo_storage_database_bytes = %v", s, after[s]["neo_storage_database_bytes"])
		}
	}
	if d := sum([]map[string]float64{after[nodes[1]], after[nodes[2]]}, "neo_storage_cache_hits_total") +
		sum([]map[string]float64{after[nodes[1]], after[nodes[2]]}, "neo_storage_cache_misses_total") -
		sum([]map[string]float64{before[nodes[1]], before[nodes[2]]}, "neo_storage_cache_hits_total") -
		sum([]map[string]float64{before[nodes[1]], before[nodes[2]]}, "neo_storage_cache_misses_total"); d < 1 {
		t.Errorf("storages: object cache hits + misses moved by %v, want at least 1", d)
	}
	moved("admin", nodes[3:], `neo_net_packets_received_total{packet="NotifyNodeInformation"}`, 0) // present
	for series, want := range map[string]float64{
		`neo_cluster_state{state="RUNNING"}`:                1,
		`neo_cluster_state{state="RECOVERING"}`:             0,
		`neo_cluster_nodes{state="RUNNING",type="STORAGE"}`: 2,
		`neo_cluster_cells{state="UP_TO_DATE"}`:             8,
		`neo_cluster_partitions`:                            4,
		`neo_admin_primary_connected`:                       1,
	} {
		if got, ok := after[nodes[3]][series]; !ok || got != want {
			t.Errorf("admin: %s = %v (present %v), want %v", series, got, ok, want)
		}
	}
	// The master's tables are taken once a second.
	deadline := time.Now().Add(waitTimeout)
	for m := after[nodes[0]]; ; m = poll(t, master) {
		want := map[string]float64{
			`neo_cluster_state{state="RUNNING"}`:                1,
			`neo_master_primary`:                                1,
			`neo_cluster_nodes{state="RUNNING",type="STORAGE"}`: 2,
			`neo_cluster_cells{state="UP_TO_DATE"}`:             8,
			`neo_cluster_partitions`:                            4,
			`neo_master_transactions`:                           0,
		}
		var wrong []string
		for series, v := range want {
			if got, ok := m[series]; !ok || got != v {
				wrong = append(wrong, fmt.Sprintf("%s = %v (present %v), want %v", series, got, ok, v))
			}
		}
		if lc := m["neo_last_commit_timestamp_seconds"]; lc < float64(time.Now().Add(-time.Minute).Unix()) || lc > float64(time.Now().Add(time.Minute).Unix()) {
			wrong = append(wrong, fmt.Sprintf("neo_last_commit_timestamp_seconds = %v, not within a minute of now", lc))
		}
		if m["neo_last_oid"] < float64(oid) {
			wrong = append(wrong, fmt.Sprintf("neo_last_oid = %v < %v", m["neo_last_oid"], oid))
		}
		if len(wrong) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("master: %s", strings.Join(wrong, "; "))
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, n := range nodes {
		if after[n]["neo_net_links"] < 1 || after[n]["neo_net_links_opened_total"] < after[n]["neo_net_links"] {
			t.Errorf("%s: %v links open, %v opened", n, after[n]["neo_net_links"], after[n]["neo_net_links_opened_total"])
		}
	}
	for _, s := range storages {
		if got := after[s][`neo_storage_cells{state="UP_TO_DATE"}`]; got != 4 {
			t.Errorf("%s: neo_storage_cells{state=\"UP_TO_DATE\"} = %v, want 4", s, got)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// A stopped storage is not ready; without any storage the cluster
	// leaves RUNNING, and the master is not ready either.
	c.Stop(nodes[2])
	if body := waitReady(t, s1, http.StatusServiceUnavailable); !strings.Contains(body, "not operational") {
		t.Errorf("stopped storage: /readyz %q", body)
	}
	if m := scrape(t, s1); m["neo_net_links"] != 0 || m[`neo_net_peer_links{peer="MASTER"}`] != 0 || m[`neo_net_peer_links{peer="CLIENT"}`] != 0 {
		t.Errorf("stopped storage: %v links open, %v to the master, %v to clients", m["neo_net_links"],
			m[`neo_net_peer_links{peer="MASTER"}`], m[`neo_net_peer_links{peer="CLIENT"}`])
	}
	c.Stop(nodes[1])
	if body := waitReady(t, master, http.StatusServiceUnavailable); !strings.Contains(body, "not RUNNING") {
		t.Errorf("master without storage: /readyz %q", body)
	}
	c.Restart(nodes[1])
	c.Restart(nodes[2])
	for _, u := range []string{master, s0, s1} {
		waitReady(t, u, http.StatusOK)
	}

	// The admin without master.
	c.Stop(nodes[0])
	if body := waitReady(t, admin, http.StatusServiceUnavailable); !strings.Contains(body, "not connected") {
		t.Errorf("admin without master: /readyz %q", body)
	}
	if body := waitReady(t, master, http.StatusServiceUnavailable); !strings.Contains(body, "not running") {
		t.Errorf("stopped master: /readyz %q", body)
	}
}

// TestDeadlockAvoidanceCounted: an older transaction asking for the lock
// of a younger one that has not voted makes the storage tell the younger
// one's client (NotifyDeadlock), which neo_storage_deadlock_avoidances_total
// counts.
func TestDeadlockAvoidanceCounted(t *testing.T) {
	h, storage := serve(t, nodehttp.Options{})
	c := neotest.Start(t, neotest.Options{HTTP: only(neotest.Storage(0), h)})
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	cl1, cl2 := c.Open(t, client.Config{}), c.Open(t, client.Config{})
	oid, err := cl1.NewOID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := neotest.Commit(ctx, cl1, oid, 0, []byte("v1"))
	if err != nil {
		t.Fatal(err)
	}

	stores := func() float64 {
		return poll(t, storage)[`neo_request_duration_seconds_count{request="AskStoreObject"}`]
	}
	older, err := cl1.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	younger, err := cl2.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The younger transaction locks oid first: its store answered.
	before := stores()
	if err := younger.Store(ctx, oid, serial, []byte("younger")); err != nil {
		t.Fatal(err)
	}
	for stores() == before {
		if ctx.Err() != nil {
			t.Fatal("the younger transaction's store was not answered")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The older one asks for it: a deadlock avoidance, then the older
	// commits and the younger, relocked behind it, conflicts.
	if err := older.Store(ctx, oid, serial, []byte("older")); err != nil {
		t.Fatal(err)
	}
	olderDone := make(chan error, 1)
	go func() {
		if err := older.Vote(ctx); err != nil {
			older.Abort(ctx)
			olderDone <- err
			return
		}
		_, err := older.Finish(ctx)
		olderDone <- err
	}()
	for poll(t, storage)["neo_storage_deadlock_avoidances_total"] < 1 {
		if ctx.Err() != nil {
			t.Fatal("no deadlock avoidance counted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	scrape(t, storage) // lint once
	var conflict *client.ConflictError
	if err := younger.Vote(ctx); !errors.As(err, &conflict) {
		t.Errorf("younger transaction's vote: %v, want a conflict", err)
	}
	younger.Abort(ctx)
	if err := <-olderDone; err != nil {
		t.Errorf("older transaction: %v", err)
	}
}
