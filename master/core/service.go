package core

import (
	"slices"

	"github.com/neogo/neo/proto"
)

// roleRunning serves clients and storages (cluster.md §6).
var roleRunning = &role{
	state: proto.RUNNING,
	storageState: func(_ *Machine, known bool) (proto.NodeState, error) {
		if known {
			return proto.NODE_RUNNING, nil
		}
		return proto.PENDING, nil
	},
	storageJoined: serviceStorageJoined,
	storageMsg:    serviceStorageMsg,
	storageAnswer: serviceStorageAnswer,
	storageLost:   serviceStorageLost,
	progress:      func(*Machine) {},
	masterLost:    masterDown,
}

// roleStopping keeps serving pending commits, then shuts the cluster down
// (cluster.md §2.4).
var roleStopping = &role{
	state:         proto.STOPPING,
	storageState:  roleRunning.storageState,
	storageJoined: serviceStorageJoined,
	storageMsg:    serviceStorageMsg,
	storageAnswer: serviceStorageAnswer,
	storageLost:   serviceStorageLost,
	progress:      stoppingProgress,
	masterLost:    masterDown,
}

func (c *Machine) enterRunning() {
	c.log.Info("provide service")
	c.changeClusterState(roleRunning)
}

func serviceStorageJoined(c *Machine, n *node, new bool) {
	if new {
		c.sendPartitionTable(n)
	}
	if n.State == proto.NODE_RUNNING {
		c.startStorage(n)
	}
}

func serviceStorageLost(c *Machine, n *node) {
	c.storageLostInService(n)
	c.setStorageNotReady(n.NID)
	if c.stopOp {
		// Leaving operation (the table is no longer operational, or a
		// truncation): transactions must not stop waiting for this
		// storage's lock, or one that no storage locked would be
		// reported committed. Verification settles them from what the
		// storages locked, as neoppod's StoppedOperation does.
		return
	}
	c.storageLostForTxns(n.NID)
	c.updateCompletedPack()
}

func serviceStorageMsg(c *Machine, n *node, r Recv) error {
	switch m := r.Msg.(type) {
	case *proto.NotifyReady:
		if !c.starting[n.NID] {
			return protocolError("unexpected NotifyReady")
		}
		c.setStorageReady(n)
	case *proto.AskUnfinishedTransactions:
		var ttids []proto.Tid
		last := c.lastTransaction
		if c.inBackup() {
			last = c.readOnlyTid()
		} else {
			ttids = c.tm.registerForNotification(n.NID)
		}
		c.log.Debug("unfinished transactions", "node", n.String(), "max_tid", last.String(), "ttids", ttids)
		c.replyTo(n.conn.id, r.MsgID, &proto.AnswerUnfinishedTransactions{MaxTid: last, TTidList: ttids})
		c.pt.MarkUpdatable(n.NID, m.Offsets)
	case *proto.NotifyPartitionCorrupted:
		c.log.Error("partition corrupted", "partition", m.Partition, "nodes", m.NIDList)
	case *proto.NotifyReplicationDone:
		if c.inBackup() {
			return c.backupReplicationDone(n, m)
		}
		changes, err := c.pt.SetUpToDate(n.NID, m.Offset)
		if err != nil {
			return protocolError(err.Error())
		}
		if len(changes) == 0 {
			c.log.Info("ignored late notification of replication done", "node", n.String(), "partition", m.Offset)
			return nil
		}
		c.broadcastPartitionChanges(changes)
	case *proto.NotifyPackCompleted:
		n.completedPack = m.PackID
		c.updateCompletedPack()
	case *proto.AskPackOrders:
		c.replyTo(n.conn.id, r.MsgID, &proto.AnswerPackOrders{PackOrderList: c.pm.dump(m.PackID, true)})
	default:
		return protocolError("unexpected packet " + proto.MsgName(r.Msg.NEOMsgCode()))
	}
	return nil
}

func serviceStorageAnswer(c *Machine, n *node, m proto.Msg) error {
	if m, ok := m.(*proto.AnswerInformationLocked); ok {
		c.lockTxn(m.TTid, n.NID)
	}
	return nil
}

// updateCompletedPack takes the smallest completed pack id of the nodes
// of the partition table.
func (c *Machine) updateCompletedPack() {
	first := true
	var min proto.Tid
	for _, nid := range c.pt.CellNodes(true) {
		if n := c.byNID(nid); n != nil && n.completedPack != proto.InvalidTid {
			if first || n.completedPack < min {
				min, first = n.completedPack, false
			}
		}
	}
	if first {
		return
	}
	for _, w := range c.pm.completed(min) {
		c.replyTo(w.conn, w.msgID, &proto.WaitedForPack{})
	}
}

// --- clients -------------------------------------------------------------

func (c *Machine) clientMsg(n *node, r Recv) error {
	if n.readOnly {
		switch r.Msg.(type) {
		case *proto.AskBeginTransaction, *proto.AskNewOIDs, *proto.AskFinishTransaction,
			*proto.AskFinalTID, *proto.AbortTransaction:
			return &handlerError{e: proto.Error{Code: proto.READ_ONLY_ACCESS, Message: "read-only access as requested by the client"}}
		}
	}
	id := n.conn.id
	switch m := r.Msg.(type) {
	case *proto.AskBeginTransaction:
		if len(c.starting) > 0 || c.shutdown {
			return errDelay
		}
		ttid, err := c.tm.begin(n.NID, c.readiness, m.Tid, c.lastTransaction, c.now())
		if err != nil {
			return err
		}
		c.replyTo(id, r.MsgID, &proto.AnswerBeginTransaction{TTid: ttid})
	case *proto.AskNewOIDs:
		c.replyTo(id, r.MsgID, &proto.AnswerNewOIDs{OidList: c.tm.newOids(int(m.NumOids))})
	case *proto.FailedVote:
		ok, err := c.vote(m.TTid, m.NIDList)
		if err != nil {
			return err
		}
		if ok {
			c.replyTo(id, r.MsgID, &proto.Error{Code: proto.ACK})
		} else {
			c.replyTo(id, r.MsgID, &proto.Error{Code: proto.INCOMPLETE_TRANSACTION})
		}
	case *proto.AskFinishTransaction:
		return c.finish(n, r.MsgID, m)
	case *proto.AskFinalTID:
		switch t := c.tm.txns[m.TTid]; {
		case c.tm.lastTid(c.lastTransaction) < m.TTid:
			c.replyTo(id, r.MsgID, &proto.AnswerFinalTID{Tid: proto.InvalidTid})
		case t != nil:
			t.finalWaiters = append(t.finalWaiters, reply{id, r.MsgID})
		default:
			c.replyTo(id, r.MsgID, &proto.AnswerFinalTID{Tid: proto.MaxTid})
		}
	case *proto.AbortTransaction:
		t := c.tm.txns[m.TTid]
		if t == nil {
			// Typically begun on a previous primary; its storages dropped
			// it at verification. neoppod answers PROTOCOL_ERROR, but an
			// Error to a notification can kill the Python client's poll
			// thread when it is read before the close: ignore it.
			c.log.Debug("abort of an unknown transaction ignored", "ttid", m.TTid.String(), "node", n.String())
			return nil
		}
		if t.tid != 0 {
			return protocolError("commit already requested for ttid " + m.TTid.String())
		}
		involved := maps2set(t.notify)
		for _, nid := range m.NIDList {
			involved[nid] = true
		}
		c.tm.remove(m.TTid)
		c.notifyAborted(m.TTid, involved)
		c.runDeferred()
	case *proto.AskPackOrders: // a backup master (Cb → M)
		c.replyTo(id, r.MsgID, &proto.AnswerPackOrders{PackOrderList: c.pm.dumpForBackup(m.PackID)})
	case *proto.WaitForPack:
		if p := c.pm.packs[m.Tid]; p != nil {
			p.waiters = append(p.waiters, reply{id, r.MsgID})
		} else {
			c.replyTo(id, r.MsgID, &proto.WaitedForPack{})
		}
	default:
		return protocolError("unexpected packet " + proto.MsgName(r.Msg.NEOMsgCode()))
	}
	return nil
}

func maps2set(m map[proto.NodeID]bool) map[proto.NodeID]bool {
	s := make(map[proto.NodeID]bool, len(m))
	for k, v := range m {
		if v {
			s[k] = true
		}
	}
	return s
}

// notifyAborted relays an abort to the ready storages among nids.
func (c *Machine) notifyAborted(ttid proto.Tid, nids map[proto.NodeID]bool) {
	c.log.Debug("abort transaction", "ttid", ttid.String(), "nodes", sortedNIDs(nids))
	for _, nid := range sortedNIDs(nids) {
		if _, ok := c.ready[nid]; ok {
			if n := c.byNID(nid); n != nil {
				c.send(n, &proto.AbortTransaction{TTid: ttid, NIDList: []proto.NodeID{}})
			}
		}
	}
}

// vote arbitrates a FailedVote (cluster.md §6.7).
func (c *Machine) vote(ttid proto.Tid, nids []proto.NodeID) (bool, error) {
	t, err := c.tm.get(ttid)
	if err != nil {
		return false, err
	}
	ready := c.readySet(t.readiness)
	failed := map[proto.NodeID]bool{}
	for _, nid := range nids {
		if ready[nid] {
			failed[nid] = true
		}
	}
	if len(failed) == 0 {
		return true, nil
	}
	if !c.pt.Operational(c.nodeState, sortedNIDs(failed)...) {
		return false, nil
	}
	if !c.pt.Operational(c.nodeState, sortedNIDs(c.tm.allFailed(failed))...) {
		return false, errDelay
	}
	t.failed = failed
	return true, nil
}

// finish handles AskFinishTransaction: picks the final tid and asks the
// involved storages to lock.
func (c *Machine) finish(n *node, msgID uint32, m *proto.AskFinishTransaction) error {
	var approve bool
	var pack *proto.PackRequest
	if m.Pack.Valid {
		pack = &m.Pack.V
		if !(proto.ZeroTid < pack.PackTid && pack.PackTid <= c.lastTransaction) {
			return protocolError("invalid pack time")
		}
	}
	t, err := c.tm.get(m.TTid)
	if err != nil {
		return err
	}
	if len(t.failed) > 0 && !c.pt.Operational(c.nodeState, sortedNIDs(t.failed)...) {
		c.replyTo(n.conn.id, msgID, &proto.Error{Code: proto.INCOMPLETE_TRANSACTION})
		c.tm.remove(m.TTid)
		c.notifyAborted(m.TTid, c.readySet(^uint64(0)))
		c.runDeferred()
		return nil
	}
	ready := c.readySet(t.readiness)
	parts := map[uint32]bool{}
	for _, oid := range m.OidList {
		parts[c.pt.OidPartition(oid)] = true
	}
	for _, p := range m.Deleted {
		parts[p] = true
	}
	var invParts []uint32
	for p := range parts {
		invParts = append(invParts, p)
	}
	slices.Sort(invParts)
	parts[c.pt.TidPartition(m.TTid)] = true
	for _, p := range m.Checked {
		parts[p] = true
	}
	involved := map[proto.NodeID]bool{}
	var lockNodes []*node
	var toClose []*node
	plist := make([]uint32, 0, len(parts))
	for p := range parts {
		if p < c.pt.NumPartitions() {
			plist = append(plist, p)
		}
	}
	slices.Sort(plist)
	for _, p := range plist {
		for _, cl := range c.pt.Row(p) {
			sn := c.byNID(cl.NID)
			if sn == nil || !sn.identified() || involved[cl.NID] {
				continue
			}
			if t.failed[cl.NID] {
				if !slices.Contains(toClose, sn) {
					toClose = append(toClose, sn)
				}
			} else if ready[cl.NID] {
				involved[cl.NID] = true
				lockNodes = append(lockNodes, sn)
			}
		}
	}
	// Disconnecting failed nodes outdates their cells before locking.
	for _, sn := range toClose {
		k := sn.conn
		c.abort(k)
		c.closed(k.id)
	}
	if slices.Contains(c.tm.queue, m.TTid) {
		t.tid = m.TTid
	} else {
		t.tid = proto.FinalTid(c.tm.lastTid(c.lastTransaction), m.TTid, c.pt.NumPartitions(), c.now())
		c.tm.queue = append(c.tm.queue, m.TTid)
	}
	t.oids = m.OidList
	t.partitions = invParts
	t.finishConn, t.finishID = n.conn.id, msgID
	t.involved = involved
	t.locking = maps2set(involved)
	if len(m.OidList) > 0 {
		c.tm.setLastOid(slices.Max(m.OidList))
	}
	if pack != nil {
		approve = c.pm.newOrder(t.tid, pack.Oids, pack.PackTid)
	}
	// The ids, not their String(): formatted only if debug is on.
	c.log.Debug("finish transaction", "ttid", m.TTid, "tid", t.tid)
	for _, sn := range lockNodes {
		c.ask(sn, &proto.AskLockInformation{TTid: m.TTid, Tid: t.tid, ApprovePack: approve})
	}
	if len(lockNodes) == 0 {
		c.unlockPending()
	}
	return nil
}

// lockTxn records that storage nid locked ttid.
func (c *Machine) lockTxn(ttid proto.Tid, nid proto.NodeID) {
	t := c.tm.txns[ttid]
	if t == nil || t.tid == 0 {
		return
	}
	delete(t.locking, nid)
	if len(t.locking) == 0 && len(c.tm.queue) > 0 && c.tm.queue[0] == ttid {
		c.unlockPending()
	}
}

// storageLostForTxns stops waiting for a lost storage.
func (c *Machine) storageLostForTxns(nid proto.NodeID) {
	unlock := false
	for _, ttid := range sortedTids(c.tm.txns) {
		t := c.tm.txns[ttid]
		delete(t.notify, nid)
		if t.tid != 0 {
			delete(t.locking, nid)
			delete(t.involved, nid)
			if len(t.locking) == 0 && len(c.tm.queue) > 0 && c.tm.queue[0] == ttid {
				unlock = true
			}
		}
	}
	if unlock {
		c.unlockPending()
	}
}

// unlockPending commits the fully locked transactions at the head of the
// queue, in final tid order.
func (c *Machine) unlockPending() {
	for len(c.tm.queue) > 0 {
		ttid := c.tm.queue[0]
		t := c.tm.txns[ttid]
		if t == nil || t.tid == 0 || len(t.locking) > 0 {
			break
		}
		c.tm.queue = c.tm.queue[1:]
		delete(c.tm.txns, ttid)
		c.tm.setFirstTid(t.tid)
		c.committed(t)
	}
	c.runDeferred()
}

// committed is neoppod's onTransactionCommitted.
func (c *Machine) committed(t *txn) {
	// The storages are told first: the committing client's next request
	// (an undoLog, say) goes on another link, and neoppod's storage
	// answers AskTIDs without waiting for a transaction being unlocked,
	// so the unlock should be on its way before the client can ask.
	for _, nid := range sortedNIDs(t.involved) {
		if n := c.byNID(nid); n != nil {
			c.send(n, &proto.NotifyUnlockInformation{TTid: t.ttid})
		}
	}
	inv := &proto.InvalidateObjects{Tid: t.tid, OidList: t.oids}
	if inv.OidList == nil {
		inv.OidList = []proto.Oid{}
	}
	for _, cl := range c.identified(proto.CLIENT) {
		if cl.NID == t.client && cl.conn.id == t.finishConn {
			c.replyTo(t.finishConn, t.finishID, &proto.AnswerTransactionFinished{TTid: t.ttid, Tid: t.tid})
		} else if _, ok := cl.extra.Get("backup"); ok {
			c.send(cl, &proto.InvalidatePartitions{Tid: t.tid, PartitionList: t.partitions})
		} else {
			c.send(cl, inv)
		}
	}
	if p := c.pm.packs[t.tid]; p != nil && p.Approved.Valid && p.Approved.V {
		sig := &proto.NotifyPackSigned{Approved: []proto.Tid{t.tid}, Rejected: []proto.Tid{}}
		for _, nid := range sortedNIDs(c.readySet(^uint64(0))) {
			if n := c.byNID(nid); n != nil {
				c.send(n, sig)
			}
		}
		for _, cl := range c.identified(proto.CLIENT) {
			if _, ok := cl.extra.Get("backup"); ok {
				c.send(cl, sig)
			}
		}
	}
	fin := &proto.NotifyTransactionFinished{TTid: t.ttid, MaxTid: t.tid}
	notify := sortedNIDs(t.notify)
	c.log.Debug("transaction committed", "ttid", t.ttid, "tid", t.tid, "notify", notify)
	for _, nid := range notify {
		if n := c.byNID(nid); n != nil {
			c.send(n, fin)
		}
	}
	for _, w := range t.finalWaiters {
		c.replyTo(w.conn, w.msgID, &proto.AnswerFinalTID{Tid: t.tid})
	}
	c.lastTransaction = t.tid
}

// clientLost aborts the client's transactions that are not being finished
// and forgets the client.
func (c *Machine) clientLost(n *node) {
	for _, ttid := range sortedTids(c.tm.txns) {
		t := c.tm.txns[ttid]
		for i := 0; i < len(t.finalWaiters); {
			if c.conns[t.finalWaiters[i].conn] == nil {
				t.finalWaiters = slices.Delete(t.finalWaiters, i, i+1)
			} else {
				i++
			}
		}
		if t.client != n.NID {
			continue
		}
		if t.tid != 0 {
			t.client = 0 // orphan: it completes anyway
			continue
		}
		c.tm.remove(ttid)
		c.notifyAborted(ttid, t.notify)
	}
	for _, p := range c.pm.packs {
		p.waiters = slices.DeleteFunc(p.waiters, func(r reply) bool { return c.conns[r.conn] == nil })
	}
	c.setState(n, proto.UNKNOWN)
	c.broadcastNodes(n)
	c.runDeferred()
}

// --- STOPPING ------------------------------------------------------------

func (c *Machine) enterStopping() {
	c.changeClusterState(roleStopping)
	c.shutdown = true
}

func stoppingProgress(c *Machine) {
	if len(c.tm.txns) > 0 {
		return
	}
	c.log.Info("asking remaining nodes to shutdown")
	c.out = append(c.out, Effect{Kind: StopListening})
	for _, n := range c.sortedNodes() {
		if !n.identified() {
			continue
		}
		if n.Type == proto.STORAGE {
			c.send(n, &proto.NotifyNodeInformation{Timestamp: c.monotonic(), NodeList: []proto.NodeInfo{{
				Type: n.Type, Addr: n.Addr, NID: n.NID, State: proto.DOWN}}})
		}
		c.abort(n.conn)
	}
	for _, k := range c.conns {
		c.abort(k)
	}
	c.exit(nil)
}

func (c *Machine) exit(err error) {
	c.out = append(c.out, Effect{Kind: Exit, Err: err})
	c.exited, c.exitErr = true, err
}
