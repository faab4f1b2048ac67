package parttab

import (
	"slices"

	"github.com/neogo/neo/proto"
)

// Outdate makes the cells of non-running nodes non-readable (cluster.md
// §4.5) and returns the changes. In each partition that still has a
// readable cell on a RUNNING node, every readable cell on another node is
// changed: FEEDING cells are discarded, the others become OUT_OF_DATE. In
// a partition without such a cell, the cells of lost (the node that was
// just lost, 0 for none) are left alone, so that the cluster can restart
// from them; the master calls Outdate(states, lost) on each storage loss
// and Outdate(states, 0) at the end of recovery and after a kill.
func (t *Table) Outdate(states States, lost proto.NodeID) []Change {
	var changes []Change
	var victims []proto.NodeID
	for o, row := range t.rows {
		offset := uint32(o)
		keep := lost
		victims = victims[:0]
		for _, c := range row {
			if !c.Readable() {
				continue
			}
			if states(c.NID) == proto.NODE_RUNNING {
				keep = 0
			} else {
				victims = append(victims, c.NID)
			}
		}
		for _, nid := range victims {
			if nid == keep {
				continue
			}
			c, _ := t.Cell(offset, nid)
			s := proto.OUT_OF_DATE
			if c.State == proto.FEEDING {
				s = proto.DISCARDED
			}
			t.setCell(offset, nid, s)
			changes = append(changes, Change{offset, nid, s})
		}
	}
	return changes
}

// DropNodes removes every cell of nodes and the nodes from the node set
// (neoctl drop), or with simulate only computes the changes (neoctl kill
// checks this way that the node may go). In a partition that loses a cell,
// a FEEDING cell (the last one of the row) becomes UP_TO_DATE again. It
// fails with [OnlyReadableCopiesError], changing nothing, if a partition
// would lose its only readable cells.
func (t *Table) DropNodes(nodes []proto.NodeID, simulate bool) ([]Change, error) {
	var changes []Change
	type promotion struct {
		offset uint32
		nid    proto.NodeID
	}
	var promoted []promotion
	for o, row := range t.rows {
		offset := uint32(o)
		var feeding proto.NodeID
		dropped, dropReadable, upToDate := false, false, false
		for _, c := range row {
			if slices.Contains(nodes, c.NID) {
				changes = append(changes, Change{offset, c.NID, proto.DISCARDED})
				dropped = true
				dropReadable = dropReadable || c.Readable()
			} else if c.State == proto.FEEDING {
				feeding = c.NID
			} else if c.State == proto.UP_TO_DATE {
				upToDate = true
			}
		}
		if feeding != 0 {
			if dropped {
				changes = append(changes, Change{offset, feeding, proto.UP_TO_DATE})
				promoted = append(promoted, promotion{offset, feeding})
			}
		} else if dropReadable && !upToDate {
			return nil, &OnlyReadableCopiesError{Partition: offset}
		}
	}
	if simulate {
		return changes, nil
	}
	for o := range t.rows {
		for _, nid := range nodes {
			t.removeCell(uint32(o), nid)
		}
	}
	for _, p := range promoted {
		t.setCell(p.offset, p.nid, proto.UP_TO_DATE)
	}
	for _, nid := range nodes {
		delete(t.nodes, nid)
	}
	return changes, nil
}

// MarkUpdatable records that node nid asked for the unfinished
// transactions of partitions offsets: its non-readable cells there may
// become UP_TO_DATE when it reports the end of their replication. The mark
// goes when the cell changes state.
func (t *Table) MarkUpdatable(nid proto.NodeID, offsets []uint32) {
	for _, offset := range offsets {
		if int(offset) >= len(t.rows) {
			continue
		}
		if c, ok := t.Cell(offset, nid); ok && !c.Readable() {
			t.updatable[cellKey{offset, nid}] = true
		}
	}
}

// SetUpToDate handles NotifyReplicationDone from node nid for partition
// offset (cluster.md §3.2): an OUT_OF_DATE cell marked updatable becomes
// UP_TO_DATE, and FEEDING cells that are no longer needed are discarded:
// all of them if every cell of the row is now readable, else at most
// (readable cells − nr), those of nodes whose every cell is FEEDING first.
// A cell in another state is ignored (nil changes); a node without a cell
// in the partition gets [ErrNotAssigned].
func (t *Table) SetUpToDate(nid proto.NodeID, offset uint32) ([]Change, error) {
	if int(offset) >= len(t.rows) {
		return nil, ErrNotAssigned
	}
	c, ok := t.Cell(offset, nid)
	if !ok {
		return nil, ErrNotAssigned
	}
	if c.State != proto.OUT_OF_DATE || !t.updatable[cellKey{offset, nid}] {
		return nil, nil
	}
	t.setCell(offset, nid, proto.UP_TO_DATE)
	changes := []Change{{offset, nid, proto.UP_TO_DATE}}

	row := t.rows[offset]
	readable := 0
	var feeding []proto.NodeID
	for _, c := range row {
		if c.Readable() {
			readable++
			if c.State == proto.FEEDING {
				feeding = append(feeding, c.NID)
			}
		}
	}
	if readable != len(row) {
		// Some cells became non-readable since the last tweak: keep
		// enough replicas, and empty the nodes being removed first.
		slices.SortStableFunc(feeding, func(a, b proto.NodeID) int {
			return boolInt(!t.allFeeding(a)) - boolInt(!t.allFeeding(b))
		})
		feeding = feeding[:min(len(feeding), max(0, readable-t.nr))]
	}
	for _, f := range feeding {
		t.removeCell(offset, f)
		changes = append(changes, Change{offset, f, proto.DISCARDED})
	}
	return changes, nil
}

// allFeeding reports whether every cell of node nid is FEEDING.
func (t *Table) allFeeding(nid proto.NodeID) bool {
	for o := range t.rows {
		if c, ok := t.Cell(uint32(o), nid); ok && c.State != proto.FEEDING {
			return false
		}
	}
	return true
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TweakDropList returns the nodes a tweak must leave alone (cluster.md
// §4.4): those listed by the operator and every PENDING storage. storages
// are all the storage nodes the master knows, with their state; any other
// of them that is not RUNNING makes the tweak fail with [ErrDownNodes].
func TweakDropList(storages map[proto.NodeID]proto.NodeState, listed []proto.NodeID) ([]proto.NodeID, error) {
	var drop []proto.NodeID
	for _, nid := range sortedKeys(storages) {
		switch s := storages[nid]; {
		case slices.Contains(listed, nid) || s == proto.PENDING:
			drop = append(drop, nid)
		case s != proto.NODE_RUNNING:
			return nil, ErrDownNodes
		}
	}
	return drop, nil
}
