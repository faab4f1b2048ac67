package nodetab

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/neogo/neo/proto"
)

// FormatLines formats node entries as neoppod's formatNodeList does in
// logs (and neolog) and neoctl's "print node" (cluster.md §9.5): one line
// per node, sorted by id (nodes without id last, by address), with the
// columns id, type, address, state and the UTC time of id_timestamp, each
// but the last padded to the widest value and separated by " | ". prefix
// starts every line. No node, no line.
//
//	S1 | STORAGE | 127.0.0.1:5001 | RUNNING | 2023-11-14 22:13:20.250000
//	M1 | MASTER  | 127.0.0.1:5000 | RUNNING | None
func FormatLines(nodes []Node, prefix string) []string {
	if len(nodes) == 0 {
		return nil
	}
	sorted := sortNodes(nodes)
	cols := make([][5]string, len(sorted))
	var width [4]int
	for i, n := range sorted {
		addr := ""
		if !n.Addr.IsZero() {
			addr = n.Addr.String()
		}
		cols[i] = [5]string{FormatNID(n.NID), n.Type.String(), addr, n.State.String(), formatIDTimestamp(n.IDTimestamp)}
		for k := range width {
			width[k] = max(width[k], len(cols[i][k]))
		}
	}
	lines := make([]string, len(cols))
	for i, c := range cols {
		var b strings.Builder
		b.WriteString(prefix)
		for k := range width {
			fmt.Fprintf(&b, "%-*s | ", width[k], c[k])
		}
		b.WriteString(c[4])
		lines[i] = b.String()
	}
	return lines
}

// Format is neoctl's "print node" output: [FormatLines] joined by
// newlines, or "Empty list!".
func Format(nodes []Node) string {
	if len(nodes) == 0 {
		return "Empty list!"
	}
	return strings.Join(FormatLines(nodes, ""), "\n")
}

// formatIDTimestamp prints an id_timestamp the way Python prints
// `ts and datetime.utcfromtimestamp(ts)`: None, 0.0 as is, else the UTC
// datetime rounded half-even to the microsecond. NaN and infinities, which
// Python refuses, are printed as floats rather than as a wrong date.
func formatIDTimestamp(ts proto.Opt[float64]) string {
	switch {
	case !ts.Valid:
		return "None"
	case ts.V == 0:
		return strconv.FormatFloat(ts.V, 'f', 1, 64) // "0.0" (or "-0.0")
	case math.IsNaN(ts.V) || math.IsInf(ts.V, 0):
		return strconv.FormatFloat(ts.V, 'g', -1, 64)
	}
	return proto.FormatDatetime(unixTime(ts.V))
}

// unixTime converts float seconds since the epoch to a time rounded
// half-even to the microsecond, as Python's datetime.utcfromtimestamp.
func unixTime(ts float64) time.Time {
	sec, frac := math.Modf(ts)
	us := math.RoundToEven(frac * 1e6)
	if us >= 1e6 {
		us -= 1e6
		sec++
	} else if us < 0 {
		us += 1e6
		sec--
	}
	return time.Unix(int64(sec), int64(us)*1e3).UTC()
}
