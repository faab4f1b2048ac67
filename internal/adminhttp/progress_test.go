package adminhttp

import (
	"encoding/json"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestProgressOf reads a storage's and a master's metrics as the
// dashboard's progress: partitions by kind, pack, import, backup lag,
// and the commit and load counters summed.
func TestProgressOf(t *testing.T) {
	reg := func(add func(r *prometheus.Registry)) prometheus.Gatherer {
		r := prometheus.NewRegistry()
		add(r)
		return r
	}
	gauge := func(r *prometheus.Registry, name string, v float64, labels prometheus.Labels) {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "h", ConstLabels: labels})
		g.Set(v)
		r.MustRegister(g)
	}
	served := func(r *prometheus.Registry, counts map[string]int) {
		h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "neo_request_duration_seconds", Help: "h"}, []string{"request"})
		for req, n := range counts {
			for range n {
				h.WithLabelValues(req).Observe(0.001)
			}
		}
		r.MustRegister(h)
	}
	storage := reg(func(r *prometheus.Registry) {
		gauge(r, "neo_storage_replication_progress_ratio", 0.25, prometheus.Labels{"partition": "3"})
		gauge(r, "neo_storage_replication_lag_seconds", 90, prometheus.Labels{"partition": "3"})
		gauge(r, "neo_storage_check_progress_ratio", 0.5, prometheus.Labels{"partition": "1"})
		gauge(r, "neo_storage_pack_running", 1, nil)
		gauge(r, "neo_storage_import_progress_ratio", 0.75, nil)
		gauge(r, "neo_storage_import_done", 0, nil)
		served(r, map[string]int{"AskObject": 5, "AskStoreObject": 2})
	})
	master := reg(func(r *prometheus.Registry) {
		gauge(r, "neo_backup_lag_seconds", 2, nil)
		served(r, map[string]int{"AskFinishTransaction": 3})
	})
	idle := reg(func(r *prometheus.Registry) {
		gauge(r, "neo_storage_pack_running", 0, nil)
		gauge(r, "neo_storage_import_done", 1, nil)
		gauge(r, "neo_storage_import_progress_ratio", 1, nil)
	})
	pr := Progress{Nodes: map[string]*NodeProgress{}}
	for name, g := range map[string]prometheus.Gatherer{"storage_0": storage, "master_0": master, "storage_1": idle} {
		mfs, err := g.Gather()
		if err != nil {
			t.Fatal(err)
		}
		if np := progressOf(mfs, &pr); np != nil {
			pr.Nodes[name] = np
		}
	}
	got, _ := json.Marshal(pr)
	want := `{"nodes":{"master_0":{"backup_lag_seconds":2},"storage_0":{"replicating":[{"partition":3,"ratio":0.25,"lag_seconds":90}],` +
		`"checking":[{"partition":1,"ratio":0.5}],"pack":0,"import":0.75}},"commits":3,"loads":5,"at":0,"peers":false}`
	if string(got) != want {
		t.Errorf("progress:\n got %s\nwant %s", got, want)
	}
}
