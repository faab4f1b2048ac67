package backend

import (
	"errors"
	"testing"

	"github.com/neogo/neo/proto"
)

func TestOidsRoundTrip(t *testing.T) {
	oids := []proto.Oid{0, 1, 0x0102030405060708, proto.Oid(proto.MaxTid)}
	b := PackOids(oids)
	if len(b) != 32 || b[15] != 1 || b[16] != 1 {
		t.Fatalf("PackOids = %x", b)
	}
	got, err := UnpackOids(b)
	if err != nil || len(got) != len(oids) || got[2] != oids[2] {
		t.Fatalf("UnpackOids = %v, %v", got, err)
	}
	if _, err := UnpackOids(b[:7]); err == nil {
		t.Error("UnpackOids of 7 bytes: no error")
	}
}

func TestConfigRoundTrip(t *testing.T) {
	m := Meta{Name: "c", NID: proto.NewNodeID(proto.STORAGE, 3), BackupTid: 0x1234, TruncateTid: proto.InvalidTid}
	got := Meta{BackupTid: proto.InvalidTid, TruncateTid: proto.InvalidTid}
	for _, kv := range m.ConfigValues() {
		if kv.Key == "truncate_tid" {
			if kv.Value != nil {
				t.Errorf("unset truncate_tid saved as %q", *kv.Value)
			}
			continue
		}
		if kv.Key == "backup_tid" && *kv.Value != "0000000000001234" {
			t.Errorf("backup_tid saved as %q, want 16 hex digits", *kv.Value)
		}
		if err := got.SetConfig(kv.Key, *kv.Value); err != nil {
			t.Fatal(err)
		}
	}
	if got != m {
		t.Errorf("config round trip: %+v, want %+v", got, m)
	}
	if err := got.SetConfig("nid", "x"); err == nil {
		t.Error("nid x: no error")
	}
}

// The pt rows a change writes (cluster.md §8.2).
func TestApplyCellChanges(t *testing.T) {
	me, other := proto.NewNodeID(proto.STORAGE, 1), proto.NewNodeID(proto.STORAGE, 2)
	old := map[CellKey]PTRow{
		{0, me}:    {Tid: -1, Pack: 7}, // readable
		{1, me}:    {Tid: 55, Pack: 3}, // out of date, resume at 55
		{2, other}: {Tid: -1, Pack: proto.InvalidTid},
	}
	for _, tc := range []struct {
		name      string
		change    CellChange
		backupTid proto.Tid
		want      *PTRow
	}{
		{"own readable becomes out of date at its last tid", CellChange{0, me, proto.OUT_OF_DATE}, proto.InvalidTid, &PTRow{Tid: 90, Pack: 7}},
		{"in backup mode, at the backup tid", CellChange{0, me, proto.OUT_OF_DATE}, 80, &PTRow{Tid: 80, Pack: 7}},
		{"own out of date stays at its resume point", CellChange{1, me, proto.OUT_OF_DATE}, proto.InvalidTid, &PTRow{Tid: 55, Pack: 3}},
		{"own out of date becomes readable, keeps its pack", CellChange{1, me, proto.UP_TO_DATE}, proto.InvalidTid, &PTRow{Tid: -1, Pack: 3}},
		{"new own readable cell", CellChange{3, me, proto.UP_TO_DATE}, proto.InvalidTid, &PTRow{Tid: -1, Pack: 0}},
		{"new own out-of-date cell: already packed as approved", CellChange{3, me, proto.OUT_OF_DATE}, proto.InvalidTid, &PTRow{Tid: 0, Pack: 42}},
		{"other node's cell out of date", CellChange{2, other, proto.OUT_OF_DATE}, proto.InvalidTid, &PTRow{Tid: 0, Pack: proto.InvalidTid}},
		{"new other node's feeding cell", CellChange{3, other, proto.FEEDING}, proto.InvalidTid, &PTRow{Tid: -2, Pack: proto.InvalidTid}},
		{"discarded", CellChange{2, other, proto.DISCARDED}, proto.InvalidTid, nil},
	} {
		var got *PTRow
		put := 0
		err := ApplyCellChanges([]CellChange{tc.change}, PTUpdate{Me: me, Old: old, BackupTid: tc.backupTid, MaxApproved: 42,
			LastTid: func(p uint32) (int64, error) { return 90, nil },
			Put:     func(k CellKey, r *PTRow) error { put++; got = r; return nil }})
		if err != nil || put != 1 || (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
			t.Errorf("%s: %+v, %v (%d writes); want %+v", tc.name, got, err, put, tc.want)
		}
		if (got == nil) == (tc.want == nil) && got != nil {
			if c := got.Cell(tc.change.Partition, tc.change.NID); c.State != tc.change.State {
				t.Errorf("%s: row decodes as state %s", tc.name, c.State)
			}
		}
	}
	fail := errors.New("no")
	err := ApplyCellChanges([]CellChange{{0, me, proto.OUT_OF_DATE}}, PTUpdate{Me: me, Old: old, BackupTid: proto.InvalidTid,
		LastTid: func(uint32) (int64, error) { return 0, fail }, Put: func(CellKey, *PTRow) error { return nil }})
	if !errors.Is(err, fail) {
		t.Errorf("last tid failing: %v", err)
	}
}
