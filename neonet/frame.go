package neonet

import (
	"errors"
	"fmt"

	"github.com/neogo/neo/proto"
)

// frameScanner finds where the packet at the start of the input ends, as
// proto.FrameSize does, but resumes where its previous call stopped: the
// reader calls it after every read, and a big packet made of many small
// objects (an oid list of a million entries) would otherwise be rescanned
// from its start each time, quadratically. Like FrameSize, it rejects a
// packet as soon as its declared sizes exceed the limit, before the bytes
// arrive, and allocates nothing.
type frameScanner struct {
	max     int    // packet size limit
	pos     int    // offset of the next object to walk; may be past the input
	pending uint64 // objects still to walk, the args array included; 0: packet not started
}

// next returns the size of the packet at the start of buf, or 0 if buf
// holds only a prefix of it. Between calls that return 0, buf must start
// at the same packet and only grow; after a packet, the next call starts
// afresh.
func (s *frameScanner) next(buf []byte) (int, error) {
	if s.pending == 0 {
		// Envelope: 93 <id> <code>, then the args array.
		if len(buf) == 0 {
			return 0, nil
		}
		if buf[0] != 0x93 {
			return 0, fmt.Errorf("%w: packet is not a 3-element array (starts with 0x%02x)", proto.ErrDecode, buf[0])
		}
		pos := 1
		for _, max := range [2]uint64{0xffffffff, 0xffff} {
			v, n, err := scanUint(buf[pos:])
			if err != nil {
				return 0, err
			}
			if n == 0 {
				return 0, nil
			}
			if v > max {
				return 0, fmt.Errorf("%w: packet id or code %d out of range", proto.ErrDecode, v)
			}
			pos += n
		}
		if pos >= len(buf) {
			return 0, nil
		}
		if c := buf[pos]; c>>4 != 0x9 && c != 0xdc && c != 0xdd {
			return 0, fmt.Errorf("%w: packet args: not an array (0x%02x)", proto.ErrDecode, c)
		}
		s.pos, s.pending = pos, 1
	}
	for s.pending > 0 {
		if s.pos >= len(buf) {
			return 0, nil
		}
		hdr, payload, children, err := scanObject(buf[s.pos:])
		if err != nil {
			s.pending = 0
			return 0, err
		}
		if hdr == 0 {
			return 0, nil
		}
		s.pending += children - 1
		// Every pending object takes at least one byte.
		if need := uint64(s.pos) + uint64(hdr) + payload + s.pending; need > uint64(s.max) {
			s.pending = 0
			return 0, fmt.Errorf("%w: at least %d bytes declared, limit %d", proto.ErrFrameTooBig, need, s.max)
		}
		s.pos += hdr + int(payload)
	}
	if s.pos > len(buf) {
		return 0, nil // the last payload is not all there
	}
	n := s.pos
	s.pos = 0
	return n, nil
}

var errShortInt = errors.New("short integer")

// scanUint reads a non-negative msgpack integer; n is 0 if b ends inside it.
func scanUint(b []byte) (v uint64, n int, err error) {
	if len(b) == 0 {
		return 0, 0, nil
	}
	c := b[0]
	if c < 0x80 {
		return uint64(c), 1, nil
	}
	var size int
	switch c {
	case 0xcc, 0xd0:
		size = 1
	case 0xcd, 0xd1:
		size = 2
	case 0xce, 0xd2:
		size = 4
	case 0xcf, 0xd3:
		size = 8
	default:
		return 0, 0, fmt.Errorf("%w: packet id or code: not an unsigned integer (0x%02x)", proto.ErrDecode, c)
	}
	if len(b) < 1+size {
		return 0, 0, nil
	}
	for _, x := range b[1 : 1+size] {
		v = v<<8 | uint64(x)
	}
	if c >= 0xd0 && b[1]&0x80 != 0 {
		return 0, 0, fmt.Errorf("%w: packet id or code: negative", proto.ErrDecode)
	}
	return v, 1 + size, nil
}

// scanObject parses the header of the msgpack object at the start of b: its
// size hdr, the number of payload bytes after it, and its number of child
// objects (array elements, map keys and values). hdr is 0 if b ends inside
// the header.
func scanObject(b []byte) (hdr int, payload, children uint64, err error) {
	c := b[0]
	// sized reads the n-byte big-endian length after the type byte.
	sized := func(n int) (int, uint64) {
		if len(b) < 1+n {
			return 0, 0
		}
		var v uint64
		for _, x := range b[1 : 1+n] {
			v = v<<8 | uint64(x)
		}
		return 1 + n, v
	}
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3: // fixint, nil, bool
		return 1, 0, 0, nil
	case c <= 0x8f: // fixmap
		return 1, 0, 2 * uint64(c&0x0f), nil
	case c <= 0x9f: // fixarray
		return 1, 0, uint64(c & 0x0f), nil
	case c <= 0xbf: // fixstr
		return 1, uint64(c & 0x1f), 0, nil
	}
	switch c {
	case 0xc4, 0xd9: // bin8, str8
		hdr, payload = sized(1)
	case 0xc5, 0xda:
		hdr, payload = sized(2)
	case 0xc6, 0xdb:
		hdr, payload = sized(4)
	case 0xc7, 0xc8, 0xc9: // ext8/16/32: length, then the type byte
		if hdr, payload = sized(1 << (c - 0xc7)); hdr != 0 {
			hdr++
		}
	case 0xca: // float32
		return 1, 4, 0, nil
	case 0xcb:
		return 1, 8, 0, nil
	case 0xcc, 0xd0:
		return 1, 1, 0, nil
	case 0xcd, 0xd1:
		return 1, 2, 0, nil
	case 0xce, 0xd2:
		return 1, 4, 0, nil
	case 0xcf, 0xd3:
		return 1, 8, 0, nil
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1..16, after the type byte
		return 2, 1 << (c - 0xd4), 0, nil
	case 0xdc:
		hdr, children = sized(2)
	case 0xdd:
		hdr, children = sized(4)
	case 0xde:
		hdr, children = sized(2)
		children *= 2
	case 0xdf:
		hdr, children = sized(4)
		children *= 2
	default: // 0xc1
		return 0, 0, 0, fmt.Errorf("%w: invalid msgpack byte 0x%02x", proto.ErrDecode, c)
	}
	return hdr, payload, children, nil
}
