// Package nodetab is the table of known nodes that every NEO node keeps:
// type, listening address, node id, state and id_timestamp of masters,
// storages, clients and admins (protocol.md §4.5, cluster.md §1.1).
//
// The primary master owns the truth: it adds nodes as they identify
// ([Table.Add]), settles who an identifying node is ([Table.Claim]),
// allocates their ids ([Table.NewNID]) and changes their states; its
// timestamps come from a [Monotonic] clock. The other nodes mirror it
// from NotifyNodeInformation with [Table.Update], which follows
// neoppod's NodeManager: the first notification after identification is
// a full list that must contain the receiver, entries are matched by id
// and by address, UNKNOWN forgets a node, and notification timestamps
// must strictly increase.
//
// Nodes are looked up by id and by address; an id or address is held by at
// most one node. The package is pure (no I/O, no clock: times come in as
// float seconds) and a Table is not safe for concurrent use.
package nodetab

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"github.com/neogo/neo/proto"
)

// Node is one node of the table. Its fields are those of a node entry on
// the wire, so that proto.NodeInfo and Node convert into each other.
type Node struct {
	Type  proto.NodeType
	Addr  proto.Addr   // zero: no listening address
	NID   proto.NodeID // 0: no id yet (a master known only by address)
	State proto.NodeState
	// IDTimestamp is the master's time at which the node identified to
	// it, kept bit for bit since storages compare it with float equality.
	IDTimestamp proto.Opt[float64]
}

func (n Node) String() string {
	return fmt.Sprintf("%v %v %v %v", FormatNID(n.NID), n.Type, n.Addr, n.State)
}

// Errors of [Table.Update] and [Table.Add].
var (
	// ErrTimestamp: a notification is not more recent than the previous one.
	ErrTimestamp = errors.New("nodetab: notification timestamp not increasing")
	// ErrSelfMissing: the first notification does not list the receiver.
	ErrSelfMissing = errors.New("nodetab: first notification does not list the receiving node")
	// ErrConflict: an entry's id and address designate different nodes, or
	// its type differs from the known node's.
	ErrConflict = errors.New("nodetab: conflicting node entry")
	// ErrUnknownNode: a notification forgets a node the receiver does not
	// know (neoppod's receivers assert this never happens).
	ErrUnknownNode = errors.New("nodetab: UNKNOWN state for an unknown node")
	// ErrNoFreeNID: every id of the namespace is taken.
	ErrNoFreeNID = errors.New("nodetab: no free node id")
)

// Table is a node table. The zero value is not usable; see [New].
//
// Lookups return pointers to the table's nodes: callers may read them and
// set IDTimestamp, but must change Addr, NID and State only through the
// Table's methods, which keep the indexes.
type Table struct {
	nodes  map[*Node]struct{}
	byNID  map[proto.NodeID]*Node
	byAddr map[proto.Addr]*Node

	// Receiver side: the timestamp of the last notification (0 before
	// the first one) and the receiver's own id_timestamp, unset until the
	// first (full) notification of the current master connection.
	timestamp float64
	selfTS    proto.Opt[float64]
}

// New returns an empty table.
func New() *Table {
	return &Table{
		nodes:  map[*Node]struct{}{},
		byNID:  map[proto.NodeID]*Node{},
		byAddr: map[proto.Addr]*Node{},
	}
}

// Len returns the number of nodes.
func (t *Table) Len() int { return len(t.nodes) }

// ByNID returns the node with id nid, or nil.
func (t *Table) ByNID(nid proto.NodeID) *Node {
	if nid == 0 {
		return nil
	}
	return t.byNID[nid]
}

// ByAddr returns the node listening at addr, or nil.
func (t *Table) ByAddr(addr proto.Addr) *Node {
	if addr.IsZero() {
		return nil
	}
	return t.byAddr[addr]
}

// List returns the nodes for which keep is true (all if keep is nil), in
// the order of neoctl's node list: by id, then nodes without id by address.
func (t *Table) List(keep func(*Node) bool) []*Node {
	var list []*Node
	for n := range t.nodes {
		if keep == nil || keep(n) {
			list = append(list, n)
		}
	}
	slices.SortFunc(list, func(a, b *Node) int { return compareNodes(*a, *b) })
	return list
}

// Entries returns copies of all nodes, sorted as by [Table.List]: what
// the master sends in AnswerNodeList or a full NotifyNodeInformation.
func (t *Table) Entries() []Node {
	list := t.List(nil)
	out := make([]Node, len(list))
	for i, n := range list {
		out[i] = *n
	}
	return out
}

// compareNodes orders nodes with an id by signed id first, then the others
// by address (none first, then host bytes, then port).
func compareNodes(a, b Node) int {
	if (a.NID == 0) != (b.NID == 0) {
		if a.NID == 0 {
			return 1
		}
		return -1
	}
	if a.NID != 0 {
		return cmp.Compare(a.NID, b.NID)
	}
	if a.Addr.IsZero() != b.Addr.IsZero() {
		if a.Addr.IsZero() {
			return -1
		}
		return 1
	}
	return cmp.Or(cmp.Compare(a.Addr.Host, b.Addr.Host), cmp.Compare(a.Addr.Port, b.Addr.Port))
}

// Add records a node, as the master does when a node identifies or is
// configured, and returns the table's node. If a node is already known by
// n's id or address, it is completed with whichever of id and address it
// lacks and gets n's state; an id or address that contradicts the known
// node, or a different type, is an [ErrConflict]. The state must not be
// UNKNOWN.
func (t *Table) Add(n Node) (*Node, error) {
	if n.State == proto.UNKNOWN {
		return nil, fmt.Errorf("add node %v: state UNKNOWN", n)
	}
	byAddr, byNID := t.ByAddr(n.Addr), t.ByNID(n.NID)
	if byAddr == nil && byNID == nil {
		node := n
		t.insert(&node)
		return &node, nil
	}
	node := byAddr
	if node == nil {
		node = byNID
	} else if byNID != nil && byNID != byAddr {
		return nil, fmt.Errorf("add node %v: id held by %v, address by %v: %w", n, *byNID, *byAddr, ErrConflict)
	}
	if node.Type != n.Type {
		return nil, fmt.Errorf("add node %v: known as %v: %w", n, node.Type, ErrConflict)
	}
	if n.NID != 0 && node.NID != 0 && node.NID != n.NID {
		return nil, fmt.Errorf("add node %v: known with id %v: %w", n, node.NID, ErrConflict)
	}
	if !n.Addr.IsZero() && !node.Addr.IsZero() && node.Addr != n.Addr {
		return nil, fmt.Errorf("add node %v: known at %v: %w", n, node.Addr, ErrConflict)
	}
	if node.NID == 0 {
		t.SetNID(node, n.NID)
	}
	if node.Addr.IsZero() {
		t.SetAddr(node, n.Addr)
	}
	node.State = n.State
	if n.IDTimestamp.Valid {
		node.IDTimestamp = n.IDTimestamp
	}
	return node, nil
}

func (t *Table) insert(n *Node) {
	t.nodes[n] = struct{}{}
	if n.NID != 0 {
		t.byNID[n.NID] = n
	}
	if !n.Addr.IsZero() {
		t.byAddr[n.Addr] = n
	}
}

// Remove forgets node n.
func (t *Table) Remove(n *Node) {
	if _, ok := t.nodes[n]; !ok {
		return
	}
	delete(t.nodes, n)
	if n.NID != 0 && t.byNID[n.NID] == n {
		delete(t.byNID, n.NID)
	}
	if !n.Addr.IsZero() && t.byAddr[n.Addr] == n {
		delete(t.byAddr, n.Addr)
	}
}

// SetState changes the state of node n; UNKNOWN removes it.
func (t *Table) SetState(n *Node, s proto.NodeState) {
	if s == proto.UNKNOWN {
		t.Remove(n)
	}
	n.State = s
}

// SetNID changes the id of node n (0 removes it). A node that held nid
// before loses it.
func (t *Table) SetNID(n *Node, nid proto.NodeID) {
	if n.NID == nid {
		return
	}
	if n.NID != 0 && t.byNID[n.NID] == n {
		delete(t.byNID, n.NID)
	}
	if other := t.ByNID(nid); other != nil {
		other.NID = 0
	}
	n.NID = nid
	if nid != 0 {
		t.byNID[nid] = n
	}
}

// SetAddr changes the address of node n (zero removes it). A node that
// listened at addr before loses it.
func (t *Table) SetAddr(n *Node, addr proto.Addr) {
	if n.Addr == addr {
		return
	}
	if !n.Addr.IsZero() && t.byAddr[n.Addr] == n {
		delete(t.byAddr, n.Addr)
	}
	if other := t.ByAddr(addr); other != nil {
		other.Addr = proto.Addr{}
	}
	n.Addr = addr
	if !addr.IsZero() {
		t.byAddr[addr] = n
	}
}

func (t *Table) clone() *Table {
	c := New()
	c.timestamp, c.selfTS = t.timestamp, t.selfTS
	for n := range t.nodes {
		cp := *n
		c.insert(&cp)
	}
	return c
}

// FormatNID formats a node id as neoppod prints it in node lists and
// neoctl: "S1", "M2"..., "None" for nil (where [proto.NodeID.String] says
// "0").
func FormatNID(nid proto.NodeID) string {
	if nid == 0 {
		return "None"
	}
	return nid.String()
}
