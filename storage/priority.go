package storage

// Client traffic goes before replication (cluster.md §8.5) and replica
// checks (§8.6): a storage that serves clients while it feeds another
// storage, replicates from one, or computes the digests of a check, must
// not make the clients wait behind bulk copying or hashing. Both sides of
// replication share the disk and the CPU with client requests, so they
// yield every yieldEvery records of bulk work (checks: at each chunk)
// while any client request is in progress. A yield is bounded so that a steady
// stream of client requests cannot starve replication: a node that never
// catches up would stay OUT_OF_DATE, which costs more than a few
// milliseconds of client latency.

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// yieldBound is the longest a replication step waits for client requests
// to end: short enough that replication keeps moving under a steady client
// load, long enough to cover a typical load or store.
const yieldBound = 10 * time.Millisecond

// yieldEvery is how many records replication handles between two yields,
// on the feeding side (records sent) and on the replica (records written):
// yielding at every record would let a steady client load slow a chunk of
// fetchCount records by up to fetchCount bounds, and yielding at every
// request would add bounds to a small catch-up (a storage restarted after
// a few commits, 12 partitions: 4 yields each, up to 0.5 s) that costs the
// clients no more than one of their own commits.
const yieldEvery = 100

// clientPriority counts the client requests in progress and lets
// replication wait for them. The zero value is ready for use.
type clientPriority struct {
	busy atomic.Int64 // requests in progress; read without mu on the fast path

	mu sync.Mutex
	// idle, made by a waiter, is closed (and cleared) when busy drops to
	// 0: a request costs no channel, nor mu, when nobody waits.
	idle chan struct{}

	// expired, when set (tests), replaces the yieldBound timer of yield,
	// so that a test decides when the bound is reached.
	expired <-chan time.Time
}

// begin marks a client request in progress; end must follow.
func (p *clientPriority) begin() {
	p.busy.Add(1)
}

// end marks a client request done, waking the yielding steps when it was
// the last one.
func (p *clientPriority) end() {
	if n := p.busy.Add(-1); n > 0 {
		return
	} else if n < 0 {
		panic("storage: clientPriority.end without begin")
	}
	// Every drop to 0 is followed by this check under mu, so a waiter
	// that saw busy requests under mu is woken by the last one's end; a
	// request begun meanwhile keeps it waiting.
	p.mu.Lock()
	if p.idle != nil && p.busy.Load() == 0 {
		close(p.idle)
		p.idle = nil
	}
	p.mu.Unlock()
}

// yield waits while client requests are in progress, at most yieldBound.
// It reports whether it waited. It costs one atomic load when no client
// request is in progress.
func (p *clientPriority) yield(ctx context.Context) bool {
	if p.busy.Load() == 0 {
		return false
	}
	if p.expired != nil {
		return p.wait(ctx, p.expired)
	}
	t := time.NewTimer(yieldBound)
	defer t.Stop()
	return p.wait(ctx, t.C)
}

// wait waits until no client request is in progress, expired fires or ctx
// is done, and reports whether it waited. It is yield with the bound given
// as a channel, for the tests to fire.
func (p *clientPriority) wait(ctx context.Context, expired <-chan time.Time) bool {
	p.mu.Lock()
	if p.busy.Load() == 0 {
		p.mu.Unlock()
		return false
	}
	if p.idle == nil {
		p.idle = make(chan struct{})
	}
	idle := p.idle
	p.mu.Unlock()
	select {
	case <-idle:
	case <-expired:
	case <-ctx.Done():
	}
	return true
}
