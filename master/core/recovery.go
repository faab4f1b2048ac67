package core

import (
	"github.com/neogo/neo/nodetab"
	"github.com/neogo/neo/parttab"
	"github.com/neogo/neo/proto"
)

// recovery is the state of the RECOVERING role (cluster.md §5.1): which
// partition table is the newest, who was asked for it, and what each
// storage reported.
type recovery struct {
	targetPTid proto.PTid
	askPT      []proto.NodeID // nodes holding targetPTid; the first one is asked
	loaded     bool           // the table of targetPTid was loaded
	backupTid  map[proto.NodeID]proto.Tid
	truncTid   map[proto.NodeID]proto.Tid
	// redial: (re)dial the masters we are not connected to (election.go).
	redial bool
}

var roleRecovering = &role{
	state: proto.RECOVERING,
	storageState: func(*Machine, bool) (proto.NodeState, error) {
		return proto.PENDING, nil
	},
	storageJoined: func(c *Machine, n *node, _ bool) { c.ask(n, &proto.AskRecovery{}) },
	storageMsg: func(c *Machine, n *node, r Recv) error {
		return protocolError("unexpected packet in RECOVERING")
	},
	storageAnswer: recoveryAnswer,
	storageLost:   recoveryLost,
	progress:      recoveryProgress,
	// The election (election.go).
	masterIdentifying: electionIdentifying,
	masterLost:        func(c *Machine, _ *node) { c.rec.redial = true },
	dialLost:          func(c *Machine) { c.rec.redial = true },
	redirected:        electionRedirected,
}

func (c *Machine) enterRecovery() {
	c.pt = parttab.New(uint32(c.cfg.Partitions), c.cfg.Replicas)
	c.rec = recovery{backupTid: map[proto.NodeID]proto.Tid{}, truncTid: map[proto.NodeID]proto.Tid{}, redial: true}
	c.changeClusterState(roleRecovering)
}

func recoveryAnswer(c *Machine, n *node, m proto.Msg) error {
	r := &c.rec
	switch m := m.(type) {
	case *proto.AnswerRecovery:
		if m.PTid != 0 && r.targetPTid <= m.PTid {
			switch {
			case r.targetPTid == m.PTid && len(r.askPT) > 0:
				r.askPT = append(r.askPT, n.NID)
			case r.targetPTid < m.PTid || !r.loaded:
				r.targetPTid = m.PTid
				r.askPT = []proto.NodeID{n.NID}
				r.loaded = false
				c.ask(n, &proto.AskPartitionTable{})
			}
		}
		r.backupTid[n.NID] = m.BackupTid
		r.truncTid[n.NID] = m.TruncateTid
	case *proto.AnswerPartitionTable:
		if m.PTid != r.targetPTid || r.loaded {
			return nil
		}
		var newNodes []*node
		for _, row := range m.Rows {
			for _, cl := range row {
				if c.byNID(cl.NID) == nil {
					nn, err := c.addNode(nodetab.Node{Type: proto.STORAGE, NID: cl.NID, State: proto.DOWN})
					if err != nil {
						return protocolError(err.Error())
					}
					newNodes = append(newNodes, nn)
				}
			}
		}
		t, err := parttab.Load(m.PTid, int(m.NumReplicas), parttab.RowsFromProto(m.Rows))
		if err != nil {
			return protocolError(err.Error())
		}
		c.pt = t
		var infos []proto.NodeInfo
		for _, nn := range newNodes {
			infos = append(infos, nn.info())
		}
		c.notifyAdmins(&proto.NotifyNodeInformation{Timestamp: c.monotonic(), NodeList: infos}, c.fullPT())
		r.askPT, r.loaded = nil, true
		c.backupTid = r.backupTid[n.NID]
		c.truncateTid = r.truncTid[n.NID]
		c.log.Info("partition table loaded", "ptid", m.PTid, "node", n.String())
	}
	return nil
}

func recoveryLost(c *Machine, n *node) {
	r := &c.rec
	delete(r.backupTid, n.NID)
	delete(r.truncTid, n.NID)
	for i, nid := range r.askPT {
		if nid != n.NID {
			continue
		}
		r.askPT = append(r.askPT[:i:i], r.askPT[i+1:]...)
		if i == 0 {
			if len(r.askPT) > 0 {
				c.ask(c.byNID(r.askPT[0]), &proto.AskPartitionTable{})
			} else {
				c.log.Warn("waiting for the node to come back: no other node has the newest partition table",
					"node", n.String(), "ptid", r.targetPTid)
			}
		}
		break
	}
	if n.State != proto.DOWN {
		c.setState(n, proto.DOWN)
		c.broadcastNodes(n)
	}
}

func (c *Machine) hasPendingAsk(nid proto.NodeID) bool {
	n := c.byNID(nid)
	return n != nil && n.conn != nil && len(n.conn.pending) > 0
}

// recoveryProgress is the automatic start rule of cluster.md §2.2.
func recoveryProgress(c *Machine) {
	c.electionProgress()
	pt := c.pt
	var nodes []proto.NodeID
	if pt.Filled() {
		ops := pt.OperationalNodes(c.nodeState)
		if c.startupAllowed {
			for _, nid := range ops {
				if c.isPending(nid) {
					nodes = append(nodes, nid)
				}
			}
		} else if len(ops) > 0 {
			if c.truncateTid != proto.InvalidTid {
				ops = pt.CellNodes(false)
			}
			for _, nid := range ops {
				if !c.isPending(nid) {
					return
				}
			}
			nodes = ops
		}
	} else if c.startupAllowed || c.cfg.Autostart > 0 {
		for _, n := range c.identified(proto.STORAGE) {
			nodes = append(nodes, n.NID)
		}
		if !c.startupAllowed && len(nodes) < c.cfg.Autostart {
			return
		}
	} else {
		return
	}
	if len(nodes) == 0 {
		return
	}
	for _, nid := range nodes {
		if c.hasPendingAsk(nid) {
			return
		}
	}
	if pt.Filled() {
		if c.truncateTid != proto.InvalidTid {
			var resend []*node
			for _, n := range c.identified(proto.STORAGE) {
				t, ok := c.rec.truncTid[n.NID]
				if ok && (t == proto.InvalidTid || c.truncateTid < t) {
					resend = append(resend, n)
				}
			}
			if len(resend) > 0 {
				for _, n := range resend {
					c.send(n, &proto.Truncate{Tid: c.truncateTid})
					c.ask(n, &proto.AskRecovery{})
				}
				return
			}
		}
		nodes = nodes[:0]
		for _, nid := range pt.CellNodes(false) {
			if n := c.byNID(nid); n != nil && n.identified() {
				nodes = append(nodes, nid)
			}
		}
	}
	c.endRecovery(nodes)
}

// endRecovery starts the cluster with the given pending storages.
func (c *Machine) endRecovery(nids []proto.NodeID) {
	c.log.Info("startup allowed")
	var changed []*node
	for _, nid := range nids {
		n := c.byNID(nid)
		c.setState(n, proto.NODE_RUNNING)
		changed = append(changed, n)
	}
	storages := len(changed)
	for _, n := range c.sortedNodes() {
		if n.Type == proto.MASTER && n != c.self && !n.identified() && n.State != proto.DOWN {
			c.setState(n, proto.DOWN)
			changed = append(changed, n)
		}
	}
	c.broadcastNodes(changed...)
	if c.pt.PTid() == 0 {
		c.log.Info("creating a new partition table", "partitions", c.pt.NumPartitions(), "replicas", c.pt.NumReplicas())
		res, err := c.pt.Make(nids[:storages], c.devpaths())
		if err != nil {
			c.log.Error("cannot create the partition table", "err", err)
			c.exit(err)
			return
		}
		if res.TopologyIgnored {
			c.log.Warn("Can't maximize resiliency: fix the topology that depends on the storage nodes' devpath")
		}
		c.notifyAdmins(c.fullPT())
	} else if changes := c.pt.Outdate(c.nodeState, 0); len(changes) > 0 {
		c.pt.NextPTid()
		c.notifyAdmins(c.partitionChanges(changes))
	}
	c.enterVerification()
}
