package proto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// FrameScanner finds where each packet ends in a byte stream that arrives
// in pieces. Packets have no length prefix (see the package doc), so the
// end of one is found by walking the headers of its msgpack objects.
// FrameScanner remembers how far it walked, so that a reader calling
// [FrameScanner.Scan] after every read walks each byte once: rescanning
// from the packet's start instead would be quadratic in the size of a
// packet made of many small objects (a list of a million oids arriving
// 4 KiB at a time).
//
// Every declared length or element count is checked against MaxSize as
// soon as its header is seen, before the bytes it announces arrive: an
// oversize packet is rejected without being buffered. Scan allocates
// nothing (except for the error it returns) and does not recurse.
//
// The zero FrameScanner rejects every packet: set MaxSize. A FrameScanner
// is used by one goroutine at a time.
type FrameScanner struct {
	// MaxSize is the largest packet accepted, in bytes.
	MaxSize int

	started bool   // inside a packet: pos and pending are valid
	pos     int    // offset of the next object to walk; may be past the input
	pending uint64 // objects still to walk, the args array included
}

// Scan returns the length of the complete packet at the start of buf, or
// (0, nil) if buf holds only a prefix of it. Between calls that return
// (0, nil), buf must start at the same packet and only grow (it may move,
// as when a reader compacts or grows its buffer); after a call that
// returns a length or an error, the next call starts a new packet.
//
// The errors are those of [FrameSize].
func (s *FrameScanner) Scan(buf []byte) (int, error) {
	if !s.started {
		pos, err := envelope(buf)
		if err != nil || pos == 0 {
			return 0, err
		}
		s.started, s.pos, s.pending = true, pos, 1
	}
	limit := uint64(max(s.MaxSize, 0))
	pos, pending := s.pos, s.pending
	for pending > 0 {
		if pos >= len(buf) {
			s.pos, s.pending = pos, pending
			return 0, nil
		}
		// Fast path: one-byte objects leave pos+pending unchanged, so
		// the limit checked when they were counted still holds.
		if c := buf[pos]; c < 0x80 || c >= 0xe0 || c == mpNil || c == mpFalse || c == mpTrue {
			pos++
			pending--
			continue
		}
		hdr, payload, children, err := objHeader(buf, pos)
		if err != nil {
			s.started = false
			return 0, err
		}
		if hdr == 0 {
			s.pos, s.pending = pos, pending
			return 0, nil
		}
		pending += children - 1
		// Every pending object takes at least one byte.
		if need := uint64(pos) + uint64(hdr) + payload + pending; need > limit {
			s.started = false
			return 0, fmt.Errorf("%w: at least %d bytes declared, limit %d", ErrFrameTooBig, need, s.MaxSize)
		}
		pos += hdr + int(payload)
	}
	if pos > len(buf) {
		// Every object is walked but the last payload is not all there.
		s.pos, s.pending = pos, 0
		return 0, nil
	}
	s.started = false
	return pos, nil
}

// FrameSize returns the length of the complete packet at the start of buf,
// or (0, nil) if buf holds only a prefix of it. It returns an error if buf
// cannot start a valid packet (not a 3-element array, id or code out of
// range, args not an array, invalid msgpack byte): such errors match
// [ErrDecode]. It returns an error matching [ErrFrameTooBig] as soon as a
// declared length or element count implies more than maxSize bytes, before
// the bytes arrive.
//
// FrameSize allocates nothing and does not recurse. It scans buf from the
// start on each call: a reader that calls it again after each read should
// use a [FrameScanner], which resumes where it stopped.
func FrameSize(buf []byte, maxSize int) (int, error) {
	s := FrameScanner{MaxSize: maxSize}
	return s.Scan(buf)
}

// envelope checks the start of a packet, [id, code, args], up to the
// header of args, and returns the offset of that header; 0 if buf ends
// before it.
func envelope(buf []byte) (int, error) {
	if len(buf) == 0 {
		return 0, nil
	}
	hdr, payload, children, err := objHeader(buf, 0)
	if err != nil || hdr == 0 {
		return 0, err
	}
	if !isArray(buf[0]) || payload != 0 || children != 3 {
		return 0, errFrame("packet is not a 3-element array (starts with 0x%02x)", buf[0])
	}
	pos := hdr
	for i, max := range [2]uint64{math.MaxUint32, math.MaxUint16} {
		if pos >= len(buf) {
			return 0, nil
		}
		d := decoder{b: buf[pos:]}
		d.uint(max)
		if errors.Is(d.err, errShort) {
			return 0, nil
		}
		if d.err != nil {
			return 0, errFrame("packet %s: %v", [2]string{"id", "code"}[i], d.err)
		}
		pos += d.i
	}
	if pos >= len(buf) {
		return 0, nil
	}
	if !isArray(buf[pos]) {
		return 0, errFrame("packet args: want array, got %s", describe(buf[pos]))
	}
	return pos, nil
}

// errFrame builds the error of FrameSize for a malformed stream.
func errFrame(format string, args ...any) error {
	return &DecodeError{Msg: "packet", Arg: -1, Err: fmt.Errorf(format, args...)}
}

func isArray(c byte) bool { return c>>4 == 0x9 || c == mpArray16 || c == mpArray32 }

// objHeader parses the header of the msgpack object at buf[i:]: its size
// hdr, the number of payload bytes that follow it, and its number of child
// objects (elements of an array, keys and values of a map). hdr is 0 if buf
// ends inside the header.
func objHeader(buf []byte, i int) (hdr int, payload, children uint64, err error) {
	c := buf[i]
	rest := buf[i+1:]
	switch {
	case c < 0x80 || c >= 0xe0 || c == mpNil || c == mpFalse || c == mpTrue:
		return 1, 0, 0, nil
	case c <= 0x8f:
		return 1, 0, 2 * uint64(c&0x0f), nil
	case c <= 0x9f:
		return 1, 0, uint64(c & 0x0f), nil
	case c <= 0xbf:
		return 1, uint64(c & 0x1f), 0, nil
	}
	switch c {
	case mpBin8, mpStr8:
		hdr, payload = sized(rest, 1)
	case mpBin16, mpStr16:
		hdr, payload = sized(rest, 2)
	case mpBin32, mpStr32:
		hdr, payload = sized(rest, 4)
	case mpExt8, mpExt16, mpExt32: // 1, 2 or 4 length bytes
		if hdr, payload = sized(rest, 1<<(c-mpExt8)); hdr != 0 {
			hdr++ // type byte
		}
	case mpFloat32:
		return 1, 4, 0, nil
	case mpFloat64:
		return 1, 8, 0, nil
	case mpUint8, mpInt8:
		return 1, 1, 0, nil
	case mpUint16, mpInt16:
		return 1, 2, 0, nil
	case mpUint32, mpInt32:
		return 1, 4, 0, nil
	case mpUint64, mpInt64:
		return 1, 8, 0, nil
	case mpFixExt1:
		return 2, 1, 0, nil
	case mpFixExt2:
		return 2, 2, 0, nil
	case mpFixExt4:
		return 2, 4, 0, nil
	case mpFixExt8:
		return 2, 8, 0, nil
	case mpFixExt16:
		return 2, 16, 0, nil
	case mpArray16:
		hdr, children = sized(rest, 2)
	case mpArray32:
		hdr, children = sized(rest, 4)
	case mpMap16:
		hdr, children = sized(rest, 2)
		children *= 2
	case mpMap32:
		hdr, children = sized(rest, 4)
		children *= 2
	default:
		return 0, 0, 0, errFrame("invalid msgpack byte 0x%02x at offset %d", c, i)
	}
	// hdr is 0 if the length bytes are not there yet.
	return hdr, payload, children, nil
}

// sized returns the header size 1+n of an object whose n-byte big-endian
// length starts rest, and that length; (0, 0) if rest is shorter.
func sized(rest []byte, n int) (int, uint64) {
	switch {
	case len(rest) < n:
		return 0, 0
	case n == 1:
		return 2, uint64(rest[0])
	case n == 2:
		return 3, uint64(binary.BigEndian.Uint16(rest))
	default:
		return 5, uint64(binary.BigEndian.Uint32(rest))
	}
}
