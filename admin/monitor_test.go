package admin

import (
	"reflect"
	"testing"

	"github.com/neogo/neo/proto"
)

// someTid is any tid with a date.
const someTid proto.Tid = 0x03f1c3a2b0e4d555

func TestMonitorSummary(t *testing.T) {
	up := map[proto.CellState]int{proto.UP_TO_DATE: 24}
	for _, tc := range []struct {
		name string
		m    Monitor
		want string
		sev  Severity
	}{
		{"state unknown", Monitor{}, "None", SeverityProblem},
		{"recovering without table", Monitor{ClusterState: proto.Some(proto.RECOVERING)}, "RECOVERING", SeverityProblem},
		{"recovering with an empty table", Monitor{ClusterState: proto.Some(proto.RECOVERING), PTSummary: map[proto.CellState]int{}}, "RECOVERING", SeverityProblem},
		{"running, last tid not known yet", Monitor{ClusterState: proto.Some(proto.RUNNING), PTSummary: up},
			"RUNNING; UP_TO_DATE=24", SeverityOK},
		{"running, empty database", Monitor{ClusterState: proto.Some(proto.RUNNING), PTSummary: up, LastTid: proto.Some(proto.ZeroTid)},
			"RUNNING; UP_TO_DATE=24; ltid=0000000000000000 (1900-01-01 00:00:00)", SeverityOK},
		{"running with a tid", Monitor{ClusterState: proto.Some(proto.RUNNING), PTSummary: up, LastTid: proto.Some(someTid)},
			"RUNNING; UP_TO_DATE=24; ltid=03f1c3a2b0e4d555 (" + proto.FormatTidTime(someTid) + ")", SeverityOK},
		{"cell states sorted by value, nodes down", Monitor{
			ClusterState: proto.Some(proto.RUNNING),
			PTSummary:    map[proto.CellState]int{proto.FEEDING: 2, proto.UP_TO_DATE: 20, proto.OUT_OF_DATE: 2},
			Down:         1, LastTid: proto.Some(proto.ZeroTid)},
			"RUNNING; OUT_OF_DATE=2, UP_TO_DATE=20, FEEDING=2; DOWN=1; ltid=0000000000000000 (1900-01-01 00:00:00)", SeverityProblem},
		{"replicating is a warning", Monitor{
			ClusterState: proto.Some(proto.RUNNING),
			PTSummary:    map[proto.CellState]int{proto.UP_TO_DATE: 20, proto.OUT_OF_DATE: 4}},
			"RUNNING; OUT_OF_DATE=4, UP_TO_DATE=20", SeverityWarning},
		{"backing up shows the backup tid", Monitor{ClusterState: proto.Some(proto.BACKINGUP), PTSummary: up,
			LastTid: proto.Some(someTid), BackupTid: proto.Some(proto.ZeroTid)},
			"BACKINGUP; UP_TO_DATE=24; ltid=0000000000000000 (1900-01-01 00:00:00)", SeverityOK},
		{"no tid when not operational", Monitor{ClusterState: proto.Some(proto.STOPPING), PTSummary: up, LastTid: proto.Some(someTid)},
			"STOPPING; UP_TO_DATE=24", SeverityProblem},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.m.Summary(); got != tc.want {
				t.Errorf("summary\n got %q\nwant %q", got, tc.want)
			}
			if got := tc.m.Severity(); got != tc.sev {
				t.Errorf("severity %d, want %d", got, tc.sev)
			}
		})
	}
}

func TestMonitorAnswer(t *testing.T) {
	ok := Monitor{ClusterState: proto.Some(proto.RUNNING), PTSummary: map[proto.CellState]int{proto.UP_TO_DATE: 1}}
	warn := Monitor{ClusterState: proto.Some(proto.RUNNING), PTSummary: map[proto.CellState]int{proto.OUT_OF_DATE: 1}}
	nilName := []proto.Opt[string]{{}}
	none := []proto.Opt[string]{}
	for _, tc := range []struct {
		name      string
		m         Monitor
		extra     string
		warn, pbm []proto.Opt[string]
		summary   string
	}{
		{"ok: both lists empty", ok, "", none, none, "RUNNING; UP_TO_DATE=1"},
		{"warning: this cluster is nil", warn, "", nilName, none, "RUNNING; OUT_OF_DATE=1"},
		{"problem", Monitor{}, "", none, nilName, "None"},
		{"a failed e-mail makes a problem", ok, "\n\nfailed", none, nilName, "RUNNING; UP_TO_DATE=1\n\nfailed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := monitorAnswer(tc.m, nil, 0, tc.extra)
			if !reflect.DeepEqual(a.Warnings, tc.warn) || !reflect.DeepEqual(a.Problems, tc.pbm) || a.Summary != tc.summary {
				t.Errorf("got %+v", a)
			}
		})
	}
}
