package core

import (
	"cmp"
	"slices"

	"github.com/neogo/neo/nodetab"
	"github.com/neogo/neo/proto"
)

// Election and the secondary role (cluster.md §1.2.3–§1.2.5, protocol.md
// §5.2).
//
// A master playing the primary role is "in election" while its cluster
// is RECOVERING (the election is the behaviour of roleRecovering towards
// other masters: masterIdentifying, masterLost, dialLost, redirected and
// its progress): it keeps a link dialed to every known master it is not
// connected to and identifies on it with its election key, the time it
// started playing primary. The lowest (key, address) wins:
//
//   - a candidate receiving an identification with a lower key yields
//     without answering;
//   - a candidate whose identification is accepted yields to the
//     acceptor (which had a lower key or is already past RECOVERING);
//   - NotPrimaryMaster from a secondary names the primary to follow,
//     unless we already accepted that master (we won against it).
//
// A master that yields plays the secondary role (partSecondary): it
// keeps (or dials) one link to the presumed primary, answers every
// identification with NotPrimaryMaster, exits when told STOPPING or that
// itself is DOWN, and when the primary link dies it tries the known
// masters once each, then plays the primary role again (a new election).

// electionLess reports whether the election key (t1, a1) wins against
// (t2, a2): earlier start, then smaller address (host, then port).
func electionLess(t1 float64, a1 proto.Addr, t2 float64, a2 proto.Addr) bool {
	if t1 != t2 {
		return t1 < t2
	}
	if r := cmp.Compare(a1.Host, a2.Host); r != 0 {
		return r < 0
	}
	return a1.Port < a2.Port
}

// secondary is the state of the secondary role.
type secondary struct {
	primary *node               // the presumed primary
	tried   map[proto.Addr]bool // masters tried since the last success
	giveUp  bool                // every master was tried: play primary at the end of the step
}

func newPartSecondary() *part {
	return &part{
		name:       "secondary",
		recv:       (*Machine).secondaryRecv,
		closed:     (*Machine).secondaryClosed,
		dialClosed: (*Machine).secondaryClosed,
		accepted: func(c *Machine, k *conn, p *node) bool {
			if p != c.sec.primary {
				c.abort(k)
				p.conn = nil
				return false
			}
			return true
		},
		redirected: func(c *Machine, p *node) {
			if p != nil && p != c.sec.primary {
				c.switchPrimary(p)
			}
		},
		notified: secondaryNotified,
		settle: func(c *Machine) bool {
			if !c.sec.giveUp {
				return false
			}
			c.playPrimaryAgain()
			return true
		},
		settled: func(c *Machine, req *proto.RequestIdentification) bool {
			return !c.holdSecondary(req)
		},
	}
}

// electionIdentifying yields to an identifying master that started
// playing primary earlier, without answering it.
func electionIdentifying(c *Machine, k *conn, req *proto.RequestIdentification, byAddr *node) bool {
	if !req.IDTimestamp.Valid || !electionLess(req.IDTimestamp.V, req.Addr, c.primaryTime, c.self.Addr) {
		return false
	}
	p := byAddr
	if p == nil {
		p = c.learnMaster(req.Addr)
	}
	c.log.Info("yield to an earlier master", "addr", req.Addr.String())
	c.abort(k)
	c.becomeSecondary(p)
	return true
}

// electionRedirected follows the primary a secondary designated, unless
// we already accepted that master (we won against it); either way the
// masters it listed may be new.
func electionRedirected(c *Machine, p *node) {
	if p != nil && !p.identified() {
		c.becomeSecondary(p)
		return
	}
	c.rec.redial = true
}

// learnMaster returns the master known at addr, adding it (DOWN) if new.
func (c *Machine) learnMaster(addr proto.Addr) *node {
	if n := c.byAddr(addr); n != nil {
		return n
	}
	// Without an id, at a free address: no conflict is possible.
	n, _ := c.addNode(nodetab.Node{Type: proto.MASTER, Addr: addr, State: proto.DOWN})
	c.log.Info("new master address", "addr", addr.String())
	return n
}

// masterAddrs lists the addresses of every known master, ourselves
// included, in a stable order (NotPrimaryMaster's list).
func (c *Machine) masterAddrs() []proto.Addr {
	var out []proto.Addr
	for _, n := range c.allNodes() {
		if n.Type == proto.MASTER && !n.Addr.IsZero() {
			out = append(out, n.Addr)
		}
	}
	return out
}

// saveMasters emits SaveMasters when the set of master addresses changed.
func (c *Machine) saveMasters() {
	if !c.mastersChanged || !c.cfg.SaveMasterList || c.exited {
		return
	}
	c.mastersChanged = false
	l := c.masterAddrs()
	slices.SortFunc(l, func(a, b proto.Addr) int {
		if r := cmp.Compare(a.Host, b.Host); r != 0 {
			return r
		}
		return cmp.Compare(a.Port, b.Port)
	})
	if slices.Equal(l, c.savedMasters) {
		return
	}
	c.savedMasters = l
	c.out = append(c.out, Effect{Kind: SaveMasters, Masters: slices.Clone(l)})
}

// dialMaster opens a link to master n and identifies on it, with the
// election key idts while a candidate.
func (c *Machine) dialMaster(n *node, idts proto.Opt[float64]) {
	c.nextDial++
	id := DialedConn | c.nextDial
	k := &conn{id: id, pending: map[uint64]bool{}, peer: n}
	c.conns[id] = k
	n.dial = k
	c.nextTag++
	k.idTag = c.nextTag
	k.pending[k.idTag] = true
	c.out = append(c.out,
		Effect{Kind: Dial, Conn: id, Addr: n.Addr},
		Effect{Kind: Ask, Conn: id, Tag: k.idTag, Msg: &proto.RequestIdentification{
			NodeType: proto.MASTER, NID: c.self.NID, Addr: c.self.Addr,
			ClusterName: c.cfg.Cluster, IDTimestamp: idts, Extra: proto.Dict{}}})
}

// electionProgress dials the masters we are not connected to, when asked
// (entering RECOVERING, a master link lost, a new master learnt). The
// driver throttles the attempts to one per second and address.
func (c *Machine) electionProgress() {
	if !c.rec.redial {
		return
	}
	c.rec.redial = false
	var changed []*node
	for _, n := range c.allNodes() {
		if n.Type != proto.MASTER || n == c.self || n.conn != nil || n.dial != nil {
			continue
		}
		if n.State != proto.DOWN {
			c.setState(n, proto.DOWN)
			changed = append(changed, n)
		}
		c.dialMaster(n, proto.Some(c.primaryTime))
	}
	c.broadcastNodes(changed...)
}

// endElection closes the election links still unanswered when the
// primary leaves RECOVERING; those masters are then DOWN.
func (c *Machine) endElection() {
	for _, n := range c.allNodes() {
		if n.dial != nil {
			c.abort(n.dial)
			n.dial = nil
		}
	}
}

// setSelfNID adopts the id a primary gave us; a node that held it loses
// it.
func (c *Machine) setSelfNID(nid proto.NodeID) {
	if o := c.byNID(nid); o != nil && o != c.self {
		if o.conn != nil {
			c.abort(o.conn)
			o.conn = nil
		}
	}
	c.setNID(c.self, nid)
}

// recvDialed handles a packet received on a link we dialed.
func (c *Machine) recvDialed(k *conn, ev Recv) {
	if k.aborted {
		return
	}
	if _, ok := ev.Msg.(*proto.NotPrimaryMaster); !ok && k.idTag != 0 {
		k.held = append(k.held, ev)
		return
	}
	switch m := ev.Msg.(type) {
	case *proto.NotPrimaryMaster:
		c.notPrimaryMaster(k, m)
	case *proto.NotifyNodeInformation, *proto.NotifyClusterInformation:
		c.part.notified(c, k, m)
	case *proto.Ping:
		c.replyTo(k.id, ev.MsgID, &proto.Pong{})
	case *proto.FlushLog:
		c.out = append(c.out, Effect{Kind: FlushLog})
	default:
		c.log.Warn("unexpected packet from a master", "addr", k.peer.Addr.String(), "msg", proto.MsgName(ev.Msg.NEOMsgCode()))
		e := proto.Error{Code: proto.PROTOCOL_ERROR, Message: "unexpected packet"}
		c.out = append(c.out, Effect{Kind: Send, Conn: k.id, Msg: &e})
		c.abort(k)
	}
}

// answerDialed handles the answer to our identification on a dialed link.
func (c *Machine) answerDialed(k *conn, ev Answer) {
	if k.aborted || ev.Tag != k.idTag || !k.pending[ev.Tag] {
		return
	}
	delete(k.pending, ev.Tag)
	k.idTag = 0
	p := k.peer
	m, ok := ev.Msg.(*proto.AcceptIdentification)
	if !ok || m.NodeType != proto.MASTER || m.YourNID == 0 {
		c.log.Warn("master refused our identification", "addr", p.Addr.String(), "answer", msgString(ev.Msg))
		c.abort(k)
		return
	}
	c.setNID(p, m.MyNID) // a node that had this id loses it
	c.setState(p, proto.NODE_RUNNING)
	c.setSelfNID(m.YourNID)
	if p.dial == k {
		p.dial = nil
	}
	p.conn = k
	k.node = p
	c.log.Info("connected to a primary master node", "primary", p.String(), "addr", p.Addr.String(), "uuid", m.YourNID.String())
	if !c.part.accepted(c, k, p) {
		return
	}
	held := k.held
	k.held = nil
	for _, r := range held {
		c.recvDialed(k, r)
	}
}

// notPrimaryMaster handles a secondary's redirection (protocol.md §3.3 #5).
func (c *Machine) notPrimaryMaster(k *conn, m *proto.NotPrimaryMaster) {
	for _, a := range m.KnownMasters {
		if a != c.self.Addr {
			c.learnMaster(a)
		}
	}
	var p *node
	if m.Primary.Valid && int(m.Primary.V) < len(m.KnownMasters) {
		if a := m.KnownMasters[m.Primary.V]; a != c.self.Addr {
			p = c.byAddr(a)
		}
	}
	c.part.redirected(c, p)
}

// becomeSecondary leaves the primary role for the secondary role
// following p: every link but ours to p is closed.
func (c *Machine) becomeSecondary(p *node) {
	c.log.Info("play the secondary role", "primary", p.Addr.String())
	c.part = partSecondary
	c.sec = &secondary{primary: p}
	var keep *conn
	switch {
	case p.dial != nil:
		keep = p.dial
	case p.conn != nil && p.conn.peer != nil:
		keep = p.conn
	}
	c.closeAllBut(keep)
	c.deferred = nil
	c.sec.tried = map[proto.Addr]bool{c.self.Addr: true}
	if keep == nil {
		c.secondaryConnect()
	}
}

// closeAllBut closes every link but keep and detaches the nodes: storages
// become DOWN, clients and admins are forgotten.
func (c *Machine) closeAllBut(keep *conn) {
	ids := make([]ConnID, 0, len(c.conns))
	for id, k := range c.conns {
		// Held identifications are answered by the new role.
		if k != keep && !c.isHeld(id) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		c.abort(c.conns[id])
	}
	for _, n := range c.allNodes() {
		if n.conn != nil && n.conn != keep {
			n.conn = nil
		}
		if n.dial != nil && n.dial != keep {
			n.dial = nil
		}
		switch n.Type {
		case proto.STORAGE:
			c.setState(n, proto.DOWN)
		case proto.CLIENT, proto.ADMIN:
			c.removeNode(n)
		}
	}
}

// secondaryConnect dials the presumed primary (without election key).
func (c *Machine) secondaryConnect() {
	p := c.sec.primary
	for _, n := range c.allNodes() {
		if n.Type == proto.MASTER && n != c.self {
			c.setState(n, proto.DOWN)
		}
	}
	c.sec.tried[p.Addr] = true
	if p.dial == nil && p.conn == nil {
		c.dialMaster(p, proto.Opt[float64]{})
	}
}

// switchPrimary makes a secondary follow p instead.
func (c *Machine) switchPrimary(p *node) {
	old := c.sec.primary
	c.log.Info("primary master changed", "old", old.Addr.String(), "new", p.Addr.String())
	for _, k := range []*conn{old.dial, old.conn} {
		if k != nil {
			c.abort(k)
		}
	}
	old.dial, old.conn = nil, nil
	c.sec.primary = p
	c.secondaryConnect()
}

// forgetDial detaches a closed link we dialed from the master dialed.
func forgetDial(k *conn) {
	if p := k.peer; p != nil {
		if p.dial == k {
			p.dial = nil
		}
		if p.conn == k {
			p.conn = nil
		}
	}
}

// primaryDialClosed handles the end of a link the primary dialed (to
// another candidate, while in election).
func primaryDialClosed(c *Machine, k *conn) {
	forgetDial(k)
	if c.role.dialLost != nil {
		c.role.dialLost(c)
	}
}

// secondaryClosed handles the end of any link of a secondary: when it is
// the link to the primary, the secondary tries the primary again if it
// was connected to it, else the next master not tried yet; when every
// master was tried, it plays primary again at the end of the step.
func (c *Machine) secondaryClosed(k *conn) {
	pm := c.sec.primary
	wasPrimary := pm != nil && (pm.dial == k || pm.conn == k)
	forgetDial(k)
	if !wasPrimary {
		return
	}
	c.log.Info("primary master lost", "primary", pm.Addr.String(), "state", pm.State.String())
	if pm.State == proto.NODE_RUNNING {
		// We were connected to it: try it again first.
		c.sec.tried = map[proto.Addr]bool{c.self.Addr: true}
	} else {
		var next *node
		for _, n := range c.allNodes() {
			if n.Type == proto.MASTER && n != c.self && !c.sec.tried[n.Addr] {
				next = n
				break
			}
		}
		if next == nil {
			c.sec.giveUp = true // at the end of the step
			return
		}
		c.sec.primary = next
	}
	c.secondaryConnect()
}

// playPrimaryAgain ends the secondary role: every known master was tried.
func (c *Machine) playPrimaryAgain() {
	c.log.Info("no primary master found: play the primary role")
	c.part = partPrimary
	c.sec = nil
	c.closeAllBut(nil)
	c.playPrimary()
}

// secondaryRecv answers an incoming link of a secondary: NotPrimaryMaster
// then abort (cluster.md §1.2.4).
func (c *Machine) secondaryRecv(ev Recv) {
	k := c.conns[ev.Conn]
	if k == nil {
		k = &conn{id: ev.Conn, pending: map[uint64]bool{}}
		c.conns[ev.Conn] = k
	}
	if k.aborted {
		return
	}
	req, ok := ev.Msg.(*proto.RequestIdentification)
	switch {
	case !ok:
		c.handleError(k, ev, protocolError("identification required"))
		return
	case req.ClusterName != c.cfg.Cluster:
		c.log.Warn("refused a node of another cluster: invalid cluster name", "peer_cluster", req.ClusterName,
			"peer_type", req.NodeType.String(), "peer_addr", req.Addr.String(), "conn", ev.Conn)
		c.handleError(k, ev, protocolError("invalid cluster name"))
		return
	case !req.Addr.IsZero() && req.Addr == c.self.Addr:
		c.handleError(k, ev, protocolError("address conflict"))
		return
	}
	if c.holdSecondary(req) {
		c.hold(ev)
		return
	}
	pm := c.sec.primary
	var primary proto.Opt[uint32]
	switch {
	case pm.Addr == req.Addr:
	case !pm.identified():
		if req.NodeType == proto.MASTER && !req.Addr.IsZero() {
			n := c.learnMaster(req.Addr)
			if req.IDTimestamp.Valid {
				// A candidate while our primary is not confirmed:
				// follow it instead.
				c.abort(k)
				c.switchPrimary(n)
				return
			}
		}
	default:
		primary = proto.Some(uint32(slices.Index(c.masterAddrs(), pm.Addr)))
	}
	c.out = append(c.out, Effect{Kind: Send, Conn: k.id, Msg: &proto.NotPrimaryMaster{Primary: primary, KnownMasters: c.masterAddrs()}})
	c.abort(k)
}

// secondaryNotified handles the notifications of the primary: its
// master entries, and STOPPING, which makes a secondary exit.
func secondaryNotified(c *Machine, k *conn, m proto.Msg) {
	if k.node != c.sec.primary {
		return
	}
	switch m := m.(type) {
	case *proto.NotifyNodeInformation:
		c.secondaryNodes(m)
	case *proto.NotifyClusterInformation:
		if m.State == proto.STOPPING {
			c.log.Info("the cluster is stopping: exit")
			c.exit(nil)
		}
	}
}

// secondaryNodes applies the primary's master notifications; a secondary
// told that itself is DOWN exits (neoctl kill).
func (c *Machine) secondaryNodes(m *proto.NotifyNodeInformation) {
	for _, e := range m.NodeList {
		if e.Type != proto.MASTER {
			continue
		}
		if e.Addr == c.self.Addr || e.NID == c.self.NID {
			if e.State == proto.DOWN {
				c.log.Info("told to stop by the primary master: exit")
				c.exit(nil)
				return
			}
			continue
		}
		n := c.byAddr(e.Addr)
		if e.State == proto.UNKNOWN {
			if n != nil && n != c.sec.primary {
				c.removeNode(n)
			}
			continue
		}
		if n == nil {
			n = c.learnMaster(e.Addr)
		}
		c.setNID(n, e.NID) // a node that had this id loses it
		c.setState(n, e.State)
		n.IDTimestamp = e.IDTimestamp
	}
}
