package parttab

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/neogo/neo/proto"
)

// pyCase is one case of testdata/pt_neoppod.json: an input table, an
// operation and what neoppod's master (neo/master/pt.py) or neoctl computed
// for it. The file was generated once by running neoppod's own code.
type pyCase struct {
	Kind        string               `json:"kind"`
	Note        string               `json:"note"`
	NP          uint32               `json:"np"`
	NR          int                  `json:"nr"`
	PTid        proto.PTid           `json:"ptid"`
	Rows        [][][2]int           `json:"rows"`
	Nodes       []proto.NodeID       `json:"nodes"`
	States      map[string]int       `json:"states"`
	Devpaths    map[string][]string  `json:"devpaths"`
	Drop        []proto.NodeID       `json:"drop"`
	Make        []proto.NodeID       `json:"make"`
	Lost        proto.NodeID         `json:"lost"`
	Simulate    bool                 `json:"simulate"`
	Exclude     []proto.NodeID       `json:"exclude"`
	RawSequence [][3]json.RawMessage `json:"sequence"`

	Error            string         `json:"error"`
	Changes          [][3]int       `json:"changes"`
	After            [][][2]int     `json:"after"`
	AfterNodes       []proto.NodeID `json:"after_nodes"`
	AfterPTid        proto.PTid     `json:"after_ptid"`
	Matrix           []string       `json:"matrix"`
	TopologyIgnored  bool           `json:"topology_ignored"`
	Again            [][3]int       `json:"again"`
	Operational      bool           `json:"operational"`
	OperationalNodes []proto.NodeID `json:"operational_nodes"`
	Text             string         `json:"text"`
}

func loadPyCases(t *testing.T) []pyCase {
	t.Helper()
	data, err := os.ReadFile("testdata/pt_neoppod.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []pyCase
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	return cases
}

func pyRows(rows [][][2]int) [][]Cell {
	out := make([][]Cell, len(rows))
	for i, row := range rows {
		out[i] = []Cell{}
		for _, c := range row {
			out[i] = append(out[i], Cell{proto.NodeID(c[0]), proto.CellState(c[1])})
		}
	}
	return out
}

func pyChanges(l [][3]int) []Change {
	out := []Change{}
	for _, c := range l {
		out = append(out, Change{uint32(c[0]), proto.NodeID(c[1]), proto.CellState(c[2])})
	}
	return out
}

func (c *pyCase) states() States {
	m := map[proto.NodeID]proto.NodeState{}
	for k, v := range c.States {
		n, _ := strconv.Atoi(k)
		m[proto.NodeID(n)] = proto.NodeState(v)
	}
	return stateMap(m)
}

func (c *pyCase) devpaths() map[proto.NodeID][]string {
	m := map[proto.NodeID][]string{}
	for k, v := range c.Devpaths {
		n, _ := strconv.Atoi(k)
		m[proto.NodeID(n)] = v
	}
	return m
}

// table builds the case's input table the way neoppod's harness did:
// cells set in row order, then the extra nodes added.
func (c *pyCase) table(t *testing.T) *Table {
	t.Helper()
	tab := New(c.NP, c.NR)
	for offset, row := range c.Rows {
		for _, cell := range row {
			tab.setCell(uint32(offset), proto.NodeID(cell[0]), proto.CellState(cell[1]))
		}
	}
	tab.setPTid(c.PTid)
	tab.AddNodes(c.Nodes...)
	return tab
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func checkRows(t *testing.T, tab *Table, want [][][2]int) {
	t.Helper()
	if got, want := tab.Rows(), pyRows(want); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("rows:\n got  %v\n want %v", got, want)
	}
}

func TestAgainstNeoppod(t *testing.T) {
	counts := map[string]int{}
	for i, c := range loadPyCases(t) {
		counts[c.Kind]++
		name := fmt.Sprintf("%03d-%s", i, c.Kind)
		if c.Note != "" {
			name += "-" + strings.ReplaceAll(c.Note, " ", "_")
		}
		t.Run(name, func(t *testing.T) {
			switch c.Kind {
			case "make":
				tab := New(c.NP, c.NR)
				res, err := tab.Make(c.Make, c.devpaths())
				if err != nil {
					t.Fatal(err)
				}
				checkRows(t, tab, c.After)
				if got := nonNil(tab.Nodes()); !slices.Equal(got, nonNil(c.AfterNodes)) {
					t.Errorf("nodes = %v, want %v", got, c.AfterNodes)
				}
				if tab.PTid() != c.AfterPTid {
					t.Errorf("ptid = %d, want %d", tab.PTid(), c.AfterPTid)
				}
				if got := tab.matrixLines(c.states()); !slices.Equal(nonNil(got), nonNil(c.Matrix)) {
					t.Errorf("matrix:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.Matrix, "\n"))
				}
				if res.TopologyIgnored != c.TopologyIgnored {
					t.Errorf("TopologyIgnored = %v, want %v", res.TopologyIgnored, c.TopologyIgnored)
				}
			case "tweak":
				tab := c.table(t)
				dry := tab.Clone()
				res, err := tab.Tweak(c.Drop, c.devpaths())
				if c.Error != "" {
					if err == nil || err.Error() != c.Error {
						t.Fatalf("err = %v, want %q", err, c.Error)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if got, want := nonNil(res.Changes), pyChanges(c.Changes); !slices.Equal(got, want) {
					t.Errorf("changes:\n got  %v\n want %v", got, want)
				}
				checkRows(t, tab, c.After)
				if got := nonNil(tab.Nodes()); !slices.Equal(got, nonNil(c.AfterNodes)) {
					t.Errorf("nodes = %v, want %v", got, c.AfterNodes)
				}
				if got := tab.matrixLines(c.states()); !slices.Equal(nonNil(got), nonNil(c.Matrix)) {
					t.Errorf("matrix:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.Matrix, "\n"))
				}
				if res.TopologyIgnored != c.TopologyIgnored {
					t.Errorf("TopologyIgnored = %v, want %v", res.TopologyIgnored, c.TopologyIgnored)
				}
				// A dry run on a clone gives the same and leaves the original alone.
				dryRes, err := dry.Clone().Tweak(c.Drop, c.devpaths())
				if err != nil || !slices.Equal(dryRes.Changes, res.Changes) {
					t.Errorf("dry run: %v, %v", dryRes.Changes, err)
				}
				if c.Again != nil {
					again, err := tab.Tweak(c.Drop, c.devpaths())
					if err != nil || !slices.Equal(nonNil(again.Changes), pyChanges(c.Again)) {
						t.Errorf("second tweak: %v, %v; want %v", again.Changes, err, c.Again)
					}
				}
			case "outdate":
				tab := c.table(t)
				got := tab.Outdate(c.states(), c.Lost)
				if want := pyChanges(c.Changes); !slices.Equal(nonNil(got), want) {
					t.Errorf("changes:\n got  %v\n want %v", got, want)
				}
				checkRows(t, tab, c.After)
			case "operational":
				tab := c.table(t)
				if got := tab.Operational(c.states(), c.Exclude...); got != c.Operational {
					t.Errorf("Operational(exclude=%v) = %v, want %v", c.Exclude, got, c.Operational)
				}
				if got := tab.OperationalNodes(c.states()); !slices.Equal(got, c.OperationalNodes) {
					t.Errorf("OperationalNodes = %v, want %v", got, c.OperationalNodes)
				}
			case "drop":
				tab := c.table(t)
				got, err := tab.DropNodes(c.Drop, c.Simulate)
				if c.Error != "" {
					if err == nil || err.Error() != c.Error {
						t.Fatalf("err = %v, want %q", err, c.Error)
					}
					checkRows(t, tab, c.Rows) // unchanged
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if want := pyChanges(c.Changes); !slices.Equal(nonNil(got), want) {
					t.Errorf("changes:\n got  %v\n want %v", got, want)
				}
				checkRows(t, tab, c.After)
				if got := nonNil(tab.Nodes()); !slices.Equal(got, nonNil(c.AfterNodes)) {
					t.Errorf("nodes = %v, want %v", got, c.AfterNodes)
				}
			case "uptodate":
				tab := c.table(t)
				for _, nid := range tab.Nodes() {
					tab.MarkUpdatable(nid, tab.AssignedOffsets(nid))
				}
				for _, step := range c.RawSequence {
					var offset uint32
					var nid proto.NodeID
					var want [][3]int
					if json.Unmarshal(step[0], &offset) != nil || json.Unmarshal(step[1], &nid) != nil ||
						json.Unmarshal(step[2], &want) != nil {
						t.Fatalf("bad step %s", step)
					}
					got, err := tab.SetUpToDate(nid, offset)
					if err != nil || !slices.Equal(nonNil(got), pyChanges(want)) {
						t.Errorf("SetUpToDate(%v, %d) = %v, %v; want %v", nid, offset, got, err, pyChanges(want))
					}
				}
				checkRows(t, tab, c.After)
			case "neoctl":
				states := map[proto.NodeID]proto.NodeState{}
				for k, v := range c.States {
					n, _ := strconv.Atoi(k)
					states[proto.NodeID(n)] = proto.NodeState(v)
				}
				got, err := FormatTable(pyRows(c.Rows), states)
				if err != nil {
					t.Fatal(err)
				}
				if got != c.Text {
					t.Errorf("matrix:\n%s\nwant:\n%s", got, c.Text)
				}
			default:
				t.Fatalf("unknown case kind %q", c.Kind)
			}
		})
	}
	for _, k := range []string{"make", "tweak", "outdate", "operational", "drop", "uptodate", "neoctl"} {
		if counts[k] < 20 {
			t.Errorf("only %d %q cases", counts[k], k)
		}
	}
}
