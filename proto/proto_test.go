package proto

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// specExamples are the byte-exact examples of protocol.md §1.4, verified
// there against the Python encoder.
var specExamples = []struct {
	name string
	id   uint32
	msg  Msg
	hex  string
}{
	{"Ping id 0", 0, &Ping{}, "93 00 02 90"},
	{"Pong answering id 7", 7, &Pong{}, "93 07 cd 80 02 90"},
	{"Error(ACK, ok) answering id 3", 3, &Error{Code: ACK, Message: "ok"}, "93 03 cd 80 00 92 00 c4 02 6f 6b"},
	{"RequestIdentification read-only client", 0, &RequestIdentification{
		NodeType: CLIENT, ClusterName: "neo",
		Extra: Dict{{Key: "read_only", Value: true}},
	}, "93 00 01 96 d4 04 02 c0 c0 c4 03 6e 65 6f c0 81 c4 09 72 65 61 64 5f 6f 6e 6c 79 c3"},
	{"AcceptIdentification(MASTER, M1, C1)", 0, &AcceptIdentification{
		NodeType: MASTER, MyNID: NewNodeID(MASTER, 1), YourNID: NewNodeID(CLIENT, 1),
	}, "93 00 cd 80 01 93 d4 04 00 d2 f0 00 00 01 d2 e0 00 00 01"},
	{"NotifyNodeInformation one storage", 1, &NotifyNodeInformation{
		Timestamp: 1700000000.5,
		NodeList: []NodeInfo{{
			Type: STORAGE, Addr: Addr{Host: "127.0.0.1", Port: 20000}, NID: 1, State: NODE_RUNNING,
			IDTimestamp: Some(1700000000.25),
		}},
	}, `93 01 06 92 cb 41 d9 54 fc 40 20 00 00 91 95 d4 04 01 92 c4 09 31 32 37
	    2e 30 2e 30 2e 31 cd 4e 20 01 d4 03 02 cb 41 d9 54 fc 40 10 00 00`},
	{"AskObject(oid=1, at=None, before=5)", 4, &AskObject{Oid: 1, At: InvalidTid, Before: 5},
		"93 04 20 93 c4 08 00 00 00 00 00 00 00 01 c0 c4 08 00 00 00 00 00 00 00 05"},
	{"NotifyClusterInformation(RUNNING)", 4, &NotifyClusterInformation{State: RUNNING}, "93 04 2d 91 d4 01 02"},
	{"SendPartitionTable(1, 0, [[(S1, UP_TO_DATE)]])", 2, &SendPartitionTable{
		PTid: 1, Rows: [][]CellInfo{{{NID: 1, State: UP_TO_DATE}}},
	}, "93 02 0a 93 01 00 91 91 92 01 d4 00 01"},
}

func TestSpecExamples(t *testing.T) {
	for _, tt := range specExamples {
		t.Run(tt.name, func(t *testing.T) {
			want := unhex(t, tt.hex)
			got := AppendPacket(nil, tt.id, tt.msg)
			if !bytes.Equal(got, want) {
				t.Errorf("encode:\n got % x\nwant % x", got, want)
			}
			n, err := FrameSize(want, 1<<20)
			if err != nil || n != len(want) {
				t.Fatalf("FrameSize = %d, %v; want %d", n, err, len(want))
			}
			for i := range want {
				if n, err := FrameSize(want[:i], 1<<20); n != 0 || err != nil {
					t.Fatalf("FrameSize(prefix %d) = %d, %v; want 0, nil", i, n, err)
				}
			}
			id, m, err := DecodePacket(want)
			if err != nil {
				t.Fatal(err)
			}
			if id != tt.id || !reflect.DeepEqual(m, tt.msg) {
				t.Errorf("decode: got id %d %#v\nwant id %d %#v", id, m, tt.id, tt.msg)
			}
		})
	}
}

func TestErrorIs(t *testing.T) {
	var err error = &Error{Code: OID_NOT_FOUND, Message: "no such object"}
	if !errors.Is(err, ErrOidNotFound) {
		t.Error("errors.Is(OID_NOT_FOUND error, ErrOidNotFound) = false")
	}
	if errors.Is(err, ErrOidDoesNotExist) {
		t.Error("errors.Is(OID_NOT_FOUND error, ErrOidDoesNotExist) = true")
	}
	if got, want := err.Error(), "neo: OID_NOT_FOUND: no such object"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
