package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
)

// storageConn is the link to one storage node, opened on demand. ready is
// closed when the dial and identification ended, with link or err set.
type storageConn struct {
	nid   proto.NodeID
	ready chan struct{}
	link  *neonet.Link
	err   error
}

// errNotRunning: the storage is not RUNNING per the master, so no link is
// opened to it (cluster.md §1.5).
var errNotRunning = errors.New("storage node not running")

// storage returns the link to storage nid, dialing and identifying if
// there is none (protocol.md §5.6). A failure marks the node failed.
func (c *Client) storage(ctx context.Context, nid proto.NodeID) (*neonet.Link, error) {
	for {
		c.mu.Lock()
		if c.mu.closed {
			c.mu.Unlock()
			return nil, ErrClosed
		}
		mc := c.mu.master
		if mc == nil {
			c.mu.Unlock()
			return nil, fmt.Errorf("storage %v: %w", nid, ErrMasterLost)
		}
		sc := c.mu.storages[nid]
		if sc != nil {
			select {
			case <-sc.ready:
				if sc.err == nil && !linkClosed(sc.link) {
					c.mu.Unlock()
					return sc.link, nil
				}
				delete(c.mu.storages, nid) // dial again
				c.mu.Unlock()
				continue
			default:
			}
			c.mu.Unlock()
			select {
			case <-sc.ready:
				if sc.err != nil {
					return nil, sc.err
				}
				continue
			case <-ctx.Done():
				return nil, context.Cause(ctx)
			}
		}
		node := mc.nodes.ByNID(nid)
		if node == nil || node.State != proto.NODE_RUNNING {
			c.mu.Unlock()
			return nil, fmt.Errorf("storage %v: %w", nid, errNotRunning)
		}
		addr := node.Addr.String()
		hook := c.mu.hooks.storageAddr
		self, ts := mc.nid, mc.nodes.SelfIDTimestamp()
		sc = &storageConn{nid: nid, ready: make(chan struct{})}
		c.mu.storages[nid] = sc
		c.mu.Unlock()

		if hook != nil {
			addr = hook(nid, addr)
		}
		link, err := c.dialStorage(ctx, nid, addr, self, ts)
		c.mu.Lock()
		sc.link, sc.err = link, err
		close(sc.ready)
		if err != nil {
			if c.mu.storages[nid] == sc {
				delete(c.mu.storages, nid)
			}
			if ctx.Err() == nil { // the caller giving up is no failure of the node
				c.mu.failed[nid] = time.Now()
			}
		} else if c.mu.storages[nid] != sc || c.mu.closed {
			// The master lost meanwhile: this link belongs to the old
			// identification.
			c.mu.Unlock()
			link.Close()
			return nil, fmt.Errorf("storage %v: %w", nid, ErrMasterLost)
		}
		c.mu.Unlock()
		return link, err
	}
}

func (c *Client) dialStorage(ctx context.Context, nid proto.NodeID, addr string, self proto.NodeID, ts proto.Opt[float64]) (*neonet.Link, error) {
	cfg := c.ncfg
	cfg.Handler = c.handleStorage
	// Loads and commits wait for their answers: reading them on the
	// waiting goroutine saves a hand-off per round trip.
	cfg.CallerReads = true
	link, err := neonet.Dial(ctx, "tcp", addr, cfg)
	if err != nil {
		return nil, fmt.Errorf("storage %v: %w", nid, err)
	}
	req := &proto.RequestIdentification{
		NodeType:    proto.CLIENT,
		NID:         self,
		ClusterName: c.cfg.Cluster,
		IDTimestamp: ts,
		Extra:       proto.Dict{},
	}
	var acc proto.AcceptIdentification
	if err := link.Ask(ctx, req, &acc); err != nil {
		link.Close()
		return nil, fmt.Errorf("identify to storage %v at %s: %w", nid, addr, err)
	}
	if acc.NodeType != proto.STORAGE || acc.MyNID != nid {
		link.Close()
		return nil, fmt.Errorf("identify to storage %v at %s: answered as %v %v", nid, addr, acc.NodeType, acc.MyNID)
	}
	c.log.Debug("connected to storage", "nid", nid, "addr", addr)
	return link, nil
}

// storageFailed marks nid failed and drops its link if it is link.
func (c *Client) storageFailed(nid proto.NodeID, link *neonet.Link) {
	c.mu.Lock()
	c.mu.failed[nid] = time.Now()
	if sc := c.mu.storages[nid]; sc != nil && sc.link == link && link != nil {
		delete(c.mu.storages, nid)
	}
	c.mu.Unlock()
	if link != nil {
		link.Close()
	}
}

func linkClosed(l *neonet.Link) bool {
	select {
	case <-l.Done():
		return true
	default:
		return l.Err() != nil
	}
}

// handleStorage processes a storage's notifications: NotifyDeadlock
// (cluster.md §6.6) for one of our transactions.
func (c *Client) handleStorage(r *neonet.Request) {
	m, ok := r.Msg.(*proto.NotifyDeadlock)
	if !ok {
		c.log.Debug("ignored packet from a storage", "msg", proto.MsgName(r.Msg.NEOMsgCode()))
		return
	}
	c.mu.Lock()
	txn := c.mu.txns[m.LockingTid]
	hook := c.mu.hooks.deadlock
	c.mu.Unlock()
	if hook != nil {
		hook(m.LockingTid, m.Oid)
	}
	if txn != nil {
		txn.relock(r.Link, m.Oid)
	}
}

// randShuffle shuffles nids (load balancing between readable cells).
func randShuffle(nids []proto.NodeID) {
	rand.Shuffle(len(nids), func(i, j int) { nids[i], nids[j] = nids[j], nids[i] })
}
