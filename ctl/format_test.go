package ctl

import (
	"strings"
	"testing"

	"github.com/neogo/neo/proto"
)

var (
	s1 = proto.NewNodeID(proto.STORAGE, 1)
	s2 = proto.NewNodeID(proto.STORAGE, 2)
	s3 = proto.NewNodeID(proto.STORAGE, 3)
	s9 = proto.NewNodeID(proto.STORAGE, 10)
	m1 = proto.NewNodeID(proto.MASTER, 1)
	a1 = proto.NewNodeID(proto.ADMIN, 1)
	c1 = proto.NewNodeID(proto.CLIENT, 1)
)

func addr(port uint16) proto.Addr { return proto.Addr{Host: "127.0.0.1", Port: port} }

// Expected outputs below were printed by neoppod's neoctl (or computed by
// the Python functions it uses) for the same input.
func TestFormatNodeList(t *testing.T) {
	ts := proto.Some(1764073024.178144)
	for _, tt := range []struct {
		name  string
		nodes []proto.NodeInfo
		want  string
	}{
		{"no node prints Empty list!", nil, "Empty list!"},
		{
			"sorted by signed id: admins, clients, masters, storages; columns padded",
			[]proto.NodeInfo{
				{Type: proto.STORAGE, Addr: addr(45089), NID: s2, State: proto.NODE_RUNNING, IDTimestamp: ts},
				{Type: proto.MASTER, Addr: addr(24100), NID: m1, State: proto.NODE_RUNNING},
				{Type: proto.STORAGE, Addr: addr(1), NID: s9, State: proto.PENDING, IDTimestamp: proto.Some(1.5)},
				{Type: proto.CLIENT, NID: c1, State: proto.NODE_RUNNING, IDTimestamp: ts},
				{Type: proto.ADMIN, Addr: addr(24101), NID: a1, State: proto.NODE_RUNNING, IDTimestamp: proto.Some(0.0)},
			},
			"A1  | ADMIN   | 127.0.0.1:24101 | RUNNING | 0.0\n" +
				"C1  | CLIENT  |                 | RUNNING | 2025-11-25 12:17:04.178144\n" +
				"M1  | MASTER  | 127.0.0.1:24100 | RUNNING | None\n" +
				"S2  | STORAGE | 127.0.0.1:45089 | RUNNING | 2025-11-25 12:17:04.178144\n" +
				"S10 | STORAGE | 127.0.0.1:1     | PENDING | 1970-01-01 00:00:01.500000",
		},
		{
			"nodes without id come last, by address",
			[]proto.NodeInfo{
				{Type: proto.MASTER, Addr: addr(3), State: proto.DOWN},
				{Type: proto.MASTER, Addr: proto.Addr{Host: "::1", Port: 2}, State: proto.UNKNOWN},
				{Type: proto.MASTER, Addr: addr(2), NID: m1, State: proto.NODE_RUNNING},
			},
			"M1   | MASTER | 127.0.0.1:2 | RUNNING | None\n" +
				"None | MASTER | 127.0.0.1:3 | DOWN    | None\n" +
				"None | MASTER | [::1]:2     | UNKNOWN | None",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := FormatNodeList(tt.nodes); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestFormatPartitionTable(t *testing.T) {
	U, O, F := proto.UP_TO_DATE, proto.OUT_OF_DATE, proto.FEEDING
	rows := make([][]proto.CellInfo, 12)
	for i := range rows {
		rows[i] = []proto.CellInfo{{NID: s1, State: U}}
		if i%3 == 0 {
			rows[i] = append(rows[i], proto.CellInfo{NID: s2, State: O})
		}
	}
	rows[5] = []proto.CellInfo{{NID: s2, State: F}, {NID: s1, State: U}}
	storages := []proto.NodeInfo{
		{Type: proto.STORAGE, NID: s1, State: proto.NODE_RUNNING},
		{Type: proto.STORAGE, NID: s2, State: proto.DOWN},
		{Type: proto.STORAGE, NID: s3, State: proto.NODE_RUNNING},       // no cell but running: shown
		{Type: proto.STORAGE, NID: s9, State: proto.PENDING},            // no cell, not running: hidden
		{Type: proto.STORAGE, Addr: addr(1), State: proto.NODE_RUNNING}, // no id: hidden
	}
	got, err := FormatPartitionTable(rows, storages)
	if err != nil {
		t.Fatal(err)
	}
	want := "             10v\n" +
		"S1 R UUUUUUUUUUUU\n" +
		"S2 D O..O.FO..O..\n" +
		"S3 R ............"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if got := FormatRows(10, rows[10:]); got != "010 | S1 - UP_TO_DATE |\n011 | S1 - UP_TO_DATE |" {
		t.Errorf("rows: got\n%s", got)
	}
	if got, err := FormatPartitionTable(nil, storages[:1]); err != nil || got != "S1 R " {
		t.Errorf("no partitions: got %q, %v", got, err)
	}
}

func TestFormatSummary(t *testing.T) {
	for _, tt := range []struct {
		name string
		m    proto.AnswerMonitorInformation
		want string
	}{
		{"all fine", proto.AnswerMonitorInformation{Summary: "RUNNING; UP_TO_DATE=24"}, "# {}\nRUNNING; UP_TO_DATE=24"},
		{
			"this cluster in problem",
			proto.AnswerMonitorInformation{Problems: []proto.Opt[string]{{}}, Summary: "RECOVERING"},
			"# {\"problem\": [null]}\nRECOVERING",
		},
		{
			// json.dumps output of Python 3.11 for the same names
			"names escaped as json.dumps does",
			proto.AnswerMonitorInformation{
				Warnings: []proto.Opt[string]{proto.Some("bk<1>&"), {}},
				Problems: []proto.Opt[string]{{}, proto.Some("é\u2603\U0001F600\x7f\"\\")},
				Summary:  "x\n\nbk\n  y",
			},
			`# {"warning": ["bk<1>&", null], "problem": [null, "\u00e9\u2603\ud83d\ude00\u007f\"\\"]}` + "\nx\n\nbk\n  y",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := FormatSummary(&tt.m); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestFormatTid(t *testing.T) {
	for _, tt := range []struct {
		tid  proto.Tid
		want string
	}{
		{0, "0x0 (1900-01-01 00:00:00)"},
		{0x3937af2eeeeeeee, "0x3937af2eeeeeeee (2012-01-01 12:34:55.999999)"},
	} {
		if got := FormatTid(tt.tid); got != tt.want {
			t.Errorf("%#x: got %q, want %q", uint64(tt.tid), got, tt.want)
		}
	}
	if got := FormatPTid(0) + " " + FormatPTid(7) + " " + FormatNID(0); !strings.EqualFold(got, "None 7 None") {
		t.Errorf("nil forms: %q", got)
	}
}
