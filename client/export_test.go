package client

import (
	"context"

	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
)

// StorageNIDsForTest returns the storages the transaction wrote to.
func (t *Txn) StorageNIDsForTest() []proto.NodeID {
	t.mu.Lock()
	defer t.mu.Unlock()
	return sortedNIDs(t.mu.links)
}

// BreakLinkForTest closes the transaction's link to storage nid: the
// storage is lost by this client only, while the master still sees it
// RUNNING.
func (t *Txn) BreakLinkForTest(nid proto.NodeID) {
	t.mu.Lock()
	l := t.mu.links[nid]
	t.mu.Unlock()
	if l != nil {
		l.Close()
	}
}

// SetStorageAddrHookForTest makes the client dial h(nid, addr) instead of
// a storage's address addr.
func (c *Client) SetStorageAddrHookForTest(h func(nid proto.NodeID, addr string) string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.hooks.storageAddr = h
}

// DropStorageLinksForTest closes every storage link of the client.
func (c *Client) DropStorageLinksForTest() {
	c.mu.Lock()
	links := c.takeStoragesLocked()
	c.mu.Unlock()
	for _, l := range links {
		l.Close()
	}
}

// MasterDoneForTest returns a channel closed when the current master
// connection is lost (nil while disconnected).
func (c *Client) MasterDoneForTest() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.master.doneChan()
}

// AbortMasterAfterFinishForTest makes the next Finish lose the master
// link right after its request is flushed, and the reconnection that
// follows wait until hold is closed. from receives the node ("master" or
// "storage") of each AskFinalTID answer.
func (c *Client) AbortMasterAfterFinishForTest(hold <-chan struct{}, from func(node string, tid proto.Tid)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.hooks.finishSent = func(l *neonet.Link) {
		c.mu.Lock()
		c.mu.hooks.finishSent = nil
		c.mu.Unlock()
		l.Abort() // flushes the request, then closes
	}
	c.mu.hooks.reconnect = func() {
		select {
		case <-hold:
		case <-c.ctx.Done():
		}
	}
	c.mu.hooks.finalTID = from
}

// OnDeadlockForTest makes f see every NotifyDeadlock the client receives.
func (c *Client) OnDeadlockForTest(f func(ttid proto.Tid, oid proto.Oid)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.hooks.deadlock = f
}

// WaitStoresForTest waits for the answers of the stores sent so far,
// leaving them for Vote. If ctx ends first the transaction is spoilt
// (the answers will be dropped): only for tests that fail then.
func (t *Txn) WaitStoresForTest(ctx context.Context) error {
	t.mu.Lock()
	t.flushLocked()
	calls := make([]*neonet.Call, len(t.mu.pending))
	for i, p := range t.mu.pending {
		calls[i] = p.call
	}
	t.mu.Unlock()
	for _, call := range calls {
		if err := call.Wait(ctx); err != nil {
			return err
		}
	}
	return nil
}

// HoldNextFinishForTest makes the next Finish wait, once its request is
// sent, until hold is closed; sent is closed when it waits.
func (c *Client) HoldNextFinishForTest(sent chan<- struct{}, hold <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.hooks.finishSent = func(*neonet.Link) {
		c.mu.Lock()
		c.mu.hooks.finishSent = nil
		c.mu.Unlock()
		close(sent)
		<-hold
	}
}

// SetIterChunkForTest sets how many tids Iterate asks of a partition at
// once, until restore.
func SetIterChunkForTest(n int) (restore func()) {
	old := iterChunk
	iterChunk = n
	return func() { iterChunk = old }
}
