package mysql

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend/sqlbackend"
)

// deferCommit is how long an unlock may stay uncommitted when nothing else
// is written (cluster.md §6.3: "COMMIT within 1 s"); a variable for tests.
var deferCommit = time.Second

// An unlock need not be durable (cluster.md §6.10: if it is lost,
// verification replays it from the locked ttrans row), so its statements
// are not sent at once: they are remembered (db.mu.unlocks) and sent
// first in the next write transaction, committed with it, or after
// deferCommit by a timer. A small commit then costs two InnoDB commits
// (vote and lock), each syncing the redo log, instead of three.
//
// Until they are committed, readers on the pool's connections do not see
// them: a read that could (a load of one of their oids, or any read of
// the transactions, the metadata or the temporary tables) commits them
// first. When the server loses the write connection, the unlocks are
// sent again in the next transaction: the lock committed their rows, and
// their statements do nothing when they were committed after all.

// unlocked is a deferred unlock.
type unlocked struct{ ttid, tid proto.Tid }

// pendingOids are the oids of the deferred unlocks, for readers.
type pendingOids struct {
	n  atomic.Int32 // deferred unlocks; 0: nothing to check
	mu sync.Mutex
	m  map[proto.Oid]struct{}
}

func (p *pendingOids) add(oids []proto.Oid) {
	p.mu.Lock()
	if p.m == nil {
		p.m = make(map[proto.Oid]struct{})
	}
	for _, oid := range oids {
		p.m[oid] = struct{}{}
	}
	p.mu.Unlock()
	p.n.Add(1)
}

func (p *pendingOids) clear() {
	p.mu.Lock()
	clear(p.m)
	p.mu.Unlock()
	p.n.Store(0)
}

func (p *pendingOids) any() bool { return p.n.Load() != 0 }

func (p *pendingOids) has(oid proto.Oid) bool {
	if !p.any() {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.m[oid]
	return ok
}

// applyUnlocks adds the deferred unlocks to a write transaction that
// begins; db.mu must be held.
func (db *DB) applyUnlocks(ctx context.Context, tx sqlbackend.Tx) error {
	for _, u := range db.mu.unlocks {
		if err := sqlbackend.UnlockTx(ctx, tx, u.ttid, u.tid); err != nil {
			return err
		}
	}
	return nil
}

// unlocksCommitted forgets the deferred unlocks once a write transaction
// that applied them committed; db.mu must be held.
func (db *DB) unlocksCommitted() {
	if len(db.mu.unlocks) == 0 {
		return
	}
	db.mu.unlocks = db.mu.unlocks[:0]
	db.pending.clear()
}

// deferUnlock remembers the unlock of ttid, whose vote wrote oids; db.mu
// must be held.
func (db *DB) deferUnlock(ttid, tid proto.Tid, oids []proto.Oid) {
	db.mu.unlocks = append(db.mu.unlocks, unlocked{ttid, tid})
	db.pending.add(oids)
	if db.mu.timer == nil {
		db.mu.timer = time.AfterFunc(deferCommit, db.commitIdle)
	} else if len(db.mu.unlocks) == 1 {
		db.mu.timer.Reset(deferCommit)
	}
}

// commitUnlocks commits the deferred unlocks; db.mu must be held.
func (db *DB) commitUnlocks(ctx context.Context) error {
	if len(db.mu.unlocks) == 0 {
		return nil
	}
	return db.writeBatch(ctx, func(*batchTx) error { return nil })
}

// commitIdle is the timer's commit of the unlocks that no write carried;
// after a failure it tries again later.
func (db *DB) commitIdle() {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.mu.closed || len(db.mu.unlocks) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := db.commitUnlocks(ctx); err != nil {
		db.log.Warn("commit of deferred unlocks failed; trying again", "unlocks", len(db.mu.unlocks), "err", err)
		db.mu.timer.Reset(deferCommit)
	}
}

// settle commits the deferred unlocks, if any, for a read that must see
// them.
func (db *DB) settle(ctx context.Context) error {
	if !db.pending.any() {
		return nil
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.mu.closed {
		return nil // the read fails by itself
	}
	n := len(db.mu.unlocks)
	if err := db.commitUnlocks(ctx); err != nil {
		return fmt.Errorf("commit %d deferred unlocks before a read: %w", n, err)
	}
	return nil
}
