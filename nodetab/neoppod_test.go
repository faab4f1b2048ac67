package nodetab

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"testing"

	"github.com/neogo/neo/proto"
)

// pyNode is a node tuple (type, [host, port] or null, nid or null, state,
// id_timestamp or null) as testdata/nodetab_neoppod.json stores it.
type pyNode [5]json.RawMessage

func (p pyNode) node(t *testing.T) Node {
	t.Helper()
	var n Node
	var typ, state int
	var addr []json.RawMessage
	var nid *int32
	var ts *float64
	for i, dst := range []any{&typ, &addr, &nid, &state, &ts} {
		if err := json.Unmarshal(p[i], dst); err != nil {
			t.Fatalf("bad node %s: %v", p, err)
		}
	}
	n.Type, n.State = proto.NodeType(typ), proto.NodeState(state)
	if addr != nil {
		json.Unmarshal(addr[0], &n.Addr.Host)
		json.Unmarshal(addr[1], &n.Addr.Port)
	}
	if nid != nil {
		n.NID = proto.NodeID(*nid)
	}
	if ts != nil {
		n.IDTimestamp = proto.Some(*ts)
	}
	return n
}

func pyNodes(t *testing.T, l []pyNode) []Node {
	var out []Node
	for _, p := range l {
		out = append(out, p.node(t))
	}
	return out
}

type pyStep struct {
	Reset   bool     `json:"reset"`
	TS      float64  `json:"ts"`
	Entries []pyNode `json:"entries"`
	Nodes   []pyNode `json:"nodes"`
	SelfTS  *float64 `json:"self_ts"`
	Error   string   `json:"error"`
	Msg     string   `json:"msg"`
}

type pyNodeCase struct {
	Kind string `json:"kind"`
	// format
	Nodes []pyNode `json:"nodes"`
	Lines []string `json:"lines"`
	// update
	Self  proto.NodeID   `json:"self"`
	Keep  []proto.NodeID `json:"keep"`
	Steps []pyStep       `json:"steps"`
	// newnid
	Own      proto.NodeID `json:"own"`
	Type     int          `json:"type"`
	Proposed proto.NodeID `json:"proposed"`
	Addr     []any        `json:"addr"`
	NID      proto.NodeID `json:"nid"`
}

func canon(nodes []Node) []string {
	var s []string
	for _, n := range nodes {
		s = append(s, fmt.Sprintf("%v|%v|%v|%v|%v|%x", n.Type, n.Addr, n.NID, n.State, n.IDTimestamp.Valid, n.IDTimestamp.V))
	}
	slices.Sort(s)
	return s
}

// TestAgainstNeoppod replays cases computed by neoppod's formatNodeList,
// NodeManager.update and the master's getNewUUID.
func TestAgainstNeoppod(t *testing.T) {
	data, err := os.ReadFile("testdata/nodetab_neoppod.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []pyNodeCase
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for i, c := range cases {
		counts[c.Kind]++
		t.Run(fmt.Sprintf("%03d-%s", i, c.Kind), func(t *testing.T) {
			switch c.Kind {
			case "format":
				got := FormatLines(pyNodes(t, c.Nodes), "")
				if !slices.Equal(got, c.Lines) {
					t.Errorf("got:\n%q\nwant:\n%q", got, c.Lines)
				}
			case "update":
				tab := New()
				drop := func(nid proto.NodeID) bool { return !slices.Contains(c.Keep, nid) }
				for k, s := range c.Steps {
					if s.Reset {
						tab.Reset()
						continue
					}
					before := canon(tab.Entries())
					_, err := tab.Update(s.TS, c.Self, pyNodes(t, s.Entries), drop)
					if s.Error != "" {
						if err == nil {
							t.Fatalf("step %d: no error, neoppod: %s %s", k, s.Error, s.Msg)
						}
						if !slices.Equal(canon(tab.Entries()), before) {
							t.Errorf("step %d: failed update changed the table", k)
						}
						return
					}
					if err != nil {
						t.Fatalf("step %d: %v", k, err)
					}
					if got, want := canon(tab.Entries()), canon(pyNodes(t, s.Nodes)); !slices.Equal(got, want) {
						t.Fatalf("step %d: nodes\n got  %q\n want %q", k, got, want)
					}
					ts := tab.SelfIDTimestamp()
					if s.SelfTS == nil && ts.Valid || s.SelfTS != nil && (!ts.Valid || ts.V != *s.SelfTS) {
						t.Errorf("step %d: self id_timestamp = %v, want %v", k, ts, s.SelfTS)
					}
				}
			case "newnid":
				tab := New()
				for _, n := range pyNodes(t, c.Nodes) {
					if _, err := tab.Add(n); err != nil {
						t.Fatal(err)
					}
				}
				var addr proto.Addr
				if c.Addr != nil {
					addr = proto.Addr{Host: c.Addr[0].(string), Port: uint16(c.Addr[1].(float64))}
				}
				got, err := tab.NewNID(c.Proposed, addr, proto.NodeType(c.Type), c.Own)
				if err != nil || got != c.NID {
					t.Errorf("NewNID(%v, %v, %v) = %v, %v; want %v", c.Proposed, addr, proto.NodeType(c.Type), got, err, c.NID)
				}
			default:
				t.Fatalf("unknown case kind %q", c.Kind)
			}
		})
	}
	for _, k := range []string{"format", "update", "newnid"} {
		if counts[k] < 50 {
			t.Errorf("only %d %q cases", counts[k], k)
		}
	}
}
