package nodetab

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/neogo/neo/proto"
)

var (
	m1 = proto.NewNodeID(proto.MASTER, 1)
	s1 = proto.NewNodeID(proto.STORAGE, 1)
	s2 = proto.NewNodeID(proto.STORAGE, 2)
	c1 = proto.NewNodeID(proto.CLIENT, 1)
	c2 = proto.NewNodeID(proto.CLIENT, 2)
	a1 = proto.NewNodeID(proto.ADMIN, 1)

	addrM  = proto.Addr{Host: "127.0.0.1", Port: 4000}
	addrS1 = proto.Addr{Host: "127.0.0.1", Port: 5001}
	addrS2 = proto.Addr{Host: "::1", Port: 5002}
)

// A node table entry converts to and from the wire's node entry.
var _ = Node(proto.NodeInfo{})

func client(nid proto.NodeID, ts float64) Node {
	return Node{Type: proto.CLIENT, NID: nid, State: proto.NODE_RUNNING, IDTimestamp: proto.Some(ts)}
}

func storage(nid proto.NodeID, addr proto.Addr, s proto.NodeState) Node {
	return Node{Type: proto.STORAGE, Addr: addr, NID: nid, State: s}
}

func nids(nodes []Node) []proto.NodeID {
	var out []proto.NodeID
	for _, n := range nodes {
		out = append(out, n.NID)
	}
	return out
}

func TestUpdateFirstNotificationIsAFullListWithSelf(t *testing.T) {
	tab := New()
	if _, err := tab.Update(1, c1, []Node{storage(s1, addrS1, proto.NODE_RUNNING)}, nil); !errors.Is(err, ErrSelfMissing) {
		t.Fatalf("full list without self: %v", err)
	}
	if tab.Len() != 0 || tab.Timestamp() != 0 {
		t.Fatalf("failed update changed the table")
	}
	res, err := tab.Update(1, c1, []Node{client(c1, 10.5), storage(s1, addrS1, proto.NODE_RUNNING)}, nil)
	if err != nil || !res.Full {
		t.Fatalf("full list: %v, %+v", err, res)
	}
	if ts := tab.SelfIDTimestamp(); !ts.Valid || ts.V != 10.5 {
		t.Errorf("self id_timestamp = %v", ts)
	}
	// Later notifications are incremental.
	res, err = tab.Update(2, c1, []Node{storage(s2, addrS2, proto.PENDING)}, nil)
	if err != nil || res.Full || tab.Len() != 3 {
		t.Errorf("incremental: %v, %+v, %d nodes", err, res, tab.Len())
	}
}

func TestUpdateTimestampsStrictlyIncrease(t *testing.T) {
	tab := New()
	if _, err := tab.Update(5, c1, []Node{client(c1, 1)}, nil); err != nil {
		t.Fatal(err)
	}
	for _, ts := range []float64{5, 4} {
		if _, err := tab.Update(ts, c1, nil, nil); !errors.Is(err, ErrTimestamp) {
			t.Errorf("timestamp %v after 5: %v", ts, err)
		}
	}
	tab.Reset() // new master connection
	if _, err := tab.Update(1, c1, []Node{client(c1, 1)}, nil); err != nil {
		t.Errorf("after reset: %v", err)
	}
}

func TestUpdateUnknownRemoves(t *testing.T) {
	tab := New()
	tab.Update(1, c1, []Node{client(c1, 1), storage(s1, addrS1, proto.NODE_RUNNING)}, nil)
	var dropped []proto.NodeID
	res, err := tab.Update(2, c1, []Node{storage(s1, addrS1, proto.UNKNOWN)}, func(nid proto.NodeID) bool {
		dropped = append(dropped, nid)
		return true
	})
	if err != nil || tab.ByNID(s1) != nil || tab.ByAddr(addrS1) != nil {
		t.Fatalf("S1 not removed: %v", err)
	}
	if !slices.Equal(nids(res.Removed), []proto.NodeID{s1}) || !slices.Equal(dropped, []proto.NodeID{s1}) {
		t.Errorf("removed %v, dropped from PT %v", res.Removed, dropped)
	}
	if _, err := tab.Update(3, c1, []Node{storage(s2, addrS2, proto.UNKNOWN)}, nil); !errors.Is(err, ErrUnknownNode) {
		t.Errorf("UNKNOWN of an unknown node: %v", err)
	}
}

func TestUpdateMatchesByAddressThenID(t *testing.T) {
	tab := New()
	tab.Update(1, c1, []Node{client(c1, 1), storage(s1, addrS1, proto.NODE_RUNNING)}, nil)
	// Same address, new id: the node at that address takes the id.
	tab.Update(2, c1, []Node{storage(s2, addrS1, proto.DOWN)}, nil)
	if n := tab.ByAddr(addrS1); n == nil || n.NID != s2 || n.State != proto.DOWN || tab.ByNID(s1) != nil || tab.Len() != 2 {
		t.Errorf("node at %v = %v", addrS1, n)
	}
	// Same id, new address: the node moves.
	tab.Update(3, c1, []Node{storage(s2, addrS2, proto.NODE_RUNNING)}, nil)
	if n := tab.ByNID(s2); n == nil || n.Addr != addrS2 || tab.ByAddr(addrS1) != nil {
		t.Errorf("S2 = %v", n)
	}
	// A different type for a known node is a conflict.
	bad := Node{Type: proto.MASTER, Addr: addrS2, NID: m1, State: proto.NODE_RUNNING}
	if _, err := tab.Update(4, c1, []Node{bad}, nil); !errors.Is(err, ErrConflict) {
		t.Errorf("type change: %v", err)
	}
}

func TestUpdateFullListForgetsUnlistedNodesButStoragesWithCells(t *testing.T) {
	tab := New()
	tab.Update(1, c1, []Node{client(c1, 1), client(c2, 2), storage(s1, addrS1, proto.NODE_RUNNING),
		storage(s2, addrS2, proto.NODE_RUNNING)}, nil)
	tab.Reset()
	hasCells := func(nid proto.NodeID) bool { return nid != s1 } // S1 still has cells
	res, err := tab.Update(1, c1, []Node{client(c1, 3)}, hasCells)
	if err != nil {
		t.Fatal(err)
	}
	if got := nids(tab.Entries()); !slices.Equal(got, []proto.NodeID{c1, s1}) {
		t.Errorf("nodes = %v, want [C1 S1]", got)
	}
	slices.Sort(nids(res.Removed))
	if got := nids(res.Removed); !slices.Equal(got, []proto.NodeID{c2, s2}) {
		t.Errorf("removed = %v, want [C2 S2]", got)
	}
}

func TestClaim(t *testing.T) {
	tab := New()
	tab.Add(Node{Type: proto.MASTER, Addr: addrM, NID: m1, State: proto.NODE_RUNNING})
	sOn, _ := tab.Add(storage(s1, addrS1, proto.NODE_RUNNING))
	sOff, _ := tab.Add(storage(s2, addrS2, proto.DOWN))
	cOn, _ := tab.Add(client(c1, 1))
	cOff, _ := tab.Add(client(c2, 2))
	identified := func(n *Node) bool { return n == sOn || n == cOn }
	addrX := proto.Addr{Host: "127.0.0.9", Port: 9}
	tests := []struct {
		name    string
		nid     proto.NodeID
		addr    proto.Addr
		want    *Node
		wantNID proto.NodeID
		err     error
	}{
		{"new node", 0, addrX, nil, 0, nil},
		{"new node keeps its free id", proto.NewNodeID(proto.STORAGE, 9), addrX, nil, proto.NewNodeID(proto.STORAGE, 9), nil},
		{"known address, not identified, same id", s2, addrS2, sOff, s2, nil},
		{"known address, not identified, no id", 0, addrS2, sOff, 0, nil},
		{"known address, not identified, temporary id of another node", c1, addrS2, sOff, c1, nil},
		{"known address, not identified, storage id of another node", s1, addrS2, nil, 0, ErrConflict},
		{"known address, identified: already connected", s1, addrS1, nil, 0, ErrConflict},
		{"known id, not identified: taken over at its new address", s2, addrX, sOff, s2, nil},
		{"known temporary id, not identified", c2, proto.Addr{}, cOff, c2, nil},
		{"known temporary id, identified: dropped", c1, proto.Addr{}, nil, 0, nil},
		{"known storage id, identified: already connected", s1, addrX, nil, 0, ErrConflict},
		{"the master's own id: a new node", m1, addrX, nil, m1, nil},
	}
	for _, tt := range tests {
		got, nid, err := tab.Claim(tt.nid, tt.addr, m1, identified)
		if got != tt.want || nid != tt.wantNID || !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
			t.Errorf("%s: Claim(%v, %v) = %v, %v, %v; want %v, %v, %v", tt.name, tt.nid, tt.addr, got, nid, err, tt.want, tt.wantNID, tt.err)
		}
	}
}

func TestNewNID(t *testing.T) {
	tab := New()
	for _, n := range []Node{
		{Type: proto.MASTER, Addr: addrM, NID: m1, State: proto.NODE_RUNNING},
		storage(s1, addrS1, proto.NODE_RUNNING),
		client(c1, 1),
	} {
		if _, err := tab.Add(n); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name     string
		proposed proto.NodeID
		addr     proto.Addr
		typ      proto.NodeType
		want     proto.NodeID
	}{
		{"first storage id", 0, addrS2, proto.STORAGE, s2},
		{"storage id is kept when free", proto.NewNodeID(proto.STORAGE, 7), addrS2, proto.STORAGE, proto.NewNodeID(proto.STORAGE, 7)},
		{"storage id is kept when held at the same address", s1, addrS1, proto.STORAGE, s1},
		{"storage id held elsewhere is replaced", s1, addrS2, proto.STORAGE, s2},
		{"the master's own id is never given", m1, proto.Addr{Host: "127.0.0.2", Port: 4000}, proto.MASTER, proto.NewNodeID(proto.MASTER, 2)},
		{"free temporary id is reused", c2, proto.Addr{}, proto.CLIENT, c2},
		{"an id held at the same address counts as free", 0, addrS1, proto.STORAGE, s1},
		{"first admin id", 0, proto.Addr{}, proto.ADMIN, a1},
	}
	// Ids stay within their namespace (protocol.md §2.3).
	for _, tt := range tests {
		if typ, ok := tt.want.Type(); !ok || typ != tt.typ {
			t.Errorf("%s: %v is not a %v id", tt.name, tt.want, tt.typ)
		}
	}
	for _, tt := range tests {
		got, err := tab.NewNID(tt.proposed, tt.addr, tt.typ, m1)
		if err != nil || got != tt.want {
			t.Errorf("%s: NewNID(%v, %v, %v) = %v, %v; want %v", tt.name, tt.proposed, tt.addr, tt.typ, got, err, tt.want)
		}
	}
}

func TestAddCompletesKnownNodes(t *testing.T) {
	tab := New()
	// A master known from configuration by address only...
	m, _ := tab.Add(Node{Type: proto.MASTER, Addr: addrM, State: proto.DOWN})
	// ...gets its id when it identifies.
	got, err := tab.Add(Node{Type: proto.MASTER, Addr: addrM, NID: m1, State: proto.NODE_RUNNING})
	if err != nil || got != m || m.NID != m1 || tab.ByNID(m1) != m || m.State != proto.NODE_RUNNING {
		t.Fatalf("Add: %v, %v", got, err)
	}
	if _, err := tab.Add(Node{Type: proto.MASTER, Addr: addrM, NID: proto.NewNodeID(proto.MASTER, 2), State: proto.DOWN}); !errors.Is(err, ErrConflict) {
		t.Errorf("other id at a known address: %v", err)
	}
	tab.SetState(m, proto.UNKNOWN)
	if tab.Len() != 0 || tab.ByAddr(addrM) != nil {
		t.Errorf("UNKNOWN did not remove the node")
	}
}

func TestMonotonic(t *testing.T) {
	var m Monotonic
	ms := 1e-3 // a variable: float64 arithmetic as at run time, not exact constants
	for _, tt := range []struct{ now, want float64 }{{10, 10}, {10, 10 + ms}, {9, 10 + ms + ms}, {11, 11}} {
		if got := m.Next(tt.now); got != tt.want {
			t.Errorf("Next(%v) = %v, want %v", tt.now, got, tt.want)
		}
	}
}

func TestFormat(t *testing.T) {
	if got := Format(nil); got != "Empty list!" {
		t.Errorf("Format(nil) = %q", got)
	}
	nodes := []Node{
		{Type: proto.STORAGE, Addr: addrS2, NID: s2, State: proto.PENDING, IDTimestamp: proto.Some(1700000000.25)},
		{Type: proto.MASTER, Addr: addrM, NID: m1, State: proto.NODE_RUNNING},
		{Type: proto.MASTER, Addr: proto.Addr{Host: "127.0.0.2", Port: 4000}, State: proto.DOWN},
		{Type: proto.CLIENT, NID: c1, State: proto.NODE_RUNNING, IDTimestamp: proto.Some(1700000001.0)},
	}
	want := "C1   | CLIENT  |                | RUNNING | 2023-11-14 22:13:21\n" +
		"M1   | MASTER  | 127.0.0.1:4000 | RUNNING | None\n" +
		"S2   | STORAGE | [::1]:5002     | PENDING | 2023-11-14 22:13:20.250000\n" +
		"None | MASTER  | 127.0.0.2:4000 | DOWN    | None"
	if got := Format(nodes); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// id timestamps print as Python prints them: rounded to the microsecond
// half to even, like datetime.utcfromtimestamp.
func TestFormatIDTimestamp(t *testing.T) {
	for _, tt := range []struct {
		ts   float64
		want string
	}{
		{1700000000.0000005, "2023-11-14 22:13:20"}, // nearest float is just below .5µs
		{0.0000015, "1970-01-01 00:00:00.000002"},
		{0.0000025, "1970-01-01 00:00:00.000002"},
		{1.9999999, "1970-01-01 00:00:02"},
		// Printed by Python 3.11's datetime.utcfromtimestamp.
		{1764073024.178144, "2025-11-25 12:17:04.178144"},
		{1764073024.0000005, "2025-11-25 12:17:04"},
		{1764073024.0000014, "2025-11-25 12:17:04.000001"},
		{1764073024.9999995, "2025-11-25 12:17:05"},
		{1.5, "1970-01-01 00:00:01.500000"},
		{1764073024.5, "2025-11-25 12:17:04.500000"},
		// Python refuses these: the float is printed rather than a wrong date.
		{math.NaN(), "NaN"},
		{math.Inf(1), "+Inf"},
	} {
		if got := formatIDTimestamp(proto.Some(tt.ts)); got != tt.want {
			t.Errorf("%v: %q, want %q", tt.ts, got, tt.want)
		}
	}
	if got := formatIDTimestamp(proto.Some(0.0)); got != "0.0" {
		t.Errorf("0.0 prints as %q", got)
	}
}
