package storage

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/neogo/neo/proto"
)

// nodeStats are the node's counters for metrics.
type nodeStats struct {
	conflicts atomic.Uint64 // stores answered with a conflict
	deadlocks atomic.Uint64 // NotifyDeadlock sent (deadlock avoidances)
	// Transactions and object revisions added by replication: what a
	// clone (§8.11) or a restarted node had to fetch.
	replTxns, replObjs atomic.Uint64
}

// Status is a snapshot of a storage node, for health checks and metrics.
type Status struct {
	NID proto.NodeID
	// Operational: the master started operation (the node serves clients).
	Operational bool
	// Cells counts the cells of this node by state; nil before the node
	// has a partition table.
	Cells map[proto.CellState]int
	// Conflicts counts the stores answered with a conflict and Deadlocks
	// the deadlock avoidances (NotifyDeadlock sent), since the start.
	Conflicts, Deadlocks uint64
	// ReplicatedTxns and ReplicatedObjects count the transactions and
	// object revisions added by replication since the start.
	ReplicatedTxns, ReplicatedObjects uint64
	// Replicating are the partitions being replicated from another
	// storage (OUT_OF_DATE cells), Checking those being checked, by
	// partition; Pack is the pack order running (ID 0: none).
	Replicating, Checking []Progress
	Pack                  PackProgress
	WorkStats
}

// Status returns a snapshot of the node.
func (n *Node) Status() Status {
	st := Status{Conflicts: n.stats.conflicts.Load(), Deadlocks: n.stats.deadlocks.Load(),
		ReplicatedTxns: n.stats.replTxns.Load(), ReplicatedObjects: n.stats.replObjs.Load()}
	n.work.update(func(w *work) {
		for _, p := range slices.Sorted(maps.Keys(w.checks)) {
			st.Checking = append(st.Checking, w.checks[p])
		}
		st.Pack, st.WorkStats = w.pack, w.stats
	})
	n.mu.Lock()
	rp := n.mu.replicator
	n.mu.Unlock()
	if rp != nil {
		st.Replicating = rp.progress() // not under n.mu: the replicator takes it
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	st.NID, st.Operational = n.mu.nid, n.mu.operational
	if pt := n.mu.pt; pt != nil {
		st.Cells = map[proto.CellState]int{}
		for p := range pt.np() {
			if s, ok := pt.state(p, n.mu.nid); ok {
				st.Cells[s]++
			}
		}
	}
	return st
}

// Transactions returns the transactions being committed on the node, by
// ttid; none while it is not operational.
func (n *Node) Transactions() []TxnInfo {
	n.mu.Lock()
	tm := n.mu.tm
	n.mu.Unlock()
	if tm == nil {
		return nil
	}
	return tm.snapshot()
}

// LogState logs the node's state (SIGRTMIN+2): its id, whether it is
// operational, its cells by state and its counters, then each
// transaction being committed.
func (n *Node) LogState(log *slog.Logger) {
	st := n.Status()
	cells := make([]string, 0, len(st.Cells))
	for s, c := range st.Cells {
		cells = append(cells, fmt.Sprintf("%s:%d", s, c))
	}
	slices.Sort(cells)
	log.Info("state", "nid", st.NID.String(), "operational", st.Operational, "cells", strings.Join(cells, ","),
		"conflicts", st.Conflicts, "deadlocks", st.Deadlocks)
	txns := n.Transactions()
	log.Info("transactions", "count", len(txns))
	now := time.Now()
	for _, t := range txns {
		log.Info("transaction", "ttid", t.TTid.String(), "tid", t.Tid.String(), "client", t.Client.String(), "state", t.State,
			"age", now.Sub(t.Born).Round(time.Millisecond).String(), "objects", t.Objects, "locks", t.Locks)
	}
}
