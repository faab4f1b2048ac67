package sqlbackend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

// DeferCommit is how long an unlock may stay uncommitted when nothing
// else is written (cluster.md §6.3: "COMMIT within 1 s").
const DeferCommit = time.Second

// Unlocks are the unlocks a backend defers. An unlock need not be durable
// (cluster.md §6.10: if it is lost, verification replays it from the
// locked ttrans row), so its statements are not run at once: they are
// remembered and run first in the backend's next write transaction,
// committed with it, or after Delay by a timer. A small commit then costs
// two commits per storage (vote, lock) instead of three.
//
// Until they are committed, the backend's read connections do not see
// them: a read that could (a load of one of their oids: Has, or any read
// of the transactions, the metadata or the temporary tables: Settle)
// commits them first. A backend whose transaction failed runs them again
// in the next one: the lock committed their rows, and their statements
// do nothing when they were committed after all.
//
// Only the transactions voted since the process started are deferred
// (Voted): one voted before is committed at once by Unlock.
//
// The backend's write lock (Mu) guards every method but Has, Any and
// Settle, which readers call without it.
type Unlocks struct {
	// Mu is the backend's write lock.
	Mu *sync.Mutex
	// Commit commits a write transaction with nothing but the deferred
	// unlocks (the backend's write path Applies them); Mu is held. It
	// returns an error wrapping [backend.ErrClosed] once the backend is
	// closed.
	Commit func(context.Context) error
	Log    *slog.Logger
	// Delay is how long an unlock may wait for another write; DeferCommit
	// if 0. Read under Mu.
	Delay time.Duration

	voted   map[proto.Tid]vote // the votes not yet unlocked
	list    []unlocked
	timer   *time.Timer
	stopped bool        // the backend closes: nothing more is deferred
	pending pendingOids // readers' view of list
}

// unlocked is a deferred unlock.
type unlocked struct {
	ttid, tid proto.Tid
	rows      VoteRows
}

// vote is what a vote wrote.
type vote struct {
	oids []proto.Oid
	rows VoteRows
}

// Voted records the oids of the vote of ttid and the rows it wrote; its
// unlock may then be deferred, and runs only the statements these rows
// need. A second vote of ttid adds to the first.
func (u *Unlocks) Voted(ttid proto.Tid, oids []proto.Oid, rows VoteRows) {
	if u.voted == nil {
		u.voted = make(map[proto.Tid]vote)
	}
	if v, ok := u.voted[ttid]; ok {
		oids = append(slices.Clip(v.oids), oids...)
		rows = rows.Or(v.rows)
	}
	u.voted[ttid] = vote{oids, rows}
}

// Forget forgets the vote of ttid (aborted, or validated at once).
func (u *Unlocks) Forget(ttid proto.Tid) { delete(u.voted, ttid) }

// ForgetAll forgets every vote (unfinished data dropped).
func (u *Unlocks) ForgetAll() { clear(u.voted) }

// Unlock is UnlockTransaction: it takes Mu and defers the unlock of ttid
// as tid if ttid was voted since the process started; if not, or once the
// backend closes, commit runs it at once (and fails if closed).
func (u *Unlocks) Unlock(ttid, tid proto.Tid, commit func() error) error {
	u.Mu.Lock()
	defer u.Mu.Unlock()
	if u.deferUnlock(ttid, tid) {
		return nil
	}
	if err := commit(); err != nil {
		return fmt.Errorf("unlock %s as %s: %w", ttid, tid, err)
	}
	return nil
}

// deferUnlock remembers the unlock of ttid as tid if it may be deferred,
// and reports whether it did.
func (u *Unlocks) deferUnlock(ttid, tid proto.Tid) bool {
	v, ok := u.voted[ttid]
	if !ok || u.stopped {
		return false
	}
	delete(u.voted, ttid)
	u.list = append(u.list, unlocked{ttid, tid, v.rows})
	u.pending.add(v.oids)
	d := u.Delay
	if d == 0 {
		d = DeferCommit
	}
	if u.timer == nil {
		u.timer = time.AfterFunc(d, u.commitIdle)
	} else if len(u.list) == 1 {
		u.timer.Reset(d)
	}
	return true
}

// Len returns the number of deferred unlocks.
func (u *Unlocks) Len() int { return len(u.list) }

// Apply runs the deferred unlocks in a write transaction that begins.
func (u *Unlocks) Apply(ctx context.Context, tx Tx) error {
	for _, x := range u.list {
		if err := UnlockTx(ctx, tx, x.ttid, x.tid, x.rows); err != nil {
			return fmt.Errorf("deferred unlock of %s as %s: %w", x.ttid, x.tid, err)
		}
	}
	return nil
}

// Committed forgets the deferred unlocks once a write transaction that
// applied them committed.
func (u *Unlocks) Committed() {
	if len(u.list) == 0 {
		return
	}
	u.list = u.list[:0]
	u.pending.clear()
}

// CommitNow commits the deferred unlocks, if any.
func (u *Unlocks) CommitNow(ctx context.Context) error {
	if len(u.list) == 0 {
		return nil
	}
	return u.Commit(ctx)
}

// Stop stops the timer and the deferral: the backend closes.
func (u *Unlocks) Stop() {
	u.stopped = true
	if u.timer != nil {
		u.timer.Stop()
	}
}

// commitIdle is the timer's commit of the unlocks that no write carried;
// after a failure it tries again later.
func (u *Unlocks) commitIdle() {
	u.Mu.Lock()
	defer u.Mu.Unlock()
	if len(u.list) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := u.Commit(ctx); err != nil {
		if errors.Is(err, backend.ErrClosed) {
			return
		}
		u.Log.Warn("commit of deferred unlocks failed; trying again", "unlocks", len(u.list), "err", err)
		d := u.Delay
		if d == 0 {
			d = DeferCommit
		}
		u.timer.Reset(d)
	}
}

// Any reports whether unlocks are deferred; readers call it without Mu.
func (u *Unlocks) Any() bool { return u.pending.any() }

// Has reports whether a deferred unlock wrote oid; readers call it
// without Mu.
func (u *Unlocks) Has(oid proto.Oid) bool { return u.pending.has(oid) }

// Settle commits the deferred unlocks, if any, for a read that must see
// them; it takes Mu. A closed backend has nothing to settle: the read
// fails by itself.
func (u *Unlocks) Settle(ctx context.Context) error {
	if !u.pending.any() {
		return nil
	}
	u.Mu.Lock()
	defer u.Mu.Unlock()
	n := len(u.list)
	if err := u.CommitNow(ctx); err != nil && !errors.Is(err, backend.ErrClosed) {
		return fmt.Errorf("commit %d deferred unlocks before a read: %w", n, err)
	}
	return nil
}

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
