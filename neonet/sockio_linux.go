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

// sockIO is the state of one raw read or write: its callback is made once
// per link (a closure per call would be allocated per call). Reads are
// done by the holder of the read role, writes by the owner of the flush:
// one at a time each.
type sockIO struct {
	b   []byte
	n   int
	err error
	fn  func(fd uintptr) bool
}

// initSockIO makes the callbacks of the link's raw reads and writes.
func (l *Link) initSockIO() {
	l.rsock.fn = l.rsock.read
	l.wsock.fn = l.wsock.write
}

func (s *sockIO) read(fd uintptr) bool {
	for {
		r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&s.b[0])), uintptr(len(s.b)))
		switch {
		case e == syscall.EINTR:
			continue
		case e == syscall.EAGAIN:
			return false // wait until readable
		case e != 0:
			s.err = os.NewSyscallError("read", e)
		case r == 0:
			s.err = io.EOF
		default:
			s.n = int(r)
		}
		return true
	}
}

func (s *sockIO) write(fd uintptr) bool {
	for s.n < len(s.b) {
		r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&s.b[s.n])), uintptr(len(s.b)-s.n))
		switch {
		case e == syscall.EINTR:
			continue
		case e == syscall.EAGAIN:
			return false // wait until writable
		case e != 0:
			s.err = os.NewSyscallError("write", e)
			return true
		}
		s.n += int(r)
	}
	return true
}

// readSock reads into b (len(b) > 0) from the link's socket, as
// conn.Read does (io.EOF at the end, the deadline's error).
func (l *Link) readSock(b []byte) (int, error) {
	if l.raw == nil {
		return l.conn.Read(b)
	}
	s := &l.rsock
	s.b, s.n, s.err = b, 0, nil
	err := l.raw.Read(s.fn)
	n := s.n
	if err == nil {
		err = s.err
	}
	s.b, s.err = nil, nil
	return n, err
}

// writeSock writes all of b to the link's socket, as conn.Write does.
func (l *Link) writeSock(b []byte) (int, error) {
	if l.raw == nil {
		return l.conn.Write(b)
	}
	s := &l.wsock
	s.b, s.n, s.err = b, 0, nil
	err := l.raw.Write(s.fn)
	n := s.n
	if err == nil {
		err = s.err
	}
	s.b, s.err = nil, nil
	return n, err
}
