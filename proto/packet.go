package proto

import (
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

// DecodeHeader splits one complete packet, as delimited by [FrameScanner],
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

// DecodePacket decodes one complete packet, as delimited by [FrameScanner].
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
