package ctl

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/neogo/neo/parttab"
	"github.com/neogo/neo/proto"
)

// FormatNodeList formats nodes as "print node" does: one line per node,
// "NID | TYPE | address | STATE | id timestamp", each column but the last
// padded to its widest value; sorted by node id, nodes without id last by
// address. No nodes give "Empty list!".
//
//	A1 | ADMIN   | 127.0.0.1:24101 | RUNNING | 2026-11-25 12:17:04.178144
//	M1 | MASTER  | 127.0.0.1:24100 | RUNNING | None
func FormatNodeList(nodes []proto.NodeInfo) string {
	if len(nodes) == 0 {
		return "Empty list!"
	}
	nodes = slices.Clone(nodes)
	slices.SortStableFunc(nodes, func(a, b proto.NodeInfo) int {
		if (a.NID == 0) != (b.NID == 0) {
			if a.NID == 0 {
				return 1
			}
			return -1
		}
		if a.NID != 0 {
			return cmp.Compare(a.NID, b.NID)
		}
		return cmp.Or(strings.Compare(a.Addr.Host, b.Addr.Host), cmp.Compare(a.Addr.Port, b.Addr.Port))
	})
	rows := make([][5]string, len(nodes))
	var width [4]int
	for i, n := range nodes {
		addr := ""
		if !n.Addr.IsZero() {
			addr = n.Addr.String()
		}
		rows[i] = [5]string{FormatNID(n.NID), n.Type.String(), addr, n.State.String(), formatIDTimestamp(n.IDTimestamp)}
		for j := range width {
			width[j] = max(width[j], len(rows[i][j]))
		}
	}
	var b strings.Builder
	for i, r := range rows {
		if i > 0 {
			b.WriteByte('\n')
		}
		for j, w := range width {
			fmt.Fprintf(&b, "%-*s | ", w, r[j])
		}
		b.WriteString(r[4])
	}
	return b.String()
}

// FormatNID formats a node id as neoctl prints it: "S1", "M2"..., "None"
// for nil.
func FormatNID(nid proto.NodeID) string {
	if nid == 0 {
		return "None"
	}
	return nid.String()
}

// formatIDTimestamp formats an id timestamp (float seconds since the
// epoch) as a UTC datetime rounded to the microsecond, half to even, like
// Python's datetime.utcfromtimestamp.
func formatIDTimestamp(ts proto.Opt[float64]) string {
	v, ok := ts.Get()
	switch {
	case !ok:
		return "None"
	case v == 0:
		return "0.0" // neoppod prints the falsy float itself
	case math.IsNaN(v) || math.IsInf(v, 0):
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	sec, frac := math.Modf(v)
	us := math.RoundToEven(frac * 1e6)
	if us >= 1e6 {
		sec, us = sec+1, us-1e6
	} else if us < 0 {
		sec, us = sec-1, us+1e6
	}
	return proto.FormatDatetime(time.Unix(int64(sec), int64(us)*1e3))
}

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
	s, err := parttab.FormatTable(cells(rows), states)
	if err != nil {
		return "", fmt.Errorf("format partition table: %w", err)
	}
	return s, nil
}

// FormatRows formats rows numbered from first, one line each, as "print pt
// min max" does: "000 | S1 - UP_TO_DATE | S2 - OUT_OF_DATE |".
func FormatRows(first uint32, rows [][]proto.CellInfo) string {
	return parttab.FormatRows(first, cells(rows))
}

func cells(rows [][]proto.CellInfo) [][]parttab.Cell {
	out := make([][]parttab.Cell, len(rows))
	for i, row := range rows {
		out[i] = make([]parttab.Cell, len(row))
		for j, c := range row {
			out[i][j] = parttab.Cell{NID: c.NID, State: c.State}
		}
	}
	return out
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
