package client

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/nodetab"
	"github.com/neogo/neo/parttab"
	"github.com/neogo/neo/proto"
)

// masterConn is one connection to the primary master and what it told:
// the node and partition tables live with the connection and go with it
// (cluster.md §7.1: the table is cleared when the master is lost). Its
// fields after link are guarded by Client.mu; the link's handler updates
// them on the reader goroutine, so that the answer ending a Sync arrives after every
// notification sent before it has been applied.
type masterConn struct {
	c    *Client
	addr string
	link *neonet.Link

	nid   proto.NodeID // ours, from AcceptIdentification
	nodes *nodetab.Table
	pt    *parttab.Table
	// gotLast is set once AnswerLastTransaction was processed; before,
	// invalidations are kept in early (cluster.md §5.5).
	gotLast bool
	early   []Invalidation
}

func (mc *masterConn) lost() bool { return linkClosed(mc.link) }

// doneChan returns a channel closed when the link is gone; nil (never
// ready) for a nil connection.
func (mc *masterConn) doneChan() <-chan struct{} {
	if mc == nil {
		return nil
	}
	return mc.link.Done()
}

// follow makes the link to the master that accepted us (acc) the
// client's master connection, once it is usable (cluster.md §7.1): last
// tid known, partition table operational. Otherwise it fails, and the
// next master is tried.
func (c *Client) follow(ctx context.Context, link *neonet.Link, acc *proto.AcceptIdentification) (*masterConn, error) {
	addr := link.RemoteAddr().String()
	mc := &masterConn{c: c, addr: addr, link: link, nodes: nodetab.New()}
	c.mu.Lock()
	mc.nid = acc.YourNID
	c.mu.Unlock()
	// The node list and partition table the master sent after its
	// answer are queued: they go to the handler first, in order.
	link.SetHandler(mc.handle)
	var last proto.AnswerLastTransaction
	if err := link.Ask(ctx, &proto.AskLastTransaction{}, &last); err != nil {
		return nil, fmt.Errorf("ask master %s for the last tid: %w", addr, err)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed {
		return nil, ErrClosed
	}
	if mc.pt == nil || !mc.pt.Operational(mc.nodeStates) {
		return nil, fmt.Errorf("master %s: partition table not operational", addr)
	}
	mc.gotLast = true
	c.mu.stopped = false
	c.mu.nid = acc.YourNID
	c.mu.master = mc
	close(c.mu.ready)
	prev := c.mu.lastTid
	switch {
	case !c.mu.connected:
		c.mu.connected = true
		c.mu.lastTid, c.mu.readTid = last.Tid, last.Tid
	case prev != last.Tid:
		// Commits were missed while disconnected (or the database was
		// truncated): tell watchers that anything may have changed.
		c.emitLocked(Invalidation{Tid: last.Tid, All: true})
	}
	for _, inv := range mc.early {
		if inv.Tid > last.Tid {
			c.emitLocked(inv)
		}
	}
	mc.early = nil
	c.log.Info("connected to the primary master", "master", addr, "nid", acc.YourNID,
		"ptid", mc.pt.PTid(), "last_tid", last.Tid)
	return mc, nil
}

// barrier is neoppod's sync(): a round trip after which every
// notification the master sent before has been applied. It asks
// AskLastTransaction rather than Ping: the master answers it in turn
// with its notifications, while a Pong may be sent by the link layer
// ahead of notifications the master has queued (our master does so).
//
// A backup cluster sends its read-only clients no invalidation (cluster.md
// §8.9): the answer, its backup tid, is what they may read up to, every
// object possibly changed since the last one.
func (mc *masterConn) barrier(ctx context.Context) error {
	var last proto.AnswerLastTransaction
	if err := mc.link.Ask(ctx, &proto.AskLastTransaction{}, &last); err != nil {
		return err
	}
	c := mc.c
	if c.cfg.ReadOnly {
		c.mu.Lock()
		if c.mu.master == mc && last.Tid > c.mu.readTid {
			c.emitLocked(Invalidation{Tid: last.Tid, All: true})
		}
		c.mu.Unlock()
	}
	return nil
}

// nodeStates gives the node states for parttab; callers hold Client.mu.
func (mc *masterConn) nodeStates(nid proto.NodeID) proto.NodeState {
	if n := mc.nodes.ByNID(nid); n != nil {
		return n.State
	}
	return proto.UNKNOWN
}

// handle processes the master's notifications, on the link's reader
// goroutine.
func (mc *masterConn) handle(r *neonet.Request) {
	c := mc.c
	var toClose []*neonet.Link
	c.mu.Lock()
	switch m := r.Msg.(type) {
	case *proto.NotifyNodeInformation:
		entries := make([]nodetab.Node, len(m.NodeList))
		var masters []proto.Addr
		for i, n := range m.NodeList {
			entries[i] = nodetab.Node{Type: n.Type, Addr: n.Addr, NID: n.NID, State: n.State, IDTimestamp: n.IDTimestamp}
			if n.Type == proto.MASTER && n.State != proto.UNKNOWN {
				masters = append(masters, n.Addr)
			}
		}
		drop := func(nid proto.NodeID) bool { return mc.pt == nil || mc.pt.DropNode(nid) }
		res, err := mc.nodes.Update(m.Timestamp, mc.nid, entries, drop)
		if err != nil {
			c.log.Error("bad node notification from the master; reconnecting", "err", err)
			toClose = append(toClose, r.Link)
			break
		}
		// Storages not RUNNING (or forgotten) lose their link (§1.1.3).
		var gone []proto.NodeID
		for _, n := range res.Changed {
			if n.Type == proto.STORAGE && n.State != proto.NODE_RUNNING {
				gone = append(gone, n.NID)
			}
		}
		for _, n := range res.Removed {
			if n.Type == proto.STORAGE {
				gone = append(gone, n.NID)
			}
		}
		if c.mu.master == mc {
			for _, nid := range gone {
				if sc := c.mu.storages[nid]; sc != nil {
					delete(c.mu.storages, nid)
					if sc.link != nil {
						toClose = append(toClose, sc.link)
					}
				}
			}
		}
		c.learnMastersLocked(masters)
	case *proto.SendPartitionTable:
		pt, err := parttab.Load(m.PTid, int(m.NumReplicas), parttab.RowsFromProto(m.Rows))
		if err != nil {
			c.log.Error("bad partition table from the master; reconnecting", "err", err)
			toClose = append(toClose, r.Link)
			break
		}
		mc.pt = pt
	case *proto.NotifyPartitionChanges:
		if mc.pt == nil {
			break
		}
		changes := make([]parttab.Change, len(m.CellList))
		for i, ch := range m.CellList {
			changes[i] = parttab.Change{Offset: ch.Offset, NID: ch.NID, State: ch.State}
		}
		if err := mc.pt.Update(m.PTid, int(m.NumReplicas), changes); err != nil {
			c.log.Error("bad partition change from the master; reconnecting", "err", err)
			toClose = append(toClose, r.Link)
		}
	case *proto.InvalidateObjects:
		inv := Invalidation{Tid: m.Tid, Oids: m.OidList}
		switch {
		case !mc.gotLast:
			mc.early = append(mc.early, inv)
		case c.mu.master == mc:
			c.emitLocked(inv)
		}
	case *proto.StopOperation:
		c.log.Info("the master stopped the cluster operation")
		if c.mu.master == mc {
			c.mu.stopped = true
		}
		toClose = append(toClose, r.Link)
	case *proto.NotifyClusterInformation:
		c.log.Debug("cluster state", "cluster_state", m.State)
	default:
		c.log.Debug("ignored packet from the master", "msg", proto.MsgName(r.Msg.NEOMsgCode()))
	}
	c.mu.Unlock()
	for _, l := range toClose {
		l.Close()
	}
}

// readCandidatesLocked returns the candidates to read partition part, in
// the order to try them (cluster.md §7.2): readable cells, shuffled, the
// nodes that failed recently last (the oldest failure first). They are
// in dst's array if it is big enough (a load's stack, no allocation).
func (c *Client) readCandidatesLocked(dst []proto.NodeID, pt *parttab.Table, part uint32, now time.Time) []proto.NodeID {
	nids := pt.AppendReadableNodes(dst[:0], part)
	if len(nids) > 1 {
		randShuffle(nids)
		slices.SortStableFunc(nids, func(a, b proto.NodeID) int {
			fa, fb := c.failedAtLocked(a, now), c.failedAtLocked(b, now)
			return fa.Compare(fb)
		})
	}
	return nids
}

// failedAtLocked returns when nid last failed if within failureMemory,
// else the zero time.
func (c *Client) failedAtLocked(nid proto.NodeID, now time.Time) time.Time {
	t, ok := c.mu.failed[nid]
	if !ok {
		return time.Time{}
	}
	if now.Sub(t) > failureMemory {
		delete(c.mu.failed, nid)
		return time.Time{}
	}
	return t
}
