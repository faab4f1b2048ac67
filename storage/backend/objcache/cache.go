package objcache

import (
	"context"
	"math/bits"
	"slices"
	"sync"

	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

// Shard sizing: as many shards as fit with at least minShardBytes each,
// up to maxShards (a power of two).
const (
	minShardBytes = 1 << 20
	maxShards     = 64
)

// Wrap returns b with a cache of at most maxBytes of object revisions in
// front of Load and LastObjectTid (see the package doc). With maxBytes <=
// 0 it returns b itself. The result implements the optional interfaces b
// implements ([backend.StatsReporter]).
//
// Exactness of LastObjectTid, on which conflict detection relies: the
// storage node's transaction manager (storage/txn.go) calls it under its
// mutex and only for an oid that no transaction holds the write lock of;
// it unlocks a transaction (UnlockTransaction, which invalidates the
// transaction's oids here before returning) and releases its write and
// read locks under that same mutex. So LastObjectTid never runs between a
// commit and its invalidation, and client loads of the committed oids are
// delayed by the read locks until the invalidation is done. Writes not
// serialised with it (ReplicateObjects, run by replication without that
// mutex) invalidate before they return too: a call racing with one sees
// the state before or after it, as it would without the cache.
func Wrap(b backend.Backend, maxBytes int64) backend.Backend {
	if maxBytes <= 0 {
		return b
	}
	c := newCache(b, maxBytes)
	if sr, ok := b.(backend.StatsReporter); ok {
		return &statsCache{cache: c, sr: sr}
	}
	return c
}

// Stats are the counters of a cache.
type Stats struct {
	Hits, Misses, Evictions uint64
	Entries                 int
	Bytes                   int64 // data + per-entry overhead
}

// StatsOf returns the counters of the cache b is, if b was returned by
// [Wrap] with a positive size.
func StatsOf(b backend.Backend) (Stats, bool) {
	var c *cache
	switch x := b.(type) {
	case *cache:
		c = x
	case *statsCache:
		c = x.cache
	default:
		return Stats{}, false
	}
	var st Stats
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		st.Hits += s.mu.hits
		st.Misses += s.mu.misses
		st.Evictions += s.mu.evicted
		st.Entries += len(s.mu.m)
		st.Bytes += s.mu.bytes
		s.mu.Unlock()
	}
	return st, true
}

// cache is the decorator. It delegates every method explicitly (no
// embedding) so that a method added to [backend.Backend] fails to compile
// here until someone decides whether it invalidates. Its shards own the entries; txns, owned by its
// mutex, remembers the oids of voted transactions until they are unlocked.
type cache struct {
	b      backend.Backend
	shards []shard
	shift  uint // 64 - log2(len(shards))

	txns struct {
		sync.Mutex
		oids map[proto.Tid][]proto.Oid
		// objs: copies of the records of voted transactions that the
		// unlock caches as the latest revisions (write-through).
		objs map[proto.Tid][]backend.Object
	}

	// afterLoad, if set (tests), runs between the backend's Load and the
	// insertion of its answer.
	afterLoad func(oid proto.Oid)
}

// Unwrap implements [backend.Unwrapper].
func (c *cache) Unwrap() backend.Backend { return c.b }

// statsCache is a cache over a backend implementing StatsReporter.
type statsCache struct {
	*cache
	sr backend.StatsReporter
}

func (c *statsCache) Stats(ctx context.Context) (backend.Stats, error) { return c.sr.Stats(ctx) }

func newCache(b backend.Backend, maxBytes int64) *cache {
	n := 1
	for n < maxShards && maxBytes/int64(2*n) >= minShardBytes {
		n *= 2
	}
	c := &cache{b: b, shards: make([]shard, n), shift: uint(64 - bits.TrailingZeros(uint(n)))}
	for i := range c.shards {
		c.shards[i].init(maxBytes / int64(n))
	}
	c.txns.oids = make(map[proto.Tid][]proto.Oid)
	c.txns.objs = make(map[proto.Tid][]backend.Object)
	return c
}

// shard picks the shard of oid by Fibonacci hashing: oids are allocated
// in sequence and a node holds only some partitions (oid % np), so the
// low bits alone would leave shards unused.
func (c *cache) shard(oid proto.Oid) *shard {
	if c.shift == 64 {
		return &c.shards[0]
	}
	return &c.shards[(uint64(oid)*0x9e3779b97f4a7c15)>>c.shift]
}

// LoadCached implements [backend.CachedLoader]. A miss is not counted:
// the Load that follows counts it.
func (c *cache) LoadCached(oid proto.Oid, at, before proto.Tid) (*backend.Object, bool) {
	s := c.shard(oid)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.mu.m[oid]; e != nil && e.hit(at, before) {
		s.touchLocked(e)
		s.mu.hits++
		o := e.obj
		return &o, true
	}
	return nil, false
}

// Load implements [backend.Backend].
func (c *cache) Load(ctx context.Context, oid proto.Oid, at, before proto.Tid) (*backend.Object, error) {
	s := c.shard(oid)
	s.mu.Lock()
	if e := s.mu.m[oid]; e != nil && e.hit(at, before) {
		s.touchLocked(e)
		s.mu.hits++
		o := e.obj
		s.mu.Unlock()
		return &o, nil
	}
	s.mu.misses++
	gen := s.mu.gen
	s.mu.Unlock()

	o, err := c.b.Load(ctx, oid, at, before)
	if err != nil {
		return nil, err
	}
	if c.afterLoad != nil {
		c.afterLoad(oid)
	}
	s.mu.Lock()
	if s.mu.gen == gen {
		s.insertLocked(o)
	}
	s.mu.Unlock()
	return o, nil
}

// LastObjectTid implements [backend.Backend]. A miss does not fill: the
// backend's answer is only a tid (the loads that follow fill).
func (c *cache) LastObjectTid(ctx context.Context, oid proto.Oid) (proto.Tid, error) {
	s := c.shard(oid)
	s.mu.Lock()
	if e := s.mu.m[oid]; e != nil && e.obj.NextSerial == proto.InvalidTid {
		s.touchLocked(e)
		s.mu.hits++
		tid := e.obj.Serial
		s.mu.Unlock()
		return tid, nil
	}
	s.mu.misses++
	s.mu.Unlock()
	return c.b.LastObjectTid(ctx, oid)
}

// invalidate removes oids, bumping each touched shard's generation.
func (c *cache) invalidate(oids []proto.Oid) {
	for _, oid := range oids {
		s := c.shard(oid)
		s.mu.Lock()
		s.invalidateLocked(oid)
		s.mu.Unlock()
	}
}

// invalidateIf removes the entries for which drop is true, bumping every
// shard's generation.
func (c *cache) invalidateIf(drop func(*backend.Object) bool) {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		s.mu.gen++
		for _, e := range s.mu.m {
			if drop(&e.obj) {
				s.removeLocked(e)
			}
		}
		s.mu.Unlock()
	}
}

// invalidateAll empties every shard, bumping its generation.
func (c *cache) invalidateAll() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		s.clearLocked()
		s.mu.Unlock()
	}
}

// StoreTransaction implements [backend.Backend]: it remembers the oids of
// ttid (before the call: remembering too much is harmless) so that the
// unlock invalidates only them, and a copy of the records with data of
// their own, which the unlock caches: objects written are often read
// soon, by other clients (after the invalidation) or by the next
// transaction's conflict check. Undo records and deletions are only
// invalidated.
func (c *cache) StoreTransaction(ctx context.Context, ttid proto.Tid, records []backend.Record, meta *backend.TxnMeta) error {
	var objs []backend.Object
	for i := range records {
		r := &records[i]
		if r.DataSerial == proto.InvalidTid && r.HasData() {
			o := backend.Object{Record: *r, NextSerial: proto.InvalidTid}
			o.Data = slices.Clone(r.Data) // the caller's records are not ours to keep
			objs = append(objs, o)
		}
	}
	c.txns.Lock()
	oids := c.txns.oids[ttid]
	for i := range records {
		oids = append(oids, records[i].Oid)
	}
	c.txns.oids[ttid] = oids
	c.txns.objs[ttid] = append(c.txns.objs[ttid], objs...)
	c.txns.Unlock()
	return c.b.StoreTransaction(ctx, ttid, records, meta)
}

// committed invalidates what the commit of ttid as tid changed, then
// caches the revisions it wrote with data of their own as the latest.
// If the commit failed, ttid is remembered still (it may be retried).
func (c *cache) committed(ttid, tid proto.Tid, err error) {
	c.txns.Lock()
	oids, ok := c.txns.oids[ttid]
	objs := c.txns.objs[ttid]
	if ok && err == nil {
		delete(c.txns.oids, ttid)
		delete(c.txns.objs, ttid)
	}
	c.txns.Unlock()
	if !ok {
		c.invalidateAll()
		return
	}
	c.invalidate(oids) // also fails the fills started before
	if err != nil {
		return
	}
	for i := range objs {
		o := &objs[i]
		o.Serial = tid
		s := c.shard(o.Oid)
		s.mu.Lock()
		s.insertLocked(o)
		s.mu.Unlock()
	}
}

// UnlockTransaction implements [backend.Backend].
func (c *cache) UnlockTransaction(ctx context.Context, ttid, tid proto.Tid) error {
	err := c.b.UnlockTransaction(ctx, ttid, tid)
	c.committed(ttid, tid, err)
	return err
}

// ValidateTransaction implements [backend.Backend].
func (c *cache) ValidateTransaction(ctx context.Context, ttid, tid proto.Tid) error {
	err := c.b.ValidateTransaction(ctx, ttid, tid)
	c.committed(ttid, tid, err)
	return err
}

// AbortTransaction implements [backend.Backend].
func (c *cache) AbortTransaction(ctx context.Context, ttid proto.Tid) error {
	c.txns.Lock()
	delete(c.txns.oids, ttid)
	delete(c.txns.objs, ttid)
	c.txns.Unlock()
	return c.b.AbortTransaction(ctx, ttid)
}

// DropUnfinishedData implements [backend.Backend].
func (c *cache) DropUnfinishedData(ctx context.Context) error {
	c.txns.Lock()
	clear(c.txns.oids)
	clear(c.txns.objs)
	c.txns.Unlock()
	return c.b.DropUnfinishedData(ctx)
}

// ReplicateObjects implements [backend.Backend].
func (c *cache) ReplicateObjects(ctx context.Context, partition uint32, add []backend.Record, del []backend.ObjectKey, cellTid proto.Tid) error {
	err := c.b.ReplicateObjects(ctx, partition, add, del, cellTid)
	oids := make([]proto.Oid, 0, len(add)+len(del))
	for i := range add {
		oids = append(oids, add[i].Oid)
	}
	for _, k := range del {
		oids = append(oids, k.Oid)
	}
	c.invalidate(oids)
	return err
}

// ChangePartitionTable implements [backend.Backend].
func (c *cache) ChangePartitionTable(ctx context.Context, ptid proto.PTid, numReplicas int, changes []backend.CellChange, reset bool) error {
	err := c.b.ChangePartitionTable(ctx, ptid, numReplicas, changes, reset)
	if reset || slices.ContainsFunc(changes, func(ch backend.CellChange) bool { return ch.State == proto.DISCARDED }) {
		c.invalidateAll()
	}
	return err
}

// Pack implements [backend.Backend]. Packing runs in many slices while
// the node serves loads: rather than emptying the cache at each, it drops
// the entries a pack at packTid may delete (cluster.md §8.7 step 4: for
// each oid, m being its greatest tid <= packTid, records before m, and
// the record at m if it has no data), in every partition (the cache does
// not know the number of partitions), and undo entries pointing at or
// below packTid for good measure. The latest revision of an oid with data
// stays: pack never deletes nor changes it.
func (c *cache) Pack(ctx context.Context, partition uint32, packTid proto.Tid, oids []proto.Oid, minOid proto.Oid, limit int) (proto.Oid, error) {
	next, err := c.b.Pack(ctx, partition, packTid, oids, minOid, limit)
	c.invalidateIf(func(o *backend.Object) bool {
		return (o.NextSerial != proto.InvalidTid && o.NextSerial <= packTid) ||
			(!o.HasData() && o.Serial <= packTid) ||
			(o.DataSerial != proto.InvalidTid && o.DataSerial <= packTid)
	})
	return next, err
}

// DropPartition implements [backend.Backend].
func (c *cache) DropPartition(ctx context.Context, partition uint32, limit int) (bool, error) {
	done, err := c.b.DropPartition(ctx, partition, limit)
	c.invalidateAll()
	return done, err
}

// Truncate implements [backend.Backend].
func (c *cache) Truncate(ctx context.Context, tid proto.Tid, partitions []uint32) error {
	err := c.b.Truncate(ctx, tid, partitions)
	c.invalidateAll()
	return err
}

// Close implements [backend.Backend].
func (c *cache) Close() error {
	err := c.b.Close()
	c.invalidateAll()
	c.txns.Lock()
	clear(c.txns.oids)
	clear(c.txns.objs)
	c.txns.Unlock()
	return err
}

var (
	_ backend.Backend       = (*cache)(nil)
	_ backend.CachedLoader  = (*cache)(nil)
	_ backend.StatsReporter = (*statsCache)(nil)
)
