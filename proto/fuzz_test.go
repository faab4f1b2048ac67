package proto

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"testing"
)

// fuzzSeeds returns encoded packets: the samples, the examples of the spec
// and, when present, neoppod's golden vectors.
func fuzzSeeds(f *testing.F) [][]byte {
	var seeds [][]byte
	for i, m := range sampleMsgs() {
		seeds = append(seeds, AppendPacket(nil, uint32(i), m))
	}
	for _, ex := range specExamples {
		seeds = append(seeds, unhex(f, ex.hex))
	}
	file, err := os.Open("testdata/golden.jsonl")
	if errors.Is(err, os.ErrNotExist) {
		return seeds
	}
	if err != nil {
		f.Fatal(err)
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var v struct {
			Hex string `json:"hex"`
		}
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			f.Fatal(err)
		}
		b, err := hex.DecodeString(v.Hex)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	if err := sc.Err(); err != nil {
		f.Fatal(err)
	}
	return seeds
}

// FuzzDecode checks that DecodePacket never panics, agrees with FrameSize,
// and that decode→encode→decode is stable.
func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		id, m, err := DecodePacket(data)
		if err != nil {
			if !errors.Is(err, ErrDecode) {
				t.Fatalf("error %v does not match ErrDecode", err)
			}
			return
		}
		if n, err := FrameSize(data, len(data)); n != len(data) || err != nil {
			t.Fatalf("DecodePacket accepts % x but FrameSize = %d, %v", data, n, err)
		}
		enc := AppendPacket(nil, id, m)
		id2, m2, err := DecodePacket(enc)
		if err != nil {
			t.Fatalf("re-encoded %s does not decode: %v\n% x", MsgName(m.NEOMsgCode()), err, enc)
		}
		if id2 != id || m2.NEOMsgCode() != m.NEOMsgCode() {
			t.Fatalf("re-decoded id/code %d/%#x, want %d/%#x", id2, m2.NEOMsgCode(), id, m.NEOMsgCode())
		}
		if enc2 := AppendPacket(nil, id2, m2); !bytes.Equal(enc, enc2) {
			t.Fatalf("%s: unstable encoding\n% x\n% x", MsgName(m.NEOMsgCode()), enc, enc2)
		}
	})
}

// FuzzPacketStream feeds a byte stream to a FrameScanner in pseudo-random
// chunks, as a reader would, and checks that it yields the same packets
// (and the same error at the same place) as FrameSize with the whole
// stream at once.
func FuzzPacketStream(f *testing.F) {
	seeds := fuzzSeeds(f)
	for i := 0; i+3 <= len(seeds); i += 3 {
		stream := bytes.Join(seeds[i:i+3], nil)
		f.Add(stream, uint64(i), uint16(1<<15))
	}
	f.Add([]byte(nil), uint64(0), uint16(100))
	f.Fuzz(func(t *testing.T, stream []byte, seed uint64, max uint16) {
		maxSize := int(max) + 1

		// Reference: frames found with all the bytes available.
		type result struct {
			frame []byte
			err   error
		}
		var want []result
		for rest := stream; len(rest) > 0; {
			n, err := FrameSize(rest, maxSize)
			if err != nil {
				want = append(want, result{err: err})
				break
			}
			if n == 0 {
				break
			}
			if n > maxSize || n > len(rest) {
				t.Fatalf("FrameSize = %d beyond the limit %d or the %d bytes", n, maxSize, len(rest))
			}
			want = append(want, result{frame: rest[:n]})
			rest = rest[n:]
		}

		// The same stream, arriving in chunks.
		rng := rand.New(rand.NewPCG(seed, seed>>7))
		var got []result
		var buf []byte
		scan := FrameScanner{MaxSize: maxSize}
	feed:
		for off := 0; off < len(stream); {
			chunk := 1 + rng.IntN(min(len(stream)-off, 64))
			buf = append(buf, stream[off:off+chunk]...)
			off += chunk
			for {
				n, err := scan.Scan(buf)
				if err != nil {
					got = append(got, result{err: err})
					break feed
				}
				if n == 0 {
					break
				}
				got = append(got, result{frame: bytes.Clone(buf[:n])})
				buf = buf[n:]
			}
		}
		if len(got) != len(want) {
			t.Fatalf("chunked: %d results, whole: %d", len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i].frame, want[i].frame) || (got[i].err == nil) != (want[i].err == nil) ||
				got[i].err != nil && errors.Is(got[i].err, ErrFrameTooBig) != errors.Is(want[i].err, ErrFrameTooBig) {
				t.Fatalf("result %d: chunked %x %v, whole %x %v", i, got[i].frame, got[i].err, want[i].frame, want[i].err)
			}
		}
	})
}
