package parttab

import (
	"fmt"
	"strings"

	"github.com/neogo/neo/proto"
)

// nodeStateLetter is the one-letter form of a node state in matrices.
func nodeStateLetter(s proto.NodeState) byte {
	switch s {
	case proto.UNKNOWN:
		return 'U'
	case proto.DOWN:
		return 'D'
	case proto.NODE_RUNNING:
		return 'R'
	case proto.PENDING:
		return 'P'
	}
	return '?'
}

// matrixLines returns the table as a matrix, one line per node of the
// node set in id order (cluster.md §9.5): the node id padded to the width
// of the greatest id, its state letter, then one letter per partition
// (U, O, F, C, or '.' without cell). When np > 10 a first line marks every
// 10th partition with its number and a 'v'. neoppod logs these lines
// prefixed by "pt: "; neoctl prints them as they are. No line without node.
//
//	             10v
//	S1 R U.UU.FU.OU.U
//	S2 R OU.UU.UU.UU.
func (t *Table) matrixLines(states States) []string {
	nodes := t.Nodes()
	if len(nodes) == 0 {
		return nil
	}
	np := len(t.rows)
	width := len(nodes[len(nodes)-1].String())
	var lines []string
	if np > 10 {
		var b strings.Builder
		b.WriteString(strings.Repeat(" ", width+4))
		for x := 10; x < np; x += 10 {
			fmt.Fprintf(&b, "%9dv", x)
		}
		lines = append(lines, b.String())
	}
	line := make([]byte, np)
	for _, nid := range nodes {
		for i := range line {
			line[i] = '.'
		}
		for offset, row := range t.rows {
			for _, c := range row {
				if c.NID == nid {
					line[offset] = c.State.Letter()
				}
			}
		}
		lines = append(lines, fmt.Sprintf("%-*s %c %s", width, nid, nodeStateLetter(states(nid)), line))
	}
	return lines
}

// matrix returns [Table.matrixLines] joined with newlines.
func (t *Table) matrix(states States) string { return strings.Join(t.matrixLines(states), "\n") }

// FormatTable formats rows as neoctl's "print pt" and "tweak" do: the
// nodes are those with a cell plus the RUNNING ones among storages (all
// the storage nodes the admin reports, with their state).
func FormatTable(rows [][]Cell, storages map[proto.NodeID]proto.NodeState) (string, error) {
	t, err := Load(0, 0, rows)
	if err != nil {
		return "", err
	}
	for _, nid := range sortedKeys(storages) {
		if storages[nid] == proto.NODE_RUNNING {
			t.AddNodes(nid)
		}
	}
	return t.matrix(stateMap(storages)), nil
}

// FormatRows formats rows as neoctl's "print pt min max" does, one line per
// row starting at offset first: "NNN | S1 - UP_TO_DATE | S2 - OUT_OF_DATE |".
func FormatRows(first uint32, rows [][]Cell) string {
	var b strings.Builder
	for i, row := range rows {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%03d |", first+uint32(i))
		for _, c := range row {
			fmt.Fprintf(&b, " %v - %v |", c.NID, c.State)
		}
	}
	return b.String()
}
