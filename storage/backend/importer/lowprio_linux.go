package importer

import (
	"runtime"
	"syscall"
	"time"
)

// lowPriority makes the calling goroutine run at the lowest CPU priority
// (nice 19) on a thread of its own, so that the import yields the CPUs
// to the node serving clients (cluster.md §8.10: "at low priority"). The
// goroutine must end without unlocking: its thread then ends with it, and
// no other goroutine ever runs at that priority.
func lowPriority() {
	runtime.LockOSThread()
	syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), 19)
}

// rusageThread is Linux's RUSAGE_THREAD, which package syscall lacks.
const rusageThread = 1

// threadCPU returns the CPU time of the calling thread so far; the
// goroutine must be locked to it (lowPriority). 0 if unknown.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(rusageThread, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
