package nodelog

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// SIGRTMIN as the C library (glibc) numbers it, and Python and kill(1)
// with it: neoppod's and neolog's "SIGRTMIN" (signals 32 and 33 are the
// C library's own). Go's syscall package names no real-time signal.
const sigRTMin = syscall.Signal(34)

// The log signals of cluster.md §10.2.
const (
	SigFlush  = sigRTMin     // neoppod: write the buffered records out; ignored by ours (see ignoreSIGRTMIN)
	SigReopen = sigRTMin + 1 // reopen the file (rotation by rename)
	SigDump   = sigRTMin + 2 // log the node's state
)

// HandleSignals handles the log signals until ctx ends or stop is called:
// SigReopen reopens l, SigDump calls dump (if not nil), which logs the
// node's state to log, then logs the node's links ([Log.LogLinks]). SigFlush, which a Go program cannot catch, is
// ignored: flush with neoctl flush_log. l may be nil (no log file): the
// signals are still handled, since their default action would kill the
// process. Every command running a node calls it once.
func HandleSignals(ctx context.Context, l *Log, log *slog.Logger, dump func(*slog.Logger)) (stop func()) {
	if err := ignoreSIGRTMIN(); err != nil {
		log.Warn("cannot ignore SIGRTMIN", "err", err)
	}
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, SigReopen, SigDump)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case s := <-ch:
				switch s {
				case SigReopen:
					if err := l.Reopen(); err != nil {
						log.Error("reopen log", "err", err)
					}
				case SigDump:
					if dump != nil {
						dump(log)
					}
					l.LogLinks(log)
				}
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		cancel()
		<-done
	}
}
