package storage

// A storage that rejoins a running cluster is announced RUNNING to the
// clients as soon as it identifies to the master (protocol.md §5.3), a few
// tens of milliseconds before it becomes operational (it first stores the
// partition table, then handles StartOperation). A client that connects in
// between would get NOT_READY, and neoppod's client then waits 1 s
// (CONNECT_LIMIT) before it dials that address again, stalling the
// transaction that needs the storage. So while the master says we are
// RUNNING (or has not told us yet), identification waits for the node to
// become operational, for at most operationalWait, instead of answering
// NOT_READY at once.

import (
	"context"
	"time"

	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
)

// operationalWait bounds the wait of an identification for the node to
// become operational: a peer refused after it waited no longer than its
// own reconnection delay (1 s for neoppod) loses nothing.
const operationalWait = time.Second

// errNotReady is the answer to an identification while not operational.
var errNotReady = &proto.Error{Code: proto.NOT_READY, Message: "Retry Later"}

// operationSoon tells, with n.mu held, whether StartOperation may follow
// soon: the master said this node is RUNNING, or has not told its state
// yet (a client it told about us may reach us before its notification
// does). A node without id, or that the master holds PENDING, answers at
// once.
func (n *Node) operationSoon() bool {
	if n.mu.nid == 0 {
		return false
	}
	self := n.mu.nodes.ByNID(n.mu.nid)
	return self == nil || self.State == proto.NODE_RUNNING
}

// waitOperational waits, for an identification arrived while the node is
// not operational, until ch (n.mu.notifyCh, closed when the node becomes
// operational) is closed. It returns errNotReady at once unless soon
// (operationSoon), and once deadline has passed.
func waitOperational(ctx context.Context, link *neonet.Link, ch <-chan struct{}, soon bool, deadline time.Time) error {
	left := time.Until(deadline)
	if !soon || left <= 0 {
		return errNotReady
	}
	t := time.NewTimer(left)
	defer t.Stop()
	select {
	case <-ch:
		return nil
	case <-t.C:
		return errNotReady
	case <-link.Done():
		return neonet.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}
