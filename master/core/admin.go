package core

import (
	"fmt"
	"strings"

	"github.com/neogo/neo/parttab"
	"github.com/neogo/neo/proto"
)

// adminMsg handles the requests an admin node relays from neoctl
// (protocol.md §5.14).
func (c *Machine) adminMsg(n *node, r Recv) error {
	id := n.conn.id
	ack := func(msg string) { c.replyTo(id, r.MsgID, &proto.Error{Code: proto.ACK, Message: msg}) }
	changePT := func(rpc string) error {
		switch c.state {
		case proto.RUNNING, proto.STARTING_BACKUP, proto.BACKINGUP:
			return nil
		}
		return denied(fmt.Sprintf("%s RPC can not be used in %s state", rpc, c.state))
	}
	switch m := r.Msg.(type) {
	case *proto.SetClusterState:
		return c.setClusterState(m.State, ack)
	case *proto.SetNodeState:
		return c.setNodeState(m.NID, m.State, ack)
	case *proto.AddPendingNodes:
		if err := changePT("addPendingNodes"); err != nil {
			return err
		}
		want := map[proto.NodeID]bool{}
		for _, nid := range m.NIDList {
			want[nid] = true
		}
		var added []*node
		var names []string
		for _, sn := range c.sortedNodes() {
			if sn.Type == proto.STORAGE && sn.State == proto.PENDING && want[sn.NID] {
				added = append(added, sn)
				names = append(names, sn.NID.String())
			}
		}
		if len(added) == 0 {
			ack("No node added")
			return nil
		}
		for _, sn := range added {
			c.pt.AddNodes(sn.NID)
			c.setState(sn, proto.NODE_RUNNING)
			c.startStorage(sn)
		}
		c.broadcastNodes(added...)
		ack("Nodes added: " + strings.Join(names, ", "))
	case *proto.SetNumReplicas:
		if err := changePT("setNumReplicas"); err != nil {
			return err
		}
		if err := c.pt.SetNumReplicas(int(m.NumReplicas)); err != nil {
			return denied(err.Error())
		}
		c.pt.NextPTid()
		msg := c.partitionChanges(nil)
		msg.CellList = []proto.CellChange{}
		for _, x := range c.sortedNodes() {
			if x.identified() && x.Type != proto.MASTER {
				c.send(x, msg)
			}
		}
		ack("")
	case *proto.TweakPartitionTable:
		if err := changePT("tweakPartitionTable"); err != nil {
			return err
		}
		storages := map[proto.NodeID]proto.NodeState{}
		for _, sn := range c.sortedNodes() {
			if sn.Type == proto.STORAGE {
				storages[sn.NID] = sn.State
			}
		}
		drop, err := parttab.TweakDropList(storages, m.NIDList)
		if err != nil {
			return denied(err.Error())
		}
		t := c.pt
		if m.DryRun {
			t = t.Clone()
		}
		res, err := t.Tweak(drop, c.devpaths())
		if err != nil {
			return denied(err.Error())
		}
		if res.TopologyIgnored {
			c.log.Warn("Can't maximize resiliency: fix the topology that depends on the storage nodes' devpath")
		}
		if !m.DryRun {
			c.broadcastPartitionChanges(res.Changes)
		}
		c.replyTo(id, r.MsgID, &proto.AnswerTweakPartitionTable{Changed: len(res.Changes) > 0, RowList: parttab.RowsToProto(t.Rows())})
	case *proto.Truncate:
		if c.state != proto.RUNNING {
			return denied(fmt.Sprintf("truncate RPC can not be used in %s state", c.state))
		}
		if c.lastTransaction <= m.Tid {
			return denied("Truncating after last transaction does nothing")
		}
		if c.tm.firstTid > m.Tid {
			return denied("Truncating before first transaction is probably not what you intended to do")
		}
		if a, _ := c.pm.approvedRejected(m.Tid + 1); len(a) > 0 {
			return denied("Can not truncate before an approved pack")
		}
		ack("")
		c.stopOperation(m.Tid)
	case *proto.Repair:
		var targets []*node
		for _, nid := range m.NIDList {
			sn := c.byNID(nid)
			if sn == nil || sn.Type != proto.STORAGE || !sn.identified() {
				return denied("invalid storage node " + nid.String())
			}
			targets = append(targets, sn)
		}
		for _, sn := range targets {
			c.send(sn, &proto.NotifyRepair{DryRun: m.DryRun})
		}
		ack("")
	case *proto.CheckReplicas:
		c.checkReplicas(m)
		ack("")
	default:
		return protocolError("unexpected packet " + proto.MsgName(r.Msg.NEOMsgCode()))
	}
	return nil
}

// setClusterState implements neoctl's "set cluster" and "start"
// (cluster.md §2.2).
func (c *Machine) setClusterState(st proto.ClusterState, ack func(string)) error {
	switch st {
	case proto.VERIFYING:
		if c.state != proto.RECOVERING {
			return denied("Can not switch to this state")
		}
		storages := c.identified(proto.STORAGE)
		if len(storages) == 0 {
			return denied("Cannot exit recovery without any storage node")
		}
		for _, sn := range storages {
			if len(sn.conn.pending) > 0 {
				return denied(fmt.Sprintf("Cannot exit recovery now: node %v is entering cluster", sn))
			}
		}
		c.startupAllowed = true
		ack("Cluster state changed")
	case proto.STOPPING:
		ack("Cluster state changed")
		if c.state != proto.STOPPING {
			c.wantState, c.wantChange = st, true
		}
	case proto.STARTING_BACKUP:
		if c.state != proto.RUNNING && c.state != proto.STOPPING_BACKUP {
			return denied("Can not switch to this state")
		}
		if len(c.tm.txns) > 0 || len(c.identified(proto.CLIENT)) > 0 {
			return denied(fmt.Sprintf("Can not switch to %s state with pending transactions or connected clients", st))
		}
		if !c.upstreamConfigured() {
			return denied("No upstream cluster to backup defined in configuration")
		}
		ack("Cluster state changed")
		c.wantState, c.wantChange = st, true
	case proto.STOPPING_BACKUP:
		if c.state != proto.BACKINGUP && c.state != proto.STARTING_BACKUP {
			return denied("Can not switch to this state")
		}
		ack("Cluster state changed")
		c.wantState, c.wantChange = st, true
	default:
		return denied("Invalid state requested")
	}
	return nil
}

func (c *Machine) changeRequested(st proto.ClusterState) {
	switch st {
	case proto.STOPPING:
		c.enterStopping()
	case proto.STARTING_BACKUP:
		switch c.state {
		case proto.RUNNING:
			c.enterStartingBackup(true)
		case proto.STOPPING_BACKUP:
			c.bk.stopAt = proto.InvalidTid
			c.changeClusterState(roleStartingBackup)
		}
	case proto.STOPPING_BACKUP:
		if c.state == proto.BACKINGUP || c.state == proto.STARTING_BACKUP {
			c.enterStoppingBackup()
		}
	}
}

// setNodeState implements neoctl's kill and drop (cluster.md §3.1).
func (c *Machine) setNodeState(nid proto.NodeID, st proto.NodeState, ack func(string)) error {
	n := c.byNID(nid)
	if n == nil {
		return denied("unknown node")
	}
	allowed := false
	switch n.Type {
	case proto.MASTER:
		allowed = st == proto.DOWN
	case proto.STORAGE:
		allowed = st == proto.DOWN || st == proto.UNKNOWN
	}
	if !allowed {
		return denied(fmt.Sprintf("can not switch node to %s state", st))
	}
	if nid == c.self.NID {
		return denied("can not kill primary master node")
	}
	changed := st != n.State
	msg := "state changed"
	if !changed {
		msg = fmt.Sprintf("node already in %s state", st)
	}
	if n.Type == proto.STORAGE {
		keep := st == proto.DOWN
		if n.State == proto.NODE_RUNNING && !keep {
			return denied("a running node must be stopped before removal")
		}
		pchanges, err := c.pt.DropNodes([]proto.NodeID{nid}, keep)
		if err != nil {
			return denied(err.Error())
		}
		changes := pchanges
		c.setState(n, st)
		if n.identified() {
			c.send(n, &proto.NotifyNodeInformation{Timestamp: c.monotonic(), NodeList: []proto.NodeInfo{n.info()}})
			k := n.conn
			c.abort(k)
			delete(c.conns, k.id)
			n.conn = nil
			c.setStorageNotReady(nid)
			c.storageLostForTxns(nid)
		}
		if keep {
			changes = c.pt.Outdate(c.nodeState, 0)
		} else if len(changes) > 0 {
			msg = "node permanently removed"
		}
		c.broadcastPartitionChanges(changes)
	} else {
		c.setState(n, st)
		if n.identified() {
			c.send(n, &proto.NotifyNodeInformation{Timestamp: c.monotonic(), NodeList: []proto.NodeInfo{n.info()}})
		}
	}
	ack(msg)
	if changed {
		c.broadcastNodes(n)
	}
	if c.state != proto.RECOVERING && c.pt.Filled() && !c.pt.Operational(c.nodeState) {
		c.stopOperation(proto.InvalidTid)
	}
	return nil
}

// checkReplicas asks one storage per partition to check its cell against
// the other readable cells (neoctl check, cluster.md §8.6), and in backup
// mode against a readable cell of the upstream cluster too, which is
// then the reference.
func (c *Machine) checkReplicas(m *proto.CheckReplicas) {
	backup := c.inBackup() && c.bk.upPT != nil
	maxTid := m.MaxTid
	if maxTid == proto.InvalidTid {
		maxTid = c.lastTransaction
		if backup {
			// What every readable cell of the given partitions has.
			maxTid = proto.MaxTid
			for _, ps := range m.PartitionDict {
				if ps.Partition >= c.pt.NumPartitions() {
					continue
				}
				for _, cl := range c.pt.ReadableCells(ps.Partition) {
					if bt, ok := c.bk.cells[cellKey{ps.Partition, cl.NID}]; ok {
						maxTid = min(maxTid, bt)
					}
				}
			}
		}
	}
	if m.MinTid > maxTid {
		c.log.Warn("nothing to check", "min_tid", m.MinTid.String(), "max_tid", maxTid.String())
		return
	}
	checking := map[proto.NodeID]bool{}
	for _, ps := range m.PartitionDict {
		if ps.Partition >= c.pt.NumPartitions() {
			continue
		}
		cells := c.pt.ReadableCells(ps.Partition)
		var src proto.UpstreamSource
		if backup {
			if u, ok := c.bk.upNodes[ps.Source]; ok && ps.Source != 0 {
				src = proto.UpstreamSource{UpstreamName: c.cfg.UpstreamCluster, Addr: u.addr}
			} else if addr, ok := c.upstreamSource(ps.Partition, map[proto.NodeID]int{}); ok {
				src = proto.UpstreamSource{UpstreamName: c.cfg.UpstreamCluster, Addr: addr}
			}
		}
		if len(cells) == 0 || len(cells) == 1 && src.UpstreamName == "" {
			continue
		}
		// Prefer a node that already checks another partition.
		nid := cells[len(cells)-1].NID
		found := false
		for _, cl := range cells {
			if checking[cl.NID] {
				nid, found = cl.NID, true
				break
			}
		}
		if !found {
			checking[nid] = true
		}
		if ps.Source != 0 && src.UpstreamName == "" {
			if sn := c.byNID(ps.Source); sn != nil {
				src.Addr = sn.Addr
			}
		}
		if n := c.byNID(nid); n != nil {
			c.send(n, &proto.CheckPartition{Partition: ps.Partition, Source: src, MinTid: m.MinTid, MaxTid: maxTid})
		}
	}
}
