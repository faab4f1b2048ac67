package nodehttp

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage"
	"github.com/neogo/neo/storage/backend"
)

// Metrics of a storage's background work: replication, checks, packs and
// the Importer backend's import.
var (
	descReplicationRatio = prometheus.NewDesc("neo_storage_replication_progress_ratio",
		"Share of the commit-time span of an OUT_OF_DATE partition replicated, 0 to 1 (partitions being replicated only).", []string{"partition"}, nil)
	descReplicationLag = prometheus.NewDesc("neo_storage_replication_lag_seconds",
		"Commit time between what an OUT_OF_DATE partition has and what it replicates up to (partitions being replicated only).", []string{"partition"}, nil)
	descReplicating = prometheus.NewDesc("neo_storage_replicating_partitions",
		"Partitions of this storage being replicated from another storage.", nil, nil)

	descCheckRatio = prometheus.NewDesc("neo_storage_check_progress_ratio",
		"Share of a partition check done, 0 to 1 (partitions being checked only).", []string{"partition"}, nil)
	descChecks = prometheus.NewDesc("neo_storage_checks_total",
		"Partition checks ended, by result: ok, corrupted (some cell reported), aborted (a replica or the source lost).", []string{"result"}, nil)

	descPackRunning = prometheus.NewDesc("neo_storage_pack_running",
		"1 while this storage packs its partitions for a pack order, else 0.", nil, nil)
	descPackRatio = prometheus.NewDesc("neo_storage_pack_progress_ratio",
		"Share of the partitions packed for the running pack order, 0 to 1 (while one runs only).", nil, nil)
	descPacked = prometheus.NewDesc("neo_storage_packed_partitions_total",
		"Partitions packed (one per partition and pack order).", nil, nil)

	descImportRatio = prometheus.NewDesc("neo_storage_import_progress_ratio",
		"Share of the commit-time span of the Importer's sources imported, 0 to 1 (Importer backend only).", nil, nil)
	descImportDone = prometheus.NewDesc("neo_storage_import_done",
		"1 once the Importer backend imported everything, else 0 (Importer backend only).", nil, nil)
)

// importSource is what the Importer backend tells of its import
// (storage/backend/importer).
type importSource interface {
	Imported() (proto.Tid, bool)
	FirstSourceTid() proto.Tid
	LastSourceTid() proto.Tid
}

// importerOf returns db's Importer, looking behind wrappers (the object
// cache).
func importerOf(db backend.Backend) (importSource, bool) {
	for db != nil {
		if im, ok := db.(importSource); ok {
			return im, true
		}
		u, ok := db.(backend.Unwrapper)
		if !ok {
			break
		}
		db = u.Unwrap()
	}
	return nil, false
}

// collectWork sends the metrics of a storage's background work.
func collectWork(ch chan<- prometheus.Metric, st *storage.Status, db backend.Backend) {
	gauge(ch, descReplicating, float64(len(st.Replicating)))
	for _, p := range st.Replicating {
		part := strconv.FormatUint(uint64(p.Partition), 10)
		gauge(ch, descReplicationRatio, p.Ratio(), part)
		gauge(ch, descReplicationLag, p.Lag().Seconds(), part)
	}

	for _, p := range st.Checking {
		gauge(ch, descCheckRatio, p.Ratio(), strconv.FormatUint(uint64(p.Partition), 10))
	}
	for _, r := range []struct {
		result string
		n      uint64
	}{{"ok", st.ChecksOK}, {"corrupted", st.ChecksCorrupted}, {"aborted", st.ChecksAborted}} {
		ch <- prometheus.MustNewConstMetric(descChecks, prometheus.CounterValue, float64(r.n), r.result)
	}

	pk := st.Pack
	gauge(ch, descPackRunning, b2f(pk.ID != 0))
	if pk.ID != 0 && pk.Partitions > 0 {
		gauge(ch, descPackRatio, float64(pk.Done)/float64(pk.Partitions))
	}
	counter(ch, descPacked, st.PackedPartitions)

	if im, ok := importerOf(db); ok {
		tid, done := im.Imported()
		p := storage.Progress{From: im.FirstSourceTid(), Pos: tid, To: im.LastSourceTid()}
		ratio := p.Ratio()
		if done || p.From == proto.InvalidTid {
			ratio = 1
		}
		gauge(ch, descImportRatio, ratio)
		gauge(ch, descImportDone, b2f(done))
	}
}
