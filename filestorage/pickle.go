package filestorage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"

	"github.com/neogo/neo/proto"
)

// The .index file (spec §7): a sequence of independent pickles
//
//	pos                  an int: end of the last transaction covered
//	(prefix, bucket)     per 6-byte oid prefix, ascending; bucket = k 2-byte
//	...                  suffixes then k 6-byte positions (fsBucket.toBytes)
//	None                 terminator
//
// This file parses and writes exactly that, pure, with a pickle machine
// that knows only the opcodes these values need. Anything else (the
// older dict formats included) is an error, and the caller scans.

// pickle opcodes used by the index file.
const (
	opProto          = 0x80
	opFrame          = 0x95
	opStop           = '.'
	opNone           = 'N'
	opMark           = '('
	opTuple          = 't'
	opTuple2         = 0x86
	opBinInt         = 'J'
	opBinInt1        = 'K'
	opBinInt2        = 'M'
	opLong1          = 0x8a
	opLong4          = 0x8b
	opInt            = 'I'
	opLong           = 'L'
	opShortBinBytes  = 'C'
	opBinBytes       = 'B'
	opShortBinString = 'U'
	opBinString      = 'T'
	opBinPut         = 'q'
	opLongBinPut     = 'r'
	opMemoize        = 0x94
)

// pickleValue is what an index pickle holds: nil (None), int64, []byte,
// or a 2-tuple [2]pickleValue.
type pickleValue any

// errMark is the stack entry of a MARK opcode.
type pickleMark struct{}

// decodePickle decodes one pickle from b, returning its value and the
// number of bytes it used.
func decodePickle(b []byte) (pickleValue, int, error) {
	var stack []pickleValue
	i := 0
	need := func(n int) ([]byte, error) {
		if n < 0 || n > len(b)-i {
			return nil, fmt.Errorf("pickle truncated at %d", i)
		}
		s := b[i : i+n]
		i += n
		return s, nil
	}
	line := func() (string, error) {
		j := strings.IndexByte(string(b[i:min(len(b), i+64)]), '\n')
		if j < 0 {
			return "", fmt.Errorf("pickle: unterminated line at %d", i)
		}
		s := string(b[i : i+j])
		i += j + 1
		return s, nil
	}
	for {
		if i >= len(b) {
			return nil, i, fmt.Errorf("pickle truncated at %d", i)
		}
		op := b[i]
		i++
		var v pickleValue
		push := true
		switch op {
		case opProto:
			if _, err := need(1); err != nil {
				return nil, i, err
			}
			push = false
		case opFrame:
			if _, err := need(8); err != nil {
				return nil, i, err
			}
			push = false
		case opStop:
			if len(stack) != 1 {
				return nil, i, fmt.Errorf("pickle: STOP with %d values on the stack", len(stack))
			}
			if _, ok := stack[0].(pickleMark); ok {
				return nil, i, errors.New("pickle: STOP on a MARK")
			}
			return stack[0], i, nil
		case opNone:
			v = nil
		case opMark:
			v = pickleMark{}
		case opBinInt1, opBinInt2, opBinInt:
			n := map[byte]int{opBinInt1: 1, opBinInt2: 2, opBinInt: 4}[op]
			s, err := need(n)
			if err != nil {
				return nil, i, err
			}
			switch n {
			case 1:
				v = int64(s[0])
			case 2:
				v = int64(binary.LittleEndian.Uint16(s))
			default:
				v = int64(int32(binary.LittleEndian.Uint32(s)))
			}
		case opLong1, opLong4:
			var n int
			if op == opLong1 {
				s, err := need(1)
				if err != nil {
					return nil, i, err
				}
				n = int(s[0])
			} else {
				s, err := need(4)
				if err != nil {
					return nil, i, err
				}
				n = int(int32(binary.LittleEndian.Uint32(s)))
			}
			if n > 8 {
				return nil, i, fmt.Errorf("pickle: integer of %d bytes", n)
			}
			s, err := need(n)
			if err != nil {
				return nil, i, err
			}
			var x int64
			for k := n - 1; k >= 0; k-- {
				x = x<<8 | int64(s[k])
			}
			if n > 0 && n < 8 && s[n-1]&0x80 != 0 {
				x -= 1 << (8 * n)
			}
			v = x
		case opInt, opLong:
			s, err := line()
			if err != nil {
				return nil, i, err
			}
			s = strings.TrimSuffix(s, "L")
			x, ok := new(big.Int).SetString(s, 10)
			if !ok || !x.IsInt64() {
				if s == "00" || s == "01" { // Python 2's False/True
					x = big.NewInt(int64(s[1] - '0'))
				} else {
					return nil, i, fmt.Errorf("pickle: bad integer %q", strconv.Quote(s))
				}
			}
			v = x.Int64()
		case opShortBinBytes, opShortBinString, opBinBytes, opBinString:
			var n int
			if op == opShortBinBytes || op == opShortBinString {
				s, err := need(1)
				if err != nil {
					return nil, i, err
				}
				n = int(s[0])
			} else {
				s, err := need(4)
				if err != nil {
					return nil, i, err
				}
				u := binary.LittleEndian.Uint32(s)
				if u > math.MaxInt32 {
					return nil, i, fmt.Errorf("pickle: string of %d bytes", u)
				}
				n = int(u)
			}
			s, err := need(n)
			if err != nil {
				return nil, i, err
			}
			v = s
		case opTuple2:
			if len(stack) < 2 {
				return nil, i, errors.New("pickle: TUPLE2 on a short stack")
			}
			v = [2]pickleValue{stack[len(stack)-2], stack[len(stack)-1]}
			stack = stack[:len(stack)-2]
		case opTuple:
			k := len(stack) - 1
			for k >= 0 {
				if _, ok := stack[k].(pickleMark); ok {
					break
				}
				k--
			}
			if k < 0 || len(stack)-k-1 != 2 {
				return nil, i, errors.New("pickle: TUPLE is not a pair after a MARK")
			}
			v = [2]pickleValue{stack[k+1], stack[k+2]}
			stack = stack[:k]
		case opBinPut, opLongBinPut, opMemoize:
			// Memo writes are harmless; reads (GET) are not supported.
			n := map[byte]int{opBinPut: 1, opLongBinPut: 4, opMemoize: 0}[op]
			if _, err := need(n); err != nil {
				return nil, i, err
			}
			push = false
		default:
			return nil, i, fmt.Errorf("pickle: unsupported opcode 0x%02x at %d", op, i-1)
		}
		if push {
			if _, ok := v.([2]pickleValue); ok {
				for _, e := range v.([2]pickleValue) {
					if _, ok := e.(pickleMark); ok {
						return nil, i, errors.New("pickle: MARK inside a tuple")
					}
				}
			}
			if len(stack) > 16 {
				return nil, i, errors.New("pickle: stack too deep")
			}
			stack = append(stack, v)
		}
	}
}

// parseIndex parses the content of a .index file: the position it covers
// and the oid -> position entries.
func parseIndex(b []byte) (pos int64, index *Index, err error) {
	v, n, err := decodePickle(b)
	if err != nil {
		return 0, nil, err
	}
	p, ok := v.(int64)
	if !ok {
		return 0, nil, errors.New("index: first pickle is not a position (an old index format?)")
	}
	index = NewIndex()
	b = b[n:]
	var last []byte
	for {
		v, n, err := decodePickle(b)
		if err != nil {
			return 0, nil, err
		}
		b = b[n:]
		if v == nil {
			break
		}
		t, ok := v.([2]pickleValue)
		if !ok {
			return 0, nil, errors.New("index: entry is not a (prefix, bucket) pair")
		}
		prefix, ok1 := t[0].([]byte)
		bucket, ok2 := t[1].([]byte)
		if !ok1 || !ok2 || len(prefix) != 6 || len(bucket)%8 != 0 {
			return 0, nil, errors.New("index: bad (prefix, bucket) pair")
		}
		if last != nil && string(prefix) <= string(last) {
			return 0, nil, errors.New("index: prefixes not ascending")
		}
		last = prefix
		k := len(bucket) / 8
		if k == 0 {
			continue
		}
		var oid [8]byte
		copy(oid[2:], prefix)
		g := &indexGroup{suffix: make([]uint16, k), pos: slices.Clone(bucket[2*k:])}
		for j := range k {
			g.suffix[j] = binary.BigEndian.Uint16(bucket[2*j:])
			if j > 0 && g.suffix[j] <= g.suffix[j-1] {
				return 0, nil, errors.New("index: bucket keys not ascending")
			}
		}
		index.groups[proto.Oid(binary.BigEndian.Uint64(oid[:]))] = g
		index.n += k
	}
	if len(b) != 0 {
		return 0, nil, fmt.Errorf("index: %d bytes after the terminator", len(b))
	}
	return p, index, nil
}

// appendIndex appends to dst the .index file of index at pos, as ZODB's
// fsIndex.save writes it: protocol 3 pickles, no memo.
func appendIndex(dst []byte, pos int64, index *Index) []byte {
	// pos
	dst = append(dst, opProto, 3)
	dst = appendPickleInt(dst, pos)
	dst = append(dst, opStop)
	// entries grouped by prefix, ascending
	for _, hi := range index.sortedGroups() {
		g := index.groups[hi]
		var prefix [8]byte
		binary.BigEndian.PutUint64(prefix[:], uint64(hi))
		dst = append(dst, opProto, 3, opShortBinBytes, 6)
		dst = append(dst, prefix[2:]...)
		dst = appendPickleBytesHeader(dst, 8*len(g.suffix))
		for _, s := range g.suffix {
			dst = binary.BigEndian.AppendUint16(dst, s)
		}
		dst = append(dst, g.pos...)
		dst = append(dst, opTuple2, opStop)
	}
	return append(dst, opProto, 3, opNone, opStop)
}

func appendPickleInt(dst []byte, x int64) []byte {
	switch {
	case x >= 0 && x < 1<<8:
		return append(dst, opBinInt1, byte(x))
	case x >= 0 && x < 1<<16:
		return append(dst, opBinInt2, byte(x), byte(x>>8))
	case x >= math.MinInt32 && x <= math.MaxInt32:
		return binary.LittleEndian.AppendUint32(append(dst, opBinInt), uint32(x))
	}
	// LONG1: little-endian two's complement, shortest form.
	var b []byte
	for y := x; ; y >>= 8 {
		b = append(b, byte(y))
		if (y < 0x80 && y >= -0x80) && (y >= 0) == (b[len(b)-1]&0x80 == 0) {
			break
		}
	}
	dst = append(dst, opLong1, byte(len(b)))
	return append(dst, b...)
}

func appendPickleBytesHeader(dst []byte, n int) []byte {
	if n < 256 {
		return append(dst, opShortBinBytes, byte(n))
	}
	return binary.LittleEndian.AppendUint32(append(dst, opBinBytes), uint32(n))
}
