package storage

import (
	"fmt"

	"github.com/neogo/neo/parttab"
	"github.com/neogo/neo/proto"
)

// ptable is the node's copy of the partition table: a [parttab.Table]
// with the bounds-checked queries the node makes about its own cells.
// Not safe for concurrent use: the node guards it with its mutex.
type ptable struct{ *parttab.Table }

// loadPTable builds a table from full rows (SendPartitionTable, or the
// saved table); every row must have a cell.
func loadPTable(ptid proto.PTid, nr int, rows [][]parttab.Cell) (*ptable, error) {
	t, err := parttab.Load(ptid, nr, rows)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", proto.ErrProtocol, err)
	}
	if !t.Filled() {
		return nil, fmt.Errorf("%w: Partial partition table received", proto.ErrProtocol)
	}
	return &ptable{t}, nil
}

// next returns a copy with NotifyPartitionChanges applied; ptid must be
// the current one + 1 (§4.6).
func (pt *ptable) next(ptid proto.PTid, nr int, changes []parttab.Change) (*ptable, error) {
	t := pt.Clone()
	if err := t.UpdateNext(ptid, nr, changes); err != nil {
		return nil, fmt.Errorf("%w: %w", proto.ErrProtocol, err)
	}
	return &ptable{t}, nil
}

// np is the number of partitions.
func (pt *ptable) np() uint32 { return pt.NumPartitions() }

// partition maps an oid or tid to its partition.
func (pt *ptable) partition(x uint64) uint32 { return parttab.Partition(x, pt.np()) }

// state returns the state of nid's cell of partition p, if any.
func (pt *ptable) state(p uint32, nid proto.NodeID) (proto.CellState, bool) {
	if p >= pt.np() {
		return 0, false
	}
	c, ok := pt.Cell(p, nid)
	return c.State, ok
}

// readable reports whether nid has a readable cell of partition p.
func (pt *ptable) readable(p uint32, nid proto.NodeID) bool {
	s, ok := pt.state(p, nid)
	return ok && s.Readable()
}

// row returns the cells of partition p (nil if out of range).
func (pt *ptable) row(p uint32) []parttab.Cell {
	if p >= pt.np() {
		return nil
	}
	return pt.Row(p)
}
