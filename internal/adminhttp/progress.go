package adminhttp

import (
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Peers returns the metrics of the cluster's nodes by name, for the
// dashboard's progress bars and rates (GET /api/v1/progress): neoctl's
// protocol tells nothing of the storages' background work, their metrics
// do. neosimple gives its nodes' registries.
type Peers func() map[string]prometheus.Gatherer

// SetPeers makes peers the source of GET /api/v1/progress; nil: none.
func (a *API) SetPeers(peers Peers) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.peers = peers
}

// Progress is the answer of GET /api/v1/progress.
type Progress struct {
	// Nodes are the nodes with work in progress (or a backup lag), by name.
	Nodes map[string]*NodeProgress `json:"nodes"`
	// Commits and Loads count the commits the masters answered and the
	// loads the storages answered, at At (Unix seconds): the page
	// derives rates from two answers.
	Commits float64 `json:"commits"`
	Loads   float64 `json:"loads"`
	At      float64 `json:"at"`
	// Peers is false when the admin knows no node's metrics.
	Peers bool `json:"peers"`
}

// NodeProgress is the work in progress of one node.
type NodeProgress struct {
	Replicating []PartProgress `json:"replicating,omitempty"`
	Checking    []PartProgress `json:"checking,omitempty"`
	// Pack is the share done of the running pack order.
	Pack *float64 `json:"pack,omitempty"`
	// Import is the share imported by the Importer backend, until done.
	Import *float64 `json:"import,omitempty"`
	// BackupLagSeconds: the master of a backup cluster.
	BackupLagSeconds *float64 `json:"backup_lag_seconds,omitempty"`
}

// PartProgress is the progress of one partition.
type PartProgress struct {
	Partition  int      `json:"partition"`
	Ratio      float64  `json:"ratio"`
	LagSeconds *float64 `json:"lag_seconds,omitempty"`
}

func (a *API) getProgress(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	peers := a.peers
	a.mu.Unlock()
	pr := Progress{Nodes: map[string]*NodeProgress{}, At: float64(time.Now().UnixMilli()) / 1e3}
	if peers != nil {
		pr.Peers = true
		for name, g := range peers() {
			mfs, err := g.Gather()
			if err != nil && len(mfs) == 0 {
				a.log.Warn("dashboard: metrics of a node", "node", name, "err", err)
				continue
			}
			if np := progressOf(mfs, &pr); np != nil {
				pr.Nodes[name] = np
			}
		}
	}
	writeJSON(w, http.StatusOK, pr)
}

// progressOf reads one node's metrics: its work in progress (nil if
// none), and adds its commits and loads to pr.
func progressOf(mfs []*dto.MetricFamily, pr *Progress) *NodeProgress {
	np := &NodeProgress{}
	parts := map[string]map[int]*PartProgress{"replicating": {}, "checking": {}}
	part := func(kind string, m *dto.Metric) *PartProgress {
		p, err := strconv.Atoi(label(m, "partition"))
		if err != nil {
			return nil
		}
		pp := parts[kind][p]
		if pp == nil {
			pp = &PartProgress{Partition: p}
			parts[kind][p] = pp
		}
		return pp
	}
	var packRunning bool
	var pack, imp *float64
	var importDone bool
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			v := value(m)
			switch mf.GetName() {
			case "neo_storage_replication_progress_ratio":
				if pp := part("replicating", m); pp != nil {
					pp.Ratio = v
				}
			case "neo_storage_replication_lag_seconds":
				if pp := part("replicating", m); pp != nil {
					pp.LagSeconds = &v
				}
			case "neo_storage_check_progress_ratio":
				if pp := part("checking", m); pp != nil {
					pp.Ratio = v
				}
			case "neo_storage_pack_running":
				packRunning = v == 1
			case "neo_storage_pack_progress_ratio":
				pack = &v
			case "neo_storage_import_progress_ratio":
				imp = &v
			case "neo_storage_import_done":
				importDone = v == 1
			case "neo_backup_lag_seconds":
				np.BackupLagSeconds = &v
			case "neo_request_duration_seconds":
				switch label(m, "request") {
				case "AskFinishTransaction":
					pr.Commits += float64(m.GetHistogram().GetSampleCount())
				case "AskObject":
					pr.Loads += float64(m.GetHistogram().GetSampleCount())
				}
			}
		}
	}
	for kind, l := range map[string]*[]PartProgress{"replicating": &np.Replicating, "checking": &np.Checking} {
		for _, p := range slices.Sorted(maps.Keys(parts[kind])) {
			*l = append(*l, *parts[kind][p])
		}
	}
	if packRunning {
		zero := 0.0
		np.Pack = cmpOr(pack, &zero)
	}
	if imp != nil && !importDone {
		np.Import = imp
	}
	if np.Replicating == nil && np.Checking == nil && np.Pack == nil && np.Import == nil && np.BackupLagSeconds == nil {
		return nil
	}
	return np
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func value(m *dto.Metric) float64 {
	var v float64
	switch {
	case m.Gauge != nil:
		v = m.GetGauge().GetValue()
	case m.Counter != nil:
		v = m.GetCounter().GetValue()
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0 // not JSON
	}
	return v
}

func cmpOr[T any](a, b *T) *T {
	if a != nil {
		return a
	}
	return b
}
