package neonet

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/neogo/neo/proto"
)

// scanSplit feeds in to the link's frame scanner (proto.FrameScanner)
// growing by the given chunk sizes (cycled) and returns what it finds for
// the first packet.
func scanSplit(in []byte, max int, chunks []int) (int, error) {
	s := proto.FrameScanner{MaxSize: max}
	for w, i := 0, 0; ; i++ {
		step := 1
		if len(chunks) > 0 {
			step = 1 + chunks[i%len(chunks)]
		}
		w = min(w+step, len(in))
		n, err := s.Scan(in[:w])
		if err != nil || n > 0 || w == len(in) {
			return n, err
		}
	}
}

// goldenPackets returns the encoded packets of proto's golden vectors.
func goldenPackets(t testing.TB) [][]byte {
	f, err := os.ReadFile("../proto/testdata/golden.jsonl")
	if err != nil {
		t.Skipf("no golden vectors: %v", err)
	}
	var out [][]byte
	for _, line := range bytes.Split(f, []byte("\n")) {
		var v struct{ Hex string }
		if len(line) == 0 || json.Unmarshal(line, &v) != nil {
			continue
		}
		if b, err := hex.DecodeString(v.Hex); err == nil {
			out = append(out, b)
		}
	}
	return out
}

// The scanner finds every golden packet, however the bytes come, and sees
// every prefix of it as incomplete.
func TestFrameScannerGolden(t *testing.T) {
	pkts := goldenPackets(t)
	if len(pkts) == 0 {
		t.Skip("no golden vectors")
	}
	for _, p := range pkts {
		in := append(append([]byte{}, p...), 0x93, 0x00) // the next packet's start
		for _, chunks := range [][]int{nil, {0}, {2, 0, 5}, {1 << 20}} {
			n, err := scanSplit(in, DefaultMaxPacketSize, chunks)
			if err != nil || n != len(p) {
				t.Fatalf("% x split %v: got %d, %v; want %d", p, chunks, n, err, len(p))
			}
		}
		step := max(1, len(p)/64) // every prefix of small packets, 64 of big ones
		for i := 0; i < len(p); i += step {
			s := proto.FrameScanner{MaxSize: DefaultMaxPacketSize}
			if n, err := s.Scan(p[:i]); n != 0 || err != nil {
				t.Fatalf("% x prefix %d: got %d, %v", p, i, n, err)
			}
		}
	}
}

// FuzzFrameScanner checks that the scanner, fed in arbitrary chunks as the
// link's reader feeds it, finds the packet proto.FrameSize finds in the
// whole input, or fails when it fails.
func FuzzFrameScanner(f *testing.F) {
	for _, p := range goldenPackets(f) {
		f.Add(p, []byte{3, 1})
	}
	f.Add([]byte{0x93, 0x00, 0x02, 0x90}, []byte{})
	f.Add([]byte{0x93, 0x00, 0x06, 0x92, 0xcb, 0, 0, 0, 0, 0, 0, 0, 0, 0xdd, 0x7f, 0xff, 0xff, 0xff}, []byte{0})
	f.Fuzz(func(t *testing.T, in, split []byte) {
		const max = 1 << 16
		want, wantErr := proto.FrameSize(in, max)
		chunks := make([]int, len(split))
		for i, c := range split {
			chunks[i] = int(c)
		}
		got, err := scanSplit(in, max, chunks)
		switch {
		case wantErr != nil:
			if err == nil && got != 0 {
				t.Fatalf("FrameSize: %v; scanner: %d", wantErr, got)
			}
			if errors.Is(wantErr, proto.ErrFrameTooBig) != errors.Is(err, proto.ErrFrameTooBig) && err != nil {
				t.Fatalf("FrameSize: %v; scanner: %v", wantErr, err)
			}
		case want > 0:
			if err != nil || got != want {
				t.Fatalf("FrameSize: %d; scanner: %d, %v", want, got, err)
			}
		default: // incomplete
			if got != 0 {
				t.Fatalf("FrameSize: incomplete; scanner: %d, %v", got, err)
			}
		}
	})
}

// A big packet of many small objects goes through a link intact.
func TestManySmallObjects(t *testing.T) {
	cli, srv := pair(t, "tcp4", Config{}, Config{})
	m := &proto.AskFinishTransaction{TTid: 1, OidList: make([]proto.Oid, 1<<18)}
	for i := range m.OidList {
		m.OidList[i] = proto.Oid(i)
	}
	if err := cli.Send(m); err != nil {
		t.Fatal(err)
	}
	got := recvReq(t, srv).Msg.(*proto.AskFinishTransaction)
	if len(got.OidList) != len(m.OidList) || got.OidList[12345] != 12345 {
		t.Fatalf("got %d oids", len(got.OidList))
	}
}

// BenchmarkScanManySmallObjects scans a 10 MB packet of a million oids
// arriving 4 KiB at a time: linear in the packet size, where rescanning
// from the start after each read (proto.FrameSize) would walk about 1.3
// billion objects.
func BenchmarkScanManySmallObjects(b *testing.B) {
	m := &proto.AskFinishTransaction{TTid: 1, OidList: make([]proto.Oid, 1<<20)}
	in := proto.AppendPacket(nil, 0, m)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if n, err := scanSplit(in, DefaultMaxPacketSize, []int{4095}); n != len(in) || err != nil {
			b.Fatalf("got %d, %v", n, err)
		}
	}
}

// FuzzLinkStream feeds arbitrary bytes, split at arbitrary points, to a
// link's reader: it must never panic nor hang, and must either deliver
// packets or close with a reason.
func FuzzLinkStream(f *testing.F) {
	for _, p := range goldenPackets(f) {
		f.Add(p, []byte{7})
	}
	f.Add(proto.AppendPacket(nil, 0, &proto.Ping{}), []byte{0})
	f.Add([]byte{0x93, 0x05, 0xcd, 0x80, 0x01, 0x93, 0xd4, 0x04, 0x00, 0xc0, 0xc0}, []byte{1})
	f.Fuzz(func(t *testing.T, in, split []byte) {
		ours, theirs := net.Pipe()
		l := newLink(ours, nil, Config{MaxPacketSize: 1 << 16, AbortTimeout: time.Second})
		l.start()
		go io.Copy(io.Discard, theirs) // Pongs and Errors sent back
		go func() {
			for i, rest := 0, in; len(rest) > 0; i++ {
				n := len(rest)
				if len(split) > 0 {
					n = min(n, 1+int(split[i%len(split)]))
				}
				if _, err := theirs.Write(rest[:n]); err != nil {
					return
				}
				rest = rest[n:]
			}
			theirs.Close()
		}()
		select {
		case <-l.Done():
		case <-time.After(testTimeout):
			t.Fatal("link did not close at the end of its input")
		}
		if l.Err() == nil {
			t.Fatal("closed link without a reason")
		}
		for {
			r, err := l.Recv(t.Context())
			if err != nil {
				break
			}
			if r.Msg == nil {
				t.Fatal("request without a message")
			}
		}
	})
}
