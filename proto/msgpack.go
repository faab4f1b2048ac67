package proto

// msgpack primitives used by the packet codec.
//
// They are written here rather than taken from a msgpack library because the
// codec needs properties that general-purpose readers do not combine:
// every declared length or count is checked against the bytes that remain
// before anything is allocated, integers of any width and signedness are
// accepted but range-checked against the Go field, str is accepted where
// bin is expected, enums accept every ext container form but must hold
// exactly one integer, and errors are plain values (no panics) that the
// generated code wraps with the packet and argument that failed.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// msgpack format bytes.
const (
	mpNil      = 0xc0
	mpFalse    = 0xc2
	mpTrue     = 0xc3
	mpBin8     = 0xc4
	mpBin16    = 0xc5
	mpBin32    = 0xc6
	mpExt8     = 0xc7
	mpExt16    = 0xc8
	mpExt32    = 0xc9
	mpFloat32  = 0xca
	mpFloat64  = 0xcb
	mpUint8    = 0xcc
	mpUint16   = 0xcd
	mpUint32   = 0xce
	mpUint64   = 0xcf
	mpInt8     = 0xd0
	mpInt16    = 0xd1
	mpInt32    = 0xd2
	mpInt64    = 0xd3
	mpFixExt1  = 0xd4
	mpFixExt2  = 0xd5
	mpFixExt4  = 0xd6
	mpFixExt8  = 0xd7
	mpFixExt16 = 0xd8
	mpStr8     = 0xd9
	mpStr16    = 0xda
	mpStr32    = 0xdb
	mpArray16  = 0xdc
	mpArray32  = 0xdd
	mpMap16    = 0xde
	mpMap32    = 0xdf
)

// maxValueDepth bounds the nesting of free-form [Value]s (RequestIdentification
// extra, NotifyMonitorInformation), the only recursive part of the codec.
const maxValueDepth = 32

// ---- encoding ----

func appendNil(b []byte) []byte { return append(b, mpNil) }

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, mpTrue)
	}
	return append(b, mpFalse)
}

// appendUint appends v in its smallest form, as Python's packer does.
func appendUint(b []byte, v uint64) []byte {
	switch {
	case v < 0x80:
		return append(b, byte(v))
	case v <= math.MaxUint8:
		return append(b, mpUint8, byte(v))
	case v <= math.MaxUint16:
		return append(b, mpUint16, byte(v>>8), byte(v))
	case v <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, mpUint32), uint32(v))
	default:
		return binary.BigEndian.AppendUint64(append(b, mpUint64), v)
	}
}

// appendInt appends v in its smallest form: unsigned forms for v >= 0,
// negative fixint or int8..int64 otherwise.
func appendInt(b []byte, v int64) []byte {
	switch {
	case v >= 0:
		return appendUint(b, uint64(v))
	case v >= -32:
		return append(b, byte(v))
	case v >= math.MinInt8:
		return append(b, mpInt8, byte(v))
	case v >= math.MinInt16:
		return append(b, mpInt16, byte(v>>8), byte(v))
	case v >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(b, mpInt32), uint32(v))
	default:
		return binary.BigEndian.AppendUint64(append(b, mpInt64), uint64(v))
	}
}

func appendFloat(b []byte, v float64) []byte {
	return binary.BigEndian.AppendUint64(append(b, mpFloat64), math.Float64bits(v))
}

func appendBinHeader(b []byte, n int) []byte {
	switch {
	case n <= math.MaxUint8:
		return append(b, mpBin8, byte(n))
	case n <= math.MaxUint16:
		return append(b, mpBin16, byte(n>>8), byte(n))
	default:
		return binary.BigEndian.AppendUint32(append(b, mpBin32), uint32(n))
	}
}

func appendBin(b []byte, v []byte) []byte { return append(appendBinHeader(b, len(v)), v...) }

func appendBinString(b []byte, v string) []byte {
	return append(appendBinHeader(b, len(v)), v...)
}

func appendStr(b []byte, v string) []byte {
	n := len(v)
	switch {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		b = append(b, mpStr8, byte(n))
	case n <= math.MaxUint16:
		b = append(b, mpStr16, byte(n>>8), byte(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, mpStr32), uint32(n))
	}
	return append(b, v...)
}

func appendArrayHeader(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x90|byte(n))
	case n <= math.MaxUint16:
		return append(b, mpArray16, byte(n>>8), byte(n))
	default:
		return binary.BigEndian.AppendUint32(append(b, mpArray32), uint32(n))
	}
}

func appendMapHeader(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x80|byte(n))
	case n <= math.MaxUint16:
		return append(b, mpMap16, byte(n>>8), byte(n))
	default:
		return binary.BigEndian.AppendUint32(append(b, mpMap32), uint32(n))
	}
}

// appendP64 appends an 8-byte big-endian bin (oid, tid).
func appendP64(b []byte, v uint64) []byte {
	return binary.BigEndian.AppendUint64(append(b, mpBin8, 8), v)
}

// appendEnum appends an enum member as ext type ext holding the
// msgpack-encoded value: fixext1 "d4 ext v" for every defined value.
func appendEnum(b []byte, ext byte, v uint8) []byte {
	if v < 0x80 {
		return append(b, mpFixExt1, ext, v)
	}
	return append(b, mpFixExt2, ext, mpUint8, v)
}

// ---- decoding ----

// errShort is the cause when the input ends inside an object.
var errShort = errors.New("unexpected end of data")

// decoder reads msgpack objects from b starting at i. The first error is
// sticky: once err is set, every read returns a zero value, so generated
// code checks err once per argument.
type decoder struct {
	b   []byte
	i   int
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, args...)
	}
}

func (d *decoder) failType(want string) {
	if d.err != nil {
		return
	}
	if d.i >= len(d.b) {
		d.err = errShort
		return
	}
	d.err = fmt.Errorf("at byte %d: want %s, got %s", d.i, want, describe(d.b[d.i]))
}

// remaining is the number of unread bytes.
func (d *decoder) remaining() int { return len(d.b) - d.i }

// peek returns the next format byte; ok is false at the end or after an error.
func (d *decoder) peek() (byte, bool) {
	if d.err != nil {
		return 0, false
	}
	if d.i >= len(d.b) {
		d.err = errShort
		return 0, false
	}
	return d.b[d.i], true
}

// take consumes n bytes; n has been checked to be non-negative.
func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n > len(d.b)-d.i {
		d.err = errShort
		return nil
	}
	p := d.b[d.i : d.i+n : d.i+n]
	d.i += n
	return p
}

func (d *decoder) u8() byte {
	p := d.take(1)
	if p == nil {
		return 0
	}
	return p[0]
}

func (d *decoder) u16() uint16 {
	p := d.take(2)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint16(p)
}

func (d *decoder) u32() uint32 {
	p := d.take(4)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint32(p)
}

func (d *decoder) u64() uint64 {
	p := d.take(8)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint64(p)
}

// tryNil consumes a nil and reports whether there was one.
func (d *decoder) tryNil() bool {
	c, ok := d.peek()
	if ok && c == mpNil {
		d.i++
		return true
	}
	return false
}

// integer reads any msgpack integer form. neg tells whether v is negative
// (then v holds the two's complement int64 value).
func (d *decoder) integer() (v uint64, neg bool) {
	c, ok := d.peek()
	if !ok {
		return 0, false
	}
	switch {
	case c < 0x80:
		d.i++
		return uint64(c), false
	case c >= 0xe0:
		d.i++
		return uint64(int64(int8(c))), true
	}
	d.i++
	var s int64
	switch c {
	case mpUint8:
		return uint64(d.u8()), false
	case mpUint16:
		return uint64(d.u16()), false
	case mpUint32:
		return uint64(d.u32()), false
	case mpUint64:
		return d.u64(), false
	case mpInt8:
		s = int64(int8(d.u8()))
	case mpInt16:
		s = int64(int16(d.u16()))
	case mpInt32:
		s = int64(int32(d.u32()))
	case mpInt64:
		s = int64(d.u64())
	default:
		d.i--
		d.failType("integer")
		return 0, false
	}
	return uint64(s), s < 0
}

// uint reads a non-negative integer not above max.
func (d *decoder) uint(max uint64) uint64 {
	at := d.i
	v, neg := d.integer()
	if d.err != nil {
		return 0
	}
	if neg || v > max {
		if neg {
			d.fail("at byte %d: integer %d out of range [0, %d]", at, int64(v), max)
		} else {
			d.fail("at byte %d: integer %d out of range [0, %d]", at, v, max)
		}
		return 0
	}
	return v
}

// int reads an integer in [min, max].
func (d *decoder) int(min, max int64) int64 {
	at := d.i
	v, neg := d.integer()
	if d.err != nil {
		return 0
	}
	if !neg && v > math.MaxInt64 || int64(v) < min || int64(v) > max {
		if neg {
			d.fail("at byte %d: integer %d out of range [%d, %d]", at, int64(v), min, max)
		} else {
			d.fail("at byte %d: integer %d out of range [%d, %d]", at, v, min, max)
		}
		return 0
	}
	return int64(v)
}

func (d *decoder) bool() bool {
	c, ok := d.peek()
	if !ok {
		return false
	}
	switch c {
	case mpTrue:
		d.i++
		return true
	case mpFalse:
		d.i++
		return false
	}
	d.failType("bool")
	return false
}

// float accepts float64 and, as leniency, float32.
func (d *decoder) float() float64 {
	c, ok := d.peek()
	if !ok {
		return 0
	}
	switch c {
	case mpFloat64:
		d.i++
		return math.Float64frombits(d.u64())
	case mpFloat32:
		d.i++
		return float64(math.Float32frombits(d.u32()))
	}
	d.failType("float")
	return 0
}

// bytes reads a bin (or, as leniency, a str) and returns a sub-slice of the
// input: no copy is made.
func (d *decoder) bytes() []byte {
	c, ok := d.peek()
	if !ok {
		return nil
	}
	var n uint32 // not int: a 32-bit int could turn it negative
	switch {
	case c >= 0xa0 && c <= 0xbf:
		d.i++
		n = uint32(c & 0x1f)
	case c == mpBin8 || c == mpStr8:
		d.i++
		n = uint32(d.u8())
	case c == mpBin16 || c == mpStr16:
		d.i++
		n = uint32(d.u16())
	case c == mpBin32 || c == mpStr32:
		d.i++
		n = d.u32()
	default:
		d.failType("bin")
		return nil
	}
	if d.err != nil {
		return nil
	}
	if uint64(n) > uint64(d.remaining()) {
		d.fail("at byte %d: bin length %d exceeds the %d bytes left", d.i, n, d.remaining())
		return nil
	}
	p := d.take(int(n))
	if p == nil {
		p = []byte{}
	}
	return p
}

// binBytes reads a bin into a non-nil slice aliasing the input.
func (d *decoder) binBytes() []byte {
	p := d.bytes()
	if p == nil && d.err == nil {
		p = []byte{}
	}
	return p
}

func (d *decoder) string() string { return string(d.bytes()) }

// p64 reads an 8-byte bin; nil decodes as the invalid id (all ones).
func (d *decoder) p64() uint64 {
	if d.tryNil() {
		return math.MaxUint64
	}
	at := d.i
	p := d.bytes()
	if d.err != nil {
		return 0
	}
	if len(p) != 8 {
		d.fail("at byte %d: want 8-byte id, got %d bytes", at, len(p))
		return 0
	}
	return binary.BigEndian.Uint64(p)
}

// count reads a container length and checks that n objects of at least
// minSize bytes each can fit in what remains, before the caller allocates.
func (d *decoder) count(n uint32, what string, minSize int) int {
	if d.err != nil {
		return 0
	}
	if uint64(n)*uint64(minSize) > uint64(d.remaining()) {
		d.fail("at byte %d: %s of %d elements cannot fit in the %d bytes left", d.i, what, n, d.remaining())
		return 0
	}
	return int(n)
}

// arrayHeader reads an array header; minSize is the smallest encoding of
// one element (pairs of a map count twice).
func (d *decoder) arrayHeader(minSize int) int {
	c, ok := d.peek()
	if !ok {
		return 0
	}
	var n uint32
	switch {
	case c >= 0x90 && c <= 0x9f:
		d.i++
		n = uint32(c & 0x0f)
	case c == mpArray16:
		d.i++
		n = uint32(d.u16())
	case c == mpArray32:
		d.i++
		n = d.u32()
	default:
		d.failType("array")
		return 0
	}
	return d.count(n, "array", minSize)
}

// tuple reads an array header that must have exactly n elements.
func (d *decoder) tuple(n int) {
	at := d.i
	got := d.arrayHeader(1)
	if d.err == nil && got != n {
		d.fail("at byte %d: want array of %d elements, got %d", at, n, got)
	}
}

// mapHeader reads a map header; minSize is the smallest encoding of one
// key+value pair.
func (d *decoder) mapHeader(minSize int) int {
	c, ok := d.peek()
	if !ok {
		return 0
	}
	var n uint32
	switch {
	case c >= 0x80 && c <= 0x8f:
		d.i++
		n = uint32(c & 0x0f)
	case c == mpMap16:
		d.i++
		n = uint32(d.u16())
	case c == mpMap32:
		d.i++
		n = d.u32()
	default:
		d.failType("map")
		return 0
	}
	return d.count(n, "map", minSize)
}

// extHeader reads the header of any ext container and returns its type
// code and payload.
func (d *decoder) extHeader() (typ int8, payload []byte) {
	c, ok := d.peek()
	if !ok {
		return 0, nil
	}
	var n uint32
	switch c {
	case mpFixExt1:
		n = 1
	case mpFixExt2:
		n = 2
	case mpFixExt4:
		n = 4
	case mpFixExt8:
		n = 8
	case mpFixExt16:
		n = 16
	case mpExt8, mpExt16, mpExt32:
	default:
		d.failType("ext")
		return 0, nil
	}
	d.i++
	switch c {
	case mpExt8:
		n = uint32(d.u8())
	case mpExt16:
		n = uint32(d.u16())
	case mpExt32:
		n = d.u32()
	}
	typ = int8(d.u8())
	if d.err != nil {
		return 0, nil
	}
	if uint64(n) > uint64(d.remaining()) {
		d.fail("at byte %d: ext length %d exceeds the %d bytes left", d.i, n, d.remaining())
		return 0, nil
	}
	return typ, d.take(int(n))
}

// enum reads an enum member of ext type ext whose value must be below
// limit. The payload must be exactly one msgpack integer.
func (d *decoder) enum(ext int8, limit int, name string) uint8 {
	// Fast path for what Python sends: fixext1 holding a positive fixint.
	if d.err == nil && d.i+2 < len(d.b) && d.b[d.i] == mpFixExt1 && int8(d.b[d.i+1]) == ext && int(d.b[d.i+2]) < limit {
		v := d.b[d.i+2]
		d.i += 3
		return v
	}
	at := d.i
	typ, payload := d.extHeader()
	if d.err != nil {
		return 0
	}
	if typ != ext {
		d.fail("at byte %d: want %s (ext %d), got ext type %d", at, name, ext, typ)
		return 0
	}
	v, ok := enumPayload(payload, limit)
	if !ok {
		d.fail("at byte %d: invalid %s value (payload % x)", at, name, payload)
		return 0
	}
	return v
}

// enumPayload decodes an ext payload holding one integer in [0, limit).
func enumPayload(payload []byte, limit int) (uint8, bool) {
	pd := decoder{b: payload}
	v, neg := pd.integer()
	if pd.err != nil || pd.i != len(payload) || neg || v >= uint64(limit) {
		return 0, false
	}
	return uint8(v), true
}

// describe names a format byte for error messages.
func describe(c byte) string {
	switch {
	case c < 0x80 || c >= 0xe0:
		return fmt.Sprintf("integer (0x%02x)", c)
	case c <= 0x8f:
		return fmt.Sprintf("map (0x%02x)", c)
	case c <= 0x9f:
		return fmt.Sprintf("array (0x%02x)", c)
	case c <= 0xbf:
		return fmt.Sprintf("str (0x%02x)", c)
	}
	switch c {
	case mpNil:
		return "nil"
	case mpFalse, mpTrue:
		return "bool"
	case mpBin8, mpBin16, mpBin32:
		return fmt.Sprintf("bin (0x%02x)", c)
	case mpExt8, mpExt16, mpExt32, mpFixExt1, mpFixExt2, mpFixExt4, mpFixExt8, mpFixExt16:
		return fmt.Sprintf("ext (0x%02x)", c)
	case mpFloat32, mpFloat64:
		return "float"
	case mpUint8, mpUint16, mpUint32, mpUint64, mpInt8, mpInt16, mpInt32, mpInt64:
		return fmt.Sprintf("integer (0x%02x)", c)
	case mpStr8, mpStr16, mpStr32:
		return fmt.Sprintf("str (0x%02x)", c)
	case mpArray16, mpArray32:
		return fmt.Sprintf("array (0x%02x)", c)
	case mpMap16, mpMap32:
		return fmt.Sprintf("map (0x%02x)", c)
	}
	return fmt.Sprintf("invalid byte 0x%02x", c)
}
