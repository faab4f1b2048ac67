package admin

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/neogo/neo/proto"
)

// Severity is the health level of a cluster (cluster.md §9.4).
type Severity int

const (
	// SeverityOK: RUNNING (or BACKINGUP), every node up, every cell UP_TO_DATE.
	SeverityOK Severity = iota
	// SeverityWarning: operational, but some cell is not UP_TO_DATE (or a
	// backup is not BACKINGUP or lags).
	SeverityWarning
	// SeverityProblem: a node of the partition table is down or the cluster
	// is not operational.
	SeverityProblem
)

// Monitor is the health of one cluster as an admin sees it: what it keeps
// for its own cluster and, once backups are monitored (protocol.md §5.17),
// for each backup cluster from its NotifyMonitorInformation.
type Monitor struct {
	ClusterState proto.Opt[proto.ClusterState] // unset: not known
	// PTSummary counts the cells per state; nil without partition table.
	PTSummary map[proto.CellState]int
	// Down is the number of distinct nodes of the partition table that are
	// not RUNNING.
	Down int
	// LastTid is the last committed tid, asked to the master when the
	// cluster is operational; BackupTid likewise when it is BACKINGUP.
	LastTid   proto.Opt[proto.Tid]
	BackupTid proto.Opt[proto.Tid]
}

// Operational reports whether the cluster serves clients.
func (m Monitor) Operational() bool {
	s, ok := m.ClusterState.Get()
	return ok && (s == proto.RUNNING || s == proto.BACKINGUP)
}

// Severity is the health level of a main cluster.
func (m Monitor) Severity() Severity {
	switch {
	case m.Down > 0 || !m.Operational():
		return SeverityProblem
	case len(m.PTSummary) != 1 || m.PTSummary[proto.UP_TO_DATE] == 0:
		return SeverityWarning
	}
	return SeverityOK
}

// Summary is the one-line health summary of a main cluster, as neoctl's
// "print summary" shows it:
//
//	RUNNING; UP_TO_DATE=22, FEEDING=2; DOWN=1; ltid=03f1c3a2b0e4d555 (2024-05-06 07:08:09.123456)
//
// The last tid is appended only when the cluster is operational and the
// tid is known.
func (m Monitor) Summary() string {
	var b strings.Builder
	if s, ok := m.ClusterState.Get(); ok {
		b.WriteString(s.String())
	} else {
		b.WriteString("None")
	}
	for i, s := range slices.Sorted(maps.Keys(m.PTSummary)) {
		if i == 0 {
			b.WriteString("; ")
		} else {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%d", s, m.PTSummary[s])
	}
	if m.Down > 0 {
		fmt.Fprintf(&b, "; DOWN=%d", m.Down)
	}
	if m.Operational() {
		tid := m.LastTid
		if m.ClusterState.V == proto.BACKINGUP {
			tid = m.BackupTid
		}
		if t, ok := tid.Get(); ok {
			fmt.Fprintf(&b, "; ltid=%016x (%s)", uint64(t), proto.FormatTidTime(t))
		}
	}
	return b.String()
}

// monitorAnswer builds AnswerMonitorInformation for the main cluster: the
// lists name the clusters in warning or problem state, nil standing for
// this one. extra (the report of a failed e-mail notification) is appended
// to the summary and makes it a problem.
func monitorAnswer(m Monitor, extra string) *proto.AnswerMonitorInformation {
	a := &proto.AnswerMonitorInformation{
		Warnings: []proto.Opt[string]{},
		Problems: []proto.Opt[string]{},
		Summary:  m.Summary() + extra,
	}
	sev := m.Severity()
	if extra != "" {
		sev = SeverityProblem
	}
	switch sev {
	case SeverityWarning:
		a.Warnings = append(a.Warnings, proto.Opt[string]{})
	case SeverityProblem:
		a.Problems = append(a.Problems, proto.Opt[string]{})
	}
	return a
}
