package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/nodetab"
	"github.com/neogo/neo/parttab"
	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

// serveMaster processes, in order, what the primary master sends until the
// link breaks or the master shuts the node down. Before StartOperation the
// node only answers the master (recovery, verification: cluster.md §5);
// StopOperation brings it back there.
func (n *Node) serveMaster(ctx context.Context, link *neonet.Link) error {
	st := &masterState{first: true}
	defer st.stopPacker()
	defer st.locks.Wait()
	for {
		r, err := link.Recv(ctx)
		if err != nil {
			return err
		}
		switch r.Msg.(type) {
		case *proto.AskLockInformation, *proto.NotifyUnlockInformation:
			// Locks overlap; an unlock comes after our answer to its
			// own lock, and other locks do not change its transaction.
		default:
			// The rest sees every lock received before written or
			// failed, as when the packets were handled one at a time.
			st.locks.Wait()
		}
		if err := n.handleMaster(ctx, r, st); err != nil {
			if errors.Is(err, ErrShutdown) || errors.Is(err, ErrErased) {
				return err
			}
			var perr *proto.Error
			if errors.As(err, &perr) && perr.Code != proto.PROTOCOL_ERROR && perr.Code != proto.NOT_READY {
				// DENIED, NON_READABLE_CELL...: answered, link kept.
				n.log.Info("error answered to the master", "msg", proto.MsgName(r.Msg.NEOMsgCode()), "err", err)
				r.Reply(perr)
				continue
			}
			n.log.Error("master link aborted", "msg", proto.MsgName(r.Msg.NEOMsgCode()), "err", err)
			r.Reply(protoError(err))
			link.Abort()
			return err
		}
	}
}

// protoError turns err into the Error packet to answer: a *proto.Error in
// its chain, else PROTOCOL_ERROR with err's text.
func protoError(err error) *proto.Error {
	var perr *proto.Error
	if errors.As(err, &perr) {
		if err == error(perr) {
			return perr
		}
		// "%w: detail" wrapping a sentinel: send the detail only.
		msg := strings.TrimPrefix(err.Error(), perr.Error()+": ")
		if perr.Message != "" && msg == err.Error() {
			msg = perr.Message
		}
		return &proto.Error{Code: perr.Code, Message: msg}
	}
	return &proto.Error{Code: proto.PROTOCOL_ERROR, Message: err.Error()}
}

// masterState is what serveMaster keeps between packets.
type masterState struct {
	first      bool           // the next NotifyNodeInformation is the full list
	locks      sync.WaitGroup // locks being written (beginLock's persist)
	packer     *packer        // running while operational, unless pack is disabled
	replicator *replicator    // running while operational
}

func (st *masterState) stopPacker() {
	if st.packer != nil {
		st.packer.stop()
		st.packer = nil
	}
	if st.replicator != nil {
		st.replicator.n.mu.Lock()
		st.replicator.n.mu.replicator = nil
		st.replicator.n.mu.Unlock()
		st.replicator.stop()
		st.replicator = nil
	}
}

func (n *Node) handleMaster(ctx context.Context, r *neonet.Request, st *masterState) error {
	switch m := r.Msg.(type) {
	case *proto.NotifyNodeInformation:
		full := st.first
		st.first = false
		return n.notifyNodeInformation(ctx, m, full)

	case *proto.NotifyClusterInformation:
		n.log.Info("cluster state", "cluster_state", m.State)
		if st.replicator != nil {
			st.replicator.stoppingBackup(m.State == proto.STOPPING_BACKUP)
		}
		return nil

	case *proto.AskRecovery:
		meta, err := n.db.Meta(ctx)
		if err != nil {
			return err
		}
		n.mu.Lock()
		var ptid proto.PTid
		if n.mu.pt != nil {
			ptid = n.mu.pt.PTid()
		}
		n.mu.Unlock()
		return r.Reply(&proto.AnswerRecovery{PTid: ptid, BackupTid: meta.BackupTid, TruncateTid: meta.TruncateTid})

	case *proto.AskPartitionTable:
		n.mu.Lock()
		a := &proto.AnswerPartitionTable{}
		if pt := n.mu.pt; pt != nil {
			a.PTid, a.NumReplicas, a.Rows = pt.PTid(), uint32(pt.NumReplicas()), parttab.RowsToProto(pt.Rows())
		}
		n.mu.Unlock()
		return r.Reply(a)

	case *proto.SendPartitionTable:
		return n.sendPartitionTable(ctx, m)

	case *proto.NotifyPartitionChanges:
		if err := n.notifyPartitionChanges(ctx, m); err != nil {
			return err
		}
		if st.replicator != nil {
			st.replicator.kick()
		}
		return nil

	case *proto.AskLockedTransactions:
		locked, err := n.db.LockedTransactions(ctx)
		if err != nil {
			return err
		}
		return r.Reply(&proto.AnswerLockedTransactions{TidDict: lockedToProto(locked)})

	case *proto.AskFinalTID:
		var tid proto.Tid
		var err error
		if tm := n.txnManager(); tm != nil {
			tid, err = tm.finalTID(m.TTid)
		} else {
			tid, err = n.db.FinalTid(ctx, m.TTid)
		}
		if err != nil {
			return err
		}
		return r.Reply(&proto.AnswerFinalTID{Tid: tid})

	case *proto.ValidateTransaction:
		n.wmu.Lock()
		err := n.db.ValidateTransaction(ctx, m.TTid, m.Tid)
		n.wmu.Unlock()
		return err

	case *proto.Truncate:
		n.wmu.Lock()
		defer n.wmu.Unlock()
		meta, err := n.db.Meta(ctx)
		if err != nil {
			return err
		}
		meta.BackupTid, meta.TruncateTid = proto.InvalidTid, m.Tid
		return n.db.SetMeta(ctx, meta)

	case *proto.AskLastIDs:
		return n.askLastIDs(ctx, r)

	case *proto.AskPackOrders:
		parts := n.ownOffsets((*parttab.Table).AssignedOffsets)
		orders, err := n.db.PackOrders(ctx, m.PackID, parts)
		if err != nil {
			return err
		}
		return r.Reply(&proto.AnswerPackOrders{PackOrderList: packOrdersToProto(orders)})

	case *proto.NotifyPackSigned:
		n.wmu.Lock()
		err := n.db.SignPackOrders(ctx, m.Approved, m.Rejected)
		n.wmu.Unlock()
		if err != nil {
			return err
		}
		if len(m.Approved) > 0 {
			id := slices.Max(m.Approved)
			n.mu.Lock()
			newer := id > n.mu.lastPackID
			if newer {
				n.mu.lastPackID = id
			}
			operational := n.mu.operational
			n.mu.Unlock()
			switch {
			case !newer || !operational:
			case n.cfg.DisablePack:
				// Report every approved order as done.
				return r.Link.Send(&proto.NotifyPackCompleted{PackID: id})
			case st.packer != nil:
				st.packer.kick()
			}
		}
		return nil

	case *proto.StartOperation:
		if err := n.startOperation(ctx); err != nil {
			return err
		}
		// NotifyReady goes before the replicator's first
		// AskUnfinishedTransactions: the master relays aborts only to
		// ready storages, so one asking before would miss the abort
		// of a listed transaction and wait for it forever.
		if err := r.Link.Send(&proto.NotifyReady{}); err != nil {
			return err
		}
		if !n.cfg.DisablePack && st.packer == nil {
			st.packer = n.startPacker(ctx, r.Link)
		}
		if st.replicator == nil {
			var kick func()
			if pk := st.packer; pk != nil {
				kick = pk.kick
			}
			rp, err := n.startReplicator(ctx, r.Link, n.txnManager(), kick, m.Backup)
			if err != nil {
				return err
			}
			st.replicator = rp
			n.mu.Lock()
			n.mu.replicator = rp
			n.mu.Unlock()
			return nil
		}
		// Operating already: the cluster enters or leaves backup mode.
		if m.Backup {
			return st.replicator.startBackup(ctx)
		}
		st.replicator.stopBackup()
		return nil

	case *proto.StopOperation:
		n.log.Info("stop operation")
		st.stopPacker()
		n.stopOperation()
		return nil

	case *proto.AskLockInformation:
		tm := n.txnManager()
		if tm == nil {
			return fmt.Errorf("%w: not operational", proto.ErrProtocol)
		}
		persist, err := tm.beginLock(m.TTid, m.Tid, m.ApprovePack)
		if err != nil {
			return err
		}
		if persist == nil {
			return r.Reply(&proto.AnswerInformationLocked{TTid: m.TTid})
		}
		// Written while the next packets are read, so that the locks
		// of concurrent transactions share a sync (txnStore).
		st.locks.Go(func() {
			if err := persist(); err != nil {
				n.log.Error("master link aborted", "msg", "AskLockInformation", "err", err)
				r.Reply(protoError(err))
				r.Link.Abort()
				return
			}
			r.Reply(&proto.AnswerInformationLocked{TTid: m.TTid})
		})
		return nil

	case *proto.NotifyUnlockInformation:
		tm := n.txnManager()
		if tm == nil {
			return fmt.Errorf("%w: not operational", proto.ErrProtocol)
		}
		err := tm.unlockTxn(m.TTid)
		if st.replicator != nil {
			st.replicator.txnEnded()
		}
		return err

	case *proto.AbortTransaction:
		n.log.Debug("abort transaction", "ttid", m.TTid)
		if st.replicator != nil {
			st.replicator.transactionFinished(m.TTid, 0)
		}
		if tm := n.txnManager(); tm != nil {
			err := tm.abort(m.TTid)
			if st.replicator != nil {
				st.replicator.txnEnded()
			}
			return err
		}
		return nil

	case *proto.NotifyTransactionFinished:
		n.log.Debug("transaction finished", "ttid", m.TTid, "tid", m.MaxTid)
		if st.replicator != nil {
			st.replicator.transactionFinished(m.TTid, m.MaxTid)
		}
		if tm := n.txnManager(); tm != nil {
			return tm.abort(m.TTid)
		}
		return nil

	case *proto.FlushLog:
		if n.cfg.FlushLog != nil {
			go n.cfg.FlushLog()
		}
		return nil

	case *proto.AnswerUnfinishedTransactions, *proto.NotifyRepair:
		return nil

	case *proto.CheckPartition:
		tm := n.txnManager()
		if tm == nil {
			return nil
		}
		link := r.Link
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.checkMu.Lock() // one check at a time, in order of arrival
			defer n.checkMu.Unlock()
			n.check(ctx, link, tm, m)
		}()
		return nil

	case *proto.Replicate:
		if st.replicator == nil {
			return fmt.Errorf("%w: Replicate before StartOperation", proto.ErrProtocol)
		}
		st.replicator.order(m)
		return nil
	}
	return fmt.Errorf("%w: unexpected packet %s from the master", proto.ErrProtocol, proto.MsgName(r.Msg.NEOMsgCode()))
}

// notifyNodeInformation updates the node list. About ourselves: DOWN means
// shut down, UNKNOWN means erase the database and shut down (§1.3.3). A
// client that is no longer RUNNING loses its non-locked transactions.
func (n *Node) notifyNodeInformation(ctx context.Context, m *proto.NotifyNodeInformation, full bool) error {
	var abortClients []proto.NodeID
	var closeNIDs []proto.NodeID
	n.mu.Lock()
	if full {
		n.mu.nodes.Reset()
	}
	self := n.mu.nid
	entries := make([]nodetab.Node, len(m.NodeList))
	for i, e := range m.NodeList {
		entries[i] = nodetab.Node{Type: e.Type, Addr: e.Addr, NID: e.NID, State: e.State, IDTimestamp: e.IDTimestamp}
	}
	pt := n.mu.pt
	res, err := n.mu.nodes.Update(m.Timestamp, self, entries, func(nid proto.NodeID) bool {
		// A storage still holding cells stays known.
		return pt == nil || len(pt.AssignedOffsets(nid)) == 0
	})
	if err != nil {
		n.mu.Unlock()
		return fmt.Errorf("%w: %w", proto.ErrProtocol, err)
	}
	var selfState proto.NodeState
	selfSeen := false
	for _, e := range res.Changed {
		switch {
		case e.NID == self && self != 0:
			selfSeen, selfState = true, e.State
		case e.Type == proto.CLIENT && e.State != proto.NODE_RUNNING:
			abortClients = append(abortClients, e.NID)
			closeNIDs = append(closeNIDs, e.NID)
		}
	}
	for _, e := range res.Removed {
		if e.NID == self && self != 0 {
			selfSeen, selfState = true, proto.UNKNOWN
			continue
		}
		closeNIDs = append(closeNIDs, e.NID)
		if e.Type == proto.CLIENT {
			abortClients = append(abortClients, e.NID)
		}
	}
	close(n.mu.notifyCh)
	n.mu.notifyCh = make(chan struct{})
	tm := n.mu.tm
	var links []*neonet.Link
	for l, id := range n.mu.links {
		if slices.Contains(closeNIDs, id) {
			links = append(links, l)
		}
	}
	n.mu.Unlock()

	if selfSeen {
		n.log.Info("the master says we are", "state", selfState)
		switch selfState {
		case proto.DOWN:
			return ErrShutdown
		case proto.UNKNOWN:
			n.wmu.Lock()
			err := n.erase(ctx)
			n.wmu.Unlock()
			if err != nil {
				return fmt.Errorf("storage: erase database: %w", err)
			}
			return ErrErased
		}
	}
	for _, l := range links {
		l.Close()
	}
	if tm != nil {
		for _, c := range abortClients {
			if err := tm.abortFor(c, true); err != nil {
				return err
			}
		}
	}
	return nil
}

// erase empties the database (neoctl drop of this node).
func (n *Node) erase(ctx context.Context) error {
	n.mu.Lock()
	pt := n.mu.pt
	n.mu.Unlock()
	if err := n.db.DropUnfinishedData(ctx); err != nil {
		return err
	}
	if pt != nil {
		for p := uint32(0); p < pt.np(); p++ {
			for {
				done, err := n.db.DropPartition(ctx, p, 10000)
				if err != nil {
					return err
				}
				if done {
					break
				}
			}
		}
	}
	if err := n.db.ChangePartitionTable(ctx, 0, 0, nil, true); err != nil {
		return err
	}
	return n.db.SetMeta(ctx, backend.Meta{BackupTid: proto.InvalidTid, TruncateTid: proto.InvalidTid})
}

func (n *Node) sendPartitionTable(ctx context.Context, m *proto.SendPartitionTable) error {
	rows := parttab.RowsFromProto(m.Rows)
	pt, err := loadPTable(m.PTid, int(m.NumReplicas), rows)
	if err != nil {
		return err
	}
	// n.mu.pt is what the database holds (loaded at start, replaced
	// after each save); only this goroutine changes it.
	n.mu.Lock()
	saved := n.mu.pt
	n.mu.Unlock()
	changes, same := ptChanges(saved, m.PTid, int(m.NumReplicas), rows)
	start := time.Now()
	if !same {
		n.wmu.Lock()
		err = n.db.ChangePartitionTable(ctx, m.PTid, int(m.NumReplicas), changes, saved == nil)
		n.wmu.Unlock()
		if err != nil {
			return fmt.Errorf("storage: save partition table: %w", err)
		}
	}
	n.mu.Lock()
	n.mu.pt = pt
	n.mu.Unlock()
	n.log.Info("partition table loaded", "ptid", m.PTid, "np", len(rows), "saved_cells", len(changes),
		"unchanged", same, "save", time.Since(start).Round(10*time.Microsecond))
	return nil
}

func (n *Node) notifyPartitionChanges(ctx context.Context, m *proto.NotifyPartitionChanges) error {
	n.mu.Lock()
	pt := n.mu.pt
	if pt == nil || m.PTid != pt.PTid()+1 {
		var have proto.PTid
		if pt != nil {
			have = pt.PTid()
		}
		n.mu.Unlock()
		return fmt.Errorf("%w: wrong partition table id %d (have %d)", proto.ErrProtocol, m.PTid, have)
	}
	self := n.mu.nid
	changes := make([]parttab.Change, len(m.CellList))
	bchanges := make([]backend.CellChange, len(m.CellList))
	var discarded []uint32
	for i, c := range m.CellList {
		changes[i] = parttab.Change{Offset: c.Offset, NID: c.NID, State: c.State}
		bchanges[i] = backend.CellChange{Partition: c.Offset, NID: c.NID, State: c.State}
		if c.NID == self && c.State == proto.DISCARDED {
			discarded = append(discarded, c.Offset)
		}
	}
	npt, err := pt.next(m.PTid, int(m.NumReplicas), changes)
	if err != nil {
		n.mu.Unlock()
		return err
	}
	tm := n.mu.tm
	n.mu.Unlock()

	n.wmu.Lock()
	err = n.db.ChangePartitionTable(ctx, m.PTid, int(m.NumReplicas), bchanges, false)
	n.wmu.Unlock()
	if err != nil {
		return fmt.Errorf("storage: save partition changes: %w", err)
	}
	n.mu.Lock()
	n.mu.pt = npt
	n.mu.Unlock()
	if tm != nil && len(discarded) > 0 {
		if err := tm.discarded(discarded); err != nil {
			return err
		}
	}
	if len(discarded) > 0 && !n.cfg.DisableDropPartitions {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.dropPartitions(ctx, discarded)
		}()
	}
	return nil
}

// dropSlice is the number of records deleted per write when dropping.
const dropSlice = 1000

// dropPartitions deletes, in small slices, the data of partitions whose
// cell was discarded (§8.8), unless the partition is given back meanwhile.
func (n *Node) dropPartitions(ctx context.Context, parts []uint32) {
	for _, p := range parts {
		for {
			n.mu.Lock()
			assigned := true
			if n.mu.pt != nil {
				_, assigned = n.mu.pt.state(p, n.mu.nid)
			}
			n.mu.Unlock()
			if assigned || ctx.Err() != nil {
				break
			}
			n.wmu.Lock()
			done, err := n.db.DropPartition(ctx, p, dropSlice)
			n.wmu.Unlock()
			if err != nil {
				if ctx.Err() == nil {
					n.log.Error("drop partition", "partition", p, "err", err)
				}
				return
			}
			if done {
				n.log.Info("partition dropped", "partition", p)
				break
			}
		}
	}
}

// askLastIDs answers AskLastIDs: the pending truncation is applied first,
// the completed pack id is reported, then the last ids over the readable
// partitions are answered (§5.2, §5.4).
func (n *Node) askLastIDs(ctx context.Context, r *neonet.Request) error {
	n.mu.Lock()
	var assigned, readable []uint32
	if pt := n.mu.pt; pt != nil {
		assigned = pt.AssignedOffsets(n.mu.nid)
		readable = pt.ReadableOffsets(n.mu.nid)
	}
	n.mu.Unlock()
	meta, err := n.db.Meta(ctx)
	if err != nil {
		return err
	}
	if meta.TruncateTid != proto.InvalidTid {
		n.log.Info("truncating", "tid", meta.TruncateTid)
		n.wmu.Lock()
		err := n.db.Truncate(ctx, meta.TruncateTid, assigned)
		n.wmu.Unlock()
		if err != nil {
			return fmt.Errorf("storage: truncate at %v: %w", meta.TruncateTid, err)
		}
	}
	if packed, ok := n.completedPack(ctx); ok {
		if err := r.Link.Send(&proto.NotifyPackCompleted{PackID: packed}); err != nil {
			return err
		}
	}
	ids, err := n.db.LastIDs(ctx, readable)
	if err != nil {
		return err
	}
	return r.Reply(&proto.AnswerLastIDs{LastTid: ids.LastTid, LastOid: ids.LastOid, FirstTid: ids.FirstTid})
}

// completedPack returns the smallest completed pack id over the node's
// own cells, if any cell has pack information.
func (n *Node) completedPack(ctx context.Context) (proto.Tid, bool) {
	_, _, cells, err := n.db.PartitionTable(ctx)
	if err != nil {
		return 0, false
	}
	self := n.NID()
	var min proto.Tid
	found := false
	for _, c := range cells {
		if c.NID != self || c.Pack == proto.InvalidTid {
			continue
		}
		if !found || c.Pack < min {
			min, found = c.Pack, true
		}
	}
	return min, found
}
