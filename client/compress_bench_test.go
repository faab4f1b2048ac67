package client

import (
	"math/rand/v2"
	"testing"
)

// compressInputs returns incompressible data (kept as is by compress) and
// text (compressed) of 1 KiB and 64 KiB.
func compressInputs() []struct {
	name string
	data []byte
} {
	rng := rand.New(rand.NewPCG(1, 2))
	noise := make([]byte, 64<<10)
	for i := range noise {
		noise[i] = byte(rng.Uint32())
	}
	text := make([]byte, 64<<10)
	for i := range text {
		text[i] = "persistent object state "[i%24]
	}
	return []struct {
		name string
		data []byte
	}{
		{"noise-1K", noise[:1<<10]}, {"text-1K", text[:1<<10]},
		{"noise-64K", noise}, {"text-64K", text},
	}
}

// BenchmarkCompress measures the compression attempt of a store.
func BenchmarkCompress(b *testing.B) {
	for _, c := range compressInputs() {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.data)))
			for b.Loop() {
				_, _, buf := compress(c.data)
				releaseCompressed(buf)
			}
		})
	}
}

// BenchmarkDecompress measures the decompression of a load.
func BenchmarkDecompress(b *testing.B) {
	for _, c := range compressInputs() {
		comp, payload, _ := compress(c.data)
		if comp == 0 {
			continue
		}
		payload = append([]byte(nil), payload...)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.data)))
			for b.Loop() {
				if _, err := decompress(payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
