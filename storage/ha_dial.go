package storage

// Crossing storage-to-storage dials (protocol.md §5.6): when two storages
// dial each other at the same time, each receives the other's
// RequestIdentification while its own is still unanswered. Both must
// agree on the link that survives: the accepting storage drops its own
// silent dial to the requester if its id is smaller than the requester's,
// and answers PROTOCOL_ERROR "already connected" otherwise, so that the
// link dialled by the storage with the greater id survives.
//
// Only silent dials (not yet answered) take part: an identified link
// does not conflict with an incoming one, which is accepted. The storage
// whose dial lost uses the surviving link once it is identified (or
// redials shortly after if it does not come).
//
// There is one link with each storage, used both ways, as in neoppod,
// whose storage refuses a second link from a storage of smaller id while
// it has one ("already connected") and sends its own replication and
// check requests on whatever link it has with us, the one we dialled
// included. The identified links, dialled or accepted, are registered by
// node id (dialStorage returns the one there is) and served alike
// (storageLink): the peer's requests with the handler of accepted links,
// the AddTransaction/AddObject of our fetches kept for replicator.fetch.
// Users do not close a shared link: stopOperation, the peer leaving the
// cluster or the peer closing it does.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
)

// errDialReplaced: our dial to a storage was dropped for the peer's
// crossing dial to us (its id is greater).
var errDialReplaced = errors.New("outgoing link replaced by the peer's crossing dial")

// errAlreadyConnected is the refusal of a crossing dial from a storage
// whose id is smaller than ours.
var errAlreadyConnected = &proto.Error{Code: proto.PROTOCOL_ERROR, Message: "already connected"}

// dialRetryDelays are the pauses before each new attempt of a dial that
// lost the arbitration: the peer's surviving dial must first receive our
// AcceptIdentification, which takes one loopback or LAN round trip; the
// later pauses cover a loaded peer.
var dialRetryDelays = []time.Duration{10 * time.Millisecond, 50 * time.Millisecond, 250 * time.Millisecond}

// replacedWait bounds the wait for the peer's link when our dial was
// dropped for it: this node is accepting that link right now, so it is
// registered as soon as it is identified here, however loaded the node;
// redialling meanwhile would only make a second link.
const replacedWait = 2 * time.Second

// storageDial is one dial to a storage, registered from before the TCP
// connection until the AcceptIdentification (or a failure).
type storageDial struct {
	nid    proto.NodeID
	cancel context.CancelCauseFunc
}

// storageDials registers the silent dials to other storages by node id.
// The zero value is ready for use.
type storageDials struct {
	mu sync.Mutex
	m  map[proto.NodeID]map[*storageDial]struct{}
	// links are the identified links with each storage, dialled or
	// accepted: our replicator and checker use the one there is, as
	// neoppod does, whose storage refuses a second link from a storage
	// of smaller id ("already connected").
	links map[proto.NodeID]*storageLink
	// registered is closed and renewed when a link is registered: a dial
	// that lost to the peer's crossing dial waits for the peer's link.
	registered chan struct{}

	// beforeDial, if set (tests), is called after a dial is registered
	// and before it connects, with its attempt number from 1.
	beforeDial func(nid proto.NodeID, attempt int)
}

func (s *storageDials) add(nid proto.NodeID, cancel context.CancelCauseFunc) *storageDial {
	d := &storageDial{nid: nid, cancel: cancel}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[proto.NodeID]map[*storageDial]struct{}{}
	}
	if s.m[nid] == nil {
		s.m[nid] = map[*storageDial]struct{}{}
	}
	s.m[nid][d] = struct{}{}
	return d
}

// done unregisters d once answered or failed, and reports whether it was
// still registered: false means the peer's crossing dial replaced it.
func (s *storageDials) done(d *storageDial) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.m[d.nid]
	if _, ok := set[d]; !ok {
		return false
	}
	delete(set, d)
	if len(set) == 0 {
		delete(s.m, d.nid)
	}
	return true
}

// arbitrate decides on a RequestIdentification from storage peer while
// we (self) may be dialling it: with no silent dial to peer it accepts;
// otherwise it drops our silent dials if self < peer, else it refuses
// with errAlreadyConnected.
func (s *storageDials) arbitrate(self, peer proto.NodeID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.m[peer]
	if len(set) == 0 {
		return nil
	}
	if self > peer {
		return errAlreadyConnected
	}
	for d := range set {
		d.cancel(errDialReplaced)
	}
	delete(s.m, peer)
	return nil
}

// identifyStorage applies the crossing-dial rule to an incoming
// identification from a known peer; identify calls it.
func (n *Node) identifyStorage(self proto.NodeID, req *proto.RequestIdentification) error {
	if req.NodeType != proto.STORAGE || req.NID == 0 {
		return nil
	}
	return n.dials.arbitrate(self, req.NID)
}

// lostArbitration tells the errors of a dial that lost to a crossing dial
// of the peer.
func lostArbitration(err error) bool {
	var perr *proto.Error
	return errors.Is(err, errDialReplaced) ||
		errors.As(err, &perr) && perr.Code == errAlreadyConnected.Code && perr.Message == errAlreadyConnected.Message
}

// register makes sl the link to use with its peer.
func (s *storageDials) register(sl *storageLink) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.links == nil {
		s.links = map[proto.NodeID]*storageLink{}
	}
	s.links[sl.nid] = sl
	if s.registered != nil {
		close(s.registered)
		s.registered = nil
	}
}

// registration returns a channel closed at the next register.
func (s *storageDials) registration() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.registered == nil {
		s.registered = make(chan struct{})
	}
	return s.registered
}

// unregister forgets sl, once closed.
func (s *storageDials) unregister(sl *storageLink) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.links[sl.nid] == sl {
		delete(s.links, sl.nid)
	}
}

// link returns an open identified link with storage nid, nil if none.
func (s *storageDials) link(nid proto.NodeID) *storageLink {
	s.mu.Lock()
	sl := s.links[nid]
	s.mu.Unlock()
	if sl == nil {
		return nil
	}
	select {
	case <-sl.Done():
		return nil
	default:
		return sl
	}
}

// dialStorage returns the link with storage nid: the one there is, which
// it dialled or we did, else a new one: it connects to addr and
// identifies with our node id and id_timestamp (protocol.md §5.6). A
// dial that loses to the peer's crossing dial is retried after a short
// pause, and the peer's link is used if it came meanwhile. The link is
// shared: it is closed when the peer leaves, the node stops operating,
// or the peer closes it, not by its users.
func (n *Node) dialStorage(ctx context.Context, nid proto.NodeID, addr string) (*storageLink, error) {
	for attempt := 1; ; attempt++ {
		if sl := n.dials.link(nid); sl != nil {
			return sl, nil
		}
		l, err := n.dialStorageOnce(ctx, nid, addr, attempt)
		if err == nil || !lostArbitration(err) || attempt > len(dialRetryDelays) {
			if err != nil {
				if sl := n.dials.link(nid); sl != nil {
					return sl, nil
				}
			}
			return l, err
		}
		n.log.Debug("crossing dial lost, retrying", "nid", nid, "addr", addr, "err", err)
		// The peer's link is coming: use it once registered, else
		// dial again after the pause.
		delay := dialRetryDelays[attempt-1]
		if errors.Is(err, errDialReplaced) {
			delay = max(delay, replacedWait)
		}
		t := time.NewTimer(delay)
	wait:
		for {
			reg := n.dials.registration()
			if sl := n.dials.link(nid); sl != nil {
				t.Stop()
				return sl, nil
			}
			select {
			case <-reg:
			case <-t.C:
				break wait
			case <-ctx.Done():
				t.Stop()
				return nil, fmt.Errorf("dial storage %v at %s: %w", nid, addr, ctx.Err())
			}
		}
	}
}

func (n *Node) dialStorageOnce(ctx context.Context, nid proto.NodeID, addr string, attempt int) (*storageLink, error) {
	n.mu.Lock()
	self, ts := n.mu.nid, n.mu.nodes.SelfIDTimestamp()
	n.mu.Unlock()
	dctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	d := n.dials.add(nid, cancel)
	if hook := n.dials.beforeDial; hook != nil {
		hook(nid, attempt)
	}
	sl := newStorageLink(n, nid)
	l, err := neonet.Dial(dctx, "tcp", addr, neonet.Config{Logger: n.log, TLS: n.cfg.TLS, Handler: sl.received, Observer: n.cfg.NetObserver})
	if err != nil {
		replaced := !n.dials.done(d)
		if replaced {
			err = errDialReplaced
		}
		return nil, fmt.Errorf("dial storage %v at %s: %w", nid, addr, err)
	}
	var acc proto.AcceptIdentification
	err = l.Ask(dctx, &proto.RequestIdentification{NodeType: proto.STORAGE, NID: self, Addr: n.addr,
		ClusterName: n.cfg.Cluster, IDTimestamp: ts, Extra: proto.Dict{}}, &acc)
	if !n.dials.done(d) {
		// The peer's dial replaced ours, even if its answer came.
		err = errDialReplaced
	}
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("identify to storage %v at %s: %w", nid, addr, err)
	}
	if acc.NodeType != proto.STORAGE {
		l.Close()
		return nil, fmt.Errorf("%s is a %v, not a storage", addr, acc.NodeType)
	}
	sl.Link = l
	if !n.startServing(ctx, sl) {
		l.Close()
		return nil, fmt.Errorf("dial storage %v at %s: %w", nid, addr, neonet.ErrClosed)
	}
	return sl, nil
}

// storageLink is a link we dialled to another storage. Its reader hands
// what the peer sends to received: the AddTransaction/AddObject of our
// AskFetch* requests are kept for replicator.fetch, the peer's own
// requests are served in order by serve, on another goroutine since
// feeding writes a lot and yields to client requests (priority.go).
type storageLink struct {
	*neonet.Link // set once identified
	n            *Node
	nid          proto.NodeID

	mu    sync.Mutex
	adds  map[uint32][]proto.Msg // by the id of our AskFetch* request
	reqs  []*neonet.Request      // the peer's requests not served yet
	ready chan struct{}          // holds a token while reqs may not be empty
}

func newStorageLink(n *Node, nid proto.NodeID) *storageLink {
	return &storageLink{n: n, nid: nid, adds: map[uint32][]proto.Msg{}, ready: make(chan struct{}, 1)}
}

// received runs on the link's reader goroutine, in arrival order: the
// notifications of a fetch are all kept when its answer is delivered.
func (sl *storageLink) received(r *neonet.Request) {
	sl.mu.Lock()
	switch r.Msg.(type) {
	case *proto.AddTransaction, *proto.AddObject:
		sl.adds[r.ID] = append(sl.adds[r.ID], r.Msg)
		sl.mu.Unlock()
		return
	}
	sl.reqs = append(sl.reqs, r)
	sl.mu.Unlock()
	select {
	case sl.ready <- struct{}{}:
	default:
	}
}

// takeAdds returns and forgets the notifications received for request id.
func (sl *storageLink) takeAdds(id uint32) []proto.Msg {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	m := sl.adds[id]
	delete(sl.adds, id)
	return m
}

// next returns the next request of the peer, nil if none is queued.
func (sl *storageLink) next() *neonet.Request {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if len(sl.reqs) == 0 {
		return nil
	}
	r := sl.reqs[0]
	sl.reqs[0] = nil
	sl.reqs = sl.reqs[1:]
	return r
}

// startServing registers the identified link, so that it is closed with
// the links we accept (stopOperation, the peer leaving the cluster), and
// starts serving the peer's requests on it. It returns false if the
// node is not operational.
func (n *Node) startServing(ctx context.Context, sl *storageLink) bool {
	n.mu.Lock()
	tm := n.mu.tm
	if tm != nil {
		n.mu.links[sl.Link] = sl.nid
	}
	n.mu.Unlock()
	if tm == nil {
		return false
	}
	n.dials.register(sl)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer n.dropLink(sl.Link)
		defer n.dials.unregister(sl)
		sl.serve(ctx, &clientConn{n: n, link: sl.Link, nid: sl.nid, tm: tm, loads: make(chan struct{}, maxLinkLoads)})
		if ctx.Err() != nil {
			// The dialler stopped with the operation: no link stays
			// open unserved.
			sl.Close()
		}
	}()
	return true
}

// serveAcceptedStorage serves the link a storage dialled to us and we
// accepted (c), until it closes or ctx ends, as a storageLink: our
// replicator and checker may send their requests on it too.
// serveIncoming calls it once the peer is identified.
func (n *Node) serveAcceptedStorage(ctx context.Context, c *clientConn) {
	sl := newStorageLink(n, c.nid)
	sl.Link = c.link
	c.link.SetHandler(sl.received)
	if c.nid != 0 {
		n.dials.register(sl)
		defer n.dials.unregister(sl)
	}
	sl.serve(ctx, c)
}

// serve handles the peer's requests, in order, as serveIncoming does on
// the links we accept, until the link closes or ctx ends.
func (sl *storageLink) serve(ctx context.Context, c *clientConn) {
	for {
		select {
		case <-sl.ready:
		case <-sl.Done():
			return
		case <-ctx.Done():
			return
		}
		for r := sl.next(); r != nil; r = sl.next() {
			if !c.serve(ctx, r) {
				return
			}
		}
	}
}
