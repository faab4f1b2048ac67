//go:build !linux

package neonet

// sockIO: without raw system calls, the link reads and writes through
// its net.Conn.
type sockIO struct{}

func (l *Link) initSockIO() {}

// readSock reads from the link's connection.
func (l *Link) readSock(b []byte) (int, error) { return l.conn.Read(b) }

// writeSock writes b to the link's connection.
func (l *Link) writeSock(b []byte) (int, error) { return l.conn.Write(b) }
