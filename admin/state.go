package admin

import (
	"errors"
	"fmt"

	"github.com/neogo/neo/nodetab"
	"github.com/neogo/neo/parttab"
	"github.com/neogo/neo/proto"
)

// notConnected is neoppod's text of the NOT_READY answer given to neoctl
// while the admin has no primary master.
const notConnected = "Not connected to a primary master."

// errBadOffset is sent (as a new packet, not an answer) to neoctl when
// AskPartitionList names rows beyond the table (protocol.md §3.3 #36).
var errBadOffset = &proto.Error{Code: proto.PROTOCOL_ERROR, Message: "invalid partition table offset"}

// view is the admin's copy of the cluster as the primary master describes
// it: node table, partition table and cluster state. It is pure: the
// driver feeds it the master's packets and asks it for neoctl's answers.
// It is not safe for concurrent use; the Node guards it with its mutex.
type view struct {
	nodes *nodetab.Table
	// pt is nil until the first SendPartitionTable.
	pt           *parttab.Table
	clusterState proto.Opt[proto.ClusterState]
	self         proto.NodeID // our id, given by the master
	primary      proto.NodeID // the master we are identified to; 0 while disconnected

	// Last ids of the main cluster, learned for monitoring.
	lastTid   proto.Opt[proto.Tid]
	backupTid proto.Opt[proto.Tid]
}

func newView() *view {
	return &view{nodes: nodetab.New()}
}

// identified records a successful identification to the primary master
// primary, which gave us the id self.
func (v *view) identified(self, primary proto.NodeID) {
	v.nodes.Reset()
	v.self, v.primary = self, primary
}

// disconnected forgets the master: neoctl gets NOT_READY until the next
// identification, and the cluster state is unknown. The tables are kept:
// the next master sends full copies.
func (v *view) disconnected() {
	v.primary = 0
	v.clusterState = proto.Opt[proto.ClusterState]{}
	v.lastTid = proto.Opt[proto.Tid]{}
	v.backupTid = proto.Opt[proto.Tid]{}
}

// apply updates the view with a packet from the master. Packets the admin
// does not act on are ignored (reported by ok false); an error means the
// master sent something inconsistent and the link must be dropped, so that
// the next identification reloads everything.
func (v *view) apply(m proto.Msg) (ok bool, err error) {
	switch m := m.(type) {
	case *proto.NotifyNodeInformation:
		entries := make([]nodetab.Node, len(m.NodeList))
		for i, e := range m.NodeList {
			entries[i] = nodetab.Node(e)
		}
		drop := func(nid proto.NodeID) bool { return v.pt == nil || v.pt.DropNode(nid) }
		if _, err := v.nodes.Update(m.Timestamp, v.self, entries, drop); err != nil {
			return true, fmt.Errorf("NotifyNodeInformation: %w", err)
		}
	case *proto.SendPartitionTable:
		pt, err := parttab.Load(m.PTid, int(m.NumReplicas), parttab.RowsFromProto(m.Rows))
		if err != nil {
			return true, fmt.Errorf("SendPartitionTable: %w", err)
		}
		v.pt = pt
	case *proto.NotifyPartitionChanges:
		if v.pt == nil {
			return true, errors.New("NotifyPartitionChanges before any SendPartitionTable")
		}
		changes := make([]parttab.Change, len(m.CellList))
		for i, c := range m.CellList {
			changes[i] = parttab.Change(c)
		}
		if err := v.pt.Update(m.PTid, int(m.NumReplicas), changes); err != nil {
			return true, fmt.Errorf("NotifyPartitionChanges: %w", err)
		}
	case *proto.NotifyClusterInformation:
		v.setClusterState(proto.Some(m.State))
	case *proto.AnswerClusterState:
		v.setClusterState(m.State)
	default:
		return false, nil
	}
	return true, nil
}

func (v *view) setClusterState(s proto.Opt[proto.ClusterState]) {
	if s != v.clusterState {
		// Last ids learned in another state say nothing of this one.
		v.lastTid, v.backupTid = proto.Opt[proto.Tid]{}, proto.Opt[proto.Tid]{}
	}
	v.clusterState = s
}

// nodeList answers AskNodeList: the nodes of type typ, or all of them.
func (v *view) nodeList(typ proto.Opt[proto.NodeType]) *proto.AnswerNodeList {
	a := &proto.AnswerNodeList{NodeList: []proto.NodeInfo{}}
	for _, n := range v.nodes.Entries() {
		if t, ok := typ.Get(); ok && n.Type != t {
			continue
		}
		a.NodeList = append(a.NodeList, proto.NodeInfo(n))
	}
	return a
}

// partitionList answers AskPartitionList: rows [min, max), max 0 meaning
// the last row. Rows beyond the table are an error, which the admin sends
// to neoctl as a new packet; an empty range is a valid empty answer.
func (v *view) partitionList(min, max uint32) (*proto.AnswerPartitionList, *proto.Error) {
	a := &proto.AnswerPartitionList{RowList: [][]proto.CellInfo{}}
	if v.pt == nil {
		// No table yet: what a table of no partition would answer.
		if min < max {
			return nil, errBadOffset
		}
		return a, nil
	}
	np := v.pt.NumPartitions()
	if max == 0 {
		max = np
	}
	if min < max && max > np {
		return nil, errBadOffset
	}
	a.PTid, a.NumReplicas = v.pt.PTid(), uint32(v.pt.NumReplicas())
	for offset := min; offset < max; offset++ {
		a.RowList = append(a.RowList, parttab.RowsToProto([][]parttab.Cell{v.pt.Row(offset)})[0])
	}
	return a, nil
}

// monitor returns the health of the cluster (cluster.md §9.4).
func (v *view) monitor() Monitor {
	m := Monitor{
		ClusterState: v.clusterState,
		LastTid:      v.lastTid,
		BackupTid:    v.backupTid,
	}
	if v.pt == nil {
		return m
	}
	m.PTSummary = map[proto.CellState]int{}
	down := map[proto.NodeID]bool{}
	for offset := range v.pt.NumPartitions() {
		for _, c := range v.pt.Row(offset) {
			m.PTSummary[c.State]++
			if n := v.nodes.ByNID(c.NID); n == nil || n.State != proto.NODE_RUNNING {
				down[c.NID] = true
			}
		}
	}
	m.Down = len(down)
	return m
}
