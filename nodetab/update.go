package nodetab

import (
	"fmt"
	"slices"

	"github.com/neogo/neo/proto"
)

// Reset prepares the table for a new connection to the primary master:
// the next notification is a full list again and its timestamp may be
// anything. Nodes are kept until that list arrives.
func (t *Table) Reset() {
	t.timestamp = 0
	t.selfTS = proto.Opt[float64]{}
}

// Timestamp returns the timestamp of the last notification applied, 0 if
// none since [Table.Reset].
func (t *Table) Timestamp() float64 { return t.timestamp }

// SelfIDTimestamp returns the receiver's own id_timestamp as the master
// last announced it; it is what a client sends when it identifies to a
// storage. It is unset until the first notification.
func (t *Table) SelfIDTimestamp() proto.Opt[float64] { return t.selfTS }

// UpdateResult tells what [Table.Update] did, for the caller's reactions
// (closing connections, dropping cells, a storage noticing its own state).
type UpdateResult struct {
	// Full is set if this was the first notification: a full list.
	Full bool
	// Changed are the nodes created or updated, as they are now, in
	// notification order.
	Changed []Node
	// Removed are the nodes forgotten, as they were: those the
	// notification said UNKNOWN and, for a full list, those it did not
	// mention. The receiver closes its connections to them.
	Removed []Node
}

// Update applies NotifyNodeInformation(ts, entries) received from the
// primary master by node self (its own id, 0 if it has none yet), as
// neoppod's NodeManager.update does:
//
//   - ts must be greater than the previous notification's;
//   - each entry is matched by id and by address (the address wins); an
//     entry that matches no node creates one, unless it is UNKNOWN
//     ([ErrUnknownNode]); UNKNOWN removes the node;
//     otherwise the node takes the entry's id, address, state and
//     id_timestamp;
//   - the first notification since [Table.Reset] is a full list: it must
//     contain self, and every node it does not mention is forgotten,
//     except storages for which dropStorage returns false.
//
// dropStorage is called for every storage forgotten (but self) and
// reports whether it may go: the caller passes its partition table's
// DropNode, so that storages still holding cells are kept when missing
// from a full list, and leave the table's node set when forgotten; nil
// forgets them all.
//
// On error the table is unchanged and dropStorage is not called.
func (t *Table) Update(ts float64, self proto.NodeID, entries []Node, dropStorage func(proto.NodeID) bool) (UpdateResult, error) {
	// A trial on a copy, without dropStorage, keeps the table and the
	// caller's partition table untouched when the notification fails.
	if _, err := t.clone().update(ts, self, entries, nil); err != nil {
		return UpdateResult{}, err
	}
	return t.update(ts, self, entries, dropStorage)
}

func (t *Table) update(ts float64, self proto.NodeID, entries []Node, dropStorage func(proto.NodeID) bool) (UpdateResult, error) {
	if !(t.timestamp < ts) {
		return UpdateResult{}, fmt.Errorf("notification at %v after %v: %w", ts, t.timestamp, ErrTimestamp)
	}
	t.timestamp = ts
	res := UpdateResult{Full: !t.selfTS.Valid}
	var listed map[*Node]bool
	if res.Full {
		listed = map[*Node]bool{}
	}
	for _, e := range entries {
		byNID, byAddr := t.ByNID(e.NID), t.ByAddr(e.Addr)
		node := byAddr
		if node == nil {
			node = byNID
		}
		if node == nil {
			if e.State == proto.UNKNOWN {
				return res, fmt.Errorf("notified %v: %w", e, ErrUnknownNode)
			}
			n := e
			node = &n
			t.insert(node)
		} else {
			if node.Type != e.Type {
				return res, fmt.Errorf("notified %v known as %v: %w", e, node.Type, ErrConflict)
			}
			if byNID != nil && byAddr != nil && byNID != byAddr {
				// The id moved to another address; only the full list
				// may say so, and the old holder loses the id.
				if !res.Full {
					return res, fmt.Errorf("notified %v: id held by %v: %w", e, *byNID, ErrConflict)
				}
				t.SetNID(byNID, 0)
			}
			if e.State == proto.UNKNOWN {
				if node.Type == proto.STORAGE && node.NID != self && dropStorage != nil {
					// The master forgets a storage only once it has
					// no cell left, so this always succeeds.
					dropStorage(node.NID)
				}
				res.Removed = append(res.Removed, *node)
				t.Remove(node)
				continue
			}
			t.SetNID(node, e.NID)
			t.SetAddr(node, e.Addr)
			node.State = e.State
		}
		node.IDTimestamp = e.IDTimestamp
		if self != 0 && e.NID == self {
			t.selfTS = e.IDTimestamp
		}
		if listed != nil {
			listed[node] = true
		}
		res.Changed = append(res.Changed, *node)
	}
	if !res.Full {
		return res, nil
	}
	if !t.selfTS.Valid {
		return res, fmt.Errorf("full notification of %d nodes without %v: %w", len(entries), FormatNID(self), ErrSelfMissing)
	}
	for _, n := range t.List(func(n *Node) bool { return !listed[n] }) {
		if n.Type == proto.STORAGE && dropStorage != nil && !dropStorage(n.NID) {
			continue // still in the partition table
		}
		res.Removed = append(res.Removed, *n)
		t.Remove(n)
	}
	return res, nil
}

// NewNID returns the id the primary master (whose own id is own) gives a
// node of type typ listening at addr that proposed the id proposed (0 for
// none), cluster.md §1.1.2: the proposed id is kept if it is not the
// master's and either free or held by a node with the same address;
// otherwise it is the smallest free id of the type's namespace, an id
// held by a node with the same (non-empty) address counting as free.
// Storage ids are thereby persistent and temporary ids reused.
//
// An id is the namespace byte of its type followed by a 24-bit sequence
// number (protocol.md §2.3): ids are printed ("S1", "C7") and mapped back
// to their type ([proto.NodeID.Type]) from these two parts only. neoppod's
// allocator would go on past 2^24-1 nodes of one type into the low bits
// of the namespace byte, giving ids that no longer name their type; this
// one stops there with [ErrNoFreeNID], which the master answers as an
// error to that node rather than crashing.
func (t *Table) NewNID(proposed proto.NodeID, addr proto.Addr, typ proto.NodeType, own proto.NodeID) (proto.NodeID, error) {
	if proposed != 0 && proposed != own {
		if n := t.ByNID(proposed); n == nil || n.Addr == addr {
			return proposed, nil
		}
	}
	for i := uint32(1); i < maxNIDSeq; i++ {
		nid := proto.NewNodeID(typ, i)
		if nid == own {
			continue
		}
		if n := t.ByNID(nid); n == nil || !addr.IsZero() && n.Addr == addr {
			return nid, nil
		}
	}
	return 0, fmt.Errorf("new id for %v: %w", typ, ErrNoFreeNID)
}

// maxNIDSeq bounds the sequence number of a node id: the low 24 bits.
const maxNIDSeq = 1 << 24

// Claim is the primary master's rule for a node identifying with id nid
// (0: none) at address addr (zero: none), own being the master's id
// (protocol.md §5.1 step 3, cluster.md §1.1.3). It returns the known node
// that the identification takes over (nil: a new node) and the id to
// propose to [Table.NewNID], or [ErrConflict] ("already connected") when
// the id or the address belongs to another live node. identified tells
// whether a node is currently connected and identified; only the master
// knows it.
//
//   - a node listening at addr is taken over if it is not identified and
//     nid is its id, no node's id, or temporary (< 0);
//   - else a node with id nid is taken over if it is not identified (the
//     caller moves it to addr), unless it is the master itself: then a new
//     node gets a new id; if it is identified, a temporary id is dropped
//     (a new one is given) while a storage id is a conflict;
//   - else a new node is created.
func (t *Table) Claim(nid proto.NodeID, addr proto.Addr, own proto.NodeID, identified func(*Node) bool) (*Node, proto.NodeID, error) {
	byNID, byAddr := t.ByNID(nid), t.ByAddr(addr)
	switch {
	case byAddr != nil:
		if !identified(byAddr) && (byNID == byAddr || byNID == nil || nid < 0) {
			return byAddr, nid, nil
		}
	case byNID != nil:
		switch {
		case !identified(byNID) && nid == own:
			return nil, nid, nil // NewNID never gives own
		case !identified(byNID):
			return byNID, nid, nil
		case nid < 0:
			return nil, 0, nil
		}
	default:
		return nil, nid, nil
	}
	return nil, 0, fmt.Errorf("identify %v at %v: %w", FormatNID(nid), addr, ErrConflict)
}

// Monotonic is the master's clock for timestamps (protocol.md §4.10):
// strictly increasing float seconds even if the wall clock is not.
type Monotonic struct {
	prev float64
}

// Next returns now if it is greater than the previous value returned,
// else the previous value + 1ms.
func (m *Monotonic) Next(now float64) float64 {
	if m.prev < now {
		m.prev = now
	} else {
		m.prev += 1e-3
	}
	return m.prev
}

// sortNodes sorts node entries as neoctl prints them.
func sortNodes(nodes []Node) []Node {
	s := slices.Clone(nodes)
	slices.SortStableFunc(s, compareNodes)
	return s
}
