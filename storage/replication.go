package storage

// The replica side of internal replication (cluster.md §8.5): an
// OUT_OF_DATE cell of this node is brought up to date from a readable cell
// of another storage.
//
//	cell becomes OUT_OF_DATE
//	  -> stores to the partition become lockless (txnManager.setReplicating)
//	  -> AskUnfinishedTransactions(partitions) to the master:
//	     (last committed tid, ttids being committed); the master marks the
//	     cells updatable and will send NotifyTransactionFinished / Abort
//	     for each listed ttid
//	  -> fetch transactions then objects from a source, in chunks, up to
//	     that tid (and up to the tid of each listed transaction that
//	     finishes), persisting the resume point after each object chunk
//	  -> when nothing listed is pending and no pending transaction holds
//	     lockless stores of the partition: NotifyReplicationDone
//	  -> the master makes the cell UP_TO_DATE.
//
// One goroutine per operation period does it all, woken by partition
// table changes, finished transactions and a periodic tick.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/parttab"
	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

// fetchCount is the chunk size of replication fetches (neoppod: 1000).
const fetchCount = 1000

// upstreamFetchTimeout bounds the wait for the answer of an upstream
// storage to one fetch: it delays a fetch only while a transaction is
// being locked, which takes milliseconds. A safety net, for a storage of
// another cluster (maybe neoppod's) that hangs: the fetch fails with a
// warning, the link is closed and the order retried. No such hang is
// known: the backup stall once blamed on it was a test waiting for an
// aborted ttid (internal/integration, ids).
const upstreamFetchTimeout = 10 * time.Second

// replicaState is the replication state of one OUT_OF_DATE partition.
type replicaState struct {
	upTo     proto.Tid              // replicate up to this tid
	pending  map[proto.Tid]struct{} // listed ttids not finished yet
	done     proto.Tid              // replicated up to this tid (0: nothing yet)
	notified bool                   // NotifyReplicationDone sent
	// from is the first tid replicated (0: none yet), pos how far the
	// fetch in progress went: for Status only.
	from, pos proto.Tid
}

// replicator owns the replication of the node's OUT_OF_DATE cells.
type replicator struct {
	n      *Node
	master *neonet.Link
	tm     *txnManager
	wake   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}

	mu struct {
		sync.Mutex
		parts map[uint32]*replicaState
		// bk is the replication from upstream of a backup cluster
		// (backup.go); nil outside backup mode.
		bk *backupReplica
		// ended collects, while an AskUnfinishedTransactions is in
		// flight (nil otherwise), the transactions the master said
		// ended (tid, or 0 if aborted): the answer is delivered to
		// register while serveMaster handles the master's notifications,
		// so a notice about a listed ttid may be handled first.
		ended map[proto.Tid]proto.Tid
	}
	sources map[string]*storageLink // by address; used by the goroutine only
	// upstream are the links to upstream storages (backup.go), by
	// cluster@address; used by the goroutine only.
	upstream map[string]*storageLink
	// packKick, if set, tells the packer that backup cells progressed.
	packKick func()
}

// startReplicator starts the replicator of an operation period; with
// backup, in backup mode from the start, before any internal replication
// may make a cell readable.
func (n *Node) startReplicator(ctx context.Context, master *neonet.Link, tm *txnManager, packKick func(), backup bool) (*replicator, error) {
	r := &replicator{n: n, master: master, tm: tm, wake: make(chan struct{}, 1), packKick: packKick,
		done: make(chan struct{}), sources: map[string]*storageLink{}, upstream: map[string]*storageLink{}}
	r.mu.parts = map[uint32]*replicaState{}
	if backup {
		if err := r.startBackup(ctx); err != nil {
			return nil, err
		}
	}
	ctx, r.cancel = context.WithCancel(ctx)
	go func() {
		defer close(r.done)
		r.loop(ctx)
	}()
	r.kick()
	return r, nil
}

func (r *replicator) kick() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// stop stops the goroutine; the links to the sources are shared and
// stay (dialStorage).
func (r *replicator) stop() {
	r.cancel()
	<-r.done
	r.closeUpstream()
}

// transactionFinished is told about NotifyTransactionFinished (tid != 0)
// and AbortTransaction (tid == 0) from the master.
func (r *replicator) transactionFinished(ttid, tid proto.Tid) {
	r.mu.Lock()
	if r.mu.ended != nil {
		r.mu.ended[ttid] = tid
	}
	for _, p := range r.mu.parts {
		if _, ok := p.pending[ttid]; ok {
			delete(p.pending, ttid)
			if tid != 0 && tid > p.upTo {
				p.upTo = tid
			}
		}
	}
	r.mu.Unlock()
	r.kick()
}

// txnEnded is told that a transaction was unlocked or aborted: a
// replicated partition may have waited for its lockless stores to go
// (txnManager.replicated) and can be reported now rather than at the next
// tick.
func (r *replicator) txnEnded() {
	r.mu.Lock()
	waiting := len(r.mu.parts) > 0
	r.mu.Unlock()
	if waiting {
		r.kick()
	}
}

func (r *replicator) loop(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-r.wake:
		case <-tick.C:
		case <-ctx.Done():
			return
		}
		if err := r.step(ctx); err != nil && ctx.Err() == nil {
			r.n.log.Warn("replication", "err", err)
		}
	}
}

// step registers newly outdated partitions, replicates what is behind and
// reports what is done.
func (r *replicator) step(ctx context.Context) (err error) {
	n := r.n
	outdated := n.ownOffsets((*parttab.Table).OutdatedOffsets)
	r.mu.Lock()
	isOut := map[uint32]bool{}
	var fresh []uint32
	for _, p := range outdated {
		isOut[p] = true
		if r.mu.parts[p] == nil {
			fresh = append(fresh, p)
		}
	}
	for p := range r.mu.parts {
		if !isOut[p] {
			delete(r.mu.parts, p) // up to date now, or discarded
		}
	}
	r.mu.Unlock()
	defer func() {
		// Replication from upstream goes on whatever happens to the
		// internal one.
		if berr := r.backupStep(ctx); err == nil {
			err = berr
		}
	}()

	if len(fresh) > 0 {
		if err := r.register(ctx, fresh); err != nil {
			return err
		}
	}

	r.mu.Lock()
	parts := slices.Sorted(maps.Keys(r.mu.parts))
	r.mu.Unlock()
	for _, p := range parts {
		if err := ctx.Err(); err != nil {
			return err
		}
		r.mu.Lock()
		st := r.mu.parts[p]
		if st == nil || st.notified {
			r.mu.Unlock()
			continue
		}
		upTo, done := st.upTo, st.done
		r.mu.Unlock()
		if done < upTo {
			if err := r.replicate(ctx, p, upTo); err != nil {
				return fmt.Errorf("partition %d: %w", p, err)
			}
			r.mu.Lock()
			if st := r.mu.parts[p]; st != nil && st.done < upTo {
				st.done = upTo
			}
			r.mu.Unlock()
		}
		r.mu.Lock()
		st = r.mu.parts[p]
		ready := st != nil && !st.notified && len(st.pending) == 0 && st.done >= st.upTo
		if ready {
			upTo = st.upTo
		}
		r.mu.Unlock()
		if ready && r.tm.replicated(p) {
			r.mu.Lock()
			if st := r.mu.parts[p]; st != nil {
				st.notified = true
			}
			r.mu.Unlock()
			n.log.Info("partition replicated", "partition", p, "tid", upTo,
				"replicated_txns", n.stats.replTxns.Load(), "replicated_objects", n.stats.replObjs.Load())
			r.replicatedInternally(p, upTo)
			if err := r.master.Send(&proto.NotifyReplicationDone{Offset: p, Tid: upTo}); err != nil {
				return err
			}
		}
	}
	return nil
}

// register makes stores to the partitions lockless and asks the master
// up to where to replicate.
func (r *replicator) register(ctx context.Context, parts []uint32) error {
	r.tm.setReplicating(parts)
	r.asking()
	defer r.asked()
	var a proto.AnswerUnfinishedTransactions
	if err := r.master.Ask(ctx, &proto.AskUnfinishedTransactions{Offsets: parts}, &a); err != nil {
		return fmt.Errorf("ask unfinished transactions: %w", err)
	}
	_, _, cells, err := r.n.db.PartitionTable(ctx)
	if err != nil {
		return err
	}
	self := r.n.NID()
	resume := map[uint32]proto.Tid{}
	for _, c := range cells {
		if c.NID == self {
			resume[c.Partition] = c.Tid
		}
	}
	pending := r.addParts(parts, &a, resume)
	r.n.log.Info("replicating", "partitions", parts, "up_to", a.MaxTid, "pending", len(pending))
	r.n.log.Debug("replicating: pending transactions", "ttids", pending, "listed", a.TTidList)
	return nil
}

// asking starts collecting the transactions that end while
// AskUnfinishedTransactions is in flight; asked stops it.
func (r *replicator) asking() {
	r.mu.Lock()
	r.mu.ended = map[proto.Tid]proto.Tid{}
	r.mu.Unlock()
}

func (r *replicator) asked() {
	r.mu.Lock()
	r.mu.ended = nil
	r.mu.Unlock()
}

// addParts starts replicating parts as the master answered, resuming at
// the cells' saved tids. A listed transaction whose end was already
// handled is not waited for, but its tid is replicated. It returns the
// ttids still waited for.
func (r *replicator) addParts(parts []uint32, a *proto.AnswerUnfinishedTransactions, resume map[uint32]proto.Tid) []proto.Tid {
	r.mu.Lock()
	defer r.mu.Unlock()
	upTo := a.MaxTid
	var pending []proto.Tid
	for _, ttid := range a.TTidList {
		tid, ended := r.mu.ended[ttid]
		switch {
		case !ended:
			pending = append(pending, ttid)
		case tid > upTo:
			upTo = tid
		}
	}
	for _, p := range parts {
		st := &replicaState{upTo: upTo, pending: map[proto.Tid]struct{}{}, done: resume[p], from: resume[p]}
		for _, ttid := range pending {
			st.pending[ttid] = struct{}{}
		}
		r.mu.parts[p] = st
	}
	return pending
}

// source returns a link to a RUNNING storage with a readable cell of p.
func (r *replicator) source(ctx context.Context, p uint32) (*storageLink, error) {
	n := r.n
	n.mu.Lock()
	var addrs []string
	var nids []proto.NodeID
	if pt := n.mu.pt; pt != nil && p < pt.np() {
		for _, c := range pt.row(p) {
			if c.NID == n.mu.nid || !c.State.Readable() {
				continue
			}
			if peer := n.mu.nodes.ByNID(c.NID); peer != nil && peer.State == proto.NODE_RUNNING && !peer.Addr.IsZero() {
				addrs = append(addrs, peer.Addr.String())
				nids = append(nids, c.NID)
			}
		}
	}
	n.mu.Unlock()
	if len(addrs) == 0 {
		return nil, fmt.Errorf("no source for partition %d", p)
	}
	for _, a := range addrs {
		if l := r.sources[a]; l != nil {
			select {
			case <-l.Done():
				delete(r.sources, a)
			default:
				return l, nil
			}
		}
	}
	i := int(p) % len(addrs)
	l, err := n.dialStorage(ctx, nids[i], addrs[i])
	if err != nil {
		return nil, err
	}
	r.sources[addrs[i]] = l
	return l, nil
}

// replicate fetches partition p up to upTo, resuming after the cell's
// saved resume point.
func (r *replicator) replicate(ctx context.Context, p uint32, upTo proto.Tid) error {
	db := r.n.db
	l, err := r.source(ctx, p)
	if err != nil {
		return err
	}
	_, _, cells, err := db.PartitionTable(ctx)
	if err != nil {
		return err
	}
	minTid := proto.ZeroTid
	self := r.n.NID()
	for _, c := range cells {
		if c.Partition == p && c.NID == self && c.Tid != 0 {
			minTid = c.Tid + 1
		}
	}
	if minTid > upTo {
		return nil
	}
	return r.fetchRange(ctx, l, p, minTid, upTo, true)
}

// fetchRange fetches from l what partition p lacks in [minTid, upTo]:
// transactions then objects, in chunks. With resume, the cell's resume
// point is saved after each chunk of objects (an OUT_OF_DATE cell);
// a readable cell of a backup cluster keeps its resume point in memory.
func (r *replicator) fetchRange(ctx context.Context, l *storageLink, p uint32, minTid, upTo proto.Tid, resume bool) error {
	db := r.n.db
	// Transactions.
	first := true
	for from := minTid; ; {
		known, err := db.TIDsFrom(ctx, p, from, upTo, fetchCount)
		if err != nil {
			return err
		}
		var a proto.AnswerFetchTransactions
		var adds []backend.TxnMeta
		err = r.fetch(ctx, l, &proto.AskFetchTransactions{Partition: p, Length: fetchCount, MinTid: from,
			MaxTid: upTo, TidList: known, AskPackInfo: first}, &a, func(m proto.Msg) {
			if t, ok := m.(*proto.AddTransaction); ok {
				adds = append(adds, txnFromProto(t))
			}
		})
		if err != nil {
			return err
		}
		if len(adds)+len(a.TidList) >= yieldEvery {
			r.n.prio.yield(ctx) // client requests go first (priority.go)
		}
		if resume && len(adds) > 0 {
			r.advanced(p, adds[0].Tid, 0)
		}
		r.n.wmu.Lock()
		err = db.ReplicateTransactions(ctx, p, adds, a.TidList)
		if err == nil {
			r.n.stats.replTxns.Add(uint64(len(adds)))
		}
		if err == nil && first && a.CompletedPack != proto.InvalidTid {
			err = db.SetPartitionPacked(ctx, p, a.CompletedPack, true)
		}
		r.n.wmu.Unlock()
		if err != nil {
			return err
		}
		first = false
		if a.NextTid == proto.InvalidTid {
			break
		}
		from = a.NextTid
	}
	// Objects.
	for fromTid, fromOid := minTid, proto.ZeroOid; ; {
		keys, err := db.ObjectsFrom(ctx, p, fromTid, upTo, fromOid, fetchCount)
		if err != nil {
			return err
		}
		var a proto.AnswerFetchObjects
		var adds []backend.Record
		err = r.fetch(ctx, l, &proto.AskFetchObjects{Partition: p, Length: fetchCount, MinTid: fromTid,
			MaxTid: upTo, MinOid: fromOid, ObjectDict: groupKeys(keys)}, &a, func(m proto.Msg) {
			if o, ok := m.(*proto.AddObject); ok {
				rec := backend.Record{Oid: o.Oid, Serial: o.Serial, Compression: o.Compression, Data: o.Data, DataSerial: o.DataSerial}
				copy(rec.Checksum[:], o.Checksum)
				adds = append(adds, rec)
			}
		})
		if err != nil {
			return err
		}
		var del []backend.ObjectKey
		for _, so := range a.ObjectDict {
			for _, oid := range so.Oids {
				del = append(del, backend.ObjectKey{Tid: so.Serial, Oid: oid})
			}
		}
		cellTid := upTo
		if a.NextTid != proto.InvalidTid && a.NextTid > 0 {
			cellTid = a.NextTid - 1
		}
		if !resume {
			cellTid = proto.InvalidTid
		}
		if len(adds)+len(del) >= yieldEvery {
			r.n.prio.yield(ctx)
		}
		r.n.wmu.Lock()
		err = db.ReplicateObjects(ctx, p, adds, del, cellTid)
		r.n.wmu.Unlock()
		if err != nil {
			return err
		}
		r.n.stats.replObjs.Add(uint64(len(adds)))
		if resume {
			r.advanced(p, 0, cellTid)
		}
		if a.NextTid == proto.InvalidTid {
			return nil
		}
		fromTid, fromOid = a.NextTid, a.NextOid
	}
}

// fetch sends an AskFetch* request and hands the AddTransaction/AddObject
// notifications carrying its id to add, then decodes the answer into resp.
func (r *replicator) fetch(ctx context.Context, l *storageLink, req, resp proto.Msg, add func(proto.Msg)) error {
	call, err := l.Start(req, resp)
	if err != nil {
		return err
	}
	// The source sends the notifications before the answer, on the same
	// stream, and the link's reader keeps them (storageLink.received)
	// before it delivers the answer: once the answer is in, they are all
	// kept.
	wctx := ctx
	if l.nid == 0 {
		// An upstream storage (backup): one that never answers must
		// not stop the backup (the link is closed, the order retried).
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, upstreamFetchTimeout)
		defer cancel()
	}
	waitErr := call.Wait(wctx)
	if l.nid == 0 && ctx.Err() == nil && wctx.Err() != nil {
		l.Close()
		waitErr = fmt.Errorf("no answer from the upstream storage at %s in %v: %w", l.RemoteAddr(), upstreamFetchTimeout, waitErr)
	}
	for _, m := range l.takeAdds(call.ID()) {
		add(m)
	}
	if waitErr != nil {
		var perr *proto.Error
		if errors.As(waitErr, &perr) && perr.Code == proto.REPLICATION_ERROR {
			// Not a source any more: choose again next time. The
			// link stays, shared (dialStorage).
			for a, sl := range r.sources {
				if sl == l {
					delete(r.sources, a)
				}
			}
		}
		return waitErr
	}
	return nil
}

// advanced records, for Status, the first tid fetched of partition p
// (if not 0 and none was) and the tid its fetch reached (if not 0).
func (r *replicator) advanced(p uint32, first, pos proto.Tid) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.mu.parts[p]
	if st == nil {
		return
	}
	if st.from == 0 {
		st.from = first
	}
	st.pos = max(st.pos, pos)
}

// progress returns the progress of the partitions being replicated,
// by partition.
func (r *replicator) progress() []Progress {
	r.mu.Lock()
	defer r.mu.Unlock()
	var l []Progress
	for _, p := range slices.Sorted(maps.Keys(r.mu.parts)) {
		st := r.mu.parts[p]
		if st.notified {
			continue
		}
		l = append(l, Progress{Partition: p, From: st.from, Pos: max(st.done, st.pos), To: st.upTo})
	}
	return l
}

func groupKeys(keys []backend.ObjectKey) []proto.SerialOids {
	var r []proto.SerialOids
	for _, k := range keys {
		if len(r) == 0 || r[len(r)-1].Serial != k.Tid {
			r = append(r, proto.SerialOids{Serial: k.Tid})
		}
		r[len(r)-1].Oids = append(r[len(r)-1].Oids, k.Oid)
	}
	return r
}

func txnFromProto(t *proto.AddTransaction) backend.TxnMeta {
	m := backend.TxnMeta{Tid: t.Tid, TTid: t.TTid, User: t.User, Description: t.Description,
		Ext: t.Extension, Oids: t.OidList, Packed: t.Packed}
	if p, ok := t.Pack.Get(); ok {
		o := &backend.PackOrder{ID: t.Tid, Partial: p.Partial, PackTid: p.PackTid}
		if a, ok := p.Approved.Get(); ok {
			o.State = backend.PackRejected
			if a {
				o.State = backend.PackApproved
			}
		}
		o.Oids, _ = p.Oids.Get()
		m.Pack = o
	}
	return m
}
