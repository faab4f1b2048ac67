//go:build unix

package neonet

import (
	"errors"
	"net"
	"syscall"
)

// rawConn returns the raw connection of a plain TCP or Unix connection,
// for tryWrite; nil for others (TLS writes must go through tls.Conn).
func rawConn(c net.Conn) syscall.RawConn {
	var sc syscall.Conn
	switch c := c.(type) {
	case *net.TCPConn:
		sc = c
	case *net.UnixConn:
		sc = c
	default:
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}

// tryWrite writes what the socket takes of b without waiting for room
// (Go's sockets are non-blocking): n < len(b) with a nil error means it
// is full.
func (l *Link) tryWrite(b []byte) (n int, err error) {
	var werr error
	err = l.raw.Write(func(fd uintptr) bool {
		for n < len(b) {
			m, e := syscall.Write(int(fd), b[n:])
			if m > 0 {
				n += m
			}
			if e == syscall.EINTR {
				continue
			}
			if e != nil {
				if !errors.Is(e, syscall.EAGAIN) {
					werr = e
				}
				break
			}
		}
		return true // never wait: the writer goroutine does
	})
	if err == nil {
		err = werr
	}
	return n, err
}
