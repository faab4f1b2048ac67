package proto

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

// TestDecodeAccepts checks the leniency of protocol.md §1.5.5: any integer
// width, str for bin, every ext container form for enums, float32.
func TestDecodeAccepts(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		want Msg
	}{
		{"uint64 form of a small int", "93 00 19 91 cf 00 00 00 00 00 00 00 05", &AskNewOIDs{NumOids: 5}},
		{"int8 form of a positive int", "93 00 19 91 d0 05", &AskNewOIDs{NumOids: 5}},
		{"int64 form of a positive int", "93 00 19 91 d3 00 00 00 00 00 00 01 00", &AskNewOIDs{NumOids: 256}},
		{"uint16 id and uint32 code", "93 cd 00 01 ce 00 00 00 02 90", &Ping{}},
		{"array16 envelope and args", "dc 00 03 00 02 dc 00 00", &Ping{}},
		{"str instead of bin", "93 00 cd 80 00 92 00 a2 6f 6b", &Error{Code: ACK, Message: "ok"}},
		{"str8 instead of bin", "93 00 cd 80 00 92 00 d9 02 6f 6b", &Error{Code: ACK, Message: "ok"}},
		{"enum in fixext2 with uint8 payload", "93 00 2d 91 d5 01 cc 02", &NotifyClusterInformation{State: RUNNING}},
		{"enum in ext8", "93 00 2d 91 c7 01 01 02", &NotifyClusterInformation{State: RUNNING}},
		{"enum in ext16", "93 00 2d 91 c8 00 01 01 02", &NotifyClusterInformation{State: RUNNING}},
		{"enum in ext32", "93 00 2d 91 c9 00 00 00 01 01 02", &NotifyClusterInformation{State: RUNNING}},
		{"enum in ext8 with uint32 payload", "93 00 2d 91 c7 05 01 ce 00 00 00 02", &NotifyClusterInformation{State: RUNNING}},
		{"float32 timestamp", "93 00 06 92 ca 3f c0 00 00 90", &NotifyNodeInformation{Timestamp: 1.5}},
		{"nil ttid in AskStoreObject", "93 00 1c 97 c4 08 00 00 00 00 00 00 00 01 c4 08 00 00 00 00 00 00 00 00 00 c4 00 c4 00 c0 c0",
			&AskStoreObject{Oid: 1, Serial: 0, Checksum: []byte{}, Data: []byte{}, DataSerial: InvalidTid, TTid: InvalidTid}},
		{"negative node id in int64 form", "93 00 cd 80 04 91 d3 ff ff ff ff f0 00 00 01", &AnswerPrimary{PrimaryNID: NewNodeID(MASTER, 1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frame := unhex(t, tt.hex)
			if n, err := FrameSize(frame, 1<<20); n != len(frame) || err != nil {
				t.Fatalf("FrameSize = %d, %v; want %d, nil", n, err, len(frame))
			}
			_, m, err := DecodePacket(frame)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(m, tt.want) {
				t.Errorf("got %#v\nwant %#v", m, tt.want)
			}
		})
	}
}

// TestDecodeRejects checks that malformed packets give a *DecodeError
// naming the packet and the argument, and never a panic.
func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name    string
		hex     string
		msg     string // DecodeError.Msg
		arg     int    // DecodeError.Arg
		errText string // part of the error text
	}{
		{"too many args", "93 00 02 91 00", "Ping", -1, "want array of 0 elements, got 1"},
		{"too few args", "93 00 20 92 c0 c0", "AskObject", -1, "want array of 3 elements, got 2"},
		{"envelope of 2", "92 00 02", "packet", -1, "want array of 3"},
		{"unknown code", "93 00 4a 90", "packet", -1, "unknown code 0x004a"},
		{"unknown answer code", "93 00 cd 80 03 90", "packet", -1, "unknown code 0x8003"},
		{"code 0 is not Error", "93 00 00 92 00 c4 00", "packet", -1, "unknown code 0x0000"},
		{"id above 32 bits", "93 cf 00 00 00 01 00 00 00 00 02 90", "packet", -1, "out of range"},
		{"negative id", "93 ff 02 90", "packet", -1, "out of range"},
		{"trailing bytes", "93 00 02 90 c0", "Ping", -1, "1 bytes after the packet"},
		{"short oid", "93 00 20 93 c4 07 00 00 00 00 00 00 01 c0 c0", "AskObject", 0, "want 8-byte id, got 7 bytes"},
		{"bin length beyond the data", "93 00 cd 80 00 92 00 c6 ff ff ff ff", "Error", 1, "bin length 4294967295 exceeds"},
		{"array count beyond the data", "93 00 cd 80 21 91 dd ff ff ff ff c0", "AnswerTIDs", 0, "cannot fit"},
		{"map count beyond the data", "93 00 cd 80 0f 91 df 7f ff ff ff", "AnswerLockedTransactions", 0, "cannot fit"},
		{"negative uint", "93 00 19 91 ff", "AskNewOIDs", 0, "out of range"},
		{"uint32 overflow", "93 00 19 91 cf 00 00 00 01 00 00 00 00", "AskNewOIDs", 0, "out of range"},
		{"node id beyond int32", "93 00 cd 80 04 91 ce 80 00 00 00", "AnswerPrimary", 0, "out of range"},
		{"unknown error code", "93 00 cd 80 00 92 0e c4 00", "Error", 0, "unknown error code 14"},
		{"error code as ext", "93 00 cd 80 00 92 d4 02 00 c4 00", "Error", 0, "want integer"},
		{"unknown ext type", "93 00 2d 91 d4 05 00", "NotifyClusterInformation", 0, "got ext type 5"},
		{"wrong enum ext type", "93 00 2d 91 d4 04 00", "NotifyClusterInformation", 0, "got ext type 4"},
		{"enum out of range", "93 00 2d 91 d4 01 07", "NotifyClusterInformation", 0, "invalid ClusterState"},
		{"negative enum", "93 00 2d 91 d4 01 ff", "NotifyClusterInformation", 0, "invalid ClusterState"},
		{"enum payload with padding", "93 00 2d 91 d5 01 02 00", "NotifyClusterInformation", 0, "invalid ClusterState"},
		{"enum payload not an int", "93 00 2d 91 d4 01 c0", "NotifyClusterInformation", 0, "invalid ClusterState"},
		{"bool expected", "93 00 0c 91 01", "StartOperation", 0, "want bool"},
		{"bin expected", "93 00 cd 80 00 92 00 c0", "Error", 1, "want bin, got nil"},
		{"truncated", "93 00 cd 80 00 92 00 c4 05 6f 6b", "Error", 1, "exceeds"},
		{"extra nested too deep", "93 00 01 96 d4 04 02 c0 c0 c4 00 c0 81 c4 01 61" + strings.Repeat(" 91", 40) + " c0",
			"RequestIdentification", 5, "nested deeper"},
		{"addr of 3", "93 00 49 91 93 c4 00 00 00", "NotifyUpstreamAdmin", 0, "want array of 2 elements, got 3"},
		{"port above 16 bits", "93 00 49 91 92 c4 00 ce 00 01 00 00", "NotifyUpstreamAdmin", 0, "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, m, err := DecodePacket(unhex(t, tt.hex))
			if err == nil {
				t.Fatalf("decoded %#v, want an error", m)
			}
			if !errors.Is(err, ErrDecode) {
				t.Errorf("error %v does not match ErrDecode", err)
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %v is not a *DecodeError", err)
			}
			if de.Msg != tt.msg || de.Arg != tt.arg {
				t.Errorf("DecodeError{Msg: %q, Arg: %d}, want {%q, %d} (%v)", de.Msg, de.Arg, tt.msg, tt.arg, err)
			}
			if !strings.Contains(err.Error(), tt.errText) {
				t.Errorf("error %q does not say %q", err, tt.errText)
			}
		})
	}
}

// TestEncodeMinimal checks that integers take their smallest form and
// byte strings are bin, as Python's packer does (§1.5.4).
func TestEncodeMinimal(t *testing.T) {
	tests := []struct {
		v    int64
		want string
	}{
		{0, "00"}, {127, "7f"}, {128, "cc 80"}, {255, "cc ff"}, {256, "cd 01 00"},
		{65535, "cd ff ff"}, {65536, "ce 00 01 00 00"}, {math.MaxUint32, "ce ff ff ff ff"},
		{math.MaxUint32 + 1, "cf 00 00 00 01 00 00 00 00"},
		{-1, "ff"}, {-32, "e0"}, {-33, "d0 df"}, {-128, "d0 80"}, {-129, "d1 ff 7f"},
		{-32768, "d1 80 00"}, {-32769, "d2 ff ff 7f ff"}, {math.MinInt32, "d2 80 00 00 00"},
		{math.MinInt32 - 1, "d3 ff ff ff ff 7f ff ff ff"},
	}
	for _, tt := range tests {
		got := appendInt(nil, tt.v)
		if want := unhex(t, tt.want); string(got) != string(want) {
			t.Errorf("appendInt(%d) = % x, want % x", tt.v, got, want)
		}
	}
	long := strings.Repeat("x", 300)
	got := AppendPacket(nil, 0, &Error{Message: long})
	if want := "\x93\x00\xcd\x80\x00\x92\x00\xc5\x01\x2c" + long; string(got) != want {
		t.Errorf("Error with a 300-byte message: got % x", got[:12])
	}
}

// TestFrameSize checks stream delimiting, including limits declared before
// the bytes arrive.
func TestFrameSize(t *testing.T) {
	tests := []struct {
		name    string
		hex     string
		max     int
		want    int
		wantErr error
	}{
		{"empty", "", 100, 0, nil},
		{"complete Ping", "93 00 02 90", 100, 4, nil},
		{"Ping followed by more", "93 00 02 90 93 01", 100, 4, nil},
		{"Ping in an array16 envelope", "dc 00 03 00 02 90", 100, 6, nil},
		{"prefix of a bin32", "93 00 cd 80 00 92 00 c6 00 00", 100, 0, nil},
		{"bin declared above the limit", "93 00 cd 80 00 92 00 c6 00 10 00 00", 1 << 20, 0, ErrFrameTooBig},
		{"array declared above the limit", "93 00 cd 80 21 91 dd 00 10 00 00", 1 << 20, 0, ErrFrameTooBig},
		{"map declared above the limit", "93 00 cd 80 0f 91 df 00 08 00 00", 1 << 20, 0, ErrFrameTooBig},
		{"ext declared above the limit", "93 00 2d 91 c9 00 10 00 00", 1 << 20, 0, ErrFrameTooBig},
		{"not an array", "c0", 100, 0, ErrDecode},
		{"handshake is not a packet", "92 a3 4e 45 4f 05", 100, 0, ErrDecode},
		{"invalid byte", "93 00 02 91 c1", 100, 0, ErrDecode},
		{"args not an array", "93 00 02 c0", 100, 0, ErrDecode},
		{"code is not an int", "93 00 c0 90", 100, 0, ErrDecode},
		{"code above 16 bits", "93 00 ce 00 01 00 00 90", 100, 0, ErrDecode},
		{"truncated id", "93 cd 00", 100, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := unhex(t, tt.hex)
			n, err := FrameSize(in, tt.max)
			if n != tt.want || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("FrameSize = %d, %v; want %d, %v", n, err, tt.want, tt.wantErr)
			}
			// The same bytes arriving one at a time.
			s := FrameScanner{MaxSize: tt.max}
			n, err = 0, nil
			for i := 0; i <= len(in) && n == 0 && err == nil; i++ {
				n, err = s.Scan(in[:i])
			}
			if n != tt.want || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("FrameScanner byte by byte = %d, %v; want %d, %v", n, err, tt.want, tt.wantErr)
			}
		})
	}
}

// TestRoundTripSamples encodes, frames and decodes one sample of every
// packet type.
func TestRoundTripSamples(t *testing.T) {
	seen := map[uint16]bool{}
	for _, m := range sampleMsgs() {
		seen[m.NEOMsgCode()] = true
		b := AppendPacket(nil, 7, m)
		if n, err := FrameSize(b, len(b)); n != len(b) || err != nil {
			t.Errorf("%T: FrameSize = %d, %v; want %d", m, n, err, len(b))
			continue
		}
		id, got, err := DecodePacket(b)
		if err != nil || id != 7 {
			t.Errorf("%T: DecodePacket: id %d, %v", m, id, err)
			continue
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("%T: round trip:\n got %#v\nwant %#v", m, got, m)
		}
		if b2 := AppendPacket(nil, 7, got); string(b2) != string(b) {
			t.Errorf("%T: re-encoding differs", m)
		}
	}
	n := 0
	for _, tab := range []*[numCodes]msgInfo{&requestTable, &answerTable} {
		for code := range tab {
			if tab[code].new != nil {
				n++
			}
		}
	}
	if n != 111 || len(seen) != n {
		t.Errorf("%d packet types registered, %d sampled; want 111", n, len(seen))
	}
}
