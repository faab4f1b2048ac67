package neonet

import (
	"net"
	"slices"
	"time"

	"github.com/neogo/neo/proto"
)

// LinkInfo is a snapshot of a link, for the node's state dump (neoppod
// logs its connections on SIGRTMIN+2, cluster.md §10.2).
type LinkInfo struct {
	Local, Remote net.Addr
	// Peer is the peer's id once the node set it ([Link.SetPeerID]);
	// PeerType its type once the identification told it, with an
	// Observer that is a [PeerObserver].
	Peer     proto.NodeID
	PeerType proto.Opt[proto.NodeType]
	// Err is why the link closed, nil while it is open.
	Err error
	// Pending are our requests waiting for their answer; Serving the
	// peer's requests not answered yet (known only with an Observer),
	// both sorted by id. Their Since is zero without an Observer.
	Pending, Serving []InFlight
	// Queued is the number of bytes sent and queued behind the write
	// in progress, if any.
	Queued int
}

// InFlight is one request in progress on a link.
type InFlight struct {
	ID    uint32
	Code  uint16
	Since time.Time
}

// Info returns a snapshot of the link.
func (l *Link) Info() LinkInfo {
	i := LinkInfo{Local: l.conn.LocalAddr(), Remote: l.conn.RemoteAddr(), Peer: l.PeerID()}
	l.wmu.Lock()
	i.Queued = len(l.wmu.buf)
	l.wmu.Unlock()
	l.mu.Lock()
	i.Err = l.mu.err
	for id, c := range l.mu.pending {
		i.Pending = append(i.Pending, InFlight{ID: id, Code: c.reqCode, Since: c.since})
	}
	l.mu.Unlock()
	if o := l.obs; o != nil {
		o.mu.Lock()
		if o.identified {
			i.PeerType = proto.Some(o.peer)
		}
		for id, s := range o.serving {
			i.Serving = append(i.Serving, InFlight{ID: id, Code: s.code, Since: s.at})
		}
		o.mu.Unlock()
	}
	byID := func(a, b InFlight) int { return int(int64(a.ID) - int64(b.ID)) }
	slices.SortFunc(i.Pending, byID)
	slices.SortFunc(i.Serving, byID)
	return i
}
