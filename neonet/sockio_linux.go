package neonet

import (
	"io"
	"os"
	"syscall"
	"unsafe"
)

// The link's reads and writes of a plain socket are raw system calls on
// its non-blocking descriptor, waiting for readiness through the runtime's
// poller as net.Conn does. A read or write of a non-blocking socket never
// blocks, so it needs none of what the runtime does around a system call
// that may (syscall.Syscall): in particular, the first system call after
// the process was idle wakes the runtime's monitor thread, which then
// sleeps again: two more context switches per round trip of an otherwise
// idle client.

// readSock reads into b (len(b) > 0) from the link's socket, as
// conn.Read does (io.EOF at the end, the deadline's error).
func (l *Link) readSock(b []byte) (int, error) {
	if l.raw == nil {
		return l.conn.Read(b)
	}
	var n int
	var rerr error
	err := l.raw.Read(func(fd uintptr) bool {
		for {
			r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
			switch {
			case e == syscall.EINTR:
				continue
			case e == syscall.EAGAIN:
				return false // wait until readable
			case e != 0:
				rerr = os.NewSyscallError("read", e)
			case r == 0:
				rerr = io.EOF
			default:
				n = int(r)
			}
			return true
		}
	})
	if err != nil {
		return 0, err
	}
	return n, rerr
}

// writeSock writes all of b to the link's socket, as conn.Write does.
func (l *Link) writeSock(b []byte) (int, error) {
	if l.raw == nil {
		return l.conn.Write(b)
	}
	var n int
	var werr error
	err := l.raw.Write(func(fd uintptr) bool {
		for n < len(b) {
			r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&b[n])), uintptr(len(b)-n))
			switch {
			case e == syscall.EINTR:
				continue
			case e == syscall.EAGAIN:
				return false // wait until writable
			case e != 0:
				werr = os.NewSyscallError("write", e)
				return true
			}
			n += int(r)
		}
		return true
	})
	if err == nil {
		err = werr
	}
	return n, err
}
