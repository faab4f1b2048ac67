package client

import "github.com/neogo/neo/proto"

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
	c.mu.testHookStorageAddr = h
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
