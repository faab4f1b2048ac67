package storage

// Replication from the upstream cluster, for a storage of a backup
// cluster (cluster.md §8.9). The master orders it per partition with
// Replicate(tid, upstream name, {partition: address}):
//
//	upstream name set   fetch from that upstream storage (anonymous link)
//	upstream name ""    fetch from that storage of this cluster (the primary cell)
//	address nil         nothing new up to tid: just advance
//
// Each readable cell's resume point (done: the tid up to which the cell
// has all data) lives in memory; the node's backup tid, persisted at most
// once a second and used to cut reads, is the smallest of them. Fetching
// reuses the transactions-then-objects protocol of internal replication
// (replication.go), without saving the cell's resume point.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/parttab"
	"github.com/neogo/neo/proto"
)

// backupSaveEvery bounds how often the backup tid is persisted (each
// save is durable: an fsync).
const backupSaveEvery = time.Second

// backupOrder is the last Replicate order of one partition.
type backupOrder struct {
	upTo     proto.Tid
	upstream string // "": a storage of this cluster
	addr     proto.Addr
}

// backupReplica is the state of replication from upstream, guarded by
// replicator.mu.
type backupReplica struct {
	done     map[uint32]proto.Tid // readable partitions: all data <= done
	orders   map[uint32]backupOrder
	stopping bool // STOPPING_BACKUP: no more fetching from upstream
	// cancel ends the fetch from upstream in progress, if any, of
	// partition fetching from fetchingFrom.
	cancel       context.CancelFunc
	fetching     uint32
	fetchingFrom proto.Addr

	saved   proto.Tid // backup tid last persisted
	savedAt time.Time
	// failed is when the order of a partition last failed: it is tried
	// again backupRetry later, or at once when the master replaces it.
	failed map[uint32]time.Time
}

// backupRetry is the pause before an order that failed is tried again.
const backupRetry = time.Second

// startBackup enters backup mode (StartOperation(backup=true)): the
// backup tid is the last tid if the database was not a backup one yet;
// every readable cell resumes after it.
func (r *replicator) startBackup(ctx context.Context) error {
	n := r.n
	n.wmu.Lock()
	defer n.wmu.Unlock()
	meta, err := n.db.Meta(ctx)
	if err != nil {
		return err
	}
	readable := n.ownOffsets((*parttab.Table).ReadableOffsets)
	if meta.BackupTid == proto.InvalidTid {
		ids, err := n.db.LastIDs(ctx, readable)
		if err != nil {
			return err
		}
		meta.BackupTid = proto.ZeroTid
		if ids.LastTid != proto.InvalidTid {
			meta.BackupTid = ids.LastTid
		}
		if err := n.db.SetMeta(ctx, meta); err != nil {
			return fmt.Errorf("storage: save backup tid: %w", err)
		}
	}
	bk := &backupReplica{done: map[uint32]proto.Tid{}, orders: map[uint32]backupOrder{}, saved: meta.BackupTid,
		failed: map[uint32]time.Time{}}
	for _, p := range readable {
		bk.done[p] = meta.BackupTid
	}
	r.mu.Lock()
	r.mu.bk = bk
	r.mu.Unlock()
	n.log.Info("backup mode", "backup_tid", meta.BackupTid)
	return nil
}

// stopBackup leaves backup mode (StartOperation(backup=false)).
func (r *replicator) stopBackup() {
	r.mu.Lock()
	if bk := r.mu.bk; bk != nil && bk.cancel != nil {
		bk.cancel()
	}
	r.mu.bk = nil
	r.mu.Unlock()
}

// stoppingBackup is told the cluster state: in STOPPING_BACKUP nothing
// more is fetched from upstream, the fetch in progress is cancelled.
func (r *replicator) stoppingBackup(stopping bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	bk := r.mu.bk
	if bk == nil {
		return
	}
	bk.stopping = stopping
	if !stopping {
		return
	}
	for p, o := range bk.orders {
		if o.upstream != "" {
			delete(bk.orders, p)
		}
	}
	if bk.cancel != nil {
		bk.cancel()
	}
}

// order records a Replicate order of the master.
func (r *replicator) order(m *proto.Replicate) {
	kick, advanced := false, false
	r.mu.Lock()
	bk := r.mu.bk
	if bk == nil {
		r.mu.Unlock()
		r.n.log.Warn("Replicate outside backup mode ignored", "tid", m.Tid, "upstream", m.UpstreamName)
		return
	}
	for _, s := range m.SourceDict {
		done, ok := bk.done[s.Partition]
		if !ok {
			continue // not readable here (any more)
		}
		if s.Addr.IsZero() {
			// Nothing new up to m.Tid, for a cell that has everything
			// up to the previous upstream tid.
			if o, busy := bk.orders[s.Partition]; busy && o.upTo > done {
				r.n.log.Debug("no-data order while replicating ignored", "partition", s.Partition, "tid", m.Tid)
				continue
			}
			if m.Tid > done {
				bk.done[s.Partition] = m.Tid
				advanced = true
			}
			continue
		}
		if bk.stopping && m.UpstreamName != "" {
			continue
		}
		bk.orders[s.Partition] = backupOrder{upTo: m.Tid, upstream: m.UpstreamName, addr: s.Addr}
		delete(bk.failed, s.Partition)
		kick = true
		if bk.cancel != nil && bk.fetching == s.Partition && bk.fetchingFrom != s.Addr {
			// Another source: the master saw the one in use go.
			bk.cancel()
		}
	}
	r.mu.Unlock()
	if kick {
		r.kick()
	}
	if advanced && r.packKick != nil {
		// A pack order may wait for this cell (backupPast); no fetch
		// will report progress for it.
		r.packKick()
	}
}

// replicatedInternally: an OUT_OF_DATE cell of p replicated up to tid
// and becomes readable; in backup mode it resumes from there.
func (r *replicator) replicatedInternally(p uint32, tid proto.Tid) {
	r.mu.Lock()
	if bk := r.mu.bk; bk != nil {
		bk.done[p] = tid
	}
	r.mu.Unlock()
}

// backupStep carries out the orders, reports what is done and saves the
// backup tid.
func (r *replicator) backupStep(ctx context.Context) error {
	n := r.n
	assigned := n.ownOffsets((*parttab.Table).AssignedOffsets)
	r.mu.Lock()
	bk := r.mu.bk
	if bk == nil {
		r.mu.Unlock()
		return nil
	}
	// A cell outdated meanwhile keeps its resume point until internal
	// replication sets it (replicatedInternally); the master orders
	// nothing for it meanwhile.
	for p := range bk.done {
		if !slices.Contains(assigned, p) {
			delete(bk.done, p)
			delete(bk.orders, p)
		}
	}
	parts := slices.Sorted(maps.Keys(bk.orders))
	r.mu.Unlock()

	progress := false
	for _, p := range parts {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.mu.Lock()
		o, ok := bk.orders[p]
		done := bk.done[p]
		if at, failed := bk.failed[p]; failed && time.Since(at) < backupRetry {
			r.mu.Unlock()
			continue
		}
		fctx, cancel := context.WithCancel(ctx)
		if o.upstream != "" {
			bk.cancel, bk.fetching, bk.fetchingFrom = cancel, p, o.addr
		}
		r.mu.Unlock()
		var err error
		if ok && o.upTo > done {
			err = r.fetchOrder(fctx, p, done+1, o)
		}
		cancel()
		r.mu.Lock()
		bk.cancel = nil
		if err == nil && ok {
			bk.done[p] = max(bk.done[p], o.upTo)
			if cur, ok := bk.orders[p]; ok && cur.upTo <= o.upTo {
				delete(bk.orders, p)
			}
		}
		r.mu.Unlock()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, context.Canceled) {
				r.mu.Lock()
				if cur, ok := bk.orders[p]; ok && cur == o {
					bk.failed[p] = time.Now()
				}
				r.mu.Unlock()
				// Logged here, not returned: the other orders go on.
				n.log.Warn("replication from upstream", "partition", p, "source", o.addr.String(), "upstream", o.upstream, "err", err)
			}
			continue
		}
		if ok {
			if err := r.master.Send(&proto.NotifyReplicationDone{Offset: p, Tid: o.upTo}); err != nil {
				return err
			}
			progress = true
		}
	}
	if progress && r.packKick != nil {
		r.packKick() // orders may wait for this progress
	}
	return r.saveBackupTid(ctx, false)
}

// fetchOrder fetches partition p from minTid to o.upTo from the source
// of the order.
func (r *replicator) fetchOrder(ctx context.Context, p uint32, minTid proto.Tid, o backupOrder) error {
	var l *storageLink
	var err error
	if o.upstream != "" {
		l, err = r.upstreamLink(ctx, o.upstream, o.addr)
	} else {
		n := r.n
		n.mu.Lock()
		var nid proto.NodeID
		if e := n.mu.nodes.ByAddr(o.addr); e != nil {
			nid = e.NID
		}
		n.mu.Unlock()
		if nid == 0 {
			return fmt.Errorf("no storage known at %s", o.addr)
		}
		l, err = n.dialStorage(ctx, nid, o.addr.String())
	}
	if err != nil {
		return err
	}
	return r.fetchRange(ctx, l, p, minTid, o.upTo, false)
}

// upstreamLink returns the link to the upstream storage at addr, dialing
// it if needed: an anonymous identification with the upstream cluster's
// name (protocol.md §5.6).
func (r *replicator) upstreamLink(ctx context.Context, cluster string, addr proto.Addr) (*storageLink, error) {
	key := cluster + "@" + addr.String()
	if l := r.upstream[key]; l != nil {
		select {
		case <-l.Done():
			delete(r.upstream, key)
		default:
			return l, nil
		}
	}
	sl, err := r.n.dialUpstreamStorage(ctx, cluster, addr)
	if err != nil {
		return nil, err
	}
	r.upstream[key] = sl
	r.n.log.Info("connected to upstream storage", "addr", addr.String(), "upstream", cluster)
	return sl, nil
}

// dialUpstreamStorage connects to the storage of the upstream cluster
// at addr: an anonymous identification with the upstream cluster's name
// (protocol.md §5.6). The caller closes the link.
func (n *Node) dialUpstreamStorage(ctx context.Context, cluster string, addr proto.Addr) (*storageLink, error) {
	sl := newStorageLink(n, 0)
	l, err := neonet.Dial(ctx, "tcp", addr.String(), neonet.Config{Logger: n.log, TLS: n.cfg.TLS, Handler: sl.received})
	if err != nil {
		return nil, fmt.Errorf("dial upstream storage %s: %w", addr, err)
	}
	n.mu.Lock()
	ts := n.mu.nodes.SelfIDTimestamp()
	n.mu.Unlock()
	var acc proto.AcceptIdentification
	if err := l.Ask(ctx, &proto.RequestIdentification{NodeType: proto.STORAGE, Addr: n.addr, ClusterName: cluster,
		IDTimestamp: ts, Extra: proto.Dict{}}, &acc); err != nil {
		l.Close()
		return nil, fmt.Errorf("identify to upstream storage %s: %w", addr, err)
	}
	if acc.NodeType != proto.STORAGE {
		l.Close()
		return nil, fmt.Errorf("upstream %s is a %v, not a storage", addr, acc.NodeType)
	}
	sl.Link = l
	return sl, nil
}

// saveBackupTid persists the node's backup tid (the smallest resume
// point of its readable cells) if it moved, at most once a second
// unless forced.
func (r *replicator) saveBackupTid(ctx context.Context, force bool) error {
	r.mu.Lock()
	bk := r.mu.bk
	if bk == nil || len(bk.done) == 0 {
		r.mu.Unlock()
		return nil
	}
	tid := proto.MaxTid
	for _, d := range bk.done {
		tid = min(tid, d)
	}
	if tid == bk.saved || !force && time.Since(bk.savedAt) < backupSaveEvery {
		r.mu.Unlock()
		return nil
	}
	r.mu.Unlock()
	n := r.n
	n.wmu.Lock()
	meta, err := n.db.Meta(ctx)
	if err == nil && meta.BackupTid != proto.InvalidTid {
		meta.BackupTid = tid
		err = n.db.SetMeta(ctx, meta)
	}
	n.wmu.Unlock()
	if err != nil {
		return fmt.Errorf("storage: save backup tid: %w", err)
	}
	r.mu.Lock()
	bk.saved, bk.savedAt = tid, time.Now()
	r.mu.Unlock()
	return nil
}

// closeUpstream closes the links to upstream storages (the replicator
// stopped).
func (r *replicator) closeUpstream() {
	for k, l := range r.upstream {
		l.Close()
		delete(r.upstream, k)
	}
}

// backupCut returns the tid up to which the cell of partition(x) has all
// data, in backup mode; persisted (the node's backup tid) if unknown.
func (n *Node) backupCut(x uint64, persisted proto.Tid) proto.Tid {
	n.mu.Lock()
	var p uint32
	ok := n.mu.pt != nil
	if ok {
		p = n.mu.pt.partition(x)
	}
	n.mu.Unlock()
	if !ok {
		return persisted
	}
	return n.backupCutPartition(p, persisted)
}

// backupCutPartition is backupCut for partition p.
func (n *Node) backupCutPartition(p uint32, persisted proto.Tid) proto.Tid {
	n.mu.Lock()
	r := n.mu.replicator
	n.mu.Unlock()
	if r == nil {
		return persisted
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if bk := r.mu.bk; bk != nil {
		if d, ok := bk.done[p]; ok {
			return d
		}
	}
	return persisted
}

// backupPast tells whether the cell of partition p may apply pack order
// id: always outside backup mode, else once it has all data up to id.
func (n *Node) backupPast(p uint32, id proto.Tid) bool {
	n.mu.Lock()
	r := n.mu.replicator
	n.mu.Unlock()
	if r == nil {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	bk := r.mu.bk
	if bk == nil {
		return true
	}
	d, ok := bk.done[p]
	return ok && d >= id
}
