package neonet

import (
	"sync"
	"time"

	"github.com/neogo/neo/proto"
)

// Observer is told of a link's traffic, for metrics (package
// internal/nodehttp implements it with Prometheus). Its methods are called
// on the links' hot paths, under the link's locks: they must be cheap,
// safe for concurrent use, and never block nor call the link.
type Observer interface {
	// PacketSent is called for each packet sent: its wire code and its
	// size in bytes (header included), when it is queued or written.
	PacketSent(code uint16, size int)
	// PacketReceived is called for each packet received, Ping and
	// answers included, before it is dispatched.
	PacketReceived(code uint16, size int)
	// RequestServed is called when the answer (or Error) to a request of
	// the peer is sent: code is the request's, d the time from its
	// receipt to the answer being queued or written.
	RequestServed(code uint16, d time.Duration)
	// LinkOpened is called once a link is established (both handshakes
	// done), and LinkClosed once when it starts closing, whatever the
	// cause.
	LinkOpened()
	LinkClosed()
}

// PacketLogger is an Observer that also records each packet itself (the
// node's log, package internal/nodelog): the link it went through,
// whether it was sent, its id, code and msgpack arguments. args is only
// valid during the call. Like the Observer's, LogPacket is called under
// the link's locks and must be cheap and never block.
type PacketLogger interface {
	Observer
	LogPacket(l *Link, sent bool, id uint32, code uint16, args []byte)
}

// PeerObserver is an Observer also told of the type of a link's peer
// once the identification tells it (the peer's RequestIdentification, or
// its AcceptIdentification), and of the end of such a link: links by
// peer type. Its methods are called as the Observer's.
type PeerObserver interface {
	Observer
	LinkIdentified(peer proto.NodeType)
	IdentifiedLinkClosed(peer proto.NodeType)
}

// LinkTracker is an Observer also told of each link itself, once it is
// established and once it starts closing: the node's state dump lists
// its links ([Link.Info]). Its methods are called as the Observer's.
type LinkTracker interface {
	Observer
	LinkStarted(l *Link)
	LinkEnded(l *Link)
}

// The codes of the packets that tell a link's peer type.
var (
	codeRequestIdentification = (&proto.RequestIdentification{}).NEOMsgCode()
	codeAcceptIdentification  = (&proto.AcceptIdentification{}).NEOMsgCode()
)

// Observers returns an Observer telling each of obs (nil ones skipped)
// what the links tell it; a PacketLogger among them gets the packets too.
// It returns nil for none, the observer itself for one.
func Observers(obs ...Observer) Observer {
	var m multiObserver
	for _, o := range obs {
		if o == nil {
			continue
		}
		m.all = append(m.all, o)
		if pl, ok := o.(PacketLogger); ok {
			m.loggers = append(m.loggers, pl)
		}
		if po, ok := o.(PeerObserver); ok {
			m.peers = append(m.peers, po)
		}
		if lt, ok := o.(LinkTracker); ok {
			m.trackers = append(m.trackers, lt)
		}
	}
	switch {
	case len(m.all) == 0:
		return nil
	case len(m.all) == 1:
		return m.all[0]
	case len(m.loggers) == 0 && len(m.peers) == 0 && len(m.trackers) == 0:
		return m.all
	}
	return &m
}

// observerList fans out the Observer calls.
type observerList []Observer

func (s observerList) PacketSent(code uint16, size int) {
	for _, o := range s {
		o.PacketSent(code, size)
	}
}

func (s observerList) PacketReceived(code uint16, size int) {
	for _, o := range s {
		o.PacketReceived(code, size)
	}
}

func (s observerList) RequestServed(code uint16, d time.Duration) {
	for _, o := range s {
		o.RequestServed(code, d)
	}
}

func (s observerList) LinkOpened() {
	for _, o := range s {
		o.LinkOpened()
	}
}

func (s observerList) LinkClosed() {
	for _, o := range s {
		o.LinkClosed()
	}
}

// multiObserver is an observerList with packet loggers, peer observers
// or link trackers among them.
type multiObserver struct {
	all      observerList
	loggers  []PacketLogger
	peers    []PeerObserver
	trackers []LinkTracker
}

func (m *multiObserver) LinkStarted(l *Link) {
	for _, lt := range m.trackers {
		lt.LinkStarted(l)
	}
}

func (m *multiObserver) LinkEnded(l *Link) {
	for _, lt := range m.trackers {
		lt.LinkEnded(l)
	}
}

func (m *multiObserver) LinkIdentified(peer proto.NodeType) {
	for _, po := range m.peers {
		po.LinkIdentified(peer)
	}
}

func (m *multiObserver) IdentifiedLinkClosed(peer proto.NodeType) {
	for _, po := range m.peers {
		po.IdentifiedLinkClosed(peer)
	}
}

func (m *multiObserver) PacketSent(code uint16, size int)     { m.all.PacketSent(code, size) }
func (m *multiObserver) PacketReceived(code uint16, size int) { m.all.PacketReceived(code, size) }
func (m *multiObserver) RequestServed(code uint16, d time.Duration) {
	m.all.RequestServed(code, d)
}
func (m *multiObserver) LinkOpened() { m.all.LinkOpened() }
func (m *multiObserver) LinkClosed() { m.all.LinkClosed() }

func (m *multiObserver) LogPacket(l *Link, sent bool, id uint32, code uint16, args []byte) {
	for _, pl := range m.loggers {
		pl.LogPacket(l, sent, id, code, args)
	}
}

// maxServing bounds the requests of the peer a link remembers the receipt
// of: a request never answered (Truncate, which the master sends as a
// notification) must not grow the table without end. Past it, requests
// are not timed.
const maxServing = 4096

// served is the receipt of a request not answered yet.
type served struct {
	code uint16
	at   time.Time
}

// observing is a link's state for its Observer.
type observing struct {
	obs Observer
	pl  PacketLogger // obs, if it is one
	po  PeerObserver // obs, if it is one
	lt  LinkTracker  // obs, if it is one
	mu  sync.Mutex
	// peer is the peer's type once identified (identified set), until
	// the link closes (ended set): for po.
	peer              proto.NodeType
	identified, ended bool
	// serving maps the ids of the peer's requests being served to their
	// receipt; the answer carries the same id.
	serving map[uint32]served
}

// received records a received packet; a request is remembered until its
// answer is sent.
func (o *observing) received(l *Link, id uint32, code uint16, args []byte, size int) {
	o.obs.PacketReceived(code, size)
	if o.pl != nil {
		o.pl.LogPacket(l, false, id, code, args)
	}
	if (o.po != nil || o.lt != nil) && (code == codeRequestIdentification || code == codeAcceptIdentification) {
		o.identify(code, args)
	}
	if code&proto.ResponseMask != 0 {
		return
	}
	if k, ok := proto.MsgKind(code); !ok || !k.IsRequest() {
		return
	}
	now := time.Now()
	o.mu.Lock()
	if len(o.serving) < maxServing {
		o.serving[id] = served{code, now}
	}
	o.mu.Unlock()
}

// identify learns the peer's type from its identification packet, and
// tells po, once per link.
func (o *observing) identify(code uint16, args []byte) {
	var t proto.NodeType
	if code == codeRequestIdentification {
		var m proto.RequestIdentification
		if _, err := m.NEOMsgDecode(args); err != nil {
			return
		}
		t = m.NodeType
	} else {
		var m proto.AcceptIdentification
		if _, err := m.NEOMsgDecode(args); err != nil {
			return
		}
		t = m.NodeType
	}
	o.mu.Lock()
	tell := !o.identified && !o.ended
	if tell {
		o.peer, o.identified = t, true
		if o.po != nil {
			o.po.LinkIdentified(t) // under o.mu: ordered with closed's call
		}
	}
	o.mu.Unlock()
}

// closed tells the observer that link l is closing.
func (o *observing) closed(l *Link) {
	o.obs.LinkClosed()
	if o.lt != nil {
		o.lt.LinkEnded(l)
	}
	if o.po == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ended = true
	if o.identified {
		o.po.IdentifiedLinkClosed(o.peer)
	}
}

// sent records a sent packet; an answer ends the request of the same id.
func (o *observing) sent(l *Link, id uint32, code uint16, packet []byte) {
	o.obs.PacketSent(code, len(packet))
	if o.pl != nil {
		if _, _, args, err := proto.DecodeHeader(packet); err == nil {
			o.pl.LogPacket(l, true, id, code, args)
		}
	}
	if code&proto.ResponseMask == 0 {
		return
	}
	o.mu.Lock()
	s, ok := o.serving[id]
	if ok {
		delete(o.serving, id)
	}
	o.mu.Unlock()
	if ok {
		o.obs.RequestServed(s.code, time.Since(s.at))
	}
}
