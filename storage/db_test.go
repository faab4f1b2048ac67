package storage

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"

	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

// groupLocks is a backend whose LockTransactions records its calls; the
// first one waits for release.
type groupLocks struct {
	backend.Backend
	mu      sync.Mutex
	calls   [][]backend.Lock
	started chan struct{}
	release chan struct{}
	err     error
}

func (g *groupLocks) LockTransactions(_ context.Context, locks []backend.Lock) error {
	g.mu.Lock()
	g.calls = append(g.calls, append([]backend.Lock(nil), locks...))
	first := len(g.calls) == 1
	g.mu.Unlock()
	if first {
		close(g.started)
		<-g.release
	}
	return g.err
}

// Locks that wait for the writer while another lock is written share the
// next write, and each gets its error.
func TestLockTransactionsGrouped(t *testing.T) {
	for _, wantErr := range []error{nil, errors.New("disk gone")} {
		g := &groupLocks{started: make(chan struct{}), release: make(chan struct{}), err: wantErr}
		s := newTxnStore(t.Context(), g, new(sync.Mutex))
		errs := make(chan error, 3)
		go func() { errs <- s.lockTransaction(11, 10, false) }()
		<-g.started
		// Two more queue behind the first write.
		var queued sync.WaitGroup
		for _, ttid := range []proto.Tid{20, 30} {
			queued.Go(func() { errs <- s.lockTransaction(ttid+1, ttid, ttid == 30) })
		}
		for { // until both are queued
			s.locks.Lock()
			n := len(s.locks.queue)
			s.locks.Unlock()
			if n == 2 {
				break
			}
			runtime.Gosched()
		}
		close(g.release)
		for range 3 {
			if err := <-errs; err != wantErr {
				t.Errorf("lock: %v, want %v", err, wantErr)
			}
		}
		queued.Wait()
		want := [][]backend.Lock{{{TTid: 10, Tid: 11}}, {{TTid: 20, Tid: 21}, {TTid: 30, Tid: 31, ApprovePack: true}}}
		if len(g.calls) != 2 || len(g.calls[1]) != 2 || g.calls[0][0] != want[0][0] ||
			!sameLocks(g.calls[1], want[1]) {
			t.Errorf("writes %+v, want %+v", g.calls, want)
		}
	}
}

// sameLocks compares lock lists in any order.
func sameLocks(a, b []backend.Lock) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		found := false
		for _, y := range b {
			found = found || x == y
		}
		if !found {
			return false
		}
	}
	return true
}
