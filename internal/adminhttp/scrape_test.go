package adminhttp

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// TestScrapePeers serves a storage's metrics over real HTTP, as a daemon
// node's --http does, and reads them as a daemon admin's dashboard
// progress; a node that does not answer is left out, not fatal.
func TestScrapePeers(t *testing.T) {
	r := prometheus.NewRegistry()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "neo_storage_replication_progress_ratio", Help: "h"}, []string{"partition"})
	g.WithLabelValues("2").Set(0.5)
	r.MustRegister(g)
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "neo_request_duration_seconds", Help: "h"}, []string{"request"})
	h.WithLabelValues("AskObject").Observe(0.001)
	h.WithLabelValues("AskObject").Observe(0.001)
	r.MustRegister(h)
	srv := httptest.NewServer(promhttp.HandlerFor(r, promhttp.HandlerOpts{}))
	defer srv.Close()
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()

	targets, err := ParsePeerTargets([]string{"S1=" + srv.URL + "/metrics, S2=" + dead.URL + "/metrics"})
	if err != nil {
		t.Fatal(err)
	}
	a := New(nil, slog.New(slog.DiscardHandler))
	a.SetPeers(ScrapePeers(targets, nil))
	w := httptest.NewRecorder()
	a.getProgress(w, httptest.NewRequest("GET", "/api/v1/progress", nil))
	var pr Progress
	if err := json.Unmarshal(w.Body.Bytes(), &pr); err != nil {
		t.Fatalf("progress: %v: %s", err, w.Body)
	}
	if !pr.Peers || pr.Loads != 2 || len(pr.Nodes) != 1 || pr.Nodes["S1"] == nil ||
		len(pr.Nodes["S1"].Replicating) != 1 || pr.Nodes["S1"].Replicating[0].Ratio != 0.5 {
		t.Errorf("progress from scraped peers: %s", w.Body)
	}
}

func TestParsePeerTargets(t *testing.T) {
	got, err := ParsePeerTargets([]string{"S1=http://127.0.0.1:1/metrics S2=https://h:2/metrics", "M1=http://m:3/metrics"})
	if err != nil || len(got) != 3 || got["S2"] != "https://h:2/metrics" {
		t.Errorf("ParsePeerTargets = %v, %v", got, err)
	}
	for _, bad := range []string{"S1", "=http://h/metrics", "S1=ftp://h/x", "S1=http:///x", "S1=http://a/m,S1=http://b/m"} {
		if _, err := ParsePeerTargets([]string{bad}); err == nil || !strings.Contains(err.Error(), "S1") && !strings.Contains(err.Error(), "NAME=URL") {
			t.Errorf("ParsePeerTargets(%q) = %v, want an error naming it", bad, err)
		}
	}
}
