package admin

import (
	"errors"
	"reflect"
	"testing"

	"github.com/neogo/neo/nodetab"
	"github.com/neogo/neo/parttab"
	"github.com/neogo/neo/proto"
)

var (
	m1 = proto.NewNodeID(proto.MASTER, 1)
	a1 = proto.NewNodeID(proto.ADMIN, 1)
	c1 = proto.NewNodeID(proto.CLIENT, 1)
	s1 = proto.NewNodeID(proto.STORAGE, 1)
	s2 = proto.NewNodeID(proto.STORAGE, 2)
	s3 = proto.NewNodeID(proto.STORAGE, 3)
)

func addr(port uint16) proto.Addr { return proto.Addr{Host: "127.0.0.1", Port: port} }

func node(typ proto.NodeType, nid proto.NodeID, port uint16, st proto.NodeState) proto.NodeInfo {
	n := proto.NodeInfo{Type: typ, NID: nid, State: st, IDTimestamp: proto.Some(1e9 + float64(port))}
	if port != 0 {
		n.Addr = addr(port)
	}
	return n
}

// fullList is what a master sends an admin right after identification:
// the admin first, then the nodes an admin is told about.
func fullList() *proto.NotifyNodeInformation {
	return &proto.NotifyNodeInformation{Timestamp: 10, NodeList: []proto.NodeInfo{
		node(proto.ADMIN, a1, 9999, proto.NODE_RUNNING),
		node(proto.MASTER, m1, 10000, proto.NODE_RUNNING),
		node(proto.STORAGE, s2, 20002, proto.NODE_RUNNING),
		node(proto.STORAGE, s1, 20001, proto.NODE_RUNNING),
		node(proto.CLIENT, c1, 0, proto.NODE_RUNNING),
	}}
}

// ptOf builds rows from a picture like "UO|.U": one string per partition,
// one letter per node s1, s2, s3.
func ptOf(pic string) [][]proto.CellInfo {
	nids := []proto.NodeID{s1, s2, s3}
	var rows [][]proto.CellInfo
	row := []proto.CellInfo{}
	col := 0
	for _, c := range pic + "|" {
		if c == '|' {
			rows, row, col = append(rows, row), []proto.CellInfo{}, 0
			continue
		}
		if c != '.' {
			st := map[rune]proto.CellState{'U': proto.UP_TO_DATE, 'O': proto.OUT_OF_DATE, 'F': proto.FEEDING, 'C': proto.CORRUPTED}[c]
			row = append(row, proto.CellInfo{NID: nids[col], State: st})
		}
		col++
	}
	return rows
}

// connectedView is a view identified as A1 to M1 that got the full node
// list, a 4-partition table and the cluster state.
func connectedView(t *testing.T) *view {
	t.Helper()
	v := newView()
	v.identified(a1, m1)
	for _, m := range []proto.Msg{
		fullList(),
		&proto.SendPartitionTable{PTid: 5, NumReplicas: 1, Rows: ptOf("UU|UU|UO|UU")},
		&proto.AnswerClusterState{State: proto.Some(proto.RUNNING)},
	} {
		if ok, err := v.apply(m); !ok || err != nil {
			t.Fatalf("apply %T: ok %v err %v", m, ok, err)
		}
	}
	return v
}

func TestViewNodeList(t *testing.T) {
	v := connectedView(t)
	nids := func(a *proto.AnswerNodeList) []proto.NodeID {
		var out []proto.NodeID
		for _, n := range a.NodeList {
			out = append(out, n.NID)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		typ  proto.Opt[proto.NodeType]
		want []proto.NodeID
	}{
		{"all types, in id order", proto.Opt[proto.NodeType]{}, []proto.NodeID{a1, c1, m1, s1, s2}},
		{"storages only", proto.Some(proto.STORAGE), []proto.NodeID{s1, s2}},
		{"the admin itself is listed", proto.Some(proto.ADMIN), []proto.NodeID{a1}},
		{"client", proto.Some(proto.CLIENT), []proto.NodeID{c1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := nids(v.nodeList(tc.typ))
			// Sort as neoctl does; the admin's order does not matter.
			got = nodetabOrder(got)
			if !reflect.DeepEqual(got, nodetabOrder(tc.want)) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("entries are the master's, bit for bit", func(t *testing.T) {
		for _, n := range v.nodeList(proto.Some(proto.STORAGE)).NodeList {
			want := node(proto.STORAGE, n.NID, uint16(20000+n.NID), proto.NODE_RUNNING)
			if n != want {
				t.Errorf("got %+v, want %+v", n, want)
			}
		}
	})
	t.Run("no node of the type is an empty list, not nil", func(t *testing.T) {
		v := newView()
		if a := v.nodeList(proto.Opt[proto.NodeType]{}); a.NodeList == nil || len(a.NodeList) != 0 {
			t.Errorf("got %#v", a.NodeList)
		}
	})
}

func nodetabOrder(nids []proto.NodeID) []proto.NodeID {
	tab := nodetab.New()
	for _, nid := range nids {
		typ := proto.STORAGE
		switch {
		case nid < 0 && nid>>24 == -0x10:
			typ = proto.MASTER
		case nid < 0 && nid>>24 == -0x20:
			typ = proto.CLIENT
		case nid < 0 && nid>>24 == -0x30:
			typ = proto.ADMIN
		}
		tab.Add(nodetab.Node{Type: typ, NID: nid, State: proto.NODE_RUNNING})
	}
	var out []proto.NodeID
	for _, n := range tab.Entries() {
		out = append(out, n.NID)
	}
	return out
}

func TestViewPartitionList(t *testing.T) {
	v := connectedView(t)
	all := ptOf("UU|UU|UO|UU")
	for _, tc := range []struct {
		name     string
		min, max uint32
		want     [][]proto.CellInfo
		bad      bool
	}{
		{"max 0 means to the end", 0, 0, all, false},
		{"from an offset to the end", 2, 0, all[2:], false},
		{"a range", 1, 3, all[1:3], false},
		{"the whole table", 0, 4, all, false},
		{"past the end", 0, 5, nil, true},
		{"start past the end", 4, 0, [][]proto.CellInfo{}, false},
		{"empty range past the end is no error", 7, 6, [][]proto.CellInfo{}, false},
		{"empty range", 3, 3, [][]proto.CellInfo{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, perr := v.partitionList(tc.min, tc.max)
			if tc.bad {
				if perr == nil || perr.Code != proto.PROTOCOL_ERROR || perr.Message != "invalid partition table offset" {
					t.Fatalf("got %v, %v; want the invalid offset error", a, perr)
				}
				return
			}
			if perr != nil {
				t.Fatal(perr)
			}
			if a.PTid != 5 || a.NumReplicas != 1 {
				t.Errorf("ptid %d nr %d, want 5 1", a.PTid, a.NumReplicas)
			}
			if !reflect.DeepEqual(a.RowList, tc.want) {
				t.Errorf("rows %v, want %v", a.RowList, tc.want)
			}
		})
	}
}

func TestViewUpdates(t *testing.T) {
	t.Run("partition changes keep the cell order", func(t *testing.T) {
		v := connectedView(t)
		_, err := v.apply(&proto.NotifyPartitionChanges{PTid: 6, NumReplicas: 2, CellList: []proto.CellChange{
			{Offset: 2, NID: s2, State: proto.UP_TO_DATE},
			{Offset: 0, NID: s1, State: proto.DISCARDED},
			{Offset: 0, NID: s3, State: proto.OUT_OF_DATE},
		}})
		if err != nil {
			t.Fatal(err)
		}
		a, _ := v.partitionList(0, 0)
		want := ptOf("UU|UU|UU|UU")
		want[0] = []proto.CellInfo{{NID: s2, State: proto.UP_TO_DATE}, {NID: s3, State: proto.OUT_OF_DATE}}
		if a.PTid != 6 || a.NumReplicas != 2 || !reflect.DeepEqual(a.RowList, want) {
			t.Errorf("got ptid %d nr %d rows %v, want 6 2 %v", a.PTid, a.NumReplicas, a.RowList, want)
		}
	})
	t.Run("an old ptid is an inconsistency", func(t *testing.T) {
		v := connectedView(t)
		_, err := v.apply(&proto.NotifyPartitionChanges{PTid: 5, NumReplicas: 1})
		if !errors.Is(err, parttab.ErrWrongPTid) && err == nil {
			t.Errorf("got %v", err)
		}
	})
	t.Run("changes before any table are an inconsistency", func(t *testing.T) {
		v := newView()
		v.identified(a1, m1)
		if _, err := v.apply(&proto.NotifyPartitionChanges{PTid: 1}); err == nil {
			t.Error("no error")
		}
	})
	t.Run("notification timestamps must increase", func(t *testing.T) {
		v := connectedView(t)
		_, err := v.apply(&proto.NotifyNodeInformation{Timestamp: 10})
		if !errors.Is(err, nodetab.ErrTimestamp) {
			t.Errorf("got %v, want ErrTimestamp", err)
		}
	})
	t.Run("UNKNOWN forgets a node", func(t *testing.T) {
		v := connectedView(t)
		c := node(proto.CLIENT, c1, 0, proto.UNKNOWN)
		if _, err := v.apply(&proto.NotifyNodeInformation{Timestamp: 11, NodeList: []proto.NodeInfo{c}}); err != nil {
			t.Fatal(err)
		}
		if n := len(v.nodeList(proto.Some(proto.CLIENT)).NodeList); n != 0 {
			t.Errorf("%d clients left", n)
		}
	})
	t.Run("cluster state from answer and notification", func(t *testing.T) {
		v := connectedView(t)
		v.apply(&proto.NotifyClusterInformation{State: proto.STOPPING})
		if v.clusterState != proto.Some(proto.STOPPING) {
			t.Errorf("state %v", v.clusterState)
		}
	})
	t.Run("other packets are not for the view", func(t *testing.T) {
		v := connectedView(t)
		if ok, err := v.apply(&proto.FlushLog{}); ok || err != nil {
			t.Errorf("ok %v err %v", ok, err)
		}
	})
	t.Run("a new master's full list replaces the nodes", func(t *testing.T) {
		v := connectedView(t)
		v.disconnected()
		if v.primary != 0 || v.clusterState.Valid {
			t.Fatal("still connected after disconnected")
		}
		v.identified(a1, m1)
		l := fullList()
		l.Timestamp = 1 // a new master's clock may be behind
		l.NodeList = l.NodeList[:3]
		if _, err := v.apply(l); err != nil {
			t.Fatal(err)
		}
		// S1 is absent from the full list but has cells: it is kept.
		got := nodetabOrder(nodeIDs(v.nodeList(proto.Opt[proto.NodeType]{})))
		if want := nodetabOrder([]proto.NodeID{a1, m1, s1, s2}); !reflect.DeepEqual(got, want) {
			t.Errorf("nodes %v, want %v", got, want)
		}
	})
}

func nodeIDs(a *proto.AnswerNodeList) []proto.NodeID {
	var out []proto.NodeID
	for _, n := range a.NodeList {
		out = append(out, n.NID)
	}
	return out
}

func TestViewMonitor(t *testing.T) {
	v := connectedView(t)
	m := v.monitor()
	want := Monitor{
		ClusterState: proto.Some(proto.RUNNING),
		PTSummary:    map[proto.CellState]int{proto.UP_TO_DATE: 7, proto.OUT_OF_DATE: 1},
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("got %+v, want %+v", m, want)
	}
	// S2 goes down: one node of the table is down.
	v.apply(&proto.NotifyNodeInformation{Timestamp: 11, NodeList: []proto.NodeInfo{
		node(proto.STORAGE, s2, 20002, proto.DOWN)}})
	if m := v.monitor(); m.Down != 1 {
		t.Errorf("down %d, want 1", m.Down)
	}
	if m := newView().monitor(); m.PTSummary != nil || m.Down != 0 || m.ClusterState.Valid {
		t.Errorf("empty view: %+v", m)
	}
}
