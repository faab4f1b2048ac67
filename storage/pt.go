package storage

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/neogo/neo/parttab"
	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

// ownOffsets reads, under the node's lock, the partitions that which
// selects for the node itself in its table; none before it has one.
func (n *Node) ownOffsets(which func(*parttab.Table, proto.NodeID) []uint32) []uint32 {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.pt == nil {
		return nil
	}
	return which(n.mu.pt.Table, n.mu.nid)
}

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

// ptChanges returns the cell changes that turn the saved table old into
// rows (DISCARDED for the cells rows lacks), and whether nothing at all
// differs (ptid, replicas and cells): a storage restarted on its database
// gets back the table it saved, or that table with a few cells changed,
// and saving it is the most part of its way to operation (a durable
// write), so only the differences are written, and nothing if none.
// Without old, every cell of rows is listed.
func ptChanges(old *ptable, ptid proto.PTid, nr int, rows [][]parttab.Cell) (changes []backend.CellChange, same bool) {
	if old == nil {
		for p, row := range rows {
			for _, c := range row {
				changes = append(changes, backend.CellChange{Partition: uint32(p), NID: c.NID, State: c.State})
			}
		}
		return changes, false
	}
	np := max(uint32(len(rows)), old.np())
	for p := range np {
		var row []parttab.Cell
		if int(p) < len(rows) {
			row = rows[p]
		}
		for _, c := range row {
			if s, ok := old.state(p, c.NID); !ok || s != c.State {
				changes = append(changes, backend.CellChange{Partition: p, NID: c.NID, State: c.State})
			}
		}
		for _, c := range old.row(p) {
			if !slices.ContainsFunc(row, func(n parttab.Cell) bool { return n.NID == c.NID }) {
				changes = append(changes, backend.CellChange{Partition: p, NID: c.NID, State: proto.DISCARDED})
			}
		}
	}
	return changes, len(changes) == 0 && ptid == old.PTid() && nr == old.NumReplicas()
}

// warmUp rewrites the saved table as it is, before the node identifies to
// the master: the first durable write after the database is opened costs
// several times the next ones (statements to prepare, pages to read, the
// synchronous mode to switch), and the first write is otherwise the save
// of the table the master sends, in the window where the master already
// announced the node RUNNING and clients wait for it to be operational.
// A failure is only logged: the save of the master's table reports it.
func (n *Node) warmUp(ctx context.Context, pt *ptable) {
	if pt == nil {
		return
	}
	start := time.Now()
	n.wmu.Lock()
	err := n.db.ChangePartitionTable(ctx, pt.PTid(), pt.NumReplicas(), nil, false)
	n.wmu.Unlock()
	if err != nil {
		n.log.Warn("database warm-up write failed", "err", err)
		return
	}
	n.log.Debug("database warmed up", "took", time.Since(start))
}
