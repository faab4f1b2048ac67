package nodelog

import (
	"syscall"
	"unsafe"
)

// ignoreSIGRTMIN sets SIGRTMIN (34) to be ignored. The Go runtime keeps
// signal 34 for itself (musl's SIGSYNCCALL, golang/go#39343): os/signal
// cannot catch it and leaves its default action, which kills the
// process, whereas neoppod's tools send it to any NEO process (neolog -F).
// Ignoring it needs no handler of ours, so the kernel's sigaction is set
// directly.
func ignoreSIGRTMIN() error {
	act := struct {
		handler  uintptr
		flags    uint64
		restorer uintptr
		mask     uint64
	}{handler: 1} // SIG_IGN
	_, _, errno := syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sigRTMin), uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}
