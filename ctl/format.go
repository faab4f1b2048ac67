package ctl

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/neogo/neo/nodetab"
	"github.com/neogo/neo/parttab"
	"github.com/neogo/neo/proto"
)

// FormatNodeList formats nodes as "print node" does: one line per node,
// "NID | TYPE | address | STATE | id timestamp", each column but the last
// padded to its widest value; sorted by node id, nodes without id last by
// address. No nodes give "Empty list!". The formatting is
// [nodetab.Format]'s, checked against neoppod's.
//
//	A1 | ADMIN   | 127.0.0.1:24101 | RUNNING | 2026-11-25 12:17:04.178144
//	M1 | MASTER  | 127.0.0.1:24100 | RUNNING | None
func FormatNodeList(nodes []proto.NodeInfo) string {
	entries := make([]nodetab.Node, len(nodes))
	for i, n := range nodes {
		entries[i] = nodetab.Node(n)
	}
	return nodetab.Format(entries)
}

// FormatNID formats a node id as neoctl prints it: "S1", "M2"..., "None"
// for nil; it is [nodetab.FormatNID], which the node list uses too.
func FormatNID(nid proto.NodeID) string { return nodetab.FormatNID(nid) }

// FormatPTid formats a partition table id: "None" for nil (0).
func FormatPTid(ptid proto.PTid) string {
	if ptid == 0 {
		return "None"
	}
	return strconv.FormatUint(uint64(ptid), 10)
}

// FormatTid formats a tid as "print ids" does: "0x<hex> (<datetime>)".
func FormatTid(tid proto.Tid) string {
	return fmt.Sprintf("0x%x (%s)", uint64(tid), proto.FormatTidTime(tid))
}

// FormatPartitionTable formats rows as a matrix, as "print pt" without
// bounds and "tweak" do; storages is the admin's list of storage nodes,
// whose RUNNING ones appear even without cells.
func FormatPartitionTable(rows [][]proto.CellInfo, storages []proto.NodeInfo) (string, error) {
	states := make(map[proto.NodeID]proto.NodeState, len(storages))
	for _, n := range storages {
		if n.NID != 0 {
			states[n.NID] = n.State
		}
	}
	s, err := parttab.FormatTable(parttab.RowsFromProto(rows), states)
	if err != nil {
		return "", fmt.Errorf("format partition table: %w", err)
	}
	return s, nil
}

// FormatRows formats rows numbered from first, one line each, as "print pt
// min max" does: "000 | S1 - UP_TO_DATE | S2 - OUT_OF_DATE |".
func FormatRows(first uint32, rows [][]proto.CellInfo) string {
	return parttab.FormatRows(first, parttab.RowsFromProto(rows))
}

// FormatSummary formats the monitoring information as "print summary"
// does: a first line "# <json>" of the clusters in warning and problem
// state (null for this cluster, empty lists left out), then the summary.
//
//	# {"problem": [null]}
//	RECOVERING; UP_TO_DATE=12; DOWN=1
func FormatSummary(m *proto.AnswerMonitorInformation) string {
	var b strings.Builder
	b.WriteString("# {")
	first := true
	for _, kv := range []struct {
		key   string
		names []proto.Opt[string]
	}{{"warning", m.Warnings}, {"problem", m.Problems}} {
		if len(kv.names) == 0 {
			continue
		}
		if !first {
			b.WriteString(", ")
		}
		first = false
		fmt.Fprintf(&b, "%q: [", kv.key)
		for i, n := range kv.names {
			if i > 0 {
				b.WriteString(", ")
			}
			if v, ok := n.Get(); ok {
				writeJSONString(&b, v)
			} else {
				b.WriteString("null")
			}
		}
		b.WriteByte(']')
	}
	b.WriteString("}\n")
	b.WriteString(m.Summary)
	return b.String()
}

// writeJSONString writes s as Python's json.dumps does by default: ASCII
// only, non-ASCII as \uXXXX (surrogate pairs beyond the BMP).
func writeJSONString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			switch {
			case r < 0x20 || r >= 0x7f && r < 0x10000 || r == utf8.RuneError:
				fmt.Fprintf(b, `\u%04x`, r)
			case r >= 0x10000:
				r -= 0x10000
				fmt.Fprintf(b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
			default:
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
}
