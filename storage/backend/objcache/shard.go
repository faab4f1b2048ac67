package objcache

import (
	"sync"

	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

// entryOverhead is what an entry costs besides its data: the entry itself
// (about 120 bytes) and its map slot, rounded up.
const entryOverhead = 160

// entry is one cached revision, linked in its shard's LRU list.
type entry struct {
	obj        backend.Object
	size       int64
	prev, next *entry
}

// shard is a map + LRU list with a byte budget. It is owned by mu: every
// field is read and written with mu held. Lock order: a goroutine holds
// at most one shard's mu, and never together with cache.txns.
type shard struct {
	mu struct {
		sync.Mutex
		gen     uint64 // bumped by every invalidation of this shard
		m       map[proto.Oid]*entry
		lru     entry // sentinel: lru.next is the most recent
		bytes   int64
		max     int64
		hits    uint64
		misses  uint64
		evicted uint64
	}
}

func (s *shard) init(max int64) {
	s.mu.m = make(map[proto.Oid]*entry)
	s.mu.lru.next, s.mu.lru.prev = &s.mu.lru, &s.mu.lru
	s.mu.max = max
}

// hit reports whether e answers Load(oid, at, before).
func (e *entry) hit(at, before proto.Tid) bool {
	o := &e.obj
	switch {
	case at != proto.InvalidTid:
		return o.Serial == at
	case before != proto.InvalidTid:
		return o.Serial < before && (o.NextSerial == proto.InvalidTid || before <= o.NextSerial)
	default:
		return o.NextSerial == proto.InvalidTid
	}
}

func (s *shard) unlinkLocked(e *entry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (s *shard) pushFrontLocked(e *entry) {
	h := &s.mu.lru
	e.prev, e.next = h, h.next
	h.next.prev = e
	h.next = e
}

func (s *shard) touchLocked(e *entry) {
	if s.mu.lru.next != e {
		s.unlinkLocked(e)
		s.pushFrontLocked(e)
	}
}

func (s *shard) removeLocked(e *entry) {
	s.unlinkLocked(e)
	delete(s.mu.m, e.obj.Oid)
	s.mu.bytes -= e.size
}

// insertLocked caches o, unless it does not fit or would replace the
// latest revision of its oid by an older one.
func (s *shard) insertLocked(o *backend.Object) {
	size := int64(cap(o.Data)) + entryOverhead // what the entry keeps alive
	if size > s.mu.max {
		return
	}
	if old := s.mu.m[o.Oid]; old != nil {
		if old.obj.NextSerial == proto.InvalidTid && o.NextSerial != proto.InvalidTid {
			// Loads of old revisions (undo, replication feed) must not
			// push out the revision that most loads ask for.
			return
		}
		s.removeLocked(old)
	}
	e := &entry{obj: *o, size: size}
	s.mu.m[o.Oid] = e
	s.pushFrontLocked(e)
	s.mu.bytes += size
	for s.mu.bytes > s.mu.max {
		s.removeLocked(s.mu.lru.prev)
		s.mu.evicted++
	}
}

// invalidateLocked removes oid and makes fills started before fail.
func (s *shard) invalidateLocked(oid proto.Oid) {
	s.mu.gen++
	if e := s.mu.m[oid]; e != nil {
		s.removeLocked(e)
	}
}

// clearLocked removes every entry and makes fills started before fail.
func (s *shard) clearLocked() {
	s.mu.gen++
	clear(s.mu.m)
	s.mu.lru.next, s.mu.lru.prev = &s.mu.lru, &s.mu.lru
	s.mu.bytes = 0
}
