package client

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkCompress measures the compression attempt of a store: 1 KiB of
// incompressible data (kept as is) and of text (compressed).
func BenchmarkCompress(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	noise := make([]byte, 1024)
	for i := range noise {
		noise[i] = byte(rng.Uint32())
	}
	text := make([]byte, 1024)
	for i := range text {
		text[i] = "persistent object state "[i%24]
	}
	for _, c := range []struct {
		name string
		data []byte
	}{{"noise", noise}, {"text", text}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.data)))
			for b.Loop() {
				compress(c.data)
			}
		})
	}
}
