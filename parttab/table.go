package parttab

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/neogo/neo/proto"
)

// Cell is one entry of a row: a storage node and the state of its copy of
// the partition. DISCARDED never appears in a table.
type Cell struct {
	NID   proto.NodeID
	State proto.CellState
}

// Readable reports whether the cell serves reads (UP_TO_DATE or FEEDING).
func (c Cell) Readable() bool { return c.State.Readable() }

// RowsFromProto returns a copy of rows as packets carry them
// (AnswerPartitionTable, SendPartitionTable...), as cells.
func RowsFromProto(rows [][]proto.CellInfo) [][]Cell {
	out := make([][]Cell, len(rows))
	for i, row := range rows {
		out[i] = make([]Cell, len(row))
		for j, c := range row {
			out[i][j] = Cell(c)
		}
	}
	return out
}

// RowsToProto returns a copy of rows of cells as packets carry them.
func RowsToProto(rows [][]Cell) [][]proto.CellInfo {
	out := make([][]proto.CellInfo, len(rows))
	for i, row := range rows {
		out[i] = make([]proto.CellInfo, len(row))
		for j, c := range row {
			out[i][j] = proto.CellInfo(c)
		}
	}
	return out
}

// Change is one cell change of NotifyPartitionChanges: the cell of node
// NID in partition Offset gets State; DISCARDED removes it, a cell that
// does not exist is added.
type Change struct {
	Offset uint32
	NID    proto.NodeID
	State  proto.CellState
}

func (c Change) String() string { return fmt.Sprintf("%d:%v:%v", c.Offset, c.NID, c.State) }

// States reports the state of a storage node as the caller's node table
// knows it; nodes it does not know are UNKNOWN.
type States func(proto.NodeID) proto.NodeState

// stateMap adapts a map to [States].
func stateMap(m map[proto.NodeID]proto.NodeState) States {
	return func(nid proto.NodeID) proto.NodeState { return m[nid] }
}

// Errors of table operations. Their texts are neoppod's, since the master
// sends them to neoctl in DENIED answers.
var (
	// ErrRemoveAllNodes: a tweak would leave no node in the table.
	ErrRemoveAllNodes = errors.New("Can't remove all nodes.")
	// ErrDownNodes: a tweak was asked while a storage outside the drop
	// list is not RUNNING.
	ErrDownNodes = errors.New("tweak: down nodes must be listed explicitly")
	// ErrNotAssigned: a node reported a partition it has no cell for.
	ErrNotAssigned = errors.New("Non-assigned partition")
	// ErrWrongPTid: a partition table change does not follow the table's id.
	ErrWrongPTid = errors.New("wrong partition table id")
	// ErrOnlyReadableCopies is matched by [OnlyReadableCopiesError].
	ErrOnlyReadableCopies = errors.New("only readable copies")
)

// OnlyReadableCopiesError refuses to drop nodes holding the only readable
// cells of a partition.
type OnlyReadableCopiesError struct {
	Partition uint32
}

func (e *OnlyReadableCopiesError) Error() string {
	return fmt.Sprintf("Refuse to drop nodes that contain the only readable copies of partition %d", e.Partition)
}

// Is makes errors.Is(err, ErrOnlyReadableCopies) hold.
func (e *OnlyReadableCopiesError) Is(target error) bool { return target == ErrOnlyReadableCopies }

type cellKey struct {
	offset uint32
	nid    proto.NodeID
}

// Table is a partition table. The zero value is not usable; see [New] and
// [Load].
type Table struct {
	ptid proto.PTid
	nr   int
	rows [][]Cell // cells of a row in the order they were added
	// nodes is the node set: each node with its number of non-FEEDING
	// cells. Nodes stay in it when their cells go, until DropNode.
	nodes map[proto.NodeID]int
	// updatable marks OUT_OF_DATE cells whose node asked for the
	// partition's unfinished transactions (master only, see SetUpToDate).
	updatable map[cellKey]bool
}

// New returns an empty table of np partitions and nr replicas, without id.
func New(np uint32, nr int) *Table {
	t := &Table{nr: nr}
	t.reset(np)
	return t
}

func (t *Table) reset(np uint32) {
	t.ptid = 0
	t.rows = make([][]Cell, np)
	t.nodes = map[proto.NodeID]int{}
	t.updatable = map[cellKey]bool{}
}

// Load returns the table received in SendPartitionTable or
// AnswerPartitionTable: np is len(rows). The rows are copied.
func Load(ptid proto.PTid, nr int, rows [][]Cell) (*Table, error) {
	t := New(uint32(len(rows)), nr)
	t.ptid = ptid
	for offset, row := range rows {
		for _, c := range row {
			if !c.State.Valid() {
				return nil, fmt.Errorf("load partition table: partition %d: invalid state %v of %v", offset, c.State, c.NID)
			}
			t.setCell(uint32(offset), c.NID, c.State)
		}
	}
	return t, nil
}

// Clone returns a deep copy, e.g. for a dry-run tweak.
func (t *Table) Clone() *Table {
	return &Table{
		ptid:      t.ptid,
		nr:        t.nr,
		rows:      t.Rows(),
		nodes:     maps.Clone(t.nodes),
		updatable: maps.Clone(t.updatable),
	}
}

// PTid returns the table id, 0 if the table has none.
func (t *Table) PTid() proto.PTid { return t.ptid }

// NextPTid increments the id and returns it: the master calls it once per
// broadcast of changes.
func (t *Table) NextPTid() proto.PTid {
	t.ptid++
	return t.ptid
}

// NumPartitions returns np.
func (t *Table) NumPartitions() uint32 { return uint32(len(t.rows)) }

// NumReplicas returns nr.
func (t *Table) NumReplicas() int { return t.nr }

// SetNumReplicas sets nr; it takes effect at the next tweak.
func (t *Table) SetNumReplicas(nr int) error {
	if nr < 0 {
		return fmt.Errorf("set replicas: invalid number of replicas %d", nr)
	}
	t.nr = nr
	return nil
}

// Partition returns the partition of an oid or tid value: v mod np.
func Partition(v uint64, np uint32) uint32 { return uint32(v % uint64(np)) }

// OidPartition returns the partition holding object oid.
func (t *Table) OidPartition(oid proto.Oid) uint32 { return Partition(uint64(oid), t.NumPartitions()) }

// TidPartition returns the partition holding the metadata of transaction tid.
func (t *Table) TidPartition(tid proto.Tid) uint32 { return Partition(uint64(tid), t.NumPartitions()) }

// Row returns a copy of the cells of partition offset.
func (t *Table) Row(offset uint32) []Cell { return slices.Clone(t.rows[offset]) }

// Rows returns a copy of every row, in offset order, as the PT packets carry them.
func (t *Table) Rows() [][]Cell {
	rows := make([][]Cell, len(t.rows))
	for i, row := range t.rows {
		rows[i] = slices.Clone(row)
	}
	return rows
}

// ReadableCells returns the readable cells of partition offset.
func (t *Table) ReadableCells(offset uint32) []Cell {
	var cells []Cell
	for _, c := range t.rows[offset] {
		if c.Readable() {
			cells = append(cells, c)
		}
	}
	return cells
}

// AppendReadableNodes appends to dst the nodes of the readable cells of
// partition offset: ReadableCells without an allocation, for the reads
// of a client.
func (t *Table) AppendReadableNodes(dst []proto.NodeID, offset uint32) []proto.NodeID {
	for _, c := range t.rows[offset] {
		if c.Readable() {
			dst = append(dst, c.NID)
		}
	}
	return dst
}

// Cell returns the cell of node nid in partition offset.
func (t *Table) Cell(offset uint32, nid proto.NodeID) (Cell, bool) {
	if i := t.index(offset, nid); i >= 0 {
		return t.rows[offset][i], true
	}
	return Cell{}, false
}

// Filled reports whether every partition has at least one cell.
func (t *Table) Filled() bool {
	for _, row := range t.rows {
		if len(row) == 0 {
			return false
		}
	}
	return true
}

// ReadableOffsets returns the partitions where node nid has a readable cell.
func (t *Table) ReadableOffsets(nid proto.NodeID) []uint32 {
	return t.offsets(nid, func(s proto.CellState) bool { return s.Readable() })
}

// OutdatedOffsets returns the partitions where node nid has an OUT_OF_DATE cell.
func (t *Table) OutdatedOffsets(nid proto.NodeID) []uint32 {
	return t.offsets(nid, func(s proto.CellState) bool { return s == proto.OUT_OF_DATE })
}

// AssignedOffsets returns the partitions where node nid has a cell.
func (t *Table) AssignedOffsets(nid proto.NodeID) []uint32 {
	return t.offsets(nid, func(proto.CellState) bool { return true })
}

func (t *Table) offsets(nid proto.NodeID, ok func(proto.CellState) bool) []uint32 {
	var offsets []uint32
	for offset, row := range t.rows {
		for _, c := range row {
			if c.NID == nid && ok(c.State) {
				offsets = append(offsets, uint32(offset))
				break
			}
		}
	}
	return offsets
}

// CellNodes returns the nodes having a cell (a readable one if readable),
// sorted by id.
func (t *Table) CellNodes(readable bool) []proto.NodeID {
	set := map[proto.NodeID]bool{}
	for _, row := range t.rows {
		for _, c := range row {
			if !readable || c.Readable() {
				set[c.NID] = true
			}
		}
	}
	return sortedKeys(set)
}

// Nodes returns the node set, sorted by id: every node with a cell plus
// those added without cells.
func (t *Table) Nodes() []proto.NodeID { return sortedKeys(t.nodes) }

// hasNode reports whether nid belongs to the node set.
func (t *Table) hasNode(nid proto.NodeID) bool {
	_, ok := t.nodes[nid]
	return ok
}

// AddNodes adds nodes to the node set (neoctl add) and returns those that
// were not in it yet, in argument order.
func (t *Table) AddNodes(nids ...proto.NodeID) []proto.NodeID {
	var added []proto.NodeID
	for _, nid := range nids {
		if _, ok := t.nodes[nid]; !ok {
			t.nodes[nid] = 0
			added = append(added, nid)
		}
	}
	return added
}

// DropNode removes nid from the node set if it holds no non-FEEDING cell
// and reports whether the node is now out of the set. Clients, admins and
// storages call it when the master forgets a node.
func (t *Table) DropNode(nid proto.NodeID) bool {
	n, ok := t.nodes[nid]
	if ok && n == 0 {
		delete(t.nodes, nid)
	}
	return n == 0
}

// Operational reports whether every partition has a readable cell on a
// RUNNING node that is not in exclude (cluster.md §4.2).
func (t *Table) Operational(states States, exclude ...proto.NodeID) bool {
	if len(t.rows) == 0 {
		return false
	}
rows:
	for _, row := range t.rows {
		for _, c := range row {
			if c.Readable() && states(c.NID) == proto.NODE_RUNNING && !slices.Contains(exclude, c.NID) {
				continue rows
			}
		}
		return false
	}
	return true
}

// OperationalNodes returns, at the end of recovery, the nodes with a
// readable cell if every partition has a readable cell on a PENDING node
// (the candidates to start the cluster with), else nil.
func (t *Table) OperationalNodes(states States) []proto.NodeID {
	set := map[proto.NodeID]bool{}
	for _, row := range t.rows {
		ok := false
		for _, c := range row {
			if c.Readable() {
				set[c.NID] = true
				ok = ok || states(c.NID) == proto.PENDING
			}
		}
		if !ok {
			return nil
		}
	}
	return sortedKeys(set)
}

// Update applies NotifyPartitionChanges as clients and admins do: ptid
// must be greater than the table's. On error the table is unchanged.
func (t *Table) Update(ptid proto.PTid, nr int, changes []Change) error {
	if ptid <= t.ptid {
		return fmt.Errorf("update partition table %d to %d: %w", t.ptid, ptid, ErrWrongPTid)
	}
	return t.apply(ptid, nr, changes)
}

// UpdateNext applies NotifyPartitionChanges as storages do: ptid must be
// exactly the table's + 1 (otherwise the storage must drop the master
// connection and reload the whole table). On error the table is unchanged.
func (t *Table) UpdateNext(ptid proto.PTid, nr int, changes []Change) error {
	if ptid != t.ptid+1 {
		return fmt.Errorf("update partition table %d to %d: %w", t.ptid, ptid, ErrWrongPTid)
	}
	return t.apply(ptid, nr, changes)
}

func (t *Table) apply(ptid proto.PTid, nr int, changes []Change) error {
	if nr < 0 {
		return fmt.Errorf("update partition table to %d: invalid number of replicas %d", ptid, nr)
	}
	for _, c := range changes {
		if int(c.Offset) >= len(t.rows) || !c.State.Valid() || c.NID == 0 {
			return fmt.Errorf("update partition table to %d: invalid change %v (np=%d)", ptid, c, len(t.rows))
		}
	}
	t.ptid = ptid
	t.nr = nr
	for _, c := range changes {
		t.setCell(c.Offset, c.NID, c.State)
	}
	return nil
}

// index returns the position of node nid's cell in row offset, or -1.
func (t *Table) index(offset uint32, nid proto.NodeID) int {
	for i, c := range t.rows[offset] {
		if c.NID == nid {
			return i
		}
	}
	return -1
}

// setCell gives node nid's cell of partition offset the state s, adding
// or (for DISCARDED) removing it, and keeps the node counts.
func (t *Table) setCell(offset uint32, nid proto.NodeID, s proto.CellState) {
	if s == proto.DISCARDED {
		t.removeCell(offset, nid)
		return
	}
	if _, ok := t.nodes[nid]; !ok {
		t.nodes[nid] = 0
	}
	delete(t.updatable, cellKey{offset, nid})
	if i := t.index(offset, nid); i >= 0 {
		c := &t.rows[offset][i]
		if c.State != proto.FEEDING {
			t.nodes[nid]--
		}
		c.State = s
	} else {
		t.rows[offset] = append(t.rows[offset], Cell{nid, s})
	}
	if s != proto.FEEDING {
		t.nodes[nid]++
	}
}

func (t *Table) removeCell(offset uint32, nid proto.NodeID) {
	i := t.index(offset, nid)
	if i < 0 {
		return
	}
	if t.rows[offset][i].State != proto.FEEDING {
		t.nodes[nid]--
	}
	delete(t.updatable, cellKey{offset, nid})
	t.rows[offset] = slices.Delete(t.rows[offset], i, i+1)
}

// sortedKeys returns the keys of m in increasing order (an empty slice,
// not nil, for an empty map).
func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
