package importer

import (
	"runtime"
	"syscall"
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
