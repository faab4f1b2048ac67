package core

import (
	"slices"

	"github.com/neogo/neo/proto"
)

// verification is the state of the VERIFYING role (cluster.md §5.2), a
// sequence of phases, each waiting for the answers of a set of storages.
type verification struct {
	phase   verifyPhase
	waiting map[proto.NodeID]bool

	locked map[proto.Tid]proto.Tid             // ttid -> final tid
	voted  map[proto.Tid]map[proto.NodeID]bool // ttid -> nodes having it
	// finalQ are the (ttid, node) AskFinalTID queries still to make, one
	// at a time.
	finalQ    []finalQuery
	finalTTID proto.Tid
	lastTid   proto.Tid
}

type finalQuery struct {
	ttid  proto.Tid
	nodes []proto.NodeID
}

type verifyPhase uint8

const (
	phaseLocked verifyPhase = iota + 1
	phaseFinalTID
	phaseLastIDs
	phasePackOrders
	phaseDone
)

var roleVerifying = &role{
	state: proto.VERIFYING,
	storageState: func(_ *Machine, known bool) (proto.NodeState, error) {
		if known {
			return proto.NODE_RUNNING, nil
		}
		return proto.PENDING, nil
	},
	storageJoined: func(c *Machine, n *node, _ bool) { c.sendPartitionTable(n) },
	storageMsg: func(c *Machine, n *node, r Recv) error {
		if m, ok := r.Msg.(*proto.NotifyPackCompleted); ok {
			n.completedPack = m.PackID
			return nil
		}
		return protocolError("unexpected packet in VERIFYING")
	},
	storageAnswer: verificationAnswer,
	storageLost: func(c *Machine, n *node) {
		delete(c.ver.waiting, n.NID)
		c.storageLostInService(n)
	},
	progress:   verificationProgress,
	masterLost: masterDown,
}

func (c *Machine) enterVerification() {
	c.changeClusterState(roleVerifying)
	c.tm.reset()
	c.ver = verification{
		waiting: map[proto.NodeID]bool{},
		locked:  map[proto.Tid]proto.Tid{},
		voted:   map[proto.Tid]map[proto.NodeID]bool{},
		lastTid: proto.ZeroTid,
	}
	if c.backupTid == proto.InvalidTid {
		c.ver.phase = phaseLocked
		c.askAll(&proto.AskLockedTransactions{}, c.pt.CellNodes(true))
	} else {
		c.startLastIDs()
	}
}

// askAll asks m to the identified nodes among nids, in that order.
func (c *Machine) askAll(m proto.Msg, nids []proto.NodeID) {
	for _, nid := range nids {
		if n := c.byNID(nid); n != nil && n.identified() {
			c.ver.waiting[nid] = true
			c.ask(n, m)
		}
	}
}

func (c *Machine) startLastIDs() {
	c.ver.phase = phaseLastIDs
	s := map[proto.NodeID]bool{}
	for _, n := range c.identified(proto.STORAGE) {
		s[n.NID] = true
	}
	c.askAll(&proto.AskLastIDs{}, sortedNIDs(s))
}

func verificationAnswer(c *Machine, n *node, m proto.Msg) error {
	v := &c.ver
	if !v.waiting[n.NID] {
		return nil // late answer of an earlier phase
	}
	switch m := m.(type) {
	case *proto.AnswerLockedTransactions:
		if v.phase != phaseLocked {
			return nil
		}
		for _, e := range m.TidDict {
			if e.Tid != proto.InvalidTid {
				v.locked[e.TTid] = e.Tid
			}
			if v.voted[e.TTid] == nil {
				v.voted[e.TTid] = map[proto.NodeID]bool{}
			}
			v.voted[e.TTid][n.NID] = true
		}
	case *proto.AnswerFinalTID:
		if v.phase != phaseFinalTID {
			return nil
		}
		if m.Tid != proto.InvalidTid {
			v.locked[v.finalTTID] = m.Tid
			// No need to ask other nodes about this ttid.
			v.finalQ = slices.DeleteFunc(v.finalQ, func(q finalQuery) bool { return q.ttid == v.finalTTID })
		}
	case *proto.AnswerLastIDs:
		if v.phase != phaseLastIDs {
			return nil
		}
		if m.LastTid != proto.InvalidTid && m.LastTid > v.lastTid {
			v.lastTid = m.LastTid
		}
		c.tm.setLastOid(m.LastOid)
		c.tm.setFirstTid(m.FirstTid)
	case *proto.AnswerPackOrders:
		if v.phase != phasePackOrders {
			return nil
		}
		for _, o := range m.PackOrderList {
			c.pm.add(o)
		}
	default:
		return nil
	}
	delete(v.waiting, n.NID)
	return nil
}

// verificationProgress moves to the next phase when the current one got
// all its answers.
func verificationProgress(c *Machine) {
	v := &c.ver
	for len(v.waiting) == 0 {
		switch v.phase {
		case phaseLocked:
			// Transactions voted somewhere but locked nowhere may have been
			// unlocked by readable cells that did not vote them: ask them.
			for _, ttid := range sortedTids(v.voted) {
				if _, ok := v.locked[ttid]; ok {
					continue
				}
				var q finalQuery
				q.ttid = ttid
				for _, cl := range c.pt.ReadableCells(c.pt.TidPartition(ttid)) {
					if n := c.byNID(cl.NID); n != nil && n.identified() && !v.voted[ttid][cl.NID] {
						q.nodes = append(q.nodes, cl.NID)
					}
				}
				slices.Sort(q.nodes)
				if len(q.nodes) > 0 {
					v.finalQ = append(v.finalQ, q)
				}
			}
			v.phase = phaseFinalTID
		case phaseFinalTID:
			if len(v.finalQ) > 0 {
				q := &v.finalQ[0]
				nid := q.nodes[0]
				q.nodes = q.nodes[1:]
				v.finalTTID = q.ttid
				if len(q.nodes) == 0 {
					v.finalQ = v.finalQ[1:]
				}
				if n := c.byNID(nid); n != nil && n.identified() {
					v.waiting[nid] = true
					c.ask(n, &proto.AskFinalTID{TTid: v.finalTTID})
				}
				continue
			}
			for _, ttid := range sortedTids(v.locked) {
				tid := v.locked[ttid]
				for _, nid := range sortedNIDs(v.voted[ttid]) {
					if n := c.byNID(nid); n != nil && n.identified() {
						c.send(n, &proto.ValidateTransaction{TTid: ttid, Tid: tid})
					}
				}
			}
			c.startLastIDs()
		case phaseLastIDs:
			c.lastTransaction = v.lastTid
			c.truncateTid = proto.InvalidTid
			packID := proto.ZeroTid
			first := true
			readable := c.pt.CellNodes(true)
			for _, nid := range readable {
				if n := c.byNID(nid); n != nil && n.completedPack != proto.InvalidTid {
					if first || n.completedPack+1 < packID {
						packID = n.completedPack + 1
						first = false
					}
				}
			}
			v.phase = phasePackOrders
			c.askAll(&proto.AskPackOrders{PackID: packID}, readable)
		case phasePackOrders:
			v.phase = phaseDone
			if c.cfg.Backup && c.lastTransaction == proto.ZeroTid || c.backupTid != proto.InvalidTid {
				c.enterStartingBackup(false)
				return
			}
			c.enterRunning()
			return
		default:
			return
		}
	}
}

func sortedTids[V any](m map[proto.Tid]V) []proto.Tid {
	ks := make([]proto.Tid, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
