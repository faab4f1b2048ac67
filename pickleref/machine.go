package pickleref

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// ErrPickle is wrapped by every error about the content of a record.
var ErrPickle = errors.New("pickleref: bad pickle")

// Pickle opcodes of protocols 0 to 3 (Python's pickletools).
const (
	opMark           = '('
	opStop           = '.'
	opPop            = '0'
	opPopMark        = '1'
	opDup            = '2'
	opFloat          = 'F'
	opInt            = 'I'
	opBinInt         = 'J'
	opBinInt1        = 'K'
	opLong           = 'L'
	opBinInt2        = 'M'
	opNone           = 'N'
	opPersID         = 'P'
	opBinPersID      = 'Q'
	opReduce         = 'R'
	opString         = 'S'
	opBinString      = 'T'
	opShortBinString = 'U'
	opUnicode        = 'V'
	opBinUnicode     = 'X'
	opAppend         = 'a'
	opBuild          = 'b'
	opGlobal         = 'c'
	opDict           = 'd'
	opEmptyDict      = '}'
	opAppends        = 'e'
	opGet            = 'g'
	opBinGet         = 'h'
	opInst           = 'i'
	opLongBinGet     = 'j'
	opList           = 'l'
	opEmptyList      = ']'
	opObj            = 'o'
	opPut            = 'p'
	opBinPut         = 'q'
	opLongBinPut     = 'r'
	opSetItem        = 's'
	opTuple          = 't'
	opEmptyTuple     = ')'
	opSetItems       = 'u'
	opBinFloat       = 'G'
	opProto          = 0x80
	opNewObj         = 0x81
	opExt1           = 0x82
	opExt2           = 0x83
	opExt4           = 0x84
	opTuple1         = 0x85
	opTuple2         = 0x86
	opTuple3         = 0x87
	opNewTrue        = 0x88
	opNewFalse       = 0x89
	opLong1          = 0x8a
	opLong4          = 0x8b
	opBinBytes       = 'B'
	opShortBinBytes  = 'C'
)

// kind is what the machine knows of a value.
type kind uint8

const (
	kOpaque kind = iota // anything the references cannot be made of
	kStr                // a string: Python 2 str, bytes, or text
	kTuple
	kList
	kGlobal // GLOBAL module name
)

// value is a value the machine built. Values are shared as in Python: a
// BINGET pushes the value the memo holds, not a copy.
type value struct {
	kind kind
	op   byte // the opcode that created the value
	// text: a unicode string (its payload is UTF-8).
	text bool
	// scratch: the payload is in machine.scratch, not in the record.
	scratch bool
	// n is the number of items of a tuple or list; items the first 3.
	n     int32
	items [3]int32
	// pushes counts how many times the value was put on the stack:
	// creation, DUP and memo gets. Each push is consumed once at most.
	pushes int32
	// a, b: payload of a string, in the record or in scratch.
	a, b int32
	// start, end: the opcodes that created the value, in the record.
	start, end int32
	// memo is the last memo index the value was stored at, or -1.
	memo int64

	// For Rewrite: the oids wanted by the references whose oid this
	// string is, and how many of its pushes they account for.
	want     uint64
	wantSet  bool
	conflict bool
	count    int32
}

// mark is a MARK on the stack: the stack depth and the opcode offset.
type mark struct{ depth, off int32 }

// event is a persistent reference, found at a BINPERSID or PERSID.
type event struct {
	at, atEnd int32 // the opcode; atEnd is after it (PERSID's line)
	persid    bool
	proto     byte // protocol of the pickle it is in
	ref       Ref
	oidv      int32 // the oid string
	classv    int32 // the class, or -1
	classMemo int64 // memo index holding the class at the reference, or -1
	dbv       int32 // the database name string, or -1
	markv     int32 // the 'w'/'m'/'n' marker string, or -1
	pid, tup  int32 // the id, and the argument tuple of a list id, or -1
	action    uint8
	newRef    Ref
}

// machine decodes a record. Its buffers are reused from one record to
// the next.
type machine struct {
	rec     []byte
	i       int
	vals    []value
	stack   []int32
	starts  []int32 // opcode offset where each stack item began
	marks   []mark
	memo    []int32 // memo index -> value+1 (0: unset)
	memoBig map[int64]int32
	scratch []byte
	events  []event
	proto   byte
	names   map[string]string // interned database names
}

func (m *machine) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrPickle}, args...)...)
}

func (m *machine) reset(rec []byte) {
	m.rec = rec
	m.i = 0
	m.vals = append(m.vals[:0], value{memo: -1}) // value 0: opaque, shared
	m.stack = m.stack[:0]
	m.starts = m.starts[:0]
	m.marks = m.marks[:0]
	clear(m.memo)
	m.memo = m.memo[:0]
	m.memoBig = nil
	m.scratch = m.scratch[:0]
	m.events = m.events[:0]
}

// run decodes both pickles of the record.
func (m *machine) run(rec []byte) error {
	m.reset(rec)
	if len(rec) == 0 {
		return m.errorf("empty record")
	}
	for p := 0; p < 2; p++ {
		m.stack = m.stack[:0]
		m.starts = m.starts[:0]
		m.marks = m.marks[:0]
		m.proto = 1
		if err := m.pickle(); err != nil {
			if p == 1 && errors.Is(err, errTruncatedAt0) {
				return m.errorf("no state pickle after the class pickle (%d bytes)", len(rec))
			}
			return err
		}
	}
	if m.i != len(rec) {
		return m.errorf("%d bytes after the state pickle", len(rec)-m.i)
	}
	return nil
}

var errTruncatedAt0 = errors.New("pickle truncated before its first opcode")

func (m *machine) newValue(v value) int32 {
	v.memo = -1
	m.vals = append(m.vals, v)
	return int32(len(m.vals) - 1)
}

func (m *machine) push(v int32, start int) {
	if v != 0 {
		m.vals[v].pushes++
	}
	m.stack = append(m.stack, v)
	m.starts = append(m.starts, int32(start))
}

// frame is the number of items above the last mark.
func (m *machine) frame() int {
	if len(m.marks) == 0 {
		return len(m.stack)
	}
	return len(m.stack) - int(m.marks[len(m.marks)-1].depth)
}

func (m *machine) pop(op int) (int32, error) {
	if m.frame() == 0 {
		return 0, m.errorf("opcode %q at %d on an empty stack", rune(m.rec[op]), op)
	}
	v := m.stack[len(m.stack)-1]
	m.stack = m.stack[:len(m.stack)-1]
	m.starts = m.starts[:len(m.starts)-1]
	return v, nil
}

// popMark pops the items above the last mark and the mark; it returns
// them (valid until the next push) and the mark's offset.
func (m *machine) popMark(op int) ([]int32, int32, error) {
	if len(m.marks) == 0 {
		return nil, 0, m.errorf("opcode %q at %d without a MARK", rune(m.rec[op]), op)
	}
	k := m.marks[len(m.marks)-1]
	m.marks = m.marks[:len(m.marks)-1]
	items := m.stack[k.depth:]
	m.stack = m.stack[:k.depth]
	m.starts = m.starts[:k.depth]
	return items, k.off, nil
}

func (m *machine) need(n int) ([]byte, error) {
	if n < 0 || n > len(m.rec)-m.i {
		return nil, m.errorf("truncated at %d (%d bytes wanted)", m.i, n)
	}
	s := m.rec[m.i : m.i+n]
	m.i += n
	return s, nil
}

func (m *machine) line() ([]byte, error) {
	for j := m.i; j < len(m.rec); j++ {
		if m.rec[j] == '\n' {
			s := m.rec[m.i:j]
			m.i = j + 1
			return s, nil
		}
	}
	return nil, m.errorf("unterminated line at %d", m.i)
}

func (m *machine) memoIndex(s []byte) (int64, error) {
	x, err := strconv.ParseInt(string(s), 10, 64)
	if err != nil {
		return 0, m.errorf("bad memo index %q at %d", s, m.i)
	}
	return x, nil
}

func (m *machine) memoPut(idx int64, op int) error {
	if m.frame() == 0 {
		return m.errorf("PUT at %d on an empty stack", op)
	}
	v := m.stack[len(m.stack)-1]
	if idx >= 0 && idx < int64(len(m.rec))+256 {
		if idx >= int64(len(m.memo)) {
			m.memo = append(m.memo, make([]int32, int(idx)+1-len(m.memo))...)
		}
		m.memo[idx] = v + 1
	} else {
		if m.memoBig == nil {
			m.memoBig = map[int64]int32{}
		}
		m.memoBig[idx] = v + 1
	}
	if v != 0 {
		m.vals[v].memo = idx
	}
	return nil
}

func (m *machine) memoGet(idx int64) (int32, bool) {
	var x int32
	if idx >= 0 && idx < int64(len(m.memo)) {
		x = m.memo[idx]
	} else if m.memoBig != nil {
		x = m.memoBig[idx]
	}
	return x - 1, x != 0
}

func (m *machine) get(idx int64, op int) error {
	v, ok := m.memoGet(idx)
	if !ok {
		return m.errorf("memo key %d missing at %d", idx, op)
	}
	m.push(v, op)
	return nil
}

// str pushes a string value whose payload is rec[a:b].
func (m *machine) str(op byte, start, a, b int, text bool) {
	v := m.newValue(value{kind: kStr, op: op, text: text, a: int32(a), b: int32(b), start: int32(start), end: int32(m.i)})
	m.push(v, start)
}

// scratchStr pushes a string value whose payload was decoded into
// scratch[a:].
func (m *machine) scratchStr(op byte, start, a int, text bool) {
	v := m.newValue(value{kind: kStr, op: op, text: text, scratch: true, a: int32(a), b: int32(len(m.scratch)), start: int32(start), end: int32(m.i)})
	m.push(v, start)
}

func (m *machine) seq(k kind, items []int32, start int) {
	v := value{kind: k, n: int32(len(items)), start: int32(start), end: int32(m.i)}
	copy(v.items[:], items)
	m.push(m.newValue(v), start)
}

// bytesOf returns the payload of a string value.
func (m *machine) bytesOf(v *value) []byte {
	if v.scratch {
		return m.scratch[v.a:v.b]
	}
	return m.rec[v.a:v.b]
}

// pickle decodes one pickle, up to and including its STOP.
func (m *machine) pickle() error {
	first := true
	for {
		if m.i >= len(m.rec) {
			if first {
				return errTruncatedAt0
			}
			return m.errorf("truncated at %d: no STOP", m.i)
		}
		first = false
		at := m.i
		op := m.rec[at]
		m.i++
		var err error
		switch op {
		case opStop:
			if _, err = m.pop(at); err != nil {
				return err
			}
			return nil
		case opProto:
			var s []byte
			if s, err = m.need(1); err == nil {
				if s[0] > 3 {
					return m.errorf("pickle protocol %d at %d: ZODB writes protocols 0 to 3 only", s[0], at)
				}
				m.proto = s[0]
			}
		case opMark:
			m.marks = append(m.marks, mark{depth: int32(len(m.stack)), off: int32(at)})
		case opPop:
			if m.frame() == 0 {
				_, _, err = m.popMark(at)
			} else {
				_, err = m.pop(at)
			}
		case opPopMark:
			_, _, err = m.popMark(at)
		case opDup:
			if m.frame() == 0 {
				return m.errorf("DUP at %d on an empty stack", at)
			}
			m.push(m.stack[len(m.stack)-1], at)
		case opNone, opNewTrue, opNewFalse, opEmptyDict:
			m.push(0, at)
		case opFloat, opInt, opLong:
			if _, err = m.line(); err == nil {
				m.push(0, at)
			}
		case opBinFloat:
			if _, err = m.need(8); err == nil {
				m.push(0, at)
			}
		case opBinInt:
			if _, err = m.need(4); err == nil {
				m.push(0, at)
			}
		case opBinInt1, opExt1:
			if _, err = m.need(1); err == nil {
				m.push(0, at)
			}
		case opBinInt2, opExt2:
			if _, err = m.need(2); err == nil {
				m.push(0, at)
			}
		case opExt4:
			if _, err = m.need(4); err == nil {
				m.push(0, at)
			}
		case opLong1:
			var s []byte
			if s, err = m.need(1); err == nil {
				if _, err = m.need(int(s[0])); err == nil {
					m.push(0, at)
				}
			}
		case opLong4:
			var s []byte
			if s, err = m.need(4); err == nil {
				if _, err = m.need(int(int32(binary.LittleEndian.Uint32(s)))); err == nil {
					m.push(0, at)
				}
			}
		case opShortBinString, opShortBinBytes:
			var s []byte
			if s, err = m.need(1); err == nil {
				a := m.i
				if _, err = m.need(int(s[0])); err == nil {
					m.str(op, at, a, m.i, false)
				}
			}
		case opBinString, opBinBytes, opBinUnicode:
			var s []byte
			if s, err = m.need(4); err == nil {
				n := int64(binary.LittleEndian.Uint32(s))
				if op == opBinString {
					n = int64(int32(binary.LittleEndian.Uint32(s)))
				}
				if n < 0 || n > int64(len(m.rec)-m.i) {
					return m.errorf("string of %d bytes at %d past the end", n, at)
				}
				a := m.i
				m.i += int(n)
				m.str(op, at, a, m.i, op == opBinUnicode)
			}
		case opString:
			var s []byte
			if s, err = m.line(); err == nil {
				a := len(m.scratch)
				if err = m.unquote(s, at); err == nil {
					m.scratchStr(op, at, a, false)
				}
			}
		case opUnicode:
			var s []byte
			if s, err = m.line(); err == nil {
				a := len(m.scratch)
				if err = m.rawUnicode(s, at); err == nil {
					m.scratchStr(op, at, a, true)
				}
			}
		case opGlobal:
			if _, err = m.line(); err == nil {
				if _, err = m.line(); err == nil {
					m.push(m.newValue(value{kind: kGlobal, op: op, start: int32(at), end: int32(m.i)}), at)
				}
			}
		case opInst:
			if _, err = m.line(); err == nil {
				if _, err = m.line(); err == nil {
					var start int32
					if _, start, err = m.popMark(at); err == nil {
						m.push(0, int(start))
					}
				}
			}
		case opObj:
			var items []int32
			var start int32
			if items, start, err = m.popMark(at); err == nil {
				if len(items) == 0 {
					return m.errorf("OBJ at %d without a class", at)
				}
				m.push(0, int(start))
			}
		case opEmptyTuple:
			m.seq(kTuple, nil, at)
		case opTuple, opList, opDict:
			var items []int32
			var start int32
			if items, start, err = m.popMark(at); err == nil {
				switch op {
				case opTuple:
					m.seq(kTuple, items, int(start))
				case opList:
					m.seq(kList, items, int(start))
				default:
					if len(items)%2 != 0 {
						return m.errorf("DICT at %d with an odd number of items", at)
					}
					m.push(0, int(start))
				}
			}
		case opTuple1, opTuple2, opTuple3:
			n := int(op-opTuple1) + 1
			if m.frame() < n {
				return m.errorf("TUPLE%d at %d on a short stack", n, at)
			}
			k := len(m.stack) - n
			start := m.starts[k]
			var items [3]int32
			copy(items[:], m.stack[k:])
			m.stack = m.stack[:k]
			m.starts = m.starts[:k]
			m.seq(kTuple, items[:n], int(start))
		case opEmptyList:
			m.seq(kList, nil, at)
		case opAppend:
			var x int32
			if x, err = m.pop(at); err == nil {
				if m.frame() == 0 {
					return m.errorf("APPEND at %d without a list", at)
				}
				m.appendTo(m.stack[len(m.stack)-1], x)
			}
		case opAppends:
			var items []int32
			if items, _, err = m.popMark(at); err == nil {
				if m.frame() == 0 {
					return m.errorf("APPENDS at %d without a list", at)
				}
				l := m.stack[len(m.stack)-1]
				for _, x := range items {
					m.appendTo(l, x)
				}
			}
		case opSetItem:
			if m.frame() < 3 {
				return m.errorf("SETITEM at %d on a short stack", at)
			}
			m.stack = m.stack[:len(m.stack)-2]
			m.starts = m.starts[:len(m.starts)-2]
		case opSetItems:
			var items []int32
			if items, _, err = m.popMark(at); err == nil {
				if len(items)%2 != 0 {
					return m.errorf("SETITEMS at %d with an odd number of items", at)
				}
				if m.frame() == 0 {
					return m.errorf("SETITEMS at %d without a dict", at)
				}
			}
		case opBuild:
			if m.frame() < 2 {
				return m.errorf("BUILD at %d on a short stack", at)
			}
			m.stack = m.stack[:len(m.stack)-1]
			m.starts = m.starts[:len(m.starts)-1]
			m.stack[len(m.stack)-1] = 0
		case opReduce, opNewObj:
			if m.frame() < 2 {
				return m.errorf("opcode 0x%02x at %d on a short stack", op, at)
			}
			m.stack = m.stack[:len(m.stack)-1]
			m.starts = m.starts[:len(m.starts)-1]
			m.stack[len(m.stack)-1] = 0
		case opPut:
			var s []byte
			if s, err = m.line(); err == nil {
				var idx int64
				if idx, err = m.memoIndex(s); err == nil {
					err = m.memoPut(idx, at)
				}
			}
		case opBinPut:
			var s []byte
			if s, err = m.need(1); err == nil {
				err = m.memoPut(int64(s[0]), at)
			}
		case opLongBinPut:
			var s []byte
			if s, err = m.need(4); err == nil {
				err = m.memoPut(int64(binary.LittleEndian.Uint32(s)), at)
			}
		case opGet:
			var s []byte
			if s, err = m.line(); err == nil {
				var idx int64
				if idx, err = m.memoIndex(s); err == nil {
					err = m.get(idx, at)
				}
			}
		case opBinGet:
			var s []byte
			if s, err = m.need(1); err == nil {
				err = m.get(int64(s[0]), at)
			}
		case opLongBinGet:
			var s []byte
			if s, err = m.need(4); err == nil {
				err = m.get(int64(binary.LittleEndian.Uint32(s)), at)
			}
		case opBinPersID:
			var pid int32
			if pid, err = m.pop(at); err == nil {
				if err = m.reference(pid, at, m.i, false); err == nil {
					m.push(0, at)
				}
			}
		case opPersID:
			var s []byte
			if s, err = m.line(); err == nil {
				for _, c := range s {
					if c >= 0x80 {
						return m.errorf("PERSID at %d not ASCII", at)
					}
				}
				pid := m.newValue(value{kind: kStr, op: op, text: true, a: int32(at + 1), b: int32(m.i - 1), start: int32(at), end: int32(m.i)})
				if err = m.reference(pid, at, m.i, true); err == nil {
					m.push(0, at)
				}
			}
		default:
			return m.errorf("unknown opcode 0x%02x at %d", op, at)
		}
		if err != nil {
			return err
		}
	}
}

func (m *machine) appendTo(l, x int32) {
	if l == 0 || m.vals[l].kind != kList {
		return // noload appends to anything
	}
	v := &m.vals[l]
	if v.n < int32(len(v.items)) {
		v.items[v.n] = x
	}
	if v.n < math.MaxInt32 {
		v.n++
	}
	v.end = int32(m.i)
}

// unquote decodes a STRING operand: a quoted Python 2 str literal.
func (m *machine) unquote(s []byte, at int) error {
	if len(s) < 2 || s[0] != s[len(s)-1] || s[0] != '\'' && s[0] != '"' {
		return m.errorf("STRING at %d not quoted", at)
	}
	s = s[1 : len(s)-1]
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			m.scratch = append(m.scratch, c)
			continue
		}
		i++
		if i >= len(s) {
			return m.errorf("STRING at %d ends with a backslash", at)
		}
		switch c = s[i]; c {
		case '\n':
		case '\\', '\'', '"':
			m.scratch = append(m.scratch, c)
		case 'a':
			m.scratch = append(m.scratch, 7)
		case 'b':
			m.scratch = append(m.scratch, 8)
		case 'f':
			m.scratch = append(m.scratch, 12)
		case 'n':
			m.scratch = append(m.scratch, '\n')
		case 'r':
			m.scratch = append(m.scratch, '\r')
		case 't':
			m.scratch = append(m.scratch, '\t')
		case 'v':
			m.scratch = append(m.scratch, 11)
		case 'x':
			if i+2 >= len(s) {
				return m.errorf("STRING at %d: truncated \\x escape", at)
			}
			x, err := strconv.ParseUint(string(s[i+1:i+3]), 16, 8)
			if err != nil {
				return m.errorf("STRING at %d: bad \\x escape", at)
			}
			m.scratch = append(m.scratch, byte(x))
			i += 2
		case '0', '1', '2', '3', '4', '5', '6', '7':
			x := int(c - '0')
			for k := 0; k < 2 && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '7'; k++ {
				i++
				x = x*8 + int(s[i]-'0')
			}
			m.scratch = append(m.scratch, byte(x))
		default:
			m.scratch = append(m.scratch, '\\', c)
		}
	}
	return nil
}

// rawUnicode decodes a UNICODE operand (raw-unicode-escape) into UTF-8.
func (m *machine) rawUnicode(s []byte, at int) error {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' && i+1 < len(s) && (s[i+1] == 'u' || s[i+1] == 'U') {
			n := 4
			if s[i+1] == 'U' {
				n = 8
			}
			if i+2+n > len(s) {
				return m.errorf("UNICODE at %d: truncated escape", at)
			}
			x, err := strconv.ParseUint(string(s[i+2:i+2+n]), 16, 32)
			if err != nil || x > utf8.MaxRune {
				return m.errorf("UNICODE at %d: bad escape", at)
			}
			m.scratch = utf8.AppendRune(m.scratch, rune(x))
			i += 1 + n
			continue
		}
		m.scratch = utf8.AppendRune(m.scratch, rune(c))
	}
	return nil
}
