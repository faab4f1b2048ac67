package nodelog

import (
	"time"

	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
)

// Observer returns the links' observer that records every packet sent and
// received in the log (see [neonet.PacketLogger]); combine it with other
// observers with [neonet.Observers].
func (l *Log) Observer() neonet.Observer { return (*packetObserver)(l) }

var acceptCode = (&proto.AcceptIdentification{}).NEOMsgCode()

// identified learns from an AcceptIdentification the id of the link's
// peer, named in the records of its packets, and our own: the one we
// give when we accept a node, the one a master gives us.
func (l *Log) identified(link *neonet.Link, sent bool, args []byte) {
	var a proto.AcceptIdentification
	if _, err := a.NEOMsgDecode(args); err != nil {
		return
	}
	if sent {
		link.SetPeerID(a.YourNID)
		if a.MyNID != 0 {
			l.setNID(a.MyNID)
		}
		return
	}
	link.SetPeerID(a.MyNID)
	if a.NodeType == proto.MASTER && a.YourNID != 0 {
		l.setNID(a.YourNID)
	}
}

// packetObserver is a Log seen as a link observer: it logs packets and
// keeps the set of links.
type packetObserver Log

func (o *packetObserver) PacketSent(uint16, int)              {}
func (o *packetObserver) PacketReceived(uint16, int)          {}
func (o *packetObserver) RequestServed(uint16, time.Duration) {}
func (o *packetObserver) LinkOpened()                         {}
func (o *packetObserver) LinkClosed()                         {}

// LinkStarted and LinkEnded keep the set of links of the state dump
// ([Log.LogLinks]).
func (o *packetObserver) LinkStarted(link *neonet.Link) { o.links.add(link) }
func (o *packetObserver) LinkEnded(link *neonet.Link)   { o.links.remove(link) }

// LogPacket queues the packet with a copy of its arguments, unless they
// are larger than the limit ([Options.MaxPacket]).
func (o *packetObserver) LogPacket(link *neonet.Link, sent bool, id uint32, code uint16, args []byte) {
	l := (*Log)(o)
	if code == acceptCode {
		l.identified(link, sent, args)
	}
	r := record{date: unixNow(), packet: true, sent: sent, id: id, code: code, peer: link.PeerID(), addr: link.RemoteAddr()}
	if len(args) > l.maxPacket {
		r.nbody = true
	} else {
		r.body = args // copied by add
		if r.body == nil {
			r.body = []byte{}
		}
	}
	l.add(r)
}
