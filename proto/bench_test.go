package proto

import (
	"bytes"
	"reflect"
	"testing"
)

// benchMsgs are the messages of the codec benchmarks.
func benchMsgs() []struct {
	name string
	msg  Msg
} {
	data := bytes.Repeat([]byte("0123456789abcdef"), 4096/16)
	sum := bytes.Repeat([]byte{0xab}, 20)
	rows := make([][]CellInfo, 1000)
	for i := range rows {
		rows[i] = []CellInfo{{NID: NodeID(i%7 + 1), State: UP_TO_DATE}, {NID: NodeID(i%5 + 8), State: OUT_OF_DATE}}
	}
	return []struct {
		name string
		msg  Msg
	}{
		{"AnswerObject/4KiB", &AnswerObject{Oid: 1, Serial: 0x03f47f9557777777, NextSerial: InvalidTid,
			Compression: Some(uint8(0)), Checksum: sum, Data: data, DataSerial: InvalidTid}},
		{"AskStoreObject/4KiB", &AskStoreObject{Oid: 1, Serial: 0x03f47f9557777777, Checksum: sum, Data: data,
			DataSerial: InvalidTid, TTid: 0x03f47f9557777778}},
		{"AnswerPartitionTable/1000x2", &AnswerPartitionTable{PTid: 17, NumReplicas: 1, Rows: rows}},
	}
}

// BenchmarkEncode measures AppendPacket into a reused buffer.
func BenchmarkEncode(b *testing.B) {
	for _, bm := range benchMsgs() {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			buf := AppendPacket(nil, 1, bm.msg)
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				buf = AppendPacket(buf[:0], 1, bm.msg)
			}
		})
	}
}

// BenchmarkDecode measures FrameSize + DecodePacket of one packet.
func BenchmarkDecode(b *testing.B) {
	for _, bm := range benchMsgs() {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			frame := AppendPacket(nil, 1, bm.msg)
			b.SetBytes(int64(len(frame)))
			for b.Loop() {
				n, err := FrameSize(frame, len(frame))
				if err != nil || n != len(frame) {
					b.Fatal(n, err)
				}
				if _, _, err := DecodePacket(frame[:n]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCodec compares the generated codec with the reflection-driven
// one of reflect_test.go on the args of the same messages: the figures
// that decided for code generation.
func BenchmarkCodec(b *testing.B) {
	for _, bm := range benchMsgs() {
		args := bm.msg.NEOMsgEncode(nil)
		typ := reflect.TypeOf(bm.msg).Elem()
		b.Run("encode/generated/"+bm.name, func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, len(args))
			for b.Loop() {
				buf = bm.msg.NEOMsgEncode(buf[:0])
			}
		})
		b.Run("encode/reflection/"+bm.name, func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, len(args))
			v := reflect.ValueOf(bm.msg).Elem()
			for b.Loop() {
				buf = reflEncode(buf[:0], v, "")
			}
		})
		b.Run("decode/generated/"+bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				m := reflect.New(typ).Interface().(Msg)
				if _, err := m.NEOMsgDecode(args); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("decode/reflection/"+bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				m := reflect.New(typ).Interface().(Msg)
				if _, err := reflDecodeMsg(m, args); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFrameSize measures delimiting one complete packet.
func BenchmarkFrameSize(b *testing.B) {
	for _, bm := range benchMsgs() {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			frame := AppendPacket(nil, 1, bm.msg)
			for b.Loop() {
				if n, err := FrameSize(frame, len(frame)); err != nil || n != len(frame) {
					b.Fatal(n, err)
				}
			}
		})
	}
}
