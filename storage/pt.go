package storage

import (
	"fmt"

	"github.com/neogo/neo/proto"
)

// ptCell is one cell of the node's copy of the partition table.
type ptCell struct {
	NID   proto.NodeID
	State proto.CellState
}

// ptable is the storage node's copy of the partition table: what it needs
// to know which partitions it serves, and nothing more (the master owns
// the algorithms). Not safe for concurrent use: the node guards it.
type ptable struct {
	ptid proto.PTid
	nr   int
	rows [][]ptCell
}

// np is the number of partitions (0 if no table yet).
func (pt *ptable) np() uint32 { return uint32(len(pt.rows)) }

func (pt *ptable) partition(x uint64) uint32 { return uint32(x % uint64(len(pt.rows))) }

// reset replaces the whole table (SendPartitionTable); every row must have
// at least one cell.
func (pt *ptable) reset(ptid proto.PTid, nr int, rows [][]ptCell) error {
	for i, r := range rows {
		if len(r) == 0 {
			return fmt.Errorf("%w: Partial partition table received (partition %d is empty)", proto.ErrProtocol, i)
		}
	}
	pt.ptid, pt.nr, pt.rows = ptid, nr, rows
	return nil
}

// apply applies cell changes (NotifyPartitionChanges): DISCARDED removes
// the cell, another state sets or adds it.
func (pt *ptable) apply(ptid proto.PTid, nr int, changes []cellChange) error {
	for _, c := range changes {
		if c.Partition >= pt.np() {
			return fmt.Errorf("%w: cell change for partition %d of %d", proto.ErrProtocol, c.Partition, pt.np())
		}
	}
	for _, c := range changes {
		row := pt.rows[c.Partition]
		i := 0
		for i < len(row) && row[i].NID != c.NID {
			i++
		}
		switch {
		case c.State == proto.DISCARDED:
			if i < len(row) {
				row = append(row[:i], row[i+1:]...)
			}
		case i < len(row):
			row[i].State = c.State
		default:
			row = append(row, ptCell{c.NID, c.State})
		}
		pt.rows[c.Partition] = row
	}
	pt.ptid, pt.nr = ptid, nr
	return nil
}

// cellChange is one entry of NotifyPartitionChanges.
type cellChange struct {
	Partition uint32
	NID       proto.NodeID
	State     proto.CellState
}

// state returns the state of nid's cell of partition p.
func (pt *ptable) state(p uint32, nid proto.NodeID) (proto.CellState, bool) {
	if p >= pt.np() {
		return 0, false
	}
	for _, c := range pt.rows[p] {
		if c.NID == nid {
			return c.State, true
		}
	}
	return 0, false
}

// readable reports whether nid has a readable cell of partition p.
func (pt *ptable) readable(p uint32, nid proto.NodeID) bool {
	s, ok := pt.state(p, nid)
	return ok && s.Readable()
}

// partitions lists the partitions where nid has a cell accepted by keep.
func (pt *ptable) partitions(nid proto.NodeID, keep func(proto.CellState) bool) []uint32 {
	var ps []uint32
	for p := range pt.rows {
		if s, ok := pt.state(uint32(p), nid); ok && keep(s) {
			ps = append(ps, uint32(p))
		}
	}
	return ps
}

func assignedState(s proto.CellState) bool { return s != proto.CORRUPTED }
func readableState(s proto.CellState) bool { return s.Readable() }
func outdatedState(s proto.CellState) bool { return s == proto.OUT_OF_DATE }

// clone returns a deep copy.
func (pt *ptable) clone() *ptable {
	c := &ptable{ptid: pt.ptid, nr: pt.nr, rows: make([][]ptCell, len(pt.rows))}
	for i, r := range pt.rows {
		c.rows[i] = append([]ptCell(nil), r...)
	}
	return c
}
