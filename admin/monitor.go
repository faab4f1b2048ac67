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

func (s Severity) String() string {
	switch s {
	case SeverityOK:
		return "OK"
	case SeverityWarning:
		return "WARNING"
	case SeverityProblem:
		return "PROBLEM"
	}
	return fmt.Sprintf("Severity(%d)", int(s))
}

// Monitor is the health of one cluster as an admin sees it: what it keeps
// for its own cluster and, for each monitored backup (protocol.md §5.17),
// from its NotifyMonitorInformation (backupmon.go).
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
	s := m.stateSummary()
	if t, ok := m.shownTid(); ok {
		s += fmt.Sprintf("; ltid=%016x (%s)", uint64(t), proto.FormatTidTime(t))
	}
	return s
}

// stateSummary is the summary without the tid: the state, the cell
// counts and the nodes down.
func (m Monitor) stateSummary() string {
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
	return b.String()
}

// monitorAnswer builds AnswerMonitorInformation: the summary of this
// cluster then, for each monitored backup, an empty line, its name and
// its indented summary; the lists name the clusters in warning or problem
// state (sorted), nil standing for this one first. extra (the report of a
// failed e-mail notification) is appended to the summary and makes this
// cluster a problem. The backups' Lagging is updated.
func monitorAnswer(m Monitor, backups []*backupMon, maxLag float64, extra string) *proto.AnswerMonitorInformation {
	var lists [3][]proto.Opt[string]
	body := []string{m.Summary()}
	var upstream proto.Opt[proto.Tid]
	if t, ok := m.shownTid(); ok {
		upstream = proto.Some(t)
	}
	for _, b := range backups {
		s, sev := b.summary(upstream, maxLag)
		body = append(body, "", b.Name, s)
		lists[sev] = append(lists[sev], proto.Some(b.Name))
	}
	for _, l := range lists[1:] {
		slices.SortFunc(l, func(a, b proto.Opt[string]) int { return strings.Compare(a.V, b.V) })
	}
	sev := m.Severity()
	if extra != "" {
		sev = SeverityProblem
	}
	lists[sev] = slices.Insert(lists[sev], 0, proto.Opt[string]{})
	a := &proto.AnswerMonitorInformation{
		Warnings: lists[SeverityWarning],
		Problems: lists[SeverityProblem],
		Summary:  strings.Join(body, "\n") + extra,
	}
	if a.Warnings == nil {
		a.Warnings = []proto.Opt[string]{}
	}
	if a.Problems == nil {
		a.Problems = []proto.Opt[string]{}
	}
	return a
}
