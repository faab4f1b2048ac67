package storage

import (
	"context"
	"slices"
	"testing"

	"github.com/neogo/neo/parttab"
	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

// A table received from the master is saved as the differences from the
// saved one (the whole table when none is saved), and not at all when
// nothing differs.
func TestPTChanges(t *testing.T) {
	const s1, s2, s3 = proto.NodeID(1), proto.NodeID(2), proto.NodeID(3)
	up, out, feed := proto.UP_TO_DATE, proto.OUT_OF_DATE, proto.FEEDING
	ch := func(p uint32, nid proto.NodeID, s proto.CellState) backend.CellChange {
		return backend.CellChange{Partition: p, NID: nid, State: s}
	}
	cell := func(nid proto.NodeID, s proto.CellState) parttab.Cell { return parttab.Cell{NID: nid, State: s} }
	saved := [][]parttab.Cell{
		{cell(s1, up), cell(s2, up)},
		{cell(s1, up), cell(s2, up)},
	}
	old, err := loadPTable(5, 1, saved)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		old      *ptable
		ptid     proto.PTid
		nr       int
		rows     [][]parttab.Cell
		want     []backend.CellChange
		wantSame bool
	}{
		{name: "nothing saved", old: nil, ptid: 5, nr: 1, rows: saved, want: []backend.CellChange{
			ch(0, s1, up), ch(0, s2, up), ch(1, s1, up), ch(1, s2, up)}},
		{name: "same table", old: old, ptid: 5, nr: 1, rows: saved, wantSame: true},
		{name: "same cells, newer ptid", old: old, ptid: 6, nr: 1, rows: saved},
		{name: "same cells, other replicas", old: old, ptid: 5, nr: 2, rows: saved},
		{name: "restarted storage outdated", old: old, ptid: 7, nr: 1,
			rows: [][]parttab.Cell{{cell(s1, up), cell(s2, out)}, {cell(s1, up), cell(s2, out)}},
			want: []backend.CellChange{ch(0, s2, out), ch(1, s2, out)}},
		{name: "cell added and dropped", old: old, ptid: 9, nr: 1,
			rows: [][]parttab.Cell{{cell(s1, up), cell(s3, out)}, {cell(s2, up), cell(s1, feed)}},
			want: []backend.CellChange{ch(0, s3, out), ch(0, s2, proto.DISCARDED), ch(1, s1, feed)}},
		{name: "more partitions", old: old, ptid: 9, nr: 1,
			rows: [][]parttab.Cell{saved[0], saved[1], {cell(s3, up)}},
			want: []backend.CellChange{ch(2, s3, up)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, same := ptChanges(tc.old, tc.ptid, tc.nr, tc.rows)
			if same != tc.wantSame || !slices.Equal(got, tc.want) {
				t.Errorf("ptChanges = %v, same %v; want %v, same %v", got, same, tc.want, tc.wantSame)
			}
		})
	}
}

// ptBackend records the partition-table writes.
type ptBackend struct {
	nopBackend
	writes [][]backend.CellChange
	resets []bool
}

func (b *ptBackend) ChangePartitionTable(_ context.Context, _ proto.PTid, _ int, changes []backend.CellChange, reset bool) error {
	b.writes = append(b.writes, changes)
	b.resets = append(b.resets, reset)
	return nil
}

// SendPartitionTable writes the whole table the first time, then only
// what changed, and nothing for the table already saved.
func TestSendPartitionTableWrites(t *testing.T) {
	b := &ptBackend{}
	n, err := New(Config{Cluster: "c", Masters: []string{"127.0.0.1:1"}, Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	row := func(s proto.CellState) []proto.CellInfo {
		return []proto.CellInfo{{NID: 1, State: proto.UP_TO_DATE}, {NID: 2, State: s}}
	}
	send := func(ptid proto.PTid, s proto.CellState) {
		t.Helper()
		m := &proto.SendPartitionTable{PTid: ptid, NumReplicas: 1, Rows: [][]proto.CellInfo{row(s), row(s)}}
		if err := n.sendPartitionTable(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	send(3, proto.UP_TO_DATE)
	send(3, proto.UP_TO_DATE)
	send(4, proto.OUT_OF_DATE)
	if len(b.writes) != 2 || len(b.writes[0]) != 4 || !b.resets[0] || len(b.writes[1]) != 2 || b.resets[1] {
		t.Fatalf("writes %v (resets %v), want 4 cells with reset, then the 2 changed cells", b.writes, b.resets)
	}
	if n.mu.pt.PTid() != 4 || n.mu.pt.readable(0, 2) {
		t.Fatalf("table in memory not replaced: ptid %v", n.mu.pt.PTid())
	}
}
