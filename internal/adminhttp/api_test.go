package adminhttp_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/neogo/neo/client"
	"github.com/neogo/neo/internal/neotest"
	"github.com/neogo/neo/internal/nodehttp"
)

// call makes a request to url and returns the status and the decoded
// JSON answer; a non-JSON answer fails the test.
func call(t *testing.T, method, url, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s %s: %d, not JSON: %v\n%s", method, url, resp.StatusCode, err, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q", method, url, ct)
	}
	return resp.StatusCode, v
}

// adminCluster starts a cluster of 2 storages, 1 replica, 4 partitions
// and an admin whose HTTP side it serves, and returns that side and its
// URL.
func adminCluster(t *testing.T) (*neotest.Cluster, *nodehttp.Handler, string) {
	t.Helper()
	return adminClusterOf(t, neotest.Options{Storages: 2, Replicas: 1, Partitions: 4})
}

// adminClusterOf is adminCluster with the options o (Admin and HTTP set).
func adminClusterOf(t *testing.T, o neotest.Options) (*neotest.Cluster, *nodehttp.Handler, string) {
	t.Helper()
	h := nodehttp.New(nodehttp.Options{})
	srv, err := nodehttp.Listen(t.Context(), "127.0.0.1:0", h, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	o.Admin = true
	o.HTTP = func(node string) *nodehttp.Handler {
		if node == neotest.Admin {
			return h
		}
		return nil
	}
	c := neotest.Start(t, o)
	return c, h, srv.URL()
}

// TestAPI runs the API of an in-process cluster's admin: the reads
// mirror neoctl's, bad requests get 4xx with a message, writes are
// refused from a non-loopback peer, the dashboard is served whole.
func TestAPI(t *testing.T) {
	c, h, url := adminCluster(t)
	api := url + "/api/v1/"
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cl := c.Open(t, client.Config{})
	oid, err := cl.NewOID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tid, err := neotest.Commit(ctx, cl, oid, 0, []byte("api"))
	if err != nil {
		t.Fatal(err)
	}

	code, v := call(t, "GET", api+"cluster", "")
	if code != 200 || v["state"] != "RUNNING" || v["primary"] != "M1" {
		t.Errorf("cluster: %d %v", code, v)
	}
	code, v = call(t, "GET", api+"nodes?type=STORAGE", "")
	if nodes, _ := v["nodes"].([]any); code != 200 || len(nodes) != 2 {
		t.Errorf("nodes of type STORAGE: %d %v", code, v)
	} else if n := nodes[0].(map[string]any); n["type"] != "STORAGE" || n["state"] != "RUNNING" || n["nid"] != "S1" || n["addr"] == "" {
		t.Errorf("first storage: %v", n)
	}
	code, v = call(t, "GET", api+"pt", "")
	rows, _ := v["rows"].([]any)
	if code != 200 || len(rows) != 4 || v["replicas"] != 1.0 {
		t.Fatalf("pt: %d %v", code, v)
	}
	for _, r := range rows {
		cells := r.(map[string]any)["cells"].([]any)
		if len(cells) != 2 || cells[0].(map[string]any)["state"] != "UP_TO_DATE" {
			t.Errorf("pt row %v", r)
		}
	}
	code, v = call(t, "GET", api+"pt?min=1&max=3&node=S2", "")
	if rows, _ := v["rows"].([]any); code != 200 || len(rows) != 2 || rows[0].(map[string]any)["offset"] != 1.0 ||
		len(rows[0].(map[string]any)["cells"].([]any)) != 1 {
		t.Errorf("pt?min=1&max=3&node=S2: %d %v", code, v)
	}
	code, v = call(t, "GET", api+"ids", "")
	if want := "0x" + strings.TrimPrefix(tidHex(uint64(tid)), "0x"); code != 200 || v["last_tid"] != want || v["last_oid"] == nil {
		t.Errorf("ids: %d %v, want last_tid %s", code, v, want)
	}
	if code, v = call(t, "GET", api+"summary", ""); code != 200 || !strings.Contains(v["summary"].(string), "RUNNING") {
		t.Errorf("summary: %d %v", code, v)
	}
	code, v = call(t, "POST", api+"tweak", `{"dry_run": true}`)
	if code != 200 || v["message"] == nil {
		t.Errorf("tweak --dry-run: %d %v", code, v)
	}
	code, v = call(t, "POST", api+"check", `{"partitions": [1, 2], "source": "S1"}`)
	if code != 200 || v["message"] == nil {
		t.Errorf("check 1:S1 2:S1: %d %v", code, v)
	}

	// Bad requests: 4xx with a message, and the API still answers.
	for _, tc := range []struct {
		method, path, body string
		status             int
		msg                string
	}{
		{"GET", "nodes?type=BOGUS", "", 400, `type "BOGUS"`},
		{"GET", "pt?min=x", "", 400, `min "x"`},
		{"GET", "pt?min=2&max=99", "", 400, "out of range, the table has 4"},
		{"GET", "pt?min=3&max=2", "", 400, "out of range"},
		{"GET", "pt?node=Q7", "", 400, `node "Q7"`},
		{"GET", "nosuch", "", 404, "no such API"},
		{"POST", "cluster", `{"state": `, 400, "request body"},
		{"POST", "cluster", `{"state": "RUNNING"} {}`, 400, "data after"},
		{"POST", "cluster", `{"stat": "RUNNING"}`, 400, `unknown field "stat"`},
		{"POST", "cluster", `{"state": "BOGUS"}`, 400, `state "BOGUS"`},
		{"POST", "nodes/S9/kill", "", 409, "unknown node"}, // refused by the master (DENIED)
		{"POST", "nodes/bad/drop", "", 400, `node "bad"`},
		{"POST", "truncate", `{"tid": "yesterday"}`, 400, "parse tid"},
		{"POST", "check", `{"partitions": [4]}`, 400, "partition 4: out of range, the table has 4"},
		{"POST", "check", `{"source": "X"}`, 400, `source "X"`},
		{"POST", "check", `{"min_tid": "tid:x"}`, 400, "min_tid"},
	} {
		code, v := call(t, tc.method, api+tc.path, tc.body)
		msg, _ := v["error"].(string)
		if code != tc.status || msg == "" || !strings.Contains(msg, tc.msg) {
			t.Errorf("%s %s %s: %d %v, want %d with %q", tc.method, tc.path, tc.body, code, v, tc.status, tc.msg)
		}
	}
	if code, v = call(t, "GET", api+"cluster", ""); code != 200 || v["state"] != "RUNNING" {
		t.Errorf("cluster after bad requests: %d %v", code, v)
	}

	// A write from another host is refused before it reaches the admin;
	// a read is not.
	for _, tc := range []struct {
		method, path, body string
		status             int
	}{
		{"POST", "/api/v1/cluster", `{"state": "STOPPING"}`, 403},
		{"POST", "/api/v1/nodes/S1/kill", "", 403},
		{"GET", "/api/v1/cluster", "", 200},
	} {
		req := httptest.NewRequestWithContext(t.Context(), tc.method, tc.path, strings.NewReader(tc.body))
		req.RemoteAddr = "192.0.2.7:4242"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != tc.status || (tc.status == 403 && !strings.Contains(w.Body.String(), "only accepted from loopback")) {
			t.Errorf("%s %s from 192.0.2.7: %d %s, want %d", tc.method, tc.path, w.Code, w.Body, tc.status)
		}
	}
	if code, v = call(t, "GET", api+"cluster", ""); code != 200 || v["state"] != "RUNNING" {
		t.Errorf("cluster after refused writes: %d %v", code, v)
	}

	// The dashboard: one page, nothing from elsewhere.
	resp, err := http.Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "<title>NEO cluster</title>") || !strings.Contains(string(page), `fetch("api/v1/"`) {
		t.Errorf("dashboard: %d\n%.300s", resp.StatusCode, page)
	}
	if strings.Contains(string(page), "http://") || strings.Contains(string(page), "https://") || strings.Contains(string(page), `src="//`) {
		t.Errorf("dashboard refers to another site")
	}
}

func tidHex(v uint64) string {
	const digits = "0123456789abcdef"
	b := []byte("0x0000000000000000")
	for i := 17; i >= 2; i-- {
		b[i] = digits[v&15]
		v >>= 4
	}
	return string(b)
}
