package nodehttp

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/neogo/neo/admin"
	"github.com/neogo/neo/master"
	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage"
	"github.com/neogo/neo/storage/backend"
	"github.com/neogo/neo/storage/backend/objcache"
)

// Metrics of the nodes, read from their Status at each scrape.
var (
	descClusterState = prometheus.NewDesc("neo_cluster_state",
		"Cluster state as this node knows it: 1 for the current state, 0 for the others.", []string{"state"}, nil)

	descMasterNID = prometheus.NewDesc("neo_master_node_id",
		"Node id of this master (0 before it has one).", nil, nil)
	descMasterPrimary = prometheus.NewDesc("neo_master_primary",
		"1 while this master plays the primary role, else 0.", nil, nil)
	descMasterTransactions = prometheus.NewDesc("neo_master_transactions",
		"Transactions begun and not finished.", nil, nil)
	descLastCommit = prometheus.NewDesc("neo_last_commit_timestamp_seconds",
		"Time of the last committed transaction (its tid), in seconds since the epoch.", nil, nil)
	descLastOid = prometheus.NewDesc("neo_last_oid",
		"Last object id given to a client.", nil, nil)
	descBackupUpstream = prometheus.NewDesc("neo_backup_upstream_last_commit_timestamp_seconds",
		"Backup cluster: time of the upstream's last commit (its tid) this master knows of, in seconds since the epoch.", nil, nil)
	descBackupLag = prometheus.NewDesc("neo_backup_lag_seconds",
		"Backup cluster: commit time between the upstream's last commit and what every partition has backed up (0 when caught up).", nil, nil)

	descStorageOperational = prometheus.NewDesc("neo_storage_operational",
		"1 once the master started operation on this storage, else 0.", nil, nil)
	descStorageCells = prometheus.NewDesc("neo_storage_cells",
		"Cells of this storage in the partition table, by state.", []string{"state"}, nil)
	descStorageDBBytes = prometheus.NewDesc("neo_storage_database_bytes",
		"Size of the database files (SQLite: the database and its write-ahead log).", nil, nil)
	descStorageConflicts = prometheus.NewDesc("neo_storage_conflicts_total",
		"Stores answered with a conflict.", nil, nil)
	descStorageDeadlocks = prometheus.NewDesc("neo_storage_deadlock_avoidances_total",
		"Deadlock avoidances: NotifyDeadlock sent to a client.", nil, nil)
	descStorageReplTxns = prometheus.NewDesc("neo_storage_replicated_transactions_total",
		"Transactions added by replication (fetched from another storage).", nil, nil)
	descStorageReplObjs = prometheus.NewDesc("neo_storage_replicated_objects_total",
		"Object revisions added by replication (fetched from another storage).", nil, nil)
	descCacheHits = prometheus.NewDesc("neo_storage_cache_hits_total",
		"Loads answered from the object cache.", nil, nil)
	descCacheMisses = prometheus.NewDesc("neo_storage_cache_misses_total",
		"Loads the object cache could not answer.", nil, nil)
	descCacheEvictions = prometheus.NewDesc("neo_storage_cache_evictions_total",
		"Object revisions evicted from the cache.", nil, nil)
	descCacheEntries = prometheus.NewDesc("neo_storage_cache_entries",
		"Object revisions in the cache.", nil, nil)
	descCacheBytes = prometheus.NewDesc("neo_storage_cache_bytes",
		"Bytes held by the object cache, overhead included.", nil, nil)

	descAdminConnected = prometheus.NewDesc("neo_admin_primary_connected",
		"1 while the admin is identified to the primary master, else 0.", nil, nil)
	descClusterNodes = prometheus.NewDesc("neo_cluster_nodes",
		"Nodes of the cluster in the node table (of this master, or as the primary announced them), by type and state.", []string{"type", "state"}, nil)
	descClusterCells = prometheus.NewDesc("neo_cluster_cells",
		"Cells of the partition table, by state.", []string{"state"}, nil)
	descClusterPartitions = prometheus.NewDesc("neo_cluster_partitions",
		"Partitions of the partition table (0 before the admin has it).", nil, nil)
)

// Every value of the enums, so that a state absent now still has its
// series (at 0).
var (
	clusterStates = enumValues(proto.ClusterState.Valid)
	cellStates    = enumValues(proto.CellState.Valid)
	nodeStates    = enumValues(proto.NodeState.Valid)
	nodeTypes     = enumValues(proto.NodeType.Valid)
)

func enumValues[E ~uint8](valid func(E) bool) []E {
	var l []E
	for v := E(0); valid(v); v++ {
		l = append(l, v)
	}
	return l
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v uint64) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func collectClusterState(ch chan<- prometheus.Metric, cur proto.ClusterState, known bool) {
	for _, s := range clusterStates {
		gauge(ch, descClusterState, b2f(known && s == cur), s.String())
	}
}

// SetMaster attaches a master: ready while its cluster is RUNNING.
func (h *Handler) SetMaster(s *master.Server) {
	h.attach(&source{
		ready: func() error {
			st, ok := s.Status()
			switch {
			case !ok:
				return errors.New("master not running")
			case st.ClusterState != proto.RUNNING:
				return fmt.Errorf("cluster state is %s, not RUNNING", st.ClusterState)
			}
			return nil
		},
		collect: func(ch chan<- prometheus.Metric) {
			st, ok := s.Status()
			collectClusterState(ch, st.ClusterState, ok)
			gauge(ch, descMasterNID, float64(st.NID))
			if !ok {
				return
			}
			cs := st.Stats
			gauge(ch, descMasterPrimary, b2f(cs.Primary))
			for _, t := range nodeTypes {
				for _, s := range nodeStates {
					n := 0
					if int(t) < len(cs.Nodes) && int(s) < len(cs.Nodes[t]) {
						n = cs.Nodes[t][s]
					}
					gauge(ch, descClusterNodes, float64(n), t.String(), s.String())
				}
			}
			for _, s := range cellStates {
				n := 0
				if int(s) < len(cs.Cells) {
					n = cs.Cells[s]
				}
				gauge(ch, descClusterCells, float64(n), s.String())
			}
			gauge(ch, descClusterPartitions, float64(cs.Partitions))
			gauge(ch, descMasterTransactions, float64(cs.Transactions))
			if cs.LastTid != 0 && cs.LastTid != proto.InvalidTid {
				gauge(ch, descLastCommit, float64(proto.TidTime(cs.LastTid).UnixNano())/1e9)
			}
			gauge(ch, descLastOid, float64(cs.LastOid))
			if cs.Backup && cs.BackupTid != 0 {
				lag := 0.0
				if cs.UpstreamTid > cs.BackupTid {
					lag = proto.TidTime(cs.UpstreamTid).Sub(proto.TidTime(cs.BackupTid)).Seconds()
				}
				gauge(ch, descBackupLag, lag)
				gauge(ch, descBackupUpstream, float64(proto.TidTime(cs.UpstreamTid).UnixNano())/1e9)
			}
		},
	})
}

// SetStorage attaches a storage whose backend is db (its object cache,
// if objcache wrapped it, is reported): ready while it is operational and
// every cell it has is readable. files, if any, hold the database (a
// SQLite file; its write-ahead log PATH-wal is counted too): their size
// is reported.
func (h *Handler) SetStorage(n *storage.Node, db backend.Backend, files ...string) {
	h.attach(&source{
		ready: func() error {
			st := n.Status()
			if !st.Operational {
				return errors.New("storage not operational")
			}
			var bad []string
			for _, s := range slices.Sorted(maps.Keys(st.Cells)) {
				if !s.Readable() {
					bad = append(bad, fmt.Sprintf("%d %s", st.Cells[s], s))
				}
			}
			if len(bad) > 0 {
				return fmt.Errorf("cells not readable: %s", strings.Join(bad, ", "))
			}
			return nil
		},
		collect: func(ch chan<- prometheus.Metric) {
			st := n.Status()
			gauge(ch, descStorageOperational, b2f(st.Operational))
			for _, s := range cellStates {
				gauge(ch, descStorageCells, float64(st.Cells[s]), s.String())
			}
			if len(files) > 0 {
				gauge(ch, descStorageDBBytes, float64(filesSize(files)))
			} else if n, ok := serverSize(db); ok {
				gauge(ch, descStorageDBBytes, float64(n))
			}
			collectWork(ch, &st, db)
			counter(ch, descStorageConflicts, st.Conflicts)
			counter(ch, descStorageDeadlocks, st.Deadlocks)
			counter(ch, descStorageReplTxns, st.ReplicatedTxns)
			counter(ch, descStorageReplObjs, st.ReplicatedObjects)
			if cs, ok := objcache.StatsOf(db); ok {
				counter(ch, descCacheHits, cs.Hits)
				counter(ch, descCacheMisses, cs.Misses)
				counter(ch, descCacheEvictions, cs.Evictions)
				gauge(ch, descCacheEntries, float64(cs.Entries))
				gauge(ch, descCacheBytes, float64(cs.Bytes))
			}
		},
	})
}

// SetAdmin attaches an admin: ready while it is connected to the primary
// master. Its view of the cluster is exported too.
func (h *Handler) SetAdmin(n *admin.Node) {
	h.attach(&source{
		ready: func() error {
			if n.Status().Primary == 0 {
				return errors.New("not connected to the primary master")
			}
			return nil
		},
		collect: func(ch chan<- prometheus.Metric) {
			st := n.Status()
			gauge(ch, descAdminConnected, b2f(st.Primary != 0))
			cs, ok := st.ClusterState.Get()
			collectClusterState(ch, cs, ok)
			nodes := map[[2]uint8]int{}
			for _, e := range st.Nodes {
				nodes[[2]uint8{uint8(e.Type), uint8(e.State)}]++
			}
			for _, t := range nodeTypes {
				for _, s := range nodeStates {
					gauge(ch, descClusterNodes, float64(nodes[[2]uint8{uint8(t), uint8(s)}]), t.String(), s.String())
				}
			}
			cells := map[proto.CellState]int{}
			for _, row := range st.Rows {
				for _, c := range row {
					cells[c.State]++
				}
			}
			for _, s := range cellStates {
				gauge(ch, descClusterCells, float64(cells[s]), s.String())
			}
			gauge(ch, descClusterPartitions, float64(len(st.Rows)))
		},
	})
}

// serverSizeTimeout bounds the question of a scrape to a database server.
const serverSizeTimeout = time.Second

// serverSize returns the size of a database on a server (MySQL), looking
// behind wrappers (the object cache); false if db tells none.
func serverSize(db backend.Backend) (int64, bool) {
	for db != nil {
		if sr, ok := db.(backend.SizeReporter); ok {
			ctx, cancel := context.WithTimeout(context.Background(), serverSizeTimeout)
			defer cancel()
			n, err := sr.Size(ctx)
			return n, err == nil
		}
		u, ok := db.(backend.Unwrapper)
		if !ok {
			break
		}
		db = u.Unwrap()
	}
	return 0, false
}

// filesSize returns the size of files and of their write-ahead logs
// (PATH-wal); missing files count 0.
func filesSize(files []string) int64 {
	var n int64
	for _, f := range files {
		for _, p := range []string{f, f + "-wal"} {
			if fi, err := os.Stat(p); err == nil {
				n += fi.Size()
			}
		}
	}
	return n
}
