package master

import (
	"slices"

	"github.com/neogo/neo/proto"
)

// ptable is the primary master's partition table (cluster.md §4): np rows
// of cells. It holds what the master needs to run a cluster: creation of a
// new table with the canonical round-robin layout (§4.3), loading a table
// recovered from a storage, outdating (§4.5), the operational check (§4.2)
// and replication completion.
//
// TODO(#parttab): switch to package parttab (tweak with topology, drop,
// add) once it lands; this type keeps the master runnable meanwhile.
type ptable struct {
	np    int
	nr    int
	ptid  proto.PTid
	rows  [][]pcell
	count map[proto.NodeID]int // nodes of the table (may have 0 cells)
	// updatable marks OUT_OF_DATE cells whose storage asked
	// AskUnfinishedTransactions: they may become UP_TO_DATE.
	updatable map[pkey]bool
}

type pcell struct {
	nid   proto.NodeID
	state proto.CellState
}

type pkey struct {
	p   int
	nid proto.NodeID
}

// cellChange is one (partition, node, state) entry of NotifyPartitionChanges.
type cellChange struct {
	p     int
	nid   proto.NodeID
	state proto.CellState
}

func newPTable(np, nr int) *ptable {
	return &ptable{np: np, nr: nr, rows: make([][]pcell, np), count: map[proto.NodeID]int{}, updatable: map[pkey]bool{}}
}

func (pt *ptable) partition(id uint64) int { return int(id % uint64(pt.np)) }

// filled reports whether every partition has at least one cell.
func (pt *ptable) filled() bool {
	for _, r := range pt.rows {
		if len(r) == 0 {
			return false
		}
	}
	return pt.np > 0
}

// make assigns cells on an empty table to the given storages (sorted by
// nid): partitions dealt round robin, min(nr+1, n) cells each, all
// UP_TO_DATE; ptid becomes 1.
func (pt *ptable) make(nids []proto.NodeID) {
	nids = slices.Clone(nids)
	slices.Sort(nids)
	repeats := min(pt.nr+1, len(nids))
	slot := 0
	for p := range pt.rows {
		pt.rows[p] = nil
		for range repeats {
			nid := nids[slot%len(nids)]
			pt.rows[p] = append(pt.rows[p], pcell{nid, proto.UP_TO_DATE})
			slot++
		}
	}
	pt.count = map[proto.NodeID]int{}
	for _, r := range pt.rows {
		for _, c := range r {
			pt.count[c.nid]++
		}
	}
	pt.ptid = 1
}

// load replaces the table by one recovered from a storage.
func (pt *ptable) load(ptid proto.PTid, nr int, rows [][]pcell) {
	pt.ptid, pt.nr = ptid, nr
	pt.np = len(rows)
	pt.rows = rows
	pt.count = map[proto.NodeID]int{}
	for _, r := range rows {
		for _, c := range r {
			pt.count[c.nid]++
		}
	}
	pt.updatable = map[pkey]bool{}
}

func (pt *ptable) setCell(p int, nid proto.NodeID, st proto.CellState) {
	r := pt.rows[p]
	for i := range r {
		if r[i].nid == nid {
			if st == proto.DISCARDED {
				pt.rows[p] = slices.Delete(r, i, i+1)
				pt.count[nid]--
			} else {
				r[i].state = st
			}
			return
		}
	}
	if st != proto.DISCARDED {
		pt.rows[p] = append(r, pcell{nid, st})
		pt.count[nid]++
	}
}

// outdate implements cluster.md §4.5: readable cells of non-running nodes
// become OUT_OF_DATE (FEEDING ones are dropped), except the cells of lost
// in rows where no running readable cell remains.
func (pt *ptable) outdate(lost proto.NodeID, running func(proto.NodeID) bool) []cellChange {
	var changes []cellChange
	for p, r := range pt.rows {
		lostHere := lost
		for _, c := range r {
			if c.state.Readable() && running(c.nid) {
				lostHere = 0
				break
			}
		}
		for _, c := range slices.Clone(r) {
			if !c.state.Readable() || running(c.nid) || c.nid == lostHere && lostHere != 0 {
				continue
			}
			st := proto.OUT_OF_DATE
			if c.state == proto.FEEDING {
				st = proto.DISCARDED
			}
			pt.setCell(p, c.nid, st)
			changes = append(changes, cellChange{p, c.nid, st})
		}
	}
	return changes
}

// operational reports whether every partition has a readable cell on a
// running node outside exclude.
func (pt *ptable) operational(exclude map[proto.NodeID]bool, running func(proto.NodeID) bool) bool {
	if !pt.filled() {
		return false
	}
	for _, r := range pt.rows {
		ok := false
		for _, c := range r {
			if c.state.Readable() && running(c.nid) && !exclude[c.nid] {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// nodeSet returns the nodes having a cell (a readable one if readable).
func (pt *ptable) nodeSet(readable bool) map[proto.NodeID]bool {
	s := map[proto.NodeID]bool{}
	for _, r := range pt.rows {
		for _, c := range r {
			if !readable || c.state.Readable() {
				s[c.nid] = true
			}
		}
	}
	return s
}

// cells returns the cells of partition p, only readable ones if readable.
func (pt *ptable) cells(p int, readable bool) []pcell {
	var out []pcell
	for _, c := range pt.rows[p] {
		if !readable || c.state.Readable() {
			out = append(out, c)
		}
	}
	return out
}

// operationalNodes implements the first step of the automatic start rule
// (cluster.md §2.2): the nodes with a readable cell, or none if some
// partition has no readable cell on a pending (connected) node.
func (pt *ptable) operationalNodes(pending func(proto.NodeID) bool) map[proto.NodeID]bool {
	s := map[proto.NodeID]bool{}
	for _, r := range pt.rows {
		ok := false
		for _, c := range r {
			if c.state.Readable() {
				s[c.nid] = true
				if pending(c.nid) {
					ok = true
				}
			}
		}
		if !ok {
			return nil
		}
	}
	return s
}

// setUpToDate marks the cell of nid in partition p UP_TO_DATE after
// replication, if it was made updatable; FEEDING cells that are no longer
// needed are discarded (cluster.md §3.2).
func (pt *ptable) setUpToDate(nid proto.NodeID, p int) ([]cellChange, error) {
	if p < 0 || p >= pt.np {
		return nil, protocolError("invalid partition")
	}
	var cell *pcell
	for i := range pt.rows[p] {
		if pt.rows[p][i].nid == nid {
			cell = &pt.rows[p][i]
		}
	}
	if cell == nil {
		return nil, protocolError("non-assigned partition")
	}
	if cell.state != proto.OUT_OF_DATE || !pt.updatable[pkey{p, nid}] {
		return nil, nil
	}
	delete(pt.updatable, pkey{p, nid})
	cell.state = proto.UP_TO_DATE
	changes := []cellChange{{p, nid, proto.UP_TO_DATE}}
	readable, allReadable := 0, true
	var feeding []proto.NodeID
	for _, c := range pt.rows[p] {
		if c.state.Readable() {
			readable++
			if c.state == proto.FEEDING {
				feeding = append(feeding, c.nid)
			}
		} else {
			allReadable = false
		}
	}
	drop := len(feeding)
	if !allReadable {
		drop = min(drop, max(0, readable-pt.nr))
	}
	for _, f := range feeding[:drop] {
		pt.setCell(p, f, proto.DISCARDED)
		changes = append(changes, cellChange{p, f, proto.DISCARDED})
	}
	return changes, nil
}

// markUpdatable records that nid starts replicating partitions ps.
func (pt *ptable) markUpdatable(nid proto.NodeID, ps []uint32) {
	for _, p := range ps {
		if int(p) < pt.np {
			for _, c := range pt.rows[p] {
				if c.nid == nid && c.state == proto.OUT_OF_DATE {
					pt.updatable[pkey{int(p), nid}] = true
				}
			}
		}
	}
}
