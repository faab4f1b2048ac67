package master

import (
	"github.com/neogo/neo/parttab"
	"github.com/neogo/neo/proto"
)

// ptable adapts a [parttab.Table] to the master's core: node states come
// from the core's node table, partitions are ints and changes are
// [cellChange]s.
type ptable struct {
	t      *parttab.Table
	states parttab.States
}

// cellChange is one (partition, node, state) entry of NotifyPartitionChanges.
type cellChange struct {
	p     int
	nid   proto.NodeID
	state proto.CellState
}

// pcell is one cell of a row.
type pcell struct {
	nid   proto.NodeID
	state proto.CellState
}

func newPTable(np, nr int, states parttab.States) *ptable {
	return &ptable{t: parttab.New(uint32(np), nr), states: states}
}

func fromChanges(cs []parttab.Change) []cellChange {
	out := make([]cellChange, len(cs))
	for i, c := range cs {
		out[i] = cellChange{int(c.Offset), c.NID, c.State}
	}
	return out
}

func (pt *ptable) ptid() proto.PTid { return pt.t.PTid() }
func (pt *ptable) nextPTid()        { pt.t.NextPTid() }
func (pt *ptable) np() int          { return int(pt.t.NumPartitions()) }
func (pt *ptable) nr() int          { return pt.t.NumReplicas() }
func (pt *ptable) filled() bool     { return pt.t.Filled() }

func (pt *ptable) partition(id uint64) int { return int(id % uint64(pt.np())) }

func (pt *ptable) rows() [][]pcell {
	rows := pt.t.Rows()
	out := make([][]pcell, len(rows))
	for p, r := range rows {
		for _, c := range r {
			out[p] = append(out[p], pcell{c.NID, c.State})
		}
	}
	return out
}

// make builds the first table (ptid 1) over the given storages.
func (pt *ptable) make(nids []proto.NodeID, devpaths map[proto.NodeID][]string) bool {
	res, err := pt.t.Make(nids, devpaths)
	if err != nil {
		panic("master: make partition table: " + err.Error())
	}
	return res.TopologyIgnored
}

// load replaces the table by one recovered from a storage.
func (pt *ptable) load(ptid proto.PTid, nr int, rows [][]pcell) error {
	prows := make([][]parttab.Cell, len(rows))
	for p, r := range rows {
		for _, c := range r {
			prows[p] = append(prows[p], parttab.Cell{NID: c.nid, State: c.state})
		}
	}
	t, err := parttab.Load(ptid, nr, prows)
	if err != nil {
		return err
	}
	pt.t = t
	return nil
}

// apply applies changes computed by the master itself (new_nid cells)
// without changing the ptid: broadcastPartitionChanges increments it.
func (pt *ptable) apply(changes []cellChange) error {
	cs := make([]parttab.Change, len(changes))
	for i, c := range changes {
		cs[i] = parttab.Change{Offset: uint32(c.p), NID: c.nid, State: c.state}
	}
	ptid := pt.t.PTid()
	if err := pt.t.Update(ptid+1, pt.t.NumReplicas(), cs); err != nil {
		return err
	}
	pt.t.SetPTid(ptid)
	return nil
}

func (pt *ptable) outdate(lost proto.NodeID) []cellChange {
	return fromChanges(pt.t.Outdate(pt.states, lost))
}

func (pt *ptable) operational(exclude map[proto.NodeID]bool) bool {
	return pt.t.Operational(pt.states, sortedNIDs(exclude)...)
}

// nodeSet returns the nodes having a cell (a readable one if readable).
func (pt *ptable) nodeSet(readable bool) map[proto.NodeID]bool {
	s := map[proto.NodeID]bool{}
	for _, nid := range pt.t.CellNodes(readable) {
		s[nid] = true
	}
	return s
}

// cells returns the cells of partition p, only readable ones if readable.
func (pt *ptable) cells(p int, readable bool) []pcell {
	var out []pcell
	for _, c := range pt.t.Row(uint32(p)) {
		if !readable || c.Readable() {
			out = append(out, pcell{c.NID, c.State})
		}
	}
	return out
}

// operationalNodes: the nodes with a readable cell, or none if some
// partition has no readable cell on a pending node.
func (pt *ptable) operationalNodes() map[proto.NodeID]bool {
	nids := pt.t.OperationalNodes(pt.states)
	if nids == nil {
		return nil
	}
	s := map[proto.NodeID]bool{}
	for _, nid := range nids {
		s[nid] = true
	}
	return s
}

func (pt *ptable) setUpToDate(nid proto.NodeID, p int) ([]cellChange, error) {
	cs, err := pt.t.SetUpToDate(nid, uint32(p))
	if err != nil {
		return nil, protocolError(err.Error())
	}
	return fromChanges(cs), nil
}

func (pt *ptable) markUpdatable(nid proto.NodeID, ps []uint32) { pt.t.MarkUpdatable(nid, ps) }
