package proto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Msg is implemented by every packet type (with pointer receivers).
//
// NEOMsgEncode appends the msgpack array of the arguments to b and returns
// the extended slice. NEOMsgDecode decodes the arguments array at the start
// of data, overwriting every field, and returns the number of bytes it
// consumed; its errors match [ErrDecode]. Decoded []byte fields and [Value]
// bins alias data (no copy): the caller must not modify data while the
// message is in use. string fields are copies.
type Msg interface {
	NEOMsgCode() uint16
	NEOMsgEncode(b []byte) []byte
	NEOMsgDecode(data []byte) (int, error)
}

// Handshake is sent by both ends right after the connection (and TLS) is
// established: msgpack ["NEO", Version]. It is compared byte for byte.
const Handshake = "\x92\xa3NEO\x05"

// Kind classifies packet codes (protocol.md §3.2).
type Kind uint8

const (
	// KindAsk is a request with a dedicated answer ([AnswerCode]).
	KindAsk Kind = iota + 1
	// KindAskError is a request answered by an Error packet (ACK on success).
	// Truncate is one too, although the master sends it to storages as a
	// plain notification.
	KindAskError
	// KindNotify is a notification: nothing is answered.
	KindNotify
	// KindAnswer is the dedicated answer of a KindAsk request.
	KindAnswer
	// KindError is the Error packet (code 0x8000), which may answer any
	// request.
	KindError
)

var kindNames = [...]string{"", "ask", "ask-error", "notify", "answer", "error"}

func (k Kind) String() string {
	if int(k) < len(kindNames) && k != 0 {
		return kindNames[k]
	}
	return "Kind(" + itoa(int(k)) + ")"
}

// IsRequest reports whether a packet of this kind expects an answer.
func (k Kind) IsRequest() bool { return k == KindAsk || k == KindAskError }

// IsResponse reports whether a packet of this kind answers a request (and
// therefore carries the id of that request).
func (k Kind) IsResponse() bool { return k == KindAnswer || k == KindError }

// msgInfo describes one registered code.
type msgInfo struct {
	name   string
	kind   Kind
	answer uint16 // answer code of a KindAsk request
	new    func() Msg
}

// lookup returns the registry entry of a wire code.
func lookup(code uint16) *msgInfo {
	var tab *[numCodes]msgInfo
	if code&ResponseMask != 0 {
		tab = &answerTable
	} else {
		tab = &requestTable
	}
	c := int(code &^ ResponseMask)
	if c >= numCodes || tab[c].new == nil {
		return nil
	}
	return &tab[c]
}

// NewMsg returns a new zero message for a wire code, nil if the code is
// unknown.
func NewMsg(code uint16) Msg {
	if mi := lookup(code); mi != nil {
		return mi.new()
	}
	return nil
}

// MsgName returns neoppod's name of the packet with this wire code
// ("AskObject", "AnswerObject", "Error"), or "?(0x....)" if unknown.
func MsgName(code uint16) string {
	if mi := lookup(code); mi != nil {
		return mi.name
	}
	return fmt.Sprintf("?(0x%04x)", code)
}

// MsgKind returns the kind of a wire code; ok is false if it is unknown.
func MsgKind(code uint16) (k Kind, ok bool) {
	if mi := lookup(code); mi != nil {
		return mi.kind, true
	}
	return 0, false
}

// AnswerCode returns the code of the dedicated answer of a request. ok is
// false for notifications, answers, Error and requests answered by Error.
func AnswerCode(reqCode uint16) (code uint16, ok bool) {
	if mi := lookup(reqCode); mi != nil && mi.kind == KindAsk {
		return mi.answer, true
	}
	return 0, false
}

// AppendPacket appends the packet [id, code, args] to b.
func AppendPacket(b []byte, id uint32, m Msg) []byte {
	b = append(b, 0x93)
	b = appendUint(b, uint64(id))
	b = appendUint(b, uint64(m.NEOMsgCode()))
	return m.NEOMsgEncode(b)
}

// DecodeHeader splits one complete packet, as delimited by [FrameSize],
// into its id, its code and the bytes of its args array, without decoding
// the args (see [Msg.NEOMsgDecode] and [NewMsg]). Errors match [ErrDecode].
func DecodeHeader(frame []byte) (id uint32, code uint16, args []byte, err error) {
	d := decoder{b: frame}
	d.tuple(3)
	id = uint32(d.uint(math.MaxUint32))
	code = uint16(d.uint(math.MaxUint16))
	if d.err != nil {
		return 0, 0, nil, &DecodeError{Msg: "packet", Arg: -1, Err: d.err}
	}
	return id, code, frame[d.i:], nil
}

// DecodePacket decodes one complete packet, as delimited by [FrameSize].
// The returned message may alias frame (see [Msg]). Errors match
// [ErrDecode] and are [*DecodeError]s.
func DecodePacket(frame []byte) (id uint32, m Msg, err error) {
	id, code, args, err := DecodeHeader(frame)
	if err != nil {
		return 0, nil, err
	}
	m = NewMsg(code)
	if m == nil {
		return id, nil, &DecodeError{Msg: "packet", Arg: -1, Err: fmt.Errorf("unknown code 0x%04x", code)}
	}
	n, err := m.NEOMsgDecode(args)
	if err != nil {
		return id, nil, err
	}
	if rest := len(args) - n; rest != 0 {
		return id, nil, &DecodeError{Msg: MsgName(code), Arg: -1, Err: fmt.Errorf("%d bytes after the packet", rest)}
	}
	return id, m, nil
}

// errFrame builds the error of FrameSize for a malformed stream.
func errFrame(format string, args ...any) error {
	return &DecodeError{Msg: "packet", Arg: -1, Err: fmt.Errorf(format, args...)}
}

// FrameSize returns the length of the complete packet at the start of buf,
// or (0, nil) if buf holds only a prefix of it. It returns an error if buf
// cannot start a valid packet (not a 3-element array, id or code out of
// range, args not an array, invalid msgpack byte): such errors match
// [ErrDecode]. It returns an error matching [ErrFrameTooBig] as soon as a
// declared length or element count implies more than maxSize bytes, before
// the bytes arrive.
//
// FrameSize allocates nothing and does not recurse. It rescans buf from the
// start on each call, so callers should call it again only after reading
// more bytes.
func FrameSize(buf []byte, maxSize int) (int, error) {
	if len(buf) == 0 {
		return 0, nil
	}
	// Envelope: [id, code, args].
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
	// Walk the args without recursion: pending counts the objects still to
	// skip.
	limit := uint64(maxSize)
	pending := uint64(1)
	for pending > 0 {
		if pos >= len(buf) {
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
			return 0, err
		}
		if hdr == 0 {
			return 0, nil
		}
		pending += children - 1
		// Every pending object takes at least one byte.
		if need := uint64(pos) + uint64(hdr) + payload + pending; need > limit {
			return 0, fmt.Errorf("%w: at least %d bytes declared, limit %d", ErrFrameTooBig, need, maxSize)
		}
		pos += hdr + int(payload)
		if pos > len(buf) {
			return 0, nil
		}
	}
	return pos, nil
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
	case mpExt8:
		if hdr, payload = sized(rest, 1); hdr != 0 {
			hdr++ // type byte
		}
	case mpExt16:
		if hdr, payload = sized(rest, 2); hdr != 0 {
			hdr++ // type byte
		}
	case mpExt32:
		if hdr, payload = sized(rest, 4); hdr != 0 {
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
