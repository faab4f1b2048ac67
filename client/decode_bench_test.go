package client

import (
	"crypto/sha1"
	"testing"

	"github.com/neogo/neo/proto"
)

// BenchmarkDecodeObject measures the client's own work on an answer to a
// load: the SHA-1 verification, and the decompression of compressed data
// (what a load costs beyond the round trip and the decoding of the packet).
func BenchmarkDecodeObject(b *testing.B) {
	for _, c := range compressInputs() {
		comp, payload, _ := compress(c.data)
		payload = append([]byte(nil), payload...)
		sum := sha1.Sum(payload)
		ans := &proto.AnswerObject{Oid: 1, Serial: 2, NextSerial: proto.InvalidTid, DataSerial: proto.InvalidTid,
			Compression: proto.Some(comp), Checksum: sum[:], Data: payload}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.data)))
			for b.Loop() {
				if _, err := decodeObject(1, ans); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
