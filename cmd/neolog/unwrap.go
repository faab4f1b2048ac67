package main

import (
	"encoding/binary"
	"errors"
)

var errTruncated = errors.New("truncated msgpack")

// unwrapExt returns the msgpack value b with every ext value replaced by
// its payload. neoppod's logger records the arguments of a packet as it
// holds them, where an enum is a msgpack ext whose payload is the packed
// number (its registerExtType), while the wire, and our decoder, have
// the number itself.
func unwrapExt(b []byte) ([]byte, error) {
	out, rest, err := unwrapValue(b, nil)
	if err == nil && len(rest) != 0 {
		err = errors.New("bytes after the msgpack value")
	}
	return out, err
}

// unwrapValue copies the value at the start of b to out, ext values
// unwrapped, and returns what follows it in b.
func unwrapValue(b, out []byte) ([]byte, []byte, error) {
	if len(b) == 0 {
		return nil, nil, errTruncated
	}
	c := b[0]
	// size reads an n-byte big-endian length after the type byte.
	size := func(n int) (int, error) {
		if len(b) < 1+n {
			return 0, errTruncated
		}
		switch n {
		case 1:
			return int(b[1]), nil
		case 2:
			return int(binary.BigEndian.Uint16(b[1:])), nil
		}
		return int(binary.BigEndian.Uint32(b[1:])), nil
	}
	raw := func(n int) ([]byte, []byte, error) { // a value of n bytes, copied
		if len(b) < n {
			return nil, nil, errTruncated
		}
		return append(out, b[:n]...), b[n:], nil
	}
	items := func(hdr, n int) ([]byte, []byte, error) { // a container of n values
		out = append(out, b[:hdr]...)
		rest := b[hdr:]
		var err error
		for range n {
			if out, rest, err = unwrapValue(rest, out); err != nil {
				return nil, nil, err
			}
		}
		return out, rest, nil
	}
	ext := func(hdr, n int) ([]byte, []byte, error) { // type byte at hdr-1, then n bytes
		if len(b) < hdr+n {
			return nil, nil, errTruncated
		}
		inner, rest, err := unwrapValue(b[hdr:hdr+n], out)
		if err != nil {
			return nil, nil, err
		}
		if len(rest) != 0 {
			return nil, nil, errors.New("ext payload is not one msgpack value")
		}
		return inner, b[hdr+n:], nil
	}
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		return raw(1)
	case c >= 0x80 && c <= 0x8f:
		return items(1, 2*int(c&0x0f))
	case c >= 0x90 && c <= 0x9f:
		return items(1, int(c&0x0f))
	case c >= 0xa0 && c <= 0xbf:
		return raw(1 + int(c&0x1f))
	}
	switch c {
	case 0xc4, 0xd9: // bin8, str8
		n, err := size(1)
		if err != nil {
			return nil, nil, err
		}
		return raw(2 + n)
	case 0xc5, 0xda:
		n, err := size(2)
		if err != nil {
			return nil, nil, err
		}
		return raw(3 + n)
	case 0xc6, 0xdb:
		n, err := size(4)
		if err != nil {
			return nil, nil, err
		}
		return raw(5 + n)
	case 0xc7, 0xc8, 0xc9: // ext8/16/32: length, type, data
		w := map[byte]int{0xc7: 1, 0xc8: 2, 0xc9: 4}[c]
		n, err := size(w)
		if err != nil {
			return nil, nil, err
		}
		return ext(2+w, n)
	case 0xca:
		return raw(5)
	case 0xcb:
		return raw(9)
	case 0xcc, 0xd0:
		return raw(2)
	case 0xcd, 0xd1:
		return raw(3)
	case 0xce, 0xd2:
		return raw(5)
	case 0xcf, 0xd3:
		return raw(9)
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16
		return ext(2, 1<<(c-0xd4))
	case 0xdc:
		n, err := size(2)
		if err != nil {
			return nil, nil, err
		}
		return items(3, n)
	case 0xdd:
		n, err := size(4)
		if err != nil {
			return nil, nil, err
		}
		return items(5, n)
	case 0xde:
		n, err := size(2)
		if err != nil {
			return nil, nil, err
		}
		return items(3, 2*n)
	case 0xdf:
		n, err := size(4)
		if err != nil {
			return nil, nil, err
		}
		return items(5, 2*n)
	}
	return nil, nil, errors.New("invalid msgpack type byte")
}
