package core

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/neogo/neo/nodetab"
	"github.com/neogo/neo/parttab"
	"github.com/neogo/neo/proto"
)

// ConnID names one link of the master, never reused. The driver assigns
// the ids of accepted links; the core assigns those of the links it dials
// ([Dial] effects), with the top bit set ([DialedConn]) so that both
// spaces never meet.
type ConnID uint64

// DialedConn is the bit set in the [ConnID] of every link the core dials.
const DialedConn ConnID = 1 << 63

// Event is an input of the [Machine]: one of [Recv], [Answer], [Closed],
// [Tick].
type Event interface{ isEvent() }

// Recv is a request or notification received on a link (the first one of
// a link must be RequestIdentification).
type Recv struct {
	Conn  ConnID
	MsgID uint32
	Msg   proto.Msg
}

// Answer is the answer to a request the core sent with an [Ask] effect:
// the expected answer message or a *proto.Error.
type Answer struct {
	Conn ConnID
	Tag  uint64
	Msg  proto.Msg
}

// Closed tells that a link is closed (by the peer, the network, or after
// the core asked to close or abort it).
type Closed struct{ Conn ConnID }

// Tick tells the core that time passed; it reads the time from its clock.
type Tick struct{}

// UpstreamAccepted tells that the upstream primary master accepted our
// identification on the link of a [DialUpstream] effect.
type UpstreamAccepted struct{ Conn ConnID }

func (Recv) isEvent()   {}
func (Answer) isEvent() {}
func (Closed) isEvent() {}
func (Tick) isEvent()   {}

func (UpstreamAccepted) isEvent() {}

// EffectKind says what an [Effect] asks the driver to do.
type EffectKind uint8

const (
	// Send sends Msg as a notification (with a fresh id of the link).
	Send EffectKind = iota + 1
	// Reply sends Msg with id MsgID: the answer to a request.
	Reply
	// Ask sends the request Msg; its answer comes back as an [Answer]
	// event carrying Tag.
	Ask
	// Abort flushes what was sent on the link, then closes it; nothing
	// more is received from it. A [Closed] event follows.
	Abort
	// StopListening closes the listening socket.
	StopListening
	// Exit ends the node: Err is nil for a clean shutdown.
	Exit
	// SaveMasters asks to persist the addresses of the known masters,
	// Masters, in the dynamic master list file (cluster.md §1.2.6); only
	// emitted when [Config.SaveMasterList] is set.
	SaveMasters
	// Dial opens link Conn to Addr (another master). The effects that
	// follow on Conn are performed once it is connected; a failed attempt
	// ends with a [Closed] event. The driver delays an attempt until 1 s
	// after the previous attempt to the same address (cluster.md §1.1.1).
	Dial
	// DialUpstream opens link Conn to the primary master of the upstream
	// cluster (backup mode, cluster.md §8.9): the driver finds it among
	// the upstream masters (following NotPrimaryMaster) and identifies
	// as a client with extra.backup = our cluster name, retrying until
	// it succeeds or the link is aborted. Its acceptance comes as an
	// [UpstreamAccepted] event, then what the upstream master sends as
	// [Recv] events; the end of the link, or of an aborted search, as a
	// [Closed] event.
	DialUpstream
	// FlushLog asks to write out the buffered records of the node's log
	// file (a FlushLog was received).
	FlushLog
)

var effectNames = [...]string{"", "send", "reply", "ask", "abort", "stop-listening", "exit", "save-masters", "dial", "dial-upstream", "flush-log"}

func (k EffectKind) String() string { return effectNames[k] }

// Effect is one output of the core. The driver performs the effects of a
// batch in order; effects on one link must reach it in that order.
type Effect struct {
	Kind    EffectKind
	Conn    ConnID
	MsgID   uint32
	Tag     uint64
	Msg     proto.Msg
	Err     error
	Addr    proto.Addr   // Dial
	Masters []proto.Addr // SaveMasters
}

func (e Effect) String() string {
	switch e.Kind {
	case Send, Ask:
		return fmt.Sprintf("%s c%d %s", e.Kind, e.Conn, msgString(e.Msg))
	case Reply:
		return fmt.Sprintf("reply c%d #%d %s", e.Conn, e.MsgID, msgString(e.Msg))
	case Abort:
		return fmt.Sprintf("abort c%d", e.Conn)
	case Dial:
		return fmt.Sprintf("dial c%d %s", e.Conn, e.Addr)
	case Exit:
		return fmt.Sprintf("exit %v", e.Err)
	}
	return e.Kind.String()
}

func msgString(m proto.Msg) string {
	return fmt.Sprintf("%s%+v", proto.MsgName(m.NEOMsgCode()), m)
}

// node is the master's record of a node (NodeManager entry): its entry
// of the node table, whose id, address and state change only through
// the table ([Machine.nodes]), and what the master knows besides.
type node struct {
	*nodetab.Node
	seq   uint64 // order of addition: the order of the master list
	extra proto.Dict
	conn  *conn // set while identified
	dial  *conn // master: our outgoing link, until it is identified

	readOnly      bool
	completedPack proto.Tid // InvalidTid: unknown
}

func (n *node) identified() bool { return n.conn != nil }

func (n *node) info() proto.NodeInfo {
	return proto.NodeInfo(*n.Node)
}

func (n *node) String() string {
	if n.NID != 0 {
		return n.NID.String()
	}
	return n.Type.String() + "@" + n.Addr.String()
}

// conn is a link as the core sees it.
type conn struct {
	id      ConnID
	node    *node
	pending map[uint64]bool // tags of our requests waiting for an answer
	aborted bool

	// Links we dial to other masters: peer is the master dialed; idTag
	// is the tag of our RequestIdentification while unanswered, and held
	// keeps the packets that overtook its answer (the driver delivers
	// answers and other packets on separate paths).
	peer  *node
	idTag uint64
	held  []Recv
}

// part is what the master plays (cluster.md §1.2.1): the primary role
// ([partPrimary]), whose behaviour in each cluster state is a [role], or
// the secondary role ([partSecondary], election.go). Its step functions
// are swapped when the master yields to another master or gives up
// finding a primary (STYLE §2).
type part struct {
	name string
	// recv handles a packet on a link that a peer opened.
	recv func(c *Machine, ev Recv)
	// closed handles the end of a link that a peer opened.
	closed func(c *Machine, k *conn)
	// dialClosed handles the end of a link that we dialed to a master.
	dialClosed func(c *Machine, k *conn)
	// accepted runs when master p accepted our identification on link k;
	// false means that the link was dropped.
	accepted func(c *Machine, k *conn, p *node) bool
	// redirected runs when a master answered NotPrimaryMaster, after the
	// masters it listed were learnt; p is the primary it designated, nil
	// if none.
	redirected func(c *Machine, p *node)
	// notified handles a notification received on link k, that we dialed
	// and on which we were accepted.
	notified func(c *Machine, k *conn, m proto.Msg)
	// settle applies one pending or automatic transition at the end of a
	// step; it reports whether something changed.
	settle func(c *Machine) bool
	// settled tells whether a held identification can be answered
	// (hold.go).
	settled func(c *Machine, req *proto.RequestIdentification) bool
}

// The parts are built by init: they switch to each other, so their step
// functions refer to them.
var partPrimary, partSecondary *part

func init() {
	partPrimary, partSecondary = newPartPrimary(), newPartSecondary()
}

func newPartPrimary() *part {
	return &part{
		name:       "primary",
		recv:       (*Machine).recv,
		closed:     (*Machine).primaryClosed,
		dialClosed: primaryDialClosed,
		accepted: func(c *Machine, _ *conn, p *node) bool {
			c.becomeSecondary(p)
			return true
		},
		redirected: func(c *Machine, p *node) {
			if c.role.redirected != nil {
				c.role.redirected(c, p)
			}
		},
		notified: func(*Machine, *conn, proto.Msg) {},
		settle:   primarySettle,
		settled: func(c *Machine, req *proto.RequestIdentification) bool {
			return req.NodeType != proto.CLIENT || !c.holdClient()
		},
	}
}

// role is the behaviour of the primary master in one cluster state: the
// step functions swapped on state change (STYLE §2). The election is the
// behaviour of RECOVERING towards other masters (election.go).
type role struct {
	state proto.ClusterState
	// storageState gives the state of an identifying storage; known tells
	// whether it came with the id of a node we know.
	storageState func(c *Machine, known bool) (proto.NodeState, error)
	// storageJoined runs when a storage was identified (new) or switched
	// to this role (!new).
	storageJoined func(c *Machine, n *node, new bool)
	// storageMsg handles a request or notification of a storage.
	storageMsg func(c *Machine, n *node, r Recv) error
	// storageAnswer handles the answer to one of our requests.
	storageAnswer func(c *Machine, n *node, m proto.Msg) error
	// storageLost runs when an identified storage's link closed.
	storageLost func(c *Machine, n *node)
	// progress runs after each event: the automatic transitions.
	progress func(c *Machine)

	// masterIdentifying may handle the identification of master k
	// before it is accepted; true means that it did (by yielding).
	masterIdentifying func(c *Machine, k *conn, req *proto.RequestIdentification, byAddr *node) bool
	// masterLost runs when the link of an identified (secondary) master
	// closed.
	masterLost func(c *Machine, n *node)
	// dialLost, when set, runs when a link we dialed to a master closed.
	dialLost func(c *Machine)
	// redirected, when set, runs when a master answered NotPrimaryMaster
	// designating p (nil: none).
	redirected func(c *Machine, p *node)
}

// Machine is the pure state machine of a master node: primary, candidate
// in an election or secondary. Feed it events with [Machine.Step] from a
// single goroutine; it returns the effects to perform. It does no I/O and
// reads time only through [Config.Now].
type Machine struct {
	cfg  Config
	log  *slog.Logger
	now  func() time.Time
	mono nodetab.Monotonic

	self *node
	// nodes is the node table; ext maps its entries to the master's
	// records, numbered by seq in order of addition.
	nodes *nodetab.Table
	ext   map[*nodetab.Node]*node
	seq   uint64
	conns map[ConnID]*conn

	part  *part // primary or secondary
	role  *role // the primary's behaviour in its cluster state
	state proto.ClusterState

	pt              *parttab.Table // node states from nodeState
	tm              *txnManager
	pm              *packManager
	lastTransaction proto.Tid // last committed tid
	backupTid       proto.Tid // InvalidTid: not in backup mode
	truncateTid     proto.Tid // InvalidTid: no truncation pending
	startupAllowed  bool
	primaryTime     float64

	// Storage readiness (cluster.md §6.3): a transaction only involves
	// storages that were ready when it began.
	readiness uint64
	ready     map[proto.NodeID]uint64
	starting  map[proto.NodeID]bool
	shutdown  bool // STOPPING: new transactions wait forever

	rec recovery
	ver verification
	bk  backup // backup mode (backup.go)

	deferred []Recv // delayed requests (AskBeginTransaction, FailedVote)

	held      []heldIdent // identifications held during a failover (hold.go)
	releasing bool        // answering a held identification: hold no more

	// stopOp, set by a handler, makes the core leave operation at the end
	// of the step (neoppod's StoppedOperation exception).
	stopOp     bool
	stopTrunc  proto.Tid
	wantState  proto.ClusterState // state change requested by an admin
	wantChange bool

	// Election and secondary role (election.go).
	sec *secondary // playing the secondary role, else nil
	// mastersChanged: a master was added, removed or moved since the
	// last SaveMasters.
	mastersChanged bool
	savedMasters   []proto.Addr
	nextDial       ConnID

	nextTag uint64
	out     []Effect
	exited  bool
	exitErr error
}

// New returns the core of a master configured by cfg, in RECOVERING.
// The effects of entering RECOVERING (none, with no node yet) are
// discarded.
func New(cfg Config) (*Machine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Machine{
		cfg:         cfg,
		log:         cfg.Logger,
		now:         cfg.Now,
		nodes:       nodetab.New(),
		ext:         map[*nodetab.Node]*node{},
		conns:       map[ConnID]*conn{},
		tm:          newTxnManager(),
		pm:          newPackManager(),
		backupTid:   proto.InvalidTid,
		truncateTid: proto.InvalidTid,
		bk:          newBackup(),
		ready:       map[proto.NodeID]uint64{},
		starting:    map[proto.NodeID]bool{},
		state:       proto.ClusterState(255),
		part:        partPrimary,
	}
	masters := []nodetab.Node{{Type: proto.MASTER, Addr: cfg.Bind, NID: cfg.NID, State: proto.DOWN}}
	for _, a := range cfg.Masters {
		if a != cfg.Bind {
			masters = append(masters, nodetab.Node{Type: proto.MASTER, Addr: a, State: proto.DOWN})
		}
	}
	for _, m := range masters[1:] {
		if _, err := c.addNode(m); err != nil {
			return nil, fmt.Errorf("%w: Masters: %w", ErrConfig, err)
		}
	}
	var err error
	if c.self, err = c.addNode(masters[0]); err != nil {
		return nil, fmt.Errorf("%w: Bind: %w", ErrConfig, err)
	}
	c.playPrimary()
	c.out = nil
	if c.exited {
		return nil, fmt.Errorf("master: %w", c.exitErr)
	}
	return c, nil
}

// NID returns the master's own node id.
func (c *Machine) NID() proto.NodeID { return c.self.NID }

// ClusterState returns the current cluster state.
func (c *Machine) ClusterState() proto.ClusterState { return c.state }

// Exited reports whether the core emitted [Exit].
func (c *Machine) Exited() bool { return c.exited }

// Step processes one event and returns the effects to perform, in order.
// The returned slice is owned by the caller.
func (c *Machine) Step(ev Event) []Effect {
	if c.exited {
		return nil
	}
	switch ev := ev.(type) {
	case Recv:
		if ev.Conn == c.bk.conn && ev.Conn != 0 {
			if _, ok := ev.Msg.(*proto.Ping); ok {
				c.out = append(c.out, Effect{Kind: Reply, Conn: ev.Conn, MsgID: ev.MsgID, Msg: &proto.Pong{}})
			} else {
				c.upstreamRecv(ev)
			}
			break
		}
		if ev.Conn&DialedConn != 0 && c.conns[ev.Conn] == nil {
			break // a link we dialed and dropped (the upstream one)
		}
		if _, ok := ev.Msg.(*proto.Ping); ok {
			// Answered in turn with what the core sent before: neoppod's
			// client pings the master to be sure it has every
			// invalidation of the commits it may see (its sync()).
			if k := c.conns[ev.Conn]; k == nil || !k.aborted {
				c.out = append(c.out, Effect{Kind: Reply, Conn: ev.Conn, MsgID: ev.MsgID, Msg: &proto.Pong{}})
			}
			break
		}
		if k := c.conns[ev.Conn]; k != nil && k.peer != nil {
			c.recvDialed(k, ev)
		} else {
			c.part.recv(c, ev)
		}
	case Answer:
		if ev.Conn == c.bk.conn && ev.Conn != 0 {
			c.upstreamAnswer(ev)
			break
		}
		if k := c.conns[ev.Conn]; k != nil && k.peer != nil {
			c.answerDialed(k, ev)
		} else {
			c.answer(ev)
		}
	case Closed:
		if ev.Conn == c.bk.conn && ev.Conn != 0 {
			c.upstreamClosed(ev.Conn)
			break
		}
		c.closed(ev.Conn)
	case UpstreamAccepted:
		c.upstreamAccepted(ev.Conn)
	case Tick:
	}
	c.settle()
	if c.releaseHeld() {
		c.settle()
	}
	c.saveMasters()
	out := c.out
	c.out = nil
	return out
}

// settle applies the transitions requested during the step, then the
// automatic ones, until nothing changes.
func (c *Machine) settle() {
	for range 100 {
		if c.exited || !c.part.settle(c) {
			return
		}
	}
	// A bug: transitions keep firing. Stop here rather than spin; the
	// next event retries.
	c.log.Error("master: core does not settle", "cluster_state", c.state.String())
}

// primarySettle applies a state change requested by an admin, or leaves
// operation, or runs the automatic transitions of the cluster state.
func primarySettle(c *Machine) bool {
	switch {
	case c.wantChange:
		c.wantChange = false
		c.changeRequested(c.wantState)
		return true
	case c.stopOp:
		c.stopOp = false
		c.leaveOperation(c.stopTrunc)
		return true
	}
	st := c.state
	c.role.progress(c)
	return c.state != st || c.stopOp || c.wantChange
}

// monotonic returns the master's strictly increasing clock (protocol.md
// §4.10): float seconds since the epoch, bumped by 1 ms when time does not
// advance.
func (c *Machine) monotonic() float64 {
	return c.mono.Next(float64(c.now().UnixNano()) / 1e9)
}

// --- effects -------------------------------------------------------------

func (c *Machine) send(n *node, m proto.Msg) {
	if n.conn != nil && !n.conn.aborted {
		c.out = append(c.out, Effect{Kind: Send, Conn: n.conn.id, Msg: m})
	}
}

// flushLog relays a FlushLog received on link from to every other link,
// then asks the driver to flush our log, as neoppod's master does.
func (c *Machine) flushLog(from ConnID) {
	for _, id := range slices.Sorted(maps.Keys(c.conns)) {
		if k := c.conns[id]; id != from && !k.aborted {
			c.out = append(c.out, Effect{Kind: Send, Conn: id, Msg: &proto.FlushLog{}})
		}
	}
	c.out = append(c.out, Effect{Kind: FlushLog})
}

func (c *Machine) replyTo(cn ConnID, msgID uint32, m proto.Msg) {
	if k := c.conns[cn]; k != nil && !k.aborted {
		c.out = append(c.out, Effect{Kind: Reply, Conn: cn, MsgID: msgID, Msg: m})
	}
}

func (c *Machine) ask(n *node, m proto.Msg) {
	if n.conn == nil || n.conn.aborted {
		return
	}
	c.nextTag++
	n.conn.pending[c.nextTag] = true
	c.out = append(c.out, Effect{Kind: Ask, Conn: n.conn.id, Tag: c.nextTag, Msg: m})
}

func (c *Machine) abort(k *conn) {
	if k != nil && !k.aborted {
		k.aborted = true
		c.out = append(c.out, Effect{Kind: Abort, Conn: k.id})
	}
}

// --- errors from handlers ----------------------------------------------

// handlerError is an error a handler answers with: PROTOCOL_ERROR and
// NOT_READY also abort the link (protocol.md §1.8).
type handlerError struct {
	e proto.Error
	// keep: answer without closing the link, even for PROTOCOL_ERROR.
	keep bool
}

func (h *handlerError) Error() string { return h.e.Error() }

func protocolError(msg string) error {
	return &handlerError{e: proto.Error{Code: proto.PROTOCOL_ERROR, Message: msg}}
}
func notReady(msg string) error {
	return &handlerError{e: proto.Error{Code: proto.NOT_READY, Message: msg}}
}
func denied(msg string) error {
	return &handlerError{e: proto.Error{Code: proto.DENIED, Message: msg}}
}

// errDelay makes the request wait in the deferred queue (neoppod's
// DelayEvent); it is retried after transaction and readiness changes.
var errDelay = errors.New("delay")

// --- nodes ---------------------------------------------------------------

// addNode records n in the node table (completing the node known by its
// id or address, if any) and returns the master's record of it. It fails
// when n's id and address belong to different nodes, or n's type is not
// that of the known node ([nodetab.ErrConflict]).
func (c *Machine) addNode(n nodetab.Node) (*node, error) {
	e, err := c.nodes.Add(n)
	if err != nil {
		return nil, err
	}
	if x := c.ext[e]; x != nil {
		return x, nil
	}
	c.seq++
	x := &node{Node: e, seq: c.seq, completedPack: proto.InvalidTid}
	c.ext[e] = x
	if n.Type == proto.MASTER {
		c.mastersChanged = true
	}
	return x, nil
}

func (c *Machine) removeNode(n *node) {
	if c.ext[n.Node] != n {
		return
	}
	c.nodes.Remove(n.Node)
	delete(c.ext, n.Node)
	if n.Type == proto.MASTER {
		c.mastersChanged = true
	}
}

func (c *Machine) byNID(nid proto.NodeID) *node {
	if e := c.nodes.ByNID(nid); e != nil {
		return c.ext[e]
	}
	return nil
}

func (c *Machine) byAddr(a proto.Addr) *node {
	if e := c.nodes.ByAddr(a); e != nil {
		return c.ext[e]
	}
	return nil
}

// setNID gives n the id nid; a node that held it loses it.
func (c *Machine) setNID(n *node, nid proto.NodeID) { c.nodes.SetNID(n.Node, nid) }

// allNodes returns the nodes in order of addition.
func (c *Machine) allNodes() []*node {
	ns := make([]*node, 0, len(c.ext))
	for _, n := range c.ext {
		ns = append(ns, n)
	}
	slices.SortFunc(ns, func(a, b *node) int { return cmp.Compare(a.seq, b.seq) })
	return ns
}

// sortedNodes returns the nodes by type then id: a deterministic order for
// broadcasts and node lists.
func (c *Machine) sortedNodes() []*node {
	ns := c.allNodes()
	slices.SortStableFunc(ns, func(a, b *node) int {
		if r := cmp.Compare(a.Type, b.Type); r != 0 {
			return r
		}
		return cmp.Compare(uint32(a.NID), uint32(b.NID))
	})
	return ns
}

func (c *Machine) identified(t proto.NodeType) []*node {
	var out []*node
	for _, n := range c.sortedNodes() {
		if n.Type == t && n.identified() {
			out = append(out, n)
		}
	}
	return out
}

func (c *Machine) isRunning(nid proto.NodeID) bool {
	n := c.byNID(nid)
	return n != nil && n.State == proto.NODE_RUNNING
}

func (c *Machine) isPending(nid proto.NodeID) bool {
	n := c.byNID(nid)
	return n != nil && n.State == proto.PENDING
}

// setState changes a node's state; UNKNOWN forgets the node.
func (c *Machine) setState(n *node, st proto.NodeState) {
	if st == proto.UNKNOWN {
		c.removeNode(n)
	}
	c.nodes.SetState(n.Node, st)
}

// nodesFor returns the entries of changed that recipient r may see
// (cluster.md §1.1.3 table): admins and storages see every non-admin
// node, clients see masters and storages (and admins monitoring their
// backup), masters see masters.
func nodesFor(r *node, changed []*node) []proto.NodeInfo {
	var out []proto.NodeInfo
	var admins []proto.NodeInfo
	for _, n := range changed {
		if n.Type == proto.ADMIN {
			if r.Type == proto.CLIENT {
				if b, ok := r.extra.Get("backup"); ok && adminMonitors(n, b) {
					admins = append(admins, n.info())
				}
			}
			continue
		}
		switch r.Type {
		case proto.ADMIN, proto.STORAGE:
			out = append(out, n.info())
		case proto.CLIENT:
			if n.Type != proto.CLIENT {
				out = append(out, n.info())
			}
		case proto.MASTER:
			if n.Type == proto.MASTER {
				out = append(out, n.info())
			}
		}
	}
	return append(out, admins...)
}

func adminMonitors(admin *node, backup proto.Value) bool {
	name, ok := backup.([]byte)
	if !ok {
		return false
	}
	v, _ := admin.extra.Get("backup")
	list, _ := v.([]proto.Value)
	for _, x := range list {
		if b, ok := x.([]byte); ok && string(b) == string(name) {
			return true
		}
	}
	return false
}

// broadcastNodes tells every identified node about changed nodes, one
// notification per recipient, with one timestamp.
func (c *Machine) broadcastNodes(changed ...*node) {
	if len(changed) == 0 {
		return
	}
	ts := c.monotonic()
	for _, r := range c.sortedNodes() {
		if !r.identified() {
			continue
		}
		if l := nodesFor(r, changed); len(l) > 0 {
			c.send(r, &proto.NotifyNodeInformation{Timestamp: ts, NodeList: l})
		}
	}
}

// sendFullNodeList sends a newly identified node itself first, then every
// node it may see.
func (c *Machine) sendFullNodeList(n *node) {
	var others []*node
	for _, o := range c.sortedNodes() {
		if o != n {
			others = append(others, o)
		}
	}
	l := append([]proto.NodeInfo{n.info()}, nodesFor(n, others)...)
	c.send(n, &proto.NotifyNodeInformation{Timestamp: c.monotonic(), NodeList: l})
}

// broadcastPartitionChanges increments the ptid and sends the changes to
// every identified non-master node.
func (c *Machine) broadcastPartitionChanges(changes []parttab.Change) {
	if len(changes) == 0 {
		return
	}
	c.pt.NextPTid()
	c.sendPartitionChanges(changes)
}

// sendPartitionChanges sends changes already applied at the current ptid
// to every identified non-master node.
func (c *Machine) sendPartitionChanges(changes []parttab.Change) {
	m := c.partitionChanges(changes)
	for _, n := range c.sortedNodes() {
		if n.identified() && n.Type != proto.MASTER {
			c.send(n, m)
		}
	}
}

func (c *Machine) sendPartitionTable(n *node) {
	c.send(n, c.fullPT())
}

// changeClusterState announces the new state to every identified node and
// switches the storages to the handlers of the new role.
func (c *Machine) changeClusterState(r *role) {
	if c.state == r.state && c.role == r {
		return
	}
	old := c.role
	if c.state == proto.RECOVERING && r.state != proto.RECOVERING {
		c.endElection()
	}
	c.role, c.state = r, r.state
	c.log.Info("cluster state changed", "cluster_state", r.state.String())
	for _, n := range c.sortedNodes() {
		if !n.identified() {
			continue
		}
		c.send(n, &proto.NotifyClusterInformation{State: r.state})
		if n.Type == proto.STORAGE && old != nil && r.storageJoined != nil && !sameStorageHandler(old, r) {
			r.storageJoined(c, n, false)
		}
	}
}

// sameStorageHandler: the service handler serves storages in RUNNING and
// STOPPING alike, and in the backup states alike, so no switch happens
// between them. Entering backup mode from RUNNING does restart the
// storages (StartOperation(backup=true)).
func sameStorageHandler(a, b *role) bool {
	svc := func(r *role) bool { return r == roleRunning || r == roleStopping }
	return a == b || svc(a) && svc(b) || isBackupRole(a) && isBackupRole(b)
}

// --- event dispatch ------------------------------------------------------

func (c *Machine) recv(ev Recv) {
	k := c.conns[ev.Conn]
	if k == nil {
		k = &conn{id: ev.Conn, pending: map[uint64]bool{}}
		c.conns[ev.Conn] = k
	}
	if k.aborted {
		return
	}
	var err error
	if k.node == nil {
		req, ok := ev.Msg.(*proto.RequestIdentification)
		if !ok {
			err = protocolError("identification required")
		} else {
			err = c.identify(k, ev.MsgID, req)
		}
	} else {
		err = c.dispatch(k.node, ev)
	}
	c.handleError(k, ev, err)
}

func (c *Machine) handleError(k *conn, ev Recv, err error) {
	if err == nil {
		return
	}
	if errors.Is(err, errDelay) {
		c.deferred = append(c.deferred, ev)
		return
	}
	if errors.Is(err, errHold) {
		c.hold(ev)
		return
	}
	var he *handlerError
	if !errors.As(err, &he) {
		he = &handlerError{e: proto.Error{Code: proto.PROTOCOL_ERROR, Message: err.Error()}}
	}
	c.log.Debug("request refused", "conn", ev.Conn, "msg", proto.MsgName(ev.Msg.NEOMsgCode()), "err", he.e.Error())
	e := he.e
	c.replyTo(k.id, ev.MsgID, &e)
	if !he.keep && (e.Code == proto.PROTOCOL_ERROR || e.Code == proto.NOT_READY) {
		c.abort(k)
	}
}

// runDeferred retries the delayed requests, in order.
func (c *Machine) runDeferred() {
	if len(c.deferred) == 0 {
		return
	}
	q := c.deferred
	c.deferred = nil
	for _, ev := range q {
		k := c.conns[ev.Conn]
		if k == nil || k.aborted || k.node == nil {
			continue
		}
		c.handleError(k, ev, c.dispatch(k.node, ev))
	}
}

// dispatch routes a packet from an identified node to its handler.
func (c *Machine) dispatch(n *node, ev Recv) error {
	// Requests every handler answers (neoppod's MasterHandler).
	switch ev.Msg.(type) {
	case *proto.AskClusterState:
		c.replyTo(n.conn.id, ev.MsgID, &proto.AnswerClusterState{State: proto.Some(c.state)})
		return nil
	case *proto.AskRecovery:
		bt := proto.InvalidTid
		if c.backupTid != proto.InvalidTid {
			bt = c.backupTid
		}
		c.replyTo(n.conn.id, ev.MsgID, &proto.AnswerRecovery{PTid: c.pt.PTid(), BackupTid: bt, TruncateTid: c.truncateTid})
		return nil
	case *proto.AskLastIDs:
		if n.Type == proto.CLIENT && c.backupTid != proto.InvalidTid {
			return &handlerError{e: proto.Error{Code: proto.READ_ONLY_ACCESS, Message: "read-only access because cluster is in backuping mode"}}
		}
		c.replyTo(n.conn.id, ev.MsgID, &proto.AnswerLastIDs{
			LastTid: c.tm.lastTid(c.lastTransaction), LastOid: c.tm.lastOid, FirstTid: c.tm.firstTid})
		return nil
	case *proto.AskLastTransaction:
		tid := c.lastTransaction
		if n.Type == proto.CLIENT && c.inBackup() {
			tid = c.readOnlyTid()
		}
		c.replyTo(n.conn.id, ev.MsgID, &proto.AnswerLastTransaction{Tid: tid})
		return nil
	case *proto.FlushLog:
		c.flushLog(n.conn.id)
		return nil
	}
	switch n.Type {
	case proto.STORAGE:
		if c.role.storageMsg == nil {
			return protocolError("unexpected packet")
		}
		return c.role.storageMsg(c, n, ev)
	case proto.CLIENT:
		return c.clientMsg(n, ev)
	case proto.ADMIN:
		return c.adminMsg(n, ev)
	case proto.MASTER:
		return protocolError("unexpected packet from secondary master")
	}
	return protocolError("unexpected packet")
}

func (c *Machine) answer(ev Answer) {
	k := c.conns[ev.Conn]
	if k == nil || k.aborted || !k.pending[ev.Tag] {
		return
	}
	delete(k.pending, ev.Tag)
	n := k.node
	if n == nil {
		return
	}
	if e, ok := ev.Msg.(*proto.Error); ok {
		c.log.Warn("request failed", "node", n.String(), "err", e.Error())
		return
	}
	var err error
	if n.Type == proto.STORAGE && c.role.storageAnswer != nil {
		err = c.role.storageAnswer(c, n, ev.Msg)
	}
	if err != nil {
		c.log.Warn("bad answer", "node", n.String(), "msg", proto.MsgName(ev.Msg.NEOMsgCode()), "err", err)
		var he *handlerError
		if errors.As(err, &he) && he.e.Code == proto.PROTOCOL_ERROR {
			e := he.e
			c.out = append(c.out, Effect{Kind: Send, Conn: k.id, Msg: &e})
			c.abort(k)
		}
	}
}

func (c *Machine) closed(id ConnID) {
	k := c.conns[id]
	if k == nil {
		return
	}
	delete(c.conns, id)
	k.aborted = true
	c.dropDeferred(id)
	c.dropHeld(id)
	if k.peer != nil {
		c.part.dialClosed(c, k)
		return
	}
	c.part.closed(c, k)
}

// primaryClosed handles the end of a link that a peer opened to the
// primary: the identified node is lost.
func (c *Machine) primaryClosed(k *conn) {
	n := k.node
	if n == nil || n.conn != k {
		return
	}
	n.conn = nil
	c.log.Info("connection lost", "node", n.String())
	switch n.Type {
	case proto.STORAGE:
		if c.role.storageLost != nil {
			c.role.storageLost(c, n)
		}
	case proto.CLIENT:
		c.clientLost(n)
	case proto.ADMIN:
		c.removeNode(n)
	case proto.MASTER:
		c.role.masterLost(c, n)
	}
}

// masterDown is the primary's reaction to the loss of a secondary
// master outside an election.
func masterDown(c *Machine, n *node) {
	c.setState(n, proto.DOWN)
	c.broadcastNodes(n)
}

func (c *Machine) dropDeferred(id ConnID) {
	c.deferred = slices.DeleteFunc(c.deferred, func(ev Recv) bool { return ev.Conn == id })
}

// --- identification ------------------------------------------------------

// identify implements the primary master's identification (protocol.md
// §5.1, cluster.md §1.1.3).
func (c *Machine) identify(k *conn, msgID uint32, req *proto.RequestIdentification) error {
	if req.ClusterName != c.cfg.Cluster {
		c.log.Warn("refused a node of another cluster: invalid cluster name", "peer_cluster", req.ClusterName,
			"peer_type", req.NodeType.String(), "peer_addr", req.Addr.String(), "conn", k.id)
		return protocolError("invalid cluster name")
	}
	if !req.Addr.IsZero() && req.Addr == c.self.Addr {
		return protocolError("address conflict")
	}
	byAddr := c.byAddr(req.Addr)
	e, nid, err := c.nodes.Claim(req.NID, req.Addr, c.self.NID, func(e *nodetab.Node) bool { return c.ext[e].identified() })
	if err != nil {
		return protocolError("already connected")
	}
	var n *node
	if e != nil {
		n = c.ext[e]
		if n.Addr != req.Addr {
			if n.Type == proto.MASTER {
				c.mastersChanged = true
			}
			c.nodes.SetAddr(e, req.Addr)
		}
	}

	extra := slices.Clone(req.Extra)
	var newNID []uint32
	readOnly := false
	if v, ok := extra.Get("new_nid"); ok {
		if l, ok := v.([]proto.Value); ok {
			for _, x := range l {
				if p, ok := valueInt(x); ok {
					newNID = append(newNID, uint32(p))
				}
			}
		}
	}
	if v, ok := extra.Get("read_only"); ok {
		readOnly, _ = v.(bool)
	} else if _, ok := extra.Get("backup"); ok && req.NodeType == proto.CLIENT {
		readOnly = true
	}
	extra = slices.DeleteFunc(extra, func(it proto.DictItem) bool {
		return it.Key == "new_nid" || it.Key == "read_only"
	})

	state := proto.NODE_RUNNING
	switch req.NodeType {
	case proto.CLIENT:
		switch c.state {
		case proto.RUNNING:
		case proto.BACKINGUP:
			if !readOnly {
				c.replyTo(k.id, msgID, &proto.Error{Code: proto.READ_ONLY_ACCESS,
					Message: "read-write access requested but cluster is backing up"})
				return nil
			}
		default:
			if c.holdClient() {
				return errHold
			}
			return notReady("")
		}
	case proto.STORAGE:
		if c.state == proto.STOPPING_BACKUP {
			return notReady("")
		}
		st, err := c.role.storageState(c, nid != 0 && n != nil)
		if err != nil {
			return err
		}
		state = st
		if req.Addr.IsZero() {
			if c.state == proto.RECOVERING {
				return notReady("")
			}
			if nid != 0 || len(newNID) == 0 {
				return protocolError("")
			}
			state = proto.DOWN
		}
	case proto.MASTER:
		if f := c.role.masterIdentifying; f != nil && f(c, k, req, byAddr) {
			return nil
		}
	case proto.ADMIN:
	default:
		return protocolError("invalid node type")
	}

	nid, err = c.nodes.NewNID(nid, req.Addr, req.NodeType, c.self.NID)
	if err != nil {
		c.log.Error("node refused", "type", req.NodeType.String(), "addr", addrString(req.Addr), "err", err)
		return protocolError(err.Error())
	}
	if n == nil {
		// Claim and NewNID leave the address and the id free.
		if n, err = c.addNode(nodetab.Node{Type: req.NodeType, Addr: req.Addr, State: state}); err != nil {
			return protocolError(err.Error())
		}
	}
	n.Type = req.NodeType
	c.setNID(n, nid)
	n.extra = extra
	n.readOnly = readOnly
	n.IDTimestamp = proto.Some(c.monotonic())
	c.setState(n, state)
	c.log.Info("node identified", "node", nid.String(), "type", req.NodeType.String(), "addr", addrString(req.Addr), "state", state.String())
	c.broadcastNodes(n)
	if len(newNID) > 0 {
		var changes []parttab.Change
		for _, p := range newNID {
			if p < c.pt.NumPartitions() {
				changes = append(changes, parttab.Change{Offset: p, NID: nid, State: proto.OUT_OF_DATE})
			}
		}
		if len(changes) > 0 {
			if err := c.pt.UpdateNext(c.pt.PTid()+1, c.pt.NumReplicas(), changes); err != nil {
				return protocolError(err.Error())
			}
			c.sendPartitionChanges(changes)
		}
	}
	k.node = n
	n.conn = k
	c.replyTo(k.id, msgID, &proto.AcceptIdentification{NodeType: proto.MASTER, MyNID: c.self.NID, YourNID: nid})
	c.sendFullNodeList(n)
	switch n.Type {
	case proto.STORAGE:
		c.role.storageJoined(c, n, true)
	case proto.CLIENT, proto.ADMIN:
		c.sendPartitionTable(n)
	}
	if n.Type == proto.ADMIN && c.inBackup() {
		c.tellUpstreamAdmin()
	}
	return nil
}

func valueInt(v proto.Value) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case uint64:
		return int64(x), true
	}
	return 0, false
}

// --- primary role --------------------------------------------------------

// playPrimary starts the primary role (cluster.md §1.2.2).
func (c *Machine) playPrimary() {
	if c.self.NID == 0 {
		nid, err := c.nodes.NewNID(0, c.self.Addr, proto.MASTER, 0)
		if err != nil {
			c.log.Error("no id for the primary master", "err", err)
			c.exit(err)
			return
		}
		c.setNID(c.self, nid)
	}
	c.setState(c.self, proto.NODE_RUNNING)
	c.primaryTime = c.monotonic()
	c.startupAllowed = false
	c.enterRecovery()
}

// leaveOperation goes back to RECOVERING after the partition table became
// non-operational or a truncation was requested (neoppod's
// StoppedOperation): clients are stopped and disconnected, running
// storages become pending.
func (c *Machine) leaveOperation(truncate proto.Tid) {
	c.log.Error("No longer operational")
	c.dropUpstream()
	c.startupAllowed = c.truncateTid == proto.InvalidTid && truncate == proto.InvalidTid
	c.pm.reset()
	c.readiness = 0
	clear(c.ready)
	clear(c.starting)
	var changed []*node
	for _, n := range c.sortedNodes() {
		if !n.identified() || n.Type != proto.STORAGE && n.Type != proto.CLIENT {
			continue
		}
		c.send(n, &proto.StopOperation{})
		if n.Type == proto.CLIENT {
			c.abort(n.conn)
			continue
		}
		if truncate != proto.InvalidTid {
			c.send(n, &proto.Truncate{Tid: truncate})
		}
		if n.State == proto.NODE_RUNNING {
			c.setState(n, proto.PENDING)
			changed = append(changed, n)
		}
	}
	c.broadcastNodes(changed...)
	c.enterRecovery()
}

// stopOperation requests leaving operation at the end of the step.
func (c *Machine) stopOperation(truncate proto.Tid) {
	c.stopOp = true
	c.stopTrunc = truncate
}

// storageLostInService is neoppod's BaseServiceHandler.connectionLost, for
// VERIFYING and the operational states.
func (c *Machine) storageLostInService(n *node) {
	switch n.State {
	case proto.PENDING:
		c.setState(n, proto.UNKNOWN)
	case proto.DOWN:
		return // already put down by an admin
	default:
		c.setState(n, proto.DOWN)
	}
	c.broadcastNodes(n)
	if c.truncateTid != proto.InvalidTid {
		c.stopOperation(proto.InvalidTid)
		return
	}
	c.broadcastPartitionChanges(c.pt.Outdate(c.nodeState, n.NID))
	if !c.pt.Operational(c.nodeState) {
		c.stopOperation(proto.InvalidTid)
	}
}

// --- storage readiness -----------------------------------------------------

func (c *Machine) startStorage(n *node) {
	c.send(n, &proto.StartOperation{Backup: c.backupTid != proto.InvalidTid})
	c.starting[n.NID] = true
}

func (c *Machine) setStorageReady(n *node) {
	delete(c.starting, n.NID)
	c.readiness++
	c.ready[n.NID] = c.readiness
	if a, r := c.pm.approvedRejected(proto.ZeroTid); len(a) > 0 || len(r) > 0 {
		c.send(n, &proto.NotifyPackSigned{Approved: a, Rejected: r})
	}
	c.runDeferred()
}

func (c *Machine) setStorageNotReady(nid proto.NodeID) {
	delete(c.starting, nid)
	delete(c.ready, nid)
	c.runDeferred()
}

// readySet returns the storages that were ready at readiness r.
func (c *Machine) readySet(r uint64) map[proto.NodeID]bool {
	s := map[proto.NodeID]bool{}
	for nid, v := range c.ready {
		if v <= r {
			s[nid] = true
		}
	}
	return s
}

// --- partition table messages --------------------------------------------

func (c *Machine) fullPT() *proto.SendPartitionTable {
	return &proto.SendPartitionTable{PTid: c.pt.PTid(), NumReplicas: uint32(c.pt.NumReplicas()), Rows: parttab.RowsToProto(c.pt.Rows())}
}

func (c *Machine) partitionChanges(changes []parttab.Change) *proto.NotifyPartitionChanges {
	cl := make([]proto.CellChange, len(changes))
	for i, ch := range changes {
		cl[i] = proto.CellChange(ch)
	}
	return &proto.NotifyPartitionChanges{PTid: c.pt.PTid(), NumReplicas: uint32(c.pt.NumReplicas()), CellList: cl}
}

func (c *Machine) notifyAdmins(msgs ...proto.Msg) {
	for _, n := range c.identified(proto.ADMIN) {
		for _, m := range msgs {
			c.send(n, m)
		}
	}
}

// nodeState is the node table seen by the partition table.
func (c *Machine) nodeState(nid proto.NodeID) proto.NodeState {
	if n := c.byNID(nid); n != nil {
		return n.State
	}
	return proto.UNKNOWN
}

// devpaths returns the topology path of each storage (extra "devpath").
func (c *Machine) devpaths() map[proto.NodeID][]string {
	m := map[proto.NodeID][]string{}
	for _, n := range c.allNodes() {
		if n.Type != proto.STORAGE {
			continue
		}
		v, _ := n.extra.Get("devpath")
		l, _ := v.([]proto.Value)
		var path []string
		for _, x := range l {
			if b, ok := x.([]byte); ok {
				path = append(path, string(b))
			}
		}
		m[n.NID] = path
	}
	return m
}

func addrString(a proto.Addr) string {
	if a.IsZero() {
		return ""
	}
	return a.String()
}
