package storage

import (
	"sync"
	"testing"
	"time"
)

func TestWorkersRunConcurrently(t *testing.T) {
	// run never waits for another function: n functions that wait for
	// each other all end.
	var w workers
	defer w.close()
	const n = 3 * maxIdleWorkers
	var all sync.WaitGroup
	all.Add(n)
	done := make(chan struct{})
	for range n {
		w.run(func() {
			all.Done()
			all.Wait()
		})
	}
	go func() { all.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("functions run by workers did not all run at once")
	}
	// Back to idle: at most maxIdleWorkers wait.
	deadline := time.Now().Add(10 * time.Second)
	for w.idle.Load() != maxIdleWorkers {
		if time.Now().After(deadline) {
			t.Fatalf("%d idle workers, want %d", w.idle.Load(), maxIdleWorkers)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestWorkersReuseAndClose(t *testing.T) {
	var w workers
	ran := make(chan struct{})
	w.run(func() { ran <- struct{}{} })
	<-ran
	waitIdle := func(want int32) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for w.idle.Load() != want {
			if time.Now().After(deadline) {
				t.Fatalf("%d idle workers, want %d", w.idle.Load(), want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitIdle(1)
	// The idle goroutine takes the next function: none is started.
	w.run(func() { ran <- struct{}{} })
	<-ran
	waitIdle(1)
	w.close()
	waitIdle(0)
	// After close, functions still run.
	w.run(func() { ran <- struct{}{} })
	<-ran
	w.close()
}

// deep uses about n KiB of stack, as a request that reaches SQLite does.
//
//go:noinline
func deep(n int) byte {
	var frame [1024]byte
	frame[n%len(frame)] = byte(n)
	if n == 0 {
		return frame[0]
	}
	return deep(n-1) + frame[n%len(frame)]
}

// BenchmarkDeepRequest compares, for a function that needs 64 KiB of
// stack, a new goroutine per call with the node's workers.
func BenchmarkDeepRequest(b *testing.B) {
	b.Run("go", func(b *testing.B) {
		done := make(chan struct{})
		for range b.N {
			go func() {
				deep(64)
				done <- struct{}{}
			}()
			<-done
		}
	})
	b.Run("workers", func(b *testing.B) {
		var w workers
		defer w.close()
		done := make(chan struct{})
		for range b.N {
			w.run(func() {
				deep(64)
				done <- struct{}{}
			})
			<-done
		}
	})
}
