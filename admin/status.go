package admin

import (
	"fmt"
	"github.com/neogo/neo/parttab"
	"github.com/neogo/neo/proto"
	"log/slog"
	"strings"
)

// Status is a snapshot of the admin's view of the cluster, for health
// checks, metrics and the JSON API.
type Status struct {
	// Primary is the primary master the admin is identified to; 0 while
	// it is not connected to one.
	Primary proto.NodeID
	// ClusterState is the cluster state, once the primary told it.
	ClusterState proto.Opt[proto.ClusterState]
	// Nodes are the nodes the primary announced.
	Nodes []proto.NodeInfo
	// PTid, NumReplicas and Rows are the partition table; Rows is nil
	// before the primary sent it.
	PTid        proto.PTid
	NumReplicas int
	Rows        [][]parttab.Cell
}

// Status returns a snapshot of the admin's view of the cluster.
func (n *Node) Status() Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	v := n.mu.v
	st := Status{ClusterState: v.clusterState}
	if n.mu.master != nil {
		st.Primary = v.primary
	}
	for _, e := range v.nodes.Entries() {
		st.Nodes = append(st.Nodes, proto.NodeInfo(e))
	}
	if v.pt != nil {
		st.PTid, st.NumReplicas, st.Rows = v.pt.PTid(), v.pt.NumReplicas(), v.pt.Rows()
	}
	return st
}

// LogState logs the admin's view of the cluster (SIGRTMIN+2): primary,
// cluster state, node table and partition table.
func (n *Node) LogState(log *slog.Logger) {
	st := n.Status()
	cs := "None"
	if s, ok := st.ClusterState.Get(); ok {
		cs = s.String()
	}
	log.Info("state", "primary", st.Primary.String(), "cluster_state", cs, "ptid", uint64(st.PTid), "replicas", st.NumReplicas)
	for _, e := range st.Nodes {
		log.Info("node", "nid", e.NID.String(), "type", e.Type.String(), "addr", e.Addr.String(), "state", e.State.String())
	}
	for p, row := range st.Rows {
		cells := make([]string, len(row))
		for i, c := range row {
			cells[i] = fmt.Sprintf("%s:%s", c.NID, c.State)
		}
		log.Info("partition", "offset", p, "cells", strings.Join(cells, " "))
	}
}
