package storage

import (
	"sync"
	"sync/atomic"
)

// maxIdleWorkers bounds the goroutines a node keeps waiting for work.
const maxIdleWorkers = 16

// workers runs functions in goroutines that outlive them. A request that
// reaches SQLite runs deep call stacks (the transpiled C has big frames):
// a new goroutine starts with a small stack and grows it by copying,
// doubling it several times, at every vote and parallel load (4-6% of a
// storage's CPU under commits, in runtime.copystack), while a goroutine
// kept for the next request keeps its grown stack. The zero value is
// ready; close ends the idle goroutines.
type workers struct {
	work     chan func() // unbuffered: a send succeeds only to an idle goroutine
	quit     chan struct{}
	idle     atomic.Int32
	initOnce sync.Once
	quitOnce sync.Once
}

func (w *workers) init() {
	w.initOnce.Do(func() {
		w.work = make(chan func())
		w.quit = make(chan struct{})
	})
}

// run runs f in an idle goroutine, or in a new one if none is idle: it
// never waits for another f to end.
func (w *workers) run(f func()) {
	w.init()
	select {
	case w.work <- f:
	default:
		go w.loop(f)
	}
}

// loop runs f, then what run hands it, until there are enough idle
// goroutines or close is called.
func (w *workers) loop(f func()) {
	for {
		f()
		if w.idle.Add(1) > maxIdleWorkers {
			w.idle.Add(-1)
			return
		}
		select {
		case f = <-w.work:
			w.idle.Add(-1)
		case <-w.quit:
			w.idle.Add(-1)
			return
		}
	}
}

// close makes the idle goroutines end, and those running end after
// their function; run still works after it (each f in a new goroutine).
func (w *workers) close() {
	w.init()
	w.quitOnce.Do(func() { close(w.quit) })
}
