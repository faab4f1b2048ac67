package core

import (
	"errors"
	"slices"
	"time"

	"github.com/neogo/neo/proto"
)

// Identifications held during a failover.
//
// neoppod answers at once: a secondary whose primary is gone says
// NotPrimaryMaster without a primary, a primary that is still recovering
// says NOT_READY to clients. Either way neoppod's client and nodes wait a
// whole second (CONNECT_LIMIT) before asking again, while the election
// and the recovery take tens of milliseconds. So such requests are held
// and answered as soon as the situation is settled, or after holdTime
// with the answer of the moment.

// holdTime bounds how long an identification is held. The core reads time
// only at events; the server ticks every second, so the answer comes at
// most about a second after the bound.
const holdTime = time.Second

// errHold makes the core hold an identification request.
var errHold = errors.New("hold identification")

type heldIdent struct {
	ev    Recv
	until time.Time
}

// holdSecondary tells whether a secondary holds this identification: its
// primary is being elected or reconnected, and the peer is not a master
// (masters take part in the election and need the answer now).
func (c *Machine) holdSecondary(req *proto.RequestIdentification) bool {
	return !c.releasing && req.NodeType != proto.MASTER &&
		(c.sec.primary == nil || !c.sec.primary.identified())
}

// holdClient tells whether a primary holds a client's identification: the
// cluster is on its way to RUNNING.
func (c *Machine) holdClient() bool {
	return !c.releasing && (c.state == proto.RECOVERING || c.state == proto.VERIFYING)
}

// hold queues ev, once: a request released past its bound is answered.
func (c *Machine) hold(ev Recv) {
	c.held = append(c.held, heldIdent{ev: ev, until: c.now().Add(holdTime)})
}

// settled tells whether a held identification can be answered.
func (c *Machine) settled(h heldIdent) bool {
	return c.part.settled(c, h.ev.Msg.(*proto.RequestIdentification))
}

// releaseHeld answers the held identifications that can be answered now
// or waited long enough; it reports whether it answered any.
func (c *Machine) releaseHeld() bool {
	if len(c.held) == 0 {
		return false
	}
	now := c.now()
	q := c.held
	c.held = nil
	released := false
	for _, h := range q {
		k := c.conns[h.ev.Conn]
		if k == nil || k.aborted {
			continue
		}
		if !c.settled(h) && now.Before(h.until) {
			c.held = append(c.held, h)
			continue
		}
		released = true
		c.releasing = true
		c.part.recv(c, h.ev)
		c.releasing = false
	}
	return released
}

func (c *Machine) isHeld(id ConnID) bool {
	return slices.ContainsFunc(c.held, func(h heldIdent) bool { return h.ev.Conn == id })
}

func (c *Machine) dropHeld(id ConnID) {
	c.held = slices.DeleteFunc(c.held, func(h heldIdent) bool { return h.ev.Conn == id })
}
