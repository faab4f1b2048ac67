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
