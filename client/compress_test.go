package client

import (
	"bytes"
	stdzlib "compress/zlib"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"testing"
)

// compressCases are inputs of compress: empty, tiny, incompressible,
// compressible, mixed.
func compressCases() map[string][]byte {
	rng := rand.New(rand.NewPCG(3, 4))
	noise := make([]byte, 200<<10)
	for i := range noise {
		noise[i] = byte(rng.Uint32())
	}
	mixed := bytes.Clone(noise[:100<<10])
	for i := 0; i < len(mixed); i += 2 {
		mixed[i] = 'a'
	}
	return map[string][]byte{
		"empty":     {},
		"tiny":      []byte("abc"),
		"noise-1K":  noise[:1<<10],
		"noise-big": noise,
		"text-1K":   bytes.Repeat([]byte("persistent "), 100),
		"text-big":  bytes.Repeat([]byte("persistent object state "), 20<<10),
		"zeros":     make([]byte, 300<<10),
		"mixed":     mixed,
	}
}

// mustCompress are the cases that compress must compress.
var mustCompress = map[string]bool{"text-1K": true, "text-big": true, "zeros": true}

// TestCompressStandardZlib checks that what compress stores is plain zlib
// (protocol.md §4.3), as the standard library and neoppod's Python
// client decode it, and that decompress reads it back.
func TestCompressStandardZlib(t *testing.T) {
	for name, data := range compressCases() {
		t.Run(name, func(t *testing.T) {
			comp, payload, buf := compress(data)
			defer releaseCompressed(buf)
			if comp == 0 {
				if !bytes.Equal(payload, data) {
					t.Fatal("kept uncompressed but changed")
				}
				// Level 1 finds no repeats in mixed: it may keep it.
				if mustCompress[name] {
					t.Fatalf("%d compressible bytes not compressed", len(data))
				}
				return
			}
			if len(payload) >= len(data) {
				t.Fatalf("compressed %d bytes into %d", len(data), len(payload))
			}
			r, err := stdzlib.NewReader(bytes.NewReader(payload))
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("standard zlib reader: %d bytes, %v; want %d bytes", len(got), err, len(data))
			}
			got, err = decompress(payload)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("decompress: %d bytes, %v; want %d bytes", len(got), err, len(data))
			}
		})
	}
}

// TestDecompressErrors checks that a corrupt payload fails and that the
// pooled reader recovers for the next one.
func TestDecompressErrors(t *testing.T) {
	good := []byte("good data good data good data good data good data")
	var b bytes.Buffer
	w := stdzlib.NewWriter(&b)
	w.Write(good)
	w.Close()
	valid := b.Bytes()
	badSum := bytes.Clone(valid)
	badSum[len(badSum)-1] ^= 1
	for _, tc := range []struct {
		name    string
		payload []byte
	}{
		{"empty", nil},
		{"not zlib", []byte("plain text, not zlib")},
		{"truncated", valid[:len(valid)/2]},
		{"bad checksum", badSum},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := decompress(tc.payload); err == nil {
				t.Fatalf("decompress = %q, nil; want an error", got)
			}
			if got, err := decompress(valid); err != nil || !bytes.Equal(got, good) {
				t.Fatalf("decompress after a failure = %q, %v", got, err)
			}
		})
	}
}

// TestCompressPythonZlib has Python's zlib, which neoppod's client uses,
// decompress what compress produced; it runs where the peers' Python is
// set up ($PY, see shared/peers/env.sh) and is skipped elsewhere.
func TestCompressPythonZlib(t *testing.T) {
	py := os.Getenv("PY")
	if py == "" {
		t.Skip("PY not set: no Python to check with")
	}
	for name, data := range compressCases() {
		comp, payload, buf := compress(data)
		if comp == 0 {
			releaseCompressed(buf)
			continue
		}
		cmd := exec.Command(py, "-c", "import sys, zlib; sys.stdout.buffer.write(zlib.decompress(sys.stdin.buffer.read()))")
		cmd.Stdin = bytes.NewReader(payload)
		out, err := cmd.Output()
		releaseCompressed(buf)
		if err != nil || !bytes.Equal(out, data) {
			t.Errorf("%s: Python's zlib.decompress: %d bytes, %v; want %d bytes", name, len(out), err, len(data))
		}
	}
}
