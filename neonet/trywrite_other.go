//go:build !unix

package neonet

import (
	"net"
	"syscall"
)

// rawConn: without unix write semantics, Post leaves every write to the
// writer goroutine.
func rawConn(net.Conn) syscall.RawConn { return nil }

func (l *Link) tryWrite(b []byte) (int, error) { panic("neonet: tryWrite without a raw connection") }
