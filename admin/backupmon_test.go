package admin

import (
	"testing"
	"time"

	"github.com/neogo/neo/proto"
)

func TestMergeInfo(t *testing.T) {
	var m Monitor
	m.LastTid = proto.Some(someTid)
	changed, err := m.mergeInfo(proto.Dict{
		{Key: "cluster_state", Value: proto.BACKINGUP},
		{Key: "down", Value: uint64(1)},
		{Key: "pt_summary", Value: proto.Map{{Key: proto.UP_TO_DATE, Value: int64(3)}, {Key: proto.OUT_OF_DATE, Value: int64(1)}}},
		{Key: "newer_key", Value: "ignored"},
	})
	if err != nil || !changed {
		t.Fatalf("first merge: changed %v, %v", changed, err)
	}
	if m.LastTid.Valid {
		t.Error("the last tid of another state is kept")
	}
	if got := m.stateSummary(); got != "BACKINGUP; OUT_OF_DATE=1, UP_TO_DATE=3; DOWN=1" {
		t.Errorf("after merge %q", got)
	}
	if changed, err := m.mergeInfo(proto.Dict{{Key: "down", Value: int64(1)}}); err != nil || changed {
		t.Errorf("same down: changed %v, %v", changed, err)
	}
	if changed, err := m.mergeInfo(proto.Dict{{Key: "cluster_state", Value: nil}}); err != nil || !changed || m.ClusterState.Valid {
		t.Errorf("state unknown: changed %v, %v, %v", changed, err, m.ClusterState)
	}
	for _, bad := range []proto.Dict{
		{{Key: "cluster_state", Value: int64(3)}},
		{{Key: "down", Value: "1"}},
		{{Key: "pt_summary", Value: proto.Map{{Key: int64(1), Value: int64(1)}}}},
		{{Key: "pt_summary", Value: proto.Map{{Key: proto.UP_TO_DATE, Value: "x"}}}},
		{{Key: "pt_summary", Value: int64(1)}},
	} {
		if _, err := m.mergeInfo(bad); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}

func TestBackupSummary(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 21, 0, 0, 500, time.UTC) // up±1 stays within the microsecond
	up := proto.TidFromTime(t0)
	pt := map[proto.CellState]int{proto.UP_TO_DATE: 4}
	backing := func(tid proto.Tid) backupMon {
		return backupMon{Name: "bk", Monitor: Monitor{ClusterState: proto.Some(proto.BACKINGUP), PTSummary: pt, BackupTid: proto.Some(tid)}}
	}
	late := proto.TidFromTime(t0.Add(-90 * time.Second))
	for _, tc := range []struct {
		name     string
		b        backupMon
		upstream proto.Opt[proto.Tid]
		maxLag   float64
		want     string
		sev      Severity
	}{
		{"not connected", backupMon{Name: "bk"}, proto.Some(up), 0, "None", SeverityProblem},
		{"lagging", backing(late), proto.Some(up), 60, "BACKINGUP; UP_TO_DATE=4; ltid=" + hex(late) + "; lag=90.0", SeverityWarning},
		{"within maxlag", backing(late), proto.Some(up), 90, "BACKINGUP; UP_TO_DATE=4; ltid=" + hex(late) + "; lag=90.0", SeverityOK},
		{"in sync, maxlag 0", backing(up), proto.Some(up), 0, "BACKINGUP; UP_TO_DATE=4; ltid=" + hex(up) + "; lag=0.0", SeverityOK},
		{"ahead", backing(proto.TidFromTime(t0.Add(time.Millisecond))), proto.Some(up), 0,
			"BACKINGUP; UP_TO_DATE=4; ltid=" + hex(proto.TidFromTime(t0.Add(time.Millisecond))) + "; lag=-0.001", SeverityOK},
		{"behind within a microsecond, maxlag 0", backing(up - 1), proto.Some(up + 1), 0, "BACKINGUP; UP_TO_DATE=4; ltid=" + hex(up-1) + "; lag=ε", SeverityWarning},
		{"behind within a microsecond", backing(up - 1), proto.Some(up + 1), 1, "BACKINGUP; UP_TO_DATE=4; ltid=" + hex(up-1) + "; lag=ε", SeverityOK},
		{"upstream tid unknown", backing(late), proto.Opt[proto.Tid]{}, 0, "BACKINGUP; UP_TO_DATE=4; ltid=" + hex(late) + " (" + proto.FormatTidTime(late) + ")", SeverityOK},
		{"running backup shows its last tid", backupMon{Name: "bk", Monitor: Monitor{ClusterState: proto.Some(proto.RUNNING), PTSummary: pt, LastTid: proto.Some(late)}},
			proto.Some(up), 0, "RUNNING; UP_TO_DATE=4; ltid=" + hex(late) + " (" + proto.FormatTidTime(late) + ")", SeverityWarning},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.b
			got, sev := b.summary(tc.upstream, tc.maxLag)
			if got != "    "+tc.want || sev != tc.sev {
				t.Errorf("got %q %d\nwant %q %d", got, sev, "    "+tc.want, tc.sev)
			}
		})
	}
	// Lagging is kept while the backup cannot be compared.
	b := backing(late)
	b.summary(proto.Some(up), 0)
	if _, sev := b.summary(proto.Opt[proto.Tid]{}, 0); sev != SeverityWarning {
		t.Errorf("lagging forgotten: %d", sev)
	}
}

func TestMonitorAnswerBackups(t *testing.T) {
	main := Monitor{ClusterState: proto.Some(proto.RUNNING), PTSummary: map[proto.CellState]int{proto.UP_TO_DATE: 1}, LastTid: proto.Some(someTid)}
	ok := backupMon{Name: "a", Monitor: Monitor{ClusterState: proto.Some(proto.BACKINGUP), PTSummary: map[proto.CellState]int{proto.UP_TO_DATE: 1}, BackupTid: proto.Some(someTid)}}
	a := monitorAnswer(main, []*backupMon{{Name: "z"}, &ok, {Name: "b"}}, 0, "")
	want := main.Summary() + "\n\nz\n    None\n\na\n    BACKINGUP; UP_TO_DATE=1; ltid=" + hex(someTid) + "; lag=0.0\n\nb\n    None"
	if a.Summary != want {
		t.Errorf("summary\n got %q\nwant %q", a.Summary, want)
	}
	if len(a.Warnings) != 0 || len(a.Problems) != 2 || a.Problems[0].V != "b" || a.Problems[1].V != "z" {
		t.Errorf("lists %v %v, want problems sorted [b z]", a.Warnings, a.Problems)
	}
}

func hex(tid proto.Tid) string { return tid.String() }
