package client

import (
	"context"
	"slices"
	"sync"

	"github.com/neogo/neo/proto"
)

// Invalidation tells that transaction Tid committed and modified Oids
// (cluster.md §6.11). All, set after a reconnection when commits may
// have been missed, means that any object may have changed up to Tid:
// a cache must drop every current entry (and everything if Tid went
// backwards, after a truncation).
type Invalidation struct {
	Tid  proto.Tid
	Oids []proto.Oid
	All  bool
}

// Watch returns a channel receiving the invalidations of every commit
// from the call on, this client's own included, in tid order; it is
// closed when ctx ends or the client closes. Events are queued without
// bound for a slow reader, so that the master connection never waits.
func (c *Client) Watch(ctx context.Context) <-chan Invalidation {
	w := &watcher{kick: make(chan struct{}, 1), stop: make(chan struct{})}
	out := make(chan Invalidation)
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		close(out)
		return out
	}
	c.mu.watchers[w] = struct{}{}
	c.mu.Unlock()
	c.wg.Go(func() {
		defer close(out)
		defer func() {
			c.mu.Lock()
			delete(c.mu.watchers, w)
			c.mu.Unlock()
		}()
		for {
			inv, ok := w.next()
			if !ok {
				select {
				case <-w.kick:
					continue
				case <-w.stop:
					return
				case <-ctx.Done():
					return
				}
			}
			select {
			case out <- inv:
			case <-w.stop:
				return
			case <-ctx.Done():
				return
			}
		}
	})
	return out
}

// watcher is the queue of one Watch channel; mu guards q.
type watcher struct {
	mu       sync.Mutex
	q        []Invalidation
	kick     chan struct{} // cap 1: q became non-empty
	stop     chan struct{} // closed when the client closes
	stopOnce sync.Once
}

func (w *watcher) push(inv Invalidation) {
	w.mu.Lock()
	w.q = append(w.q, inv)
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *watcher) next() (Invalidation, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.q) == 0 {
		return Invalidation{}, false
	}
	inv := w.q[0]
	w.q[0] = Invalidation{}
	w.q = w.q[1:]
	return inv, true
}

func (w *watcher) close() { w.stopOnce.Do(func() { close(w.stop) }) }

// emitLocked publishes an invalidation, or holds it while one of our
// transactions waits for AnswerTransactionFinished: that answer can be
// overtaken, on its way to Finish, by the invalidations of later
// commits, and events must go out in tid order. Loads read up to it at
// once: the commit happened, and our own must be seen as soon as Finish
// returns. Callers hold c.mu.
func (c *Client) emitLocked(inv Invalidation) {
	if inv.All || inv.Tid > c.mu.readTid {
		c.mu.readTid = inv.Tid // All: after a truncation it may go back
	}
	if c.mu.finishing > 0 {
		c.mu.held = append(c.mu.held, inv)
		return
	}
	c.publishLocked(inv)
}

// flushHeldLocked publishes the held invalidations in tid order.
func (c *Client) flushHeldLocked() {
	slices.SortStableFunc(c.mu.held, func(a, b Invalidation) int {
		switch {
		case a.Tid < b.Tid:
			return -1
		case a.Tid > b.Tid:
			return 1
		}
		return 0
	})
	for _, inv := range c.mu.held {
		c.publishLocked(inv)
	}
	c.mu.held = nil
}

// publishLocked moves the last tid forward and tells the watchers.
func (c *Client) publishLocked(inv Invalidation) {
	if !inv.All && inv.Tid <= c.mu.lastTid {
		return // already known (e.g. after a reconnection)
	}
	c.mu.lastTid = inv.Tid
	for w := range c.mu.watchers {
		w.push(inv)
	}
}
