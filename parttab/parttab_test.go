package parttab

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/neogo/neo/proto"
)

// layout renders the table as rows of cell letters, one column per node of
// the node set in id order, rows separated by '|' (cluster.md §4.3).
// setPTid sets the table id, to build tables as they were.
func (t *Table) setPTid(ptid proto.PTid) { t.ptid = ptid }

func layout(t *Table) string {
	nodes := t.Nodes()
	rows := make([]string, t.NumPartitions())
	for offset := range rows {
		b := []byte(strings.Repeat(".", len(nodes)))
		for _, c := range t.Row(uint32(offset)) {
			b[slices.Index(nodes, c.NID)] = c.State.Letter()
		}
		rows[offset] = string(b)
	}
	return strings.Join(rows, "|")
}

// parse builds a table (ptid 1) from a layout string whose columns are
// nodes S1, S2, ...
func parse(t *testing.T, nr int, s string) *Table {
	t.Helper()
	rows := strings.Split(s, "|")
	tab := New(uint32(len(rows)), nr)
	tab.setPTid(1)
	tab.AddNodes(storages(len(rows[0]))...)
	for offset, row := range rows {
		for i, ch := range row {
			if ch == '.' {
				continue
			}
			st := proto.CellState(strings.IndexRune("OUFCD", ch))
			tab.setCell(uint32(offset), proto.NodeID(i+1), st)
		}
	}
	return tab
}

func storages(n int) []proto.NodeID {
	var nids []proto.NodeID
	for i := 1; i <= n; i++ {
		nids = append(nids, proto.NodeID(i))
	}
	return nids
}

func allRunning(proto.NodeID) proto.NodeState { return proto.NODE_RUNNING }

func TestMakeSpecVectors(t *testing.T) {
	// cluster.md §4.3 with 4 nodes.
	tests := []struct {
		np    uint32
		nr    int
		nodes int
		want  string
	}{
		{3, 0, 4, "U..|.U.|..U"},
		{5, 1, 4, "UU..|..UU|UU..|..UU|UU.."},
		{9, 2, 4, "UUU.|UU.U|U.UU|.UUU|UUU.|UU.U|U.UU|.UUU|UUU."},
		{4, 2, 1, "U|U|U|U"},
	}
	for _, tt := range tests {
		tab := New(tt.np, tt.nr)
		if _, err := tab.Make(storages(tt.nodes), nil); err != nil {
			t.Fatal(err)
		}
		// With np=3, S4 gets no cell and leaves the node set: 3 columns.
		if got := layout(tab); got != tt.want {
			t.Errorf("make np=%d nr=%d with %d nodes = %s, want %s", tt.np, tt.nr, tt.nodes, got, tt.want)
		}
		if tab.PTid() != 1 {
			t.Errorf("ptid after make = %d, want 1", tab.PTid())
		}
		if !tab.Operational(allRunning) {
			t.Errorf("table made is not operational")
		}
	}
}

func TestMakeSpreadsReplicasOverTheTopology(t *testing.T) {
	// cluster.md §4.4: 9 nodes, np=9, nr=1.
	devpaths := map[proto.NodeID][]string{}
	for i := range 9 {
		devpaths[proto.NodeID(i+1)] = []string{string(rune('0' + i/3)), string(rune('0' + i%3))}
	}
	for _, tt := range []struct {
		name     string
		devpaths map[proto.NodeID][]string
		want     string
	}{
		{"identical paths", nil, "UU.......|..UU.....|....UU...|......UU.|U.......U|.UU......|...UU....|.....UU..|.......UU"},
		{"3 groups of 3", devpaths, "U..U.....|.U....U..|..U.U....|.....U.U.|U.......U|.U.U.....|..U...U..|....U..U.|.....U..U"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tab := New(9, 1)
			res, err := tab.Make(storages(9), tt.devpaths)
			if err != nil {
				t.Fatal(err)
			}
			if got := layout(tab); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			if res.TopologyIgnored != (tt.devpaths == nil) {
				t.Errorf("TopologyIgnored = %v", res.TopologyIgnored)
			}
		})
	}
}

func TestTweakIsIdempotent(t *testing.T) {
	tab := New(12, 1)
	if _, err := tab.Make(storages(2), nil); err != nil {
		t.Fatal(err)
	}
	tab.AddNodes(3, 4)
	res, err := tab.Tweak(nil, nil)
	if err != nil || len(res.Changes) == 0 {
		t.Fatalf("tweak with new nodes: %v, %v", res.Changes, err)
	}
	again, err := tab.Tweak(nil, nil)
	if err != nil || len(again.Changes) != 0 {
		t.Errorf("second tweak changed %v (err %v)", again.Changes, err)
	}
}

func TestTweakNewCellsAreOutOfDateAndMovedCellsFeed(t *testing.T) {
	// neoppod test_17: np=5, nr=2, 5 nodes.
	tab := parse(t, 2, ".U...|FFO..|FUU..|UUUU.|U...U")
	tab.AddNodes(storages(5)...)
	res, err := tab.Tweak(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := layout(tab), ".UO.O|UU.O.|UFU.O|.UUU.|U..OU"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	count := map[proto.CellState]int{}
	for _, c := range res.Changes {
		count[c.State]++
	}
	want := map[proto.CellState]int{proto.DISCARDED: 2, proto.FEEDING: 1, proto.OUT_OF_DATE: 5, proto.UP_TO_DATE: 3}
	if !mapsEqual(count, want) {
		t.Errorf("changes by state = %v, want %v", count, want)
	}
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestTweakLeavesDroppedNodesAlone(t *testing.T) {
	// neoppod test_17 end: cells of listed nodes are not touched and do
	// not count as replicas.
	tab := New(7, 0)
	if _, err := tab.Make(storages(1), nil); err != nil {
		t.Fatal(err)
	}
	tab.AddNodes(2, 3)
	if _, err := tab.Tweak([]proto.NodeID{1}, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := layout(tab), "UO.|U.O|UO.|U.O|UO.|U.O|UO."; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestTweakErrors(t *testing.T) {
	tab := parse(t, 0, "U|U")
	if _, err := tab.Tweak([]proto.NodeID{1}, nil); !errors.Is(err, ErrRemoveAllNodes) || err.Error() != "Can't remove all nodes." {
		t.Errorf("tweak dropping every node: %v", err)
	}
	if layout(tab) != "U|U" {
		t.Errorf("failed tweak changed the table")
	}
}

func TestTweakDropListHasListedAndPendingNodes(t *testing.T) {
	st := map[proto.NodeID]proto.NodeState{1: proto.NODE_RUNNING, 2: proto.PENDING, 3: proto.DOWN, 4: proto.NODE_RUNNING}
	if _, err := TweakDropList(st, nil); !errors.Is(err, ErrDownNodes) {
		t.Errorf("down node not listed: err = %v", err)
	}
	drop, err := TweakDropList(st, []proto.NodeID{3, 4})
	if err != nil || !slices.Equal(drop, []proto.NodeID{2, 3, 4}) {
		t.Errorf("drop list = %v, %v; want [S2 S3 S4]", drop, err)
	}
}

func TestOperationalNeedsAReadableRunningCellPerPartition(t *testing.T) {
	states := stateMap(map[proto.NodeID]proto.NodeState{1: proto.NODE_RUNNING, 2: proto.DOWN, 3: proto.NODE_RUNNING})
	tests := []struct {
		name    string
		layout  string
		exclude []proto.NodeID
		want    bool
	}{
		{"up-to-date on running nodes", "U..|..U", nil, true},
		{"feeding counts as readable", "F..|..U", nil, true},
		{"out-of-date does not count", "O..|..U", nil, false},
		{"corrupted does not count", "C..|..U", nil, false},
		{"down node does not count", ".U.|..U", nil, false},
		{"excluded node does not count", "U.U|..U", []proto.NodeID{3}, false},
		{"another cell saves the row", "U.U|U.U", []proto.NodeID{3}, true},
		{"an empty row is not operational", "U..|...", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parse(t, 0, tt.layout).Operational(states, tt.exclude...); got != tt.want {
				t.Errorf("Operational(%s, exclude %v) = %v", tt.layout, tt.exclude, got)
			}
		})
	}
}

func TestOutdate(t *testing.T) {
	states := stateMap(map[proto.NodeID]proto.NodeState{1: proto.NODE_RUNNING, 2: proto.DOWN, 3: proto.DOWN})
	tests := []struct {
		name   string
		layout string
		lost   proto.NodeID
		want   string
	}{
		{"readable cell of a down node becomes out of date", "UU.", 2, "UO."},
		{"feeding cell of a down node is discarded", "UF.", 2, "U.."},
		{"last readable copies of the lost node stay readable", ".UU", 2, ".UO"},
		{"without lost node everything is outdated", ".UU", 0, ".OO"},
		{"cells of running nodes are kept", "UOO", 2, "UOO"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := parse(t, 1, tt.layout)
			tab.Outdate(states, tt.lost)
			if got := layout(tab); got != tt.want {
				t.Errorf("Outdate(%s, lost %v) = %s, want %s", tt.layout, tt.lost, got, tt.want)
			}
		})
	}
}

func TestDropNodes(t *testing.T) {
	// neoppod test_17 after replication.
	tab := parse(t, 2, ".UU.U|UU.U.|U.U.U|.UUU.|U..UU")
	_, err := tab.DropNodes([]proto.NodeID{2, 3, 4}, false)
	var only *OnlyReadableCopiesError
	if !errors.As(err, &only) || !errors.Is(err, ErrOnlyReadableCopies) || only.Partition != 3 ||
		err.Error() != "Refuse to drop nodes that contain the only readable copies of partition 3" {
		t.Errorf("dropping S2 S3 S4: %v", err)
	}
	if changes, err := tab.DropNodes([]proto.NodeID{2, 3}, true); err != nil || len(changes) != 6 {
		t.Errorf("simulated drop of S2 S3: %v, %v", changes, err)
	}
	if layout(tab) != ".UU.U|UU.U.|U.U.U|.UUU.|U..UU" {
		t.Errorf("simulated drop changed the table")
	}
	if changes, err := tab.DropNodes([]proto.NodeID{2}, false); err != nil || len(changes) != 3 {
		t.Errorf("drop of S2: %v, %v", changes, err)
	}
	if tab.hasNode(2) {
		t.Errorf("S2 still in the node set")
	}
	tab.AddNodes(2)
	if got, want := layout(tab), "..U.U|U..U.|U.U.U|..UU.|U..UU"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestDropNodesPromotesFeedingCell(t *testing.T) {
	tab := parse(t, 1, "UF|UF")
	changes, err := tab.DropNodes([]proto.NodeID{1}, false)
	want := []Change{{0, 1, proto.DISCARDED}, {0, 2, proto.UP_TO_DATE}, {1, 1, proto.DISCARDED}, {1, 2, proto.UP_TO_DATE}}
	if err != nil || !slices.Equal(changes, want) {
		t.Errorf("DropNodes = %v, %v; want %v", changes, err, want)
	}
}

func TestSetUpToDate(t *testing.T) {
	t.Run("only updatable out-of-date cells", func(t *testing.T) {
		tab := parse(t, 1, "UO")
		if ch, err := tab.SetUpToDate(2, 0); err != nil || ch != nil {
			t.Errorf("not updatable: %v, %v", ch, err)
		}
		tab.MarkUpdatable(2, []uint32{0})
		if ch, err := tab.SetUpToDate(2, 0); err != nil || !slices.Equal(ch, []Change{{0, 2, proto.UP_TO_DATE}}) {
			t.Errorf("updatable: %v, %v", ch, err)
		}
		if _, err := tab.SetUpToDate(3, 0); !errors.Is(err, ErrNotAssigned) {
			t.Errorf("non-assigned: %v", err)
		}
	})
	t.Run("all readable: every feeding cell goes", func(t *testing.T) {
		tab := parse(t, 1, "FFO")
		tab.MarkUpdatable(3, []uint32{0})
		ch, _ := tab.SetUpToDate(3, 0)
		if layout(tab) != "..U" || len(ch) != 3 {
			t.Errorf("got %s, %v", layout(tab), ch)
		}
	})
	t.Run("some not readable: at most readable-nr feeding cells go", func(t *testing.T) {
		tab := parse(t, 2, "FFFOO")
		tab.MarkUpdatable(4, []uint32{0})
		tab.SetUpToDate(4, 0)
		if got := layout(tab); got != "..FUO" {
			t.Errorf("got %s, want ..FUO", got)
		}
	})
	t.Run("feeding cells of nodes being emptied go first", func(t *testing.T) {
		tab := parse(t, 2, "FFOO|.U..")
		tab.MarkUpdatable(3, []uint32{0})
		tab.SetUpToDate(3, 0)
		// S2 still has an up-to-date cell elsewhere: S1's cell goes first.
		if got := layout(tab); got != ".FUO|.U.." {
			t.Errorf("got %s, want .FUO|.U..", got)
		}
	})
	t.Run("a changed cell loses its mark", func(t *testing.T) {
		tab := parse(t, 0, "UO")
		tab.MarkUpdatable(2, []uint32{0})
		tab.Update(2, 0, []Change{{0, 2, proto.OUT_OF_DATE}})
		if ch, _ := tab.SetUpToDate(2, 0); ch != nil {
			t.Errorf("mark survived a state change: %v", ch)
		}
	})
}

func TestUpdatePTidRules(t *testing.T) {
	tab := parse(t, 0, "U.|.U")
	tab.setPTid(5)
	add := []Change{{0, 2, proto.OUT_OF_DATE}}
	if err := tab.UpdateNext(7, 0, add); !errors.Is(err, ErrWrongPTid) {
		t.Errorf("storage accepted ptid 7 after 5: %v", err)
	}
	if err := tab.Update(5, 0, add); !errors.Is(err, ErrWrongPTid) {
		t.Errorf("client accepted ptid 5 after 5: %v", err)
	}
	if layout(tab) != "U.|.U" {
		t.Errorf("refused update changed the table")
	}
	if err := tab.UpdateNext(6, 0, add); err != nil || layout(tab) != "UO|.U" || tab.PTid() != 6 {
		t.Errorf("storage update to 6: %v, %s", err, layout(tab))
	}
	if err := tab.Update(9, 1, []Change{{0, 1, proto.DISCARDED}, {1, 1, proto.UP_TO_DATE}}); err != nil {
		t.Fatal(err)
	}
	if layout(tab) != ".O|UU" || tab.PTid() != 9 || tab.NumReplicas() != 1 {
		t.Errorf("client update to 9: %s ptid %d nr %d", layout(tab), tab.PTid(), tab.NumReplicas())
	}
	// Setting replicas is a change without cells.
	if err := tab.UpdateNext(10, 2, nil); err != nil || tab.NumReplicas() != 2 {
		t.Errorf("set replicas: %v", err)
	}
	if err := tab.UpdateNext(11, 0, []Change{{2, 1, proto.UP_TO_DATE}}); err == nil {
		t.Errorf("offset beyond np accepted")
	}
}

func TestNextPTidCountsFromOne(t *testing.T) {
	tab := New(1, 0)
	if _, err := tab.Make(storages(1), nil); err != nil {
		t.Fatal(err)
	}
	if got := tab.NextPTid(); got != 2 {
		t.Errorf("NextPTid after make = %d, want 2", got)
	}
}

func TestSetNumReplicas(t *testing.T) {
	tab := New(1, 0)
	if err := tab.SetNumReplicas(-1); err == nil {
		t.Errorf("negative replicas accepted")
	}
	if err := tab.SetNumReplicas(3); err != nil || tab.NumReplicas() != 3 {
		t.Errorf("SetNumReplicas(3): %v", err)
	}
}

func TestPartitionOfOidAndTid(t *testing.T) {
	tab := New(12, 0)
	if got := tab.OidPartition(0x1d); got != 5 {
		t.Errorf("OidPartition(0x1d) = %d, want 5", got)
	}
	if got := tab.TidPartition(0x03f47f9555555555); got != 5 {
		t.Errorf("TidPartition = %d, want 5", got)
	}
	if got := Partition(0xffffffffffffffff, 100); got != 15 {
		t.Errorf("Partition(2^64-1, 100) = %d, want 15", got)
	}
}

func TestReadableCellsAndOffsets(t *testing.T) {
	tab := parse(t, 1, "UOF|.UC")
	if got := tab.ReadableCells(0); !slices.Equal(got, []Cell{{1, proto.UP_TO_DATE}, {3, proto.FEEDING}}) {
		t.Errorf("ReadableCells(0) = %v", got)
	}
	buf := []proto.NodeID{9}
	if got := tab.AppendReadableNodes(buf, 0); !slices.Equal(got, []proto.NodeID{9, 1, 3}) {
		t.Errorf("AppendReadableNodes([9], 0) = %v", got)
	}
	if got := tab.ReadableOffsets(2); !slices.Equal(got, []uint32{1}) {
		t.Errorf("ReadableOffsets(S2) = %v", got)
	}
	if got := tab.OutdatedOffsets(2); !slices.Equal(got, []uint32{0}) {
		t.Errorf("OutdatedOffsets(S2) = %v", got)
	}
	if got := tab.CellNodes(true); !slices.Equal(got, []proto.NodeID{1, 2, 3}) {
		t.Errorf("CellNodes(readable) = %v", got)
	}
}

func TestDropNodeKeepsNodesWithCells(t *testing.T) {
	tab := parse(t, 0, "UF")
	if tab.DropNode(1) || !tab.hasNode(1) {
		t.Errorf("node with an up-to-date cell dropped")
	}
	if !tab.DropNode(2) || tab.hasNode(2) {
		t.Errorf("node with only feeding cells kept")
	}
	if !tab.DropNode(9) {
		t.Errorf("unknown node not reported as dropped")
	}
}

func TestLoadRejectsBadState(t *testing.T) {
	if _, err := Load(1, 0, [][]Cell{{{1, 9}}}); err == nil {
		t.Errorf("Load accepted cell state 9")
	}
	tab, err := Load(3, 1, [][]Cell{{{1, proto.UP_TO_DATE}}, {{2, proto.FEEDING}}})
	if err != nil || tab.PTid() != 3 || tab.NumPartitions() != 2 || !tab.Filled() {
		t.Errorf("Load: %v", err)
	}
}

// Rows convert to and from packets' form as copies.
func TestRowsProtoRoundTrip(t *testing.T) {
	wire := [][]proto.CellInfo{{{NID: 1, State: proto.UP_TO_DATE}, {NID: 2, State: proto.FEEDING}}, {}, {{NID: 3, State: proto.OUT_OF_DATE}}}
	rows := RowsFromProto(wire)
	want := [][]Cell{{{1, proto.UP_TO_DATE}, {2, proto.FEEDING}}, {}, {{3, proto.OUT_OF_DATE}}}
	if !slices.EqualFunc(rows, want, slices.Equal) {
		t.Fatalf("RowsFromProto = %v, want %v", rows, want)
	}
	back := RowsToProto(rows)
	rows[0][0].State = proto.CORRUPTED
	if !slices.EqualFunc(back, wire, slices.Equal) || wire[0][0].State != proto.UP_TO_DATE {
		t.Errorf("RowsToProto = %v, want %v (copies)", back, wire)
	}
	if got := RowsFromProto(nil); len(got) != 0 {
		t.Errorf("RowsFromProto(nil) = %v", got)
	}
}

func TestMatrixFormat(t *testing.T) {
	// cluster.md §9.5, np=12.
	rows := [][]Cell{}
	cols := []string{"U.UU.FU.OU.U", "OU.UU.UU.UU.", ".UU.OU.UU.FU", "............"}
	for p := range 12 {
		var row []Cell
		for n, col := range cols {
			if col[p] != '.' {
				row = append(row, Cell{proto.NodeID(n + 1), proto.CellState(strings.IndexByte("OUFCD", col[p]))})
			}
		}
		rows = append(rows, row)
	}
	st := map[proto.NodeID]proto.NodeState{1: proto.NODE_RUNNING, 2: proto.NODE_RUNNING, 3: proto.DOWN, 4: proto.NODE_RUNNING}
	got, err := FormatTable(rows, st)
	if err != nil {
		t.Fatal(err)
	}
	want := "             10v\n" +
		"S1 R U.UU.FU.OU.U\n" +
		"S2 R OU.UU.UU.UU.\n" +
		"S3 D .UU.OU.UU.FU\n" +
		"S4 R ............"
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	// No marker line up to 10 partitions.
	small, _ := FormatTable([][]Cell{{{1, proto.UP_TO_DATE}}}, map[proto.NodeID]proto.NodeState{1: proto.NODE_RUNNING})
	if small != "S1 R U" {
		t.Errorf("np=1: %q", small)
	}
}

func TestFormatRows(t *testing.T) {
	rows := [][]Cell{{{1, proto.UP_TO_DATE}, {2, proto.OUT_OF_DATE}}, {}}
	want := "003 | S1 - UP_TO_DATE | S2 - OUT_OF_DATE |\n004 |"
	if got := FormatRows(3, rows); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func BenchmarkTweak100x10(b *testing.B) {
	b.ReportAllocs()
	base := New(100, 1)
	if _, err := base.Make(storages(8), nil); err != nil {
		b.Fatal(err)
	}
	base.AddNodes(9, 10)
	for b.Loop() {
		if _, err := base.Clone().Tweak(nil, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// TestNeoctlOutputOfARealCluster replays what a real neoppod cluster (3
// storages, 23 partitions, 1 replica) printed for "neoctl print pt",
// "neoctl tweak -n S3" and "neoctl tweak -n S1 S2".
func TestNeoctlOutputOfARealCluster(t *testing.T) {
	tab := New(23, 1)
	if _, err := tab.Make(storages(3), nil); err != nil {
		t.Fatal(err)
	}
	st := map[proto.NodeID]proto.NodeState{1: proto.NODE_RUNNING, 2: proto.NODE_RUNNING, 3: proto.NODE_RUNNING}
	header := "             10v       20v\n"
	tests := []struct {
		name string
		drop []proto.NodeID
		want string
	}{
		{"print pt", nil, header +
			"S1 R UU.UU.UU.UU.UU.UU.UU.UU\n" +
			"S2 R U.UU.UU.UU.UU.UU.UU.UU.\n" +
			"S3 R .UU.UU.UU.UU.UU.UU.UU.U"},
		{"tweak -n S3", []proto.NodeID{3}, header +
			"S1 R UUOUUOUUOUUOUUOUUOUUOUU\n" +
			"S2 R UOUUOUUOUUOUUOUUOUUOUUO\n" +
			"S3 R .UU.UU.UU.UU.UU.UU.UU.U"},
		{"tweak -n S1 S2", []proto.NodeID{1, 2}, header +
			"S1 R UU.UU.UU.UU.UU.UU.UU.UU\n" +
			"S2 R U.UU.UU.UU.UU.UU.UU.UU.\n" +
			"S3 R OUUOUUOUUOUUOUUOUUOUUOU"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dry := tab.Clone()
			if tt.drop != nil {
				res, err := dry.Tweak(tt.drop, nil)
				if err != nil || len(res.Changes) == 0 {
					t.Fatalf("tweak: %v, %v", res.Changes, err)
				}
			}
			got, err := FormatTable(dry.Rows(), st)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
	if res, _ := tab.Clone().Tweak(nil, nil); len(res.Changes) != 0 {
		t.Errorf("tweak -n without nodes: %v, neoctl printed \"No change done.\"", res.Changes)
	}

	// neoctl kill S3, then print pt, tweak -n and tweak -n S3.
	if _, err := tab.DropNodes([]proto.NodeID{3}, true); err != nil {
		t.Fatalf("kill S3: %v", err)
	}
	st[3] = proto.DOWN
	tab.Outdate(stateMap(st), 0)
	got, _ := FormatTable(tab.Rows(), st)
	want := header +
		"S1 R UU.UU.UU.UU.UU.UU.UU.UU\n" +
		"S2 R U.UU.UU.UU.UU.UU.UU.UU.\n" +
		"S3 D .OO.OO.OO.OO.OO.OO.OO.O"
	if got != want {
		t.Errorf("after kill S3:\n%s\nwant:\n%s", got, want)
	}
	if _, err := TweakDropList(st, nil); err == nil || err.Error() != "tweak: down nodes must be listed explicitly" {
		t.Errorf("tweak -n with S3 down: %v", err)
	}
	drop, _ := TweakDropList(st, []proto.NodeID{3})
	dry := tab.Clone()
	if _, err := dry.Tweak(drop, nil); err != nil {
		t.Fatal(err)
	}
	got, _ = FormatTable(dry.Rows(), st)
	want = header +
		"S1 R UUOUUOUUOUUOUUOUUOUUOUU\n" +
		"S2 R UOUUOUUOUUOUUOUUOUUOUUO\n" +
		"S3 D .OO.OO.OO.OO.OO.OO.OO.O"
	if got != want {
		t.Errorf("tweak -n S3 after kill:\n%s\nwant:\n%s", got, want)
	}
}
