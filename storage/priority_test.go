package storage

import (
	"context"
	"testing"
	"time"
)

// waitDeadline bounds every wait of these tests.
const waitDeadline = 5 * time.Second

// startWait runs p.wait in a goroutine; the returned channel gives its
// result.
func startWait(ctx context.Context, p *clientPriority, expired <-chan time.Time) <-chan bool {
	done := make(chan bool, 1)
	go func() { done <- p.wait(ctx, expired) }()
	return done
}

// mustBlock fails unless done stays silent for a while: the step is
// waiting for the client request.
func mustBlock(t *testing.T, done <-chan bool) {
	t.Helper()
	select {
	case <-done:
		t.Fatal("replication or check step went on while a client request was in progress")
	case <-time.After(50 * time.Millisecond):
	}
}

// mustProceed fails unless done delivers waited within the deadline.
func mustProceed(t *testing.T, done <-chan bool, waited bool) {
	t.Helper()
	select {
	case got := <-done:
		if got != waited {
			t.Fatalf("wait reported waited=%v, want %v", got, waited)
		}
	case <-time.After(waitDeadline):
		t.Fatal("replication step still waiting")
	}
}

func TestClientPriority(t *testing.T) {
	ctx := context.Background()
	never := make(chan time.Time)

	t.Run("idle", func(t *testing.T) {
		var p clientPriority
		mustProceed(t, startWait(ctx, &p, never), false)
		p.begin()
		p.end()
		mustProceed(t, startWait(ctx, &p, never), false)
		if p.yield(ctx) {
			t.Fatal("yield waited with no client request in progress")
		}
	})

	t.Run("request ends", func(t *testing.T) {
		var p clientPriority
		p.begin()
		p.begin()
		done := startWait(ctx, &p, never)
		mustBlock(t, done)
		p.end()
		mustBlock(t, done) // one request still in progress
		p.end()
		mustProceed(t, done, true)
	})

	t.Run("request never ends", func(t *testing.T) {
		var p clientPriority
		p.begin()
		expired := make(chan time.Time, 1)
		done := startWait(ctx, &p, expired)
		mustBlock(t, done)
		expired <- time.Now()
		mustProceed(t, done, true)
	})

	t.Run("context done", func(t *testing.T) {
		var p clientPriority
		p.begin()
		cctx, cancel := context.WithCancel(ctx)
		done := startWait(cctx, &p, never)
		mustBlock(t, done)
		cancel()
		mustProceed(t, done, true)
	})

	t.Run("yield bound", func(t *testing.T) {
		var p clientPriority
		p.begin()
		start := time.Now()
		if !p.yield(ctx) {
			t.Fatal("yield did not wait with a client request in progress")
		}
		if d := time.Since(start); d < yieldBound || d > waitDeadline {
			t.Fatalf("yield returned after %v, want about %v", d, yieldBound)
		}
		// A new request after the previous ones ended blocks again.
		p.end()
		p.begin()
		done := startWait(ctx, &p, never)
		mustBlock(t, done)
		p.end()
		mustProceed(t, done, true)
	})
	// Each serial load begins and ends one: nothing allocated when no
	// replication step waits.
	t.Run("no allocation", func(t *testing.T) {
		var p clientPriority
		if n := testing.AllocsPerRun(100, func() { p.begin(); p.end() }); n != 0 {
			t.Errorf("%v allocations per request", n)
		}
	})
	// Two waiters, one request: both proceed at its end, and a waiter
	// arriving after sees no request.
	t.Run("waiters share the end", func(t *testing.T) {
		var p clientPriority
		p.begin()
		a, b := startWait(ctx, &p, never), startWait(ctx, &p, never)
		mustBlock(t, a)
		mustBlock(t, b)
		p.end()
		mustProceed(t, a, true)
		mustProceed(t, b, true)
		mustProceed(t, startWait(ctx, &p, never), false)
	})
}

func BenchmarkClientPriority(b *testing.B) {
	b.ReportAllocs()
	var p clientPriority
	ctx := context.Background()
	for b.Loop() {
		p.begin()
		p.end()
		p.yield(ctx)
	}
}
