//go:build !linux

package neonet

// readSock reads from the link's connection.
func (l *Link) readSock(b []byte) (int, error) { return l.conn.Read(b) }

// writeSock writes b to the link's connection.
func (l *Link) writeSock(b []byte) (int, error) { return l.conn.Write(b) }
