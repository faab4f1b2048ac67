package master

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/neogo/neo/master/core"
	"github.com/neogo/neo/proto"
)

// Status is a snapshot of a master node, for health checks and metrics.
type Status struct {
	NID proto.NodeID
	// ClusterState is the cluster state of this master's core.
	ClusterState proto.ClusterState
	// Stats are the core's counters, taken about once a second.
	Stats core.Stats
}

// Status returns the last snapshot published by Run, and false before Run
// made its first step or once it returned.
func (s *Server) Status() (Status, bool) {
	if st := s.status.Load(); st != nil {
		return *st, true
	}
	return Status{}, false
}

// statsPeriod is how often the loop takes the core's Stats, which walk
// its tables: not at each step of a busy master.
const statsPeriod = time.Second

// publish makes the state of m, after a step, the one Status returns. It
// allocates only when something changed.
func (s *Server) publish(m *core.Machine) {
	st := Status{NID: m.NID(), ClusterState: m.ClusterState()}
	old := s.status.Load()
	if old != nil {
		st.Stats = old.Stats
	}
	if now := time.Now(); old == nil || old.ClusterState != st.ClusterState || now.Sub(s.statsAt) >= statsPeriod {
		st.Stats, s.statsAt = m.Stats(), now
	}
	if old == nil || *old != st {
		s.status.Store(&st)
	}
}

// Transactions returns the transactions in progress, by ttid, asked to
// Run's loop; an error if Run is not running or ctx ends first.
func (s *Server) Transactions(ctx context.Context) ([]core.TxnInfo, error) {
	ch := make(chan []core.TxnInfo, 1)
	select {
	case s.events <- inspect{func(m *core.Machine) { ch <- m.Transactions() }}:
	case <-s.stop:
		return nil, ErrServerClosed
	case <-ctx.Done():
		return nil, fmt.Errorf("ask the transactions in progress: %w", ctx.Err())
	}
	select {
	case txns := <-ch:
		return txns, nil
	case <-s.stop:
		return nil, ErrServerClosed
	case <-ctx.Done():
		return nil, fmt.Errorf("ask the transactions in progress: %w", ctx.Err())
	}
}

// dumpTimeout bounds the wait of the state dump for the loop.
const dumpTimeout = 5 * time.Second

// LogState logs the master's state (SIGRTMIN+2): its id, the cluster
// state, its tables' counters, last ids, then each transaction in
// progress.
func (s *Server) LogState(log *slog.Logger) {
	st, ok := s.Status()
	if !ok {
		log.Info("state: not running")
		return
	}
	x := st.Stats
	log.Info("state", "nid", st.NID.String(), "cluster_state", st.ClusterState.String(), "primary", x.Primary,
		"nodes_by_type_and_state", fmt.Sprint(x.Nodes), "cells_by_state", fmt.Sprint(x.Cells), "partitions", x.Partitions,
		"transactions", x.Transactions, "last_tid", x.LastTid.String(), "last_oid", x.LastOid.String())
	ctx, cancel := context.WithTimeout(context.Background(), dumpTimeout)
	defer cancel()
	txns, err := s.Transactions(ctx)
	if err != nil {
		log.Warn("state: transactions not dumped", "err", err)
		return
	}
	log.Info("transactions", "count", len(txns))
	now := time.Now()
	for _, t := range txns {
		locking := make([]string, len(t.Locking))
		for i, nid := range t.Locking {
			locking[i] = nid.String()
		}
		log.Info("transaction", "ttid", t.TTid.String(), "tid", t.Tid.String(), "client", t.Client.String(), "state", t.State,
			"age", now.Sub(t.Born).Round(time.Millisecond).String(), "locking", strings.Join(locking, ","))
	}
}
