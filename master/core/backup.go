package core

// Backup mode (cluster.md §8.9): the cluster replicates asynchronously
// from an upstream cluster. The master is a read-only client of the
// upstream primary (a [DialUpstream] link, identified with
// extra.backup = our name); for each upstream commit it learns the
// partitions touched (InvalidatePartitions) and orders replication:
//
//	upstream commit t          partitions touched by t (+ partition(t))
//	  primary cell of p  ──Replicate(t, upstream, {p: upstream storage})
//	  other cells of p   ──Replicate(tp, "", {p: primary})  tp: the primary's backup tid
//	  untouched p        ──Replicate(t, "", {p: nil})        cells at the last tid: nothing new
//	NotifyReplicationDone(p, t) ──▶ cell backup tid = next tracked tid of p − 1
//
// Every readable cell keeps its own backup tid (the tid up to which it
// has all data); the cluster backup tid is the min over partitions of
// the max over their readable cells, the "min/min" is what read-only
// clients may see. Leaving backup mode (STOPPING_BACKUP) waits for every
// readable cell to reach the cluster backup tid, then truncates there.

import (
	"errors"
	"slices"

	"github.com/neogo/neo/parttab"
	"github.com/neogo/neo/proto"
)

// errNoUpstream: backup mode is required but no upstream is configured.
var errNoUpstream = errors.New("master: backup mode requires --upstream-cluster and --upstream-masters")

// upstreamNode is what the upstream master told of one of its nodes.
type upstreamNode struct {
	typ   proto.NodeType
	addr  proto.Addr
	state proto.NodeState
}

// sentOrder is a replication ordered to a cell: up to tid, from the
// primary cell on node from (0: from upstream).
type sentOrder struct {
	tid  proto.Tid
	from proto.NodeID
}

type cellKey struct {
	p   uint32
	nid proto.NodeID
}

// backup is the master's state in backup mode.
type backup struct {
	// conn is the link to the upstream primary master (0: none);
	// accepted once it identified us; lastTag is our AskLastTransaction.
	conn     ConnID
	accepted bool
	lastTag  uint64
	packTag  uint64    // our AskPackOrders
	packNext proto.Tid // orders to ask for after its answer; InvalidTid: none
	// tracking: the upstream last tid was answered, invalidations count.
	tracking bool
	last     proto.Tid // last upstream tid tracked

	upNodes map[proto.NodeID]upstreamNode
	upPT    *parttab.Table
	// upAdmin is the upstream admin that monitors us (told to our
	// admin with NotifyUpstreamAdmin); told is the admin told, if any.
	upAdmin proto.Addr
	told    proto.NodeID

	// cells maps each readable cell to its backup tid.
	cells map[cellKey]proto.Tid
	// tids are, per partition, the tracked upstream tids that modified
	// it and that some readable cell has not passed, ascending.
	tids map[uint32][]proto.Tid
	// primary is, per partition, the cell that replicates from upstream.
	primary map[uint32]proto.NodeID
	// sent are the replications ordered and not reported done, by cell.
	sent map[cellKey]sentOrder
	// stopAt: STOPPING_BACKUP waits for every readable cell to reach it.
	stopAt proto.Tid
}

func newBackup() backup {
	return backup{packNext: proto.InvalidTid, upNodes: map[proto.NodeID]upstreamNode{}, cells: map[cellKey]proto.Tid{},
		tids: map[uint32][]proto.Tid{}, primary: map[uint32]proto.NodeID{}, sent: map[cellKey]sentOrder{}}
}

// The backup roles serve storages as RUNNING does, plus the backup
// bookkeeping; clients only in BACKINGUP, read-only.
var (
	roleStartingBackup = &role{
		state:         proto.STARTING_BACKUP,
		storageState:  roleRunning.storageState,
		storageJoined: serviceStorageJoined,
		storageMsg:    serviceStorageMsg,
		storageAnswer: serviceStorageAnswer,
		storageLost:   backupStorageLost,
		progress:      startingBackupProgress,
		masterLost:    masterDown,
	}
	roleBackingUp = &role{
		state:         proto.BACKINGUP,
		storageState:  roleRunning.storageState,
		storageJoined: serviceStorageJoined,
		storageMsg:    serviceStorageMsg,
		storageAnswer: serviceStorageAnswer,
		storageLost:   backupStorageLost,
		progress:      func(c *Machine) { c.triggerBackup() },
		masterLost:    masterDown,
	}
	roleStoppingBackup = &role{
		state:         proto.STOPPING_BACKUP,
		storageState:  roleRunning.storageState,
		storageJoined: serviceStorageJoined,
		storageMsg:    serviceStorageMsg,
		storageAnswer: serviceStorageAnswer,
		storageLost:   backupStorageLost,
		progress:      stoppingBackupProgress,
		masterLost:    masterDown,
	}
)

func isBackupRole(r *role) bool { return r != nil && isBackupState(r.state) }

func isBackupState(s proto.ClusterState) bool {
	return s == proto.STARTING_BACKUP || s == proto.BACKINGUP || s == proto.STOPPING_BACKUP
}

// inBackup tells whether the cluster is in one of the backup states.
func (c *Machine) inBackup() bool { return isBackupState(c.state) }

func (c *Machine) upstreamConfigured() bool {
	return c.cfg.UpstreamCluster != "" && len(c.cfg.UpstreamMasters) > 0
}

// enterStartingBackup enters backup mode from VERIFYING (restart of a
// backup cluster, --backup of an empty one) or RUNNING (neoctl), with
// every readable cell at the backup tid its storage reported (from) or
// at the last tid (RUNNING).
func (c *Machine) enterStartingBackup(fromRunning bool) {
	if !c.upstreamConfigured() {
		c.log.Error("backup mode without upstream cluster", "err", errNoUpstream)
		c.exit(errNoUpstream)
		return
	}
	c.bk = newBackup()
	for p := range c.pt.NumPartitions() {
		for _, cl := range c.pt.ReadableCells(p) {
			bt := c.lastTransaction
			if !fromRunning {
				bt = proto.ZeroTid
				if v, ok := c.rec.backupTid[cl.NID]; ok && v != proto.InvalidTid {
					bt = v
				} else if c.backupTid != proto.InvalidTid {
					bt = c.backupTid
				}
			}
			c.bk.cells[cellKey{p, cl.NID}] = bt
		}
	}
	c.backupTid = proto.ZeroTid // StartOperation(backup=true) below
	c.updateBackupTid()
	c.log.Info("entering backup mode", "backup_tid", c.backupTid.String())
	c.changeClusterState(roleStartingBackup)
}

// updateBackupTid computes the cluster backup tid (min over partitions
// of max over readable cells).
func (c *Machine) updateBackupTid() {
	bt, _ := c.clusterBackupTids()
	if bt != proto.InvalidTid {
		c.backupTid = bt
	}
}

// clusterBackupTids returns the cluster backup tid and the min/min one;
// InvalidTid if a partition has no readable cell.
func (c *Machine) clusterBackupTids() (minMax, minMin proto.Tid) {
	minMax, minMin = proto.InvalidTid, proto.InvalidTid
	for p := range c.pt.NumPartitions() {
		hi, lo, any := proto.ZeroTid, proto.MaxTid, false
		for _, cl := range c.pt.ReadableCells(p) {
			bt, ok := c.bk.cells[cellKey{p, cl.NID}]
			if !ok {
				continue
			}
			any = true
			hi, lo = max(hi, bt), min(lo, bt)
		}
		if !any {
			return proto.InvalidTid, proto.InvalidTid
		}
		if minMax == proto.InvalidTid || hi < minMax {
			minMax = hi
		}
		if minMin == proto.InvalidTid || lo < minMin {
			minMin = lo
		}
	}
	return minMax, minMin
}

// readOnlyTid is what read-only clients of a backup cluster may see.
func (c *Machine) readOnlyTid() proto.Tid {
	_, lo := c.clusterBackupTids()
	if lo == proto.InvalidTid {
		return proto.ZeroTid
	}
	return lo
}

func startingBackupProgress(c *Machine) {
	if c.bk.conn == 0 {
		c.nextDial++
		c.bk.conn = DialedConn | c.nextDial
		c.bk.accepted = false
		c.log.Info("connecting to the upstream cluster", "upstream", c.cfg.UpstreamCluster)
		c.out = append(c.out, Effect{Kind: DialUpstream, Conn: c.bk.conn})
		return
	}
	if !c.bk.accepted {
		return
	}
	for _, nid := range c.pt.CellNodes(true) {
		if n := c.byNID(nid); n != nil && n.State == proto.NODE_RUNNING {
			if _, ok := c.ready[nid]; !ok || c.starting[nid] {
				return
			}
		}
	}
	c.changeClusterState(roleBackingUp)
	c.bk.tracking = false
	c.nextTag++
	c.bk.lastTag = c.nextTag
	c.out = append(c.out, Effect{Kind: Ask, Conn: c.bk.conn, Tag: c.bk.lastTag, Msg: &proto.AskLastTransaction{}})
}

// upstreamAccepted: the upstream primary identified us on link k.
func (c *Machine) upstreamAccepted(k ConnID) {
	if k != c.bk.conn || !c.inBackup() {
		return
	}
	c.log.Info("connected to the upstream primary master")
	c.bk.accepted = true
}

// upstreamClosed: the upstream link ended (or its search was given up).
func (c *Machine) upstreamClosed(k ConnID) {
	if k != c.bk.conn {
		return
	}
	c.bk.conn, c.bk.accepted, c.bk.tracking, c.bk.packTag, c.bk.packNext = 0, false, false, 0, proto.InvalidTid
	c.bk.upNodes = map[proto.NodeID]upstreamNode{}
	c.bk.upPT = nil
	if c.state != proto.BACKINGUP {
		return
	}
	c.log.Warn("lost the upstream master: clients are disconnected")
	for _, n := range c.identified(proto.CLIENT) {
		c.send(n, &proto.StopOperation{})
		c.abort(n.conn)
	}
	c.changeClusterState(roleStartingBackup)
}

// tellUpstreamAdmin tells our admin with the smallest id the address of
// the upstream admin that monitors this backup cluster (protocol.md
// §5.17), when either changes.
func (c *Machine) tellUpstreamAdmin() {
	var addr proto.Addr
	for _, nid := range sortedNIDs(keysSet(c.bk.upNodes)) {
		if u := c.bk.upNodes[nid]; u.typ == proto.ADMIN && u.state == proto.NODE_RUNNING && !u.addr.IsZero() {
			addr = u.addr
			break
		}
	}
	admins := c.identified(proto.ADMIN)
	if addr.IsZero() || len(admins) == 0 {
		c.bk.upAdmin, c.bk.told = addr, 0
		return
	}
	if addr == c.bk.upAdmin && admins[0].NID == c.bk.told {
		return
	}
	c.bk.upAdmin, c.bk.told = addr, admins[0].NID
	c.send(admins[0], &proto.NotifyUpstreamAdmin{Addr: addr})
}

// dropUpstream closes the upstream link.
func (c *Machine) dropUpstream() {
	if c.bk.conn != 0 {
		c.out = append(c.out, Effect{Kind: Abort, Conn: c.bk.conn})
		c.bk.conn, c.bk.accepted, c.bk.tracking, c.bk.packTag, c.bk.packNext = 0, false, false, 0, proto.InvalidTid
	}
}

// upstreamRecv handles what the upstream master sends.
func (c *Machine) upstreamRecv(ev Recv) {
	if ev.Conn != c.bk.conn {
		return
	}
	switch m := ev.Msg.(type) {
	case *proto.NotifyNodeInformation:
		for _, e := range m.NodeList {
			if e.State == proto.UNKNOWN {
				delete(c.bk.upNodes, e.NID)
				continue
			}
			c.bk.upNodes[e.NID] = upstreamNode{typ: e.Type, addr: e.Addr, state: e.State}
		}
		c.resendUpstreamOrders()
		c.tellUpstreamAdmin()
	case *proto.SendPartitionTable:
		if uint32(len(m.Rows)) != c.pt.NumPartitions() {
			c.log.Error("inconsistent number of partitions", "upstream", len(m.Rows), "own", c.pt.NumPartitions())
			c.exit(errors.New("master: inconsistent number of partitions with the upstream cluster"))
			return
		}
		t, err := parttab.Load(m.PTid, int(m.NumReplicas), parttab.RowsFromProto(m.Rows))
		if err != nil {
			c.log.Error("bad upstream partition table", "err", err)
			return
		}
		c.bk.upPT = t
		c.resendUpstreamOrders()
	case *proto.NotifyPartitionChanges:
		if c.bk.upPT == nil {
			return
		}
		changes := make([]parttab.Change, len(m.CellList))
		for i, cl := range m.CellList {
			changes[i] = parttab.Change(cl)
		}
		if err := c.bk.upPT.Update(m.PTid, int(m.NumReplicas), changes); err != nil {
			c.log.Warn("bad upstream partition changes", "err", err)
		}
		c.resendUpstreamOrders()
	case *proto.InvalidatePartitions:
		c.upstreamCommitted(m.Tid, m.PartitionList)
	case *proto.NotifyPackSigned:
		// The orders may be new to us: learn them, then relay.
		if c.bk.tracking && len(m.Approved)+len(m.Rejected) > 0 {
			c.askUpstreamPackOrders(slices.Min(slices.Concat(m.Approved, m.Rejected)))
		}
	case *proto.NotifyClusterInformation, *proto.InvalidateObjects:
	default:
		c.log.Debug("ignored packet from the upstream master", "msg", proto.MsgName(ev.Msg.NEOMsgCode()))
	}
}

// upstreamAnswer handles the answer to AskLastTransaction.
func (c *Machine) upstreamAnswer(ev Answer) {
	if ev.Conn != c.bk.conn || c.state != proto.BACKINGUP {
		return
	}
	if ev.Tag == c.bk.packTag {
		c.bk.packTag = 0
		if m, ok := ev.Msg.(*proto.AnswerPackOrders); ok {
			c.upstreamPackOrders(m)
		} else {
			c.log.Warn("upstream refused AskPackOrders", "answer", msgString(ev.Msg))
		}
		if next := c.bk.packNext; next != proto.InvalidTid {
			c.bk.packNext = proto.InvalidTid
			c.askUpstreamPackOrders(next)
		}
		return
	}
	if ev.Tag != c.bk.lastTag {
		return
	}
	m, ok := ev.Msg.(*proto.AnswerLastTransaction)
	if !ok {
		c.log.Warn("upstream refused AskLastTransaction", "answer", msgString(ev.Msg))
		c.dropUpstream()
		c.changeClusterState(roleStartingBackup)
		return
	}
	if m.Tid < c.lastTransaction {
		c.log.Error("upstream DB truncated: leaving backup mode", "upstream_last_tid", m.Tid.String(),
			"last_tid", c.lastTransaction.String())
		c.wantState, c.wantChange = proto.STOPPING_BACKUP, true
		return
	}
	// Invalidations may have been missed: every partition is checked up
	// to the upstream last tid.
	c.bk.tracking = true
	if m.Tid > c.bk.last {
		c.bk.last = m.Tid
	}
	for p := range c.pt.NumPartitions() {
		l := c.bk.tids[p]
		if len(l) == 0 || l[len(l)-1] < m.Tid {
			c.bk.tids[p] = append(l, m.Tid)
		}
		c.forgetPassed(p)
	}
	clear(c.bk.sent)
	c.log.Info("backing up", "upstream_last_tid", m.Tid.String(), "backup_tid", c.backupTid.String())
	c.askUpstreamPackOrders(c.backupTid)
}

// askUpstreamPackOrders asks the upstream master for its pack orders
// from id on: their signatures are relayed to our storages once known
// (cluster.md §8.9: the orders themselves come with the transactions).
func (c *Machine) askUpstreamPackOrders(id proto.Tid) {
	if c.bk.packTag != 0 {
		// The answer may come from before these orders: ask after it.
		c.bk.packNext = min(c.bk.packNext, id)
		return
	}
	c.nextTag++
	c.bk.packTag = c.nextTag
	c.out = append(c.out, Effect{Kind: Ask, Conn: c.bk.conn, Tag: c.bk.packTag, Msg: &proto.AskPackOrders{PackID: id}})
}

// upstreamPackOrders records the upstream's pack orders and relays
// their signatures to our ready storages; their packers then ask us for
// the orders (AskPackOrders).
func (c *Machine) upstreamPackOrders(m *proto.AnswerPackOrders) {
	approved, rejected := []proto.Tid{}, []proto.Tid{}
	for _, o := range m.PackOrderList {
		c.pm.add(o)
		if a, ok := o.Approved.Get(); ok {
			if a {
				approved = append(approved, o.ID)
			} else {
				rejected = append(rejected, o.ID)
			}
		}
	}
	if len(approved)+len(rejected) == 0 {
		return
	}
	sig := &proto.NotifyPackSigned{Approved: approved, Rejected: rejected}
	for _, nid := range sortedNIDs(c.readySet(^uint64(0))) {
		if n := c.byNID(nid); n != nil {
			c.send(n, sig)
		}
	}
}

// upstreamCommitted is an upstream commit of tid touching parts.
func (c *Machine) upstreamCommitted(tid proto.Tid, parts []uint32) {
	if !c.bk.tracking || tid <= c.bk.last {
		return
	}
	prev := c.bk.last
	c.bk.last = tid
	touched := map[uint32]bool{c.pt.TidPartition(tid): true}
	for _, p := range parts {
		if p < c.pt.NumPartitions() {
			touched[p] = true
		}
	}
	nothing := map[proto.NodeID][]uint32{} // cells told: no new data up to tid
	for p := range c.pt.NumPartitions() {
		for _, cl := range c.pt.ReadableCells(p) {
			k := cellKey{p, cl.NID}
			if bt, ok := c.bk.cells[k]; !ok || bt != prev {
				continue
			}
			if touched[p] {
				c.bk.cells[k] = tid - 1
			} else {
				c.bk.cells[k] = tid
				nothing[cl.NID] = append(nothing[cl.NID], p)
			}
		}
		if touched[p] {
			c.bk.tids[p] = append(c.bk.tids[p], tid)
		}
	}
	for _, nid := range sortedNIDs(keysSet(nothing)) {
		if n := c.byNID(nid); n != nil && c.isReady(nid) {
			src := make([]proto.ReplicateSource, len(nothing[nid]))
			for i, p := range nothing[nid] {
				src[i] = proto.ReplicateSource{Partition: p}
			}
			c.send(n, &proto.Replicate{Tid: tid, UpstreamName: "", SourceDict: src})
		}
	}
	c.updateBackupTid()
}

func keysSet[V any](m map[proto.NodeID]V) map[proto.NodeID]bool {
	s := make(map[proto.NodeID]bool, len(m))
	for k := range m {
		s[k] = true
	}
	return s
}

func (c *Machine) isReady(nid proto.NodeID) bool {
	_, ok := c.ready[nid]
	return ok && c.isRunning(nid)
}

// forgetPassed forgets the tracked tids of p that every readable cell
// passed.
func (c *Machine) forgetPassed(p uint32) {
	lo, any := proto.MaxTid, false
	for _, cl := range c.pt.ReadableCells(p) {
		if bt, ok := c.bk.cells[cellKey{p, cl.NID}]; ok {
			lo, any = min(lo, bt), true
		}
	}
	if !any {
		return
	}
	l := c.bk.tids[p]
	i := 0
	for i < len(l) && l[i] <= lo {
		i++
	}
	c.bk.tids[p] = l[i:]
}

// primaryCell returns the cell of p that replicates from upstream: the
// ready readable cell with the greatest backup tid, the current primary
// among equals. A secondary only replicates up to its primary's backup
// tid, so the primary must be the most advanced cell, which it stops
// being when a cell that was primary before comes back (STOPPING_BACKUP
// waits for every cell to reach the most advanced one).
func (c *Machine) primaryCell(p uint32) (proto.NodeID, bool) {
	cur, hasCur := c.bk.primary[p]
	best, found := proto.NodeID(0), false
	var bestTid proto.Tid
	cells := c.pt.ReadableCells(p)
	for i := range cells {
		// Rotated by p: ties spread partitions over nodes.
		cl := cells[(i+int(p))%len(cells)]
		bt, ok := c.bk.cells[cellKey{p, cl.NID}]
		if !ok || !c.isReady(cl.NID) {
			continue
		}
		if !found || bt > bestTid || bt == bestTid && hasCur && cl.NID == cur {
			best, bestTid, found = cl.NID, bt, true
		}
	}
	if found {
		c.bk.primary[p] = best
	} else {
		delete(c.bk.primary, p)
	}
	return best, found
}

// upstreamSource returns the address of a running upstream storage with
// a readable cell of p, preferring one that nid uses least.
func (c *Machine) upstreamSource(p uint32, uses map[proto.NodeID]int) (proto.Addr, bool) {
	if c.bk.upPT == nil || p >= c.bk.upPT.NumPartitions() {
		return proto.Addr{}, false
	}
	cells := c.bk.upPT.ReadableCells(p)
	var best proto.NodeID
	found := false
	for i := range cells {
		cl := cells[(i+int(p))%len(cells)]
		u, ok := c.bk.upNodes[cl.NID]
		if !ok || u.state != proto.NODE_RUNNING || u.addr.IsZero() {
			continue
		}
		if !found || uses[cl.NID] < uses[best] {
			best, found = cl.NID, true
		}
	}
	if !found {
		return proto.Addr{}, false
	}
	uses[best]++
	return c.bk.upNodes[best].addr, true
}

// resendUpstreamOrders orders again the replications from upstream that
// are in progress: an upstream node or cell changed, the source may be
// gone.
func (c *Machine) resendUpstreamOrders() {
	for k, o := range c.bk.sent {
		if o.from == 0 {
			delete(c.bk.sent, k)
		}
	}
}

// triggerBackup orders the replications that can start: primaries from
// upstream (BACKINGUP), other cells from their primary.
func (c *Machine) triggerBackup() {
	if !c.inBackup() {
		return
	}
	fromUpstream := c.state == proto.BACKINGUP && c.bk.tracking
	// An order from a cell that can no longer feed it is void.
	for k, o := range c.bk.sent {
		if o.from == 0 {
			continue
		}
		if cl, ok := c.pt.Cell(k.p, o.from); !ok || !cl.Readable() || !c.isReady(o.from) {
			delete(c.bk.sent, k)
		}
	}
	type order struct {
		tid      proto.Tid
		upstream string
		src      []proto.ReplicateSource
	}
	orders := map[proto.NodeID][]*order{}
	add := func(nid proto.NodeID, tid proto.Tid, upstream string, s proto.ReplicateSource) {
		for _, o := range orders[nid] {
			if o.tid == tid && o.upstream == upstream {
				o.src = append(o.src, s)
				return
			}
		}
		orders[nid] = append(orders[nid], &order{tid, upstream, []proto.ReplicateSource{s}})
	}
	uses := map[proto.NodeID]map[proto.NodeID]int{}
	for p := range c.pt.NumPartitions() {
		pnid, ok := c.primaryCell(p)
		if !ok {
			continue
		}
		pk := cellKey{p, pnid}
		pbt := c.bk.cells[pk]
		if l := c.bk.tids[p]; fromUpstream && len(l) > 0 && l[len(l)-1] > pbt {
			if _, busy := c.bk.sent[pk]; !busy {
				if uses[pnid] == nil {
					uses[pnid] = map[proto.NodeID]int{}
				}
				if addr, ok := c.upstreamSource(p, uses[pnid]); ok {
					tid := l[len(l)-1]
					c.bk.sent[pk] = sentOrder{tid: tid}
					c.lastTransaction = max(c.lastTransaction, tid)
					add(pnid, tid, c.cfg.UpstreamCluster, proto.ReplicateSource{Partition: p, Addr: addr})
				}
			}
		}
		paddr := c.byNID(pnid).Addr
		for _, cl := range c.pt.ReadableCells(p) {
			k := cellKey{p, cl.NID}
			bt, ok := c.bk.cells[k]
			if cl.NID == pnid || !ok || bt >= pbt || !c.isReady(cl.NID) {
				continue
			}
			if _, busy := c.bk.sent[k]; busy {
				continue
			}
			c.bk.sent[k] = sentOrder{tid: pbt, from: pnid}
			add(cl.NID, pbt, "", proto.ReplicateSource{Partition: p, Addr: paddr})
		}
	}
	for _, nid := range sortedNIDs(keysSet(orders)) {
		n := c.byNID(nid)
		for _, o := range orders[nid] {
			c.log.Debug("replicate", "node", nid.String(), "tid", o.tid.String(), "upstream", o.upstream, "partitions", len(o.src))
			c.send(n, &proto.Replicate{Tid: o.tid, UpstreamName: o.upstream, SourceDict: o.src})
		}
	}
}

// backupReplicationDone handles NotifyReplicationDone in backup mode.
func (c *Machine) backupReplicationDone(n *node, m *proto.NotifyReplicationDone) error {
	p := m.Offset
	if p >= c.pt.NumPartitions() {
		return protocolError("invalid partition")
	}
	cl, ok := c.pt.Cell(p, n.NID)
	if !ok {
		c.log.Info("ignored late notification of replication done", "node", n.String(), "partition", p)
		return nil
	}
	k := cellKey{p, n.NID}
	if !cl.Readable() {
		// Internal replication (§8.5) up to the min/min backup tid.
		changes, err := c.pt.SetUpToDate(n.NID, p)
		if err != nil {
			return protocolError(err.Error())
		}
		if len(changes) == 0 {
			return nil
		}
		c.bk.cells[k] = m.Tid
		delete(c.bk.sent, k)
		c.broadcastPartitionChanges(changes)
		return nil
	}
	delete(c.bk.sent, k)
	bt := c.bk.last
	for _, t := range c.bk.tids[p] {
		if t > m.Tid {
			bt = t - 1
			break
		}
	}
	if old, ok := c.bk.cells[k]; ok && old > bt {
		bt = old
	}
	c.bk.cells[k] = bt
	c.forgetPassed(p)
	c.updateBackupTid()
	return nil
}

func backupStorageLost(c *Machine, n *node) {
	// Its orders, and those it was the source of, are void: the cells
	// replicating from it get a new source.
	for k, o := range c.bk.sent {
		if k.nid == n.NID || o.from == n.NID {
			delete(c.bk.sent, k)
		}
	}
	serviceStorageLost(c, n)
	for k := range c.bk.cells {
		if cl, ok := c.pt.Cell(k.p, k.nid); !ok || !cl.Readable() {
			delete(c.bk.cells, k)
		}
	}
	c.updateBackupTid()
}

// enterStoppingBackup leaves backup mode: no more replication from
// upstream; once every readable cell reached the cluster backup tid,
// the cluster truncates there and restarts.
func (c *Machine) enterStoppingBackup() {
	c.dropUpstream()
	c.updateBackupTid()
	c.bk.stopAt = c.backupTid
	c.log.Info("leaving backup mode", "backup_tid", c.backupTid.String())
	c.changeClusterState(roleStoppingBackup)
}

func stoppingBackupProgress(c *Machine) {
	c.triggerBackup()
	for p := range c.pt.NumPartitions() {
		for _, cl := range c.pt.ReadableCells(p) {
			if bt, ok := c.bk.cells[cellKey{p, cl.NID}]; !ok || bt < c.bk.stopAt {
				return
			}
		}
	}
	tid := c.bk.stopAt
	noop := tid >= c.lastTransaction
	if noop {
		c.log.Info("leaving backup mode: nothing to truncate", "backup_tid", tid.String())
	} else {
		c.log.Warn("Truncating at " + tid.String())
	}
	c.backupTid = proto.InvalidTid
	c.bk = newBackup()
	c.leaveOperation(tid)
	if noop {
		c.startupAllowed = true
	}
}
