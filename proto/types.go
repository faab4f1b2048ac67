package proto

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// Version is the protocol version sent in the handshake.
//
// History:
//   - 5 (neoppod dcdbdef, 2026-02): msgpack framing; the version we speak.
const Version = 5

// ResponseMask is the bit set in the code of answers and of Error.
const ResponseMask = 0x8000

// Tid is a transaction id: a ZODB TimeStamp (see tid.go) as a 64-bit number.
type Tid uint64

// Oid is an object id. Oid 0 is the ZODB root object.
type Oid uint64

// Special ids (protocol.md §2.2).
const (
	ZeroTid Tid = 0
	// MaxTid is the greatest tid a cluster issues; kept below 2^63 for SQL.
	MaxTid Tid = 0x7fffffffffffffff
	// InvalidTid stands for nil in optional tid fields (?p64); it is never
	// a valid transaction id.
	InvalidTid Tid = 0xffffffffffffffff

	ZeroOid Oid = 0
	// InvalidOid stands for nil in optional oid fields.
	InvalidOid Oid = 0xffffffffffffffff
)

// String returns the tid as 16 hex digits, as neoppod logs it.
func (t Tid) String() string { return fmt.Sprintf("%016x", uint64(t)) }

// String returns the oid as 16 hex digits.
func (o Oid) String() string { return fmt.Sprintf("%016x", uint64(o)) }

// Bytes returns the 8-byte big-endian form used on the wire (p64).
func (t Tid) Bytes() [8]byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(t))
	return b
}

// Bytes returns the 8-byte big-endian form used on the wire (p64).
func (o Oid) Bytes() [8]byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(o))
	return b
}

// PTid is a partition table id: 1 for the first table, +1 per change.
// 0 stands for nil (no table yet).
type PTid uint64

// NodeID is a node's id ("uuid", "nid"), protocol.md §2.3: a signed 32-bit
// number whose high byte gives the node type namespace. 0 stands for nil.
type NodeID int32

// Node id namespaces: the signed high byte of an id.
var nodeIDNamespace = map[NodeType]int32{
	MASTER:  -0x10,
	STORAGE: 0x00,
	CLIENT:  -0x20,
	ADMIN:   -0x30,
}

// NewNodeID returns the id number n (starting at 1) of a node of type t.
func NewNodeID(t NodeType, n uint32) NodeID {
	return NodeID(nodeIDNamespace[t]<<24 + int32(n&0xffffff))
}

// Type returns the node type whose namespace the id belongs to.
func (id NodeID) Type() (NodeType, bool) {
	ns := int32(id) >> 24
	for t, v := range nodeIDNamespace {
		if v == ns {
			return t, true
		}
	}
	return 0, false
}

// String returns the id as neoppod prints it: "S1", "M2", "C3", "A1";
// "0" for nil. An id outside every namespace prints as a plain number.
func (id NodeID) String() string {
	if id == 0 {
		return "0"
	}
	t, ok := id.Type()
	if !ok {
		return strconv.FormatInt(int64(id), 10)
	}
	return fmt.Sprintf("%c%d", t.Letter(), int32(id)&0xffffff)
}

// ParseNodeID parses the "S1" form back into an id, as neoctl does.
func ParseNodeID(s string) (NodeID, error) {
	if len(s) < 2 {
		return 0, fmt.Errorf("invalid node id %q", s)
	}
	for t, ns := range nodeIDNamespace {
		if s[0] == t.Letter() {
			n, err := strconv.ParseUint(s[1:], 10, 24)
			if err != nil {
				return 0, fmt.Errorf("invalid node id %q", s)
			}
			return NodeID(ns<<24 + int32(n)), nil
		}
	}
	return 0, fmt.Errorf("invalid node id %q: unknown type letter %q", s, s[0])
}

// Addr is a node's network address: numeric IP text and port (§4.4).
// The zero Addr stands for nil.
type Addr struct {
	Host string
	Port uint16
}

// String returns "host:port", or "[host]:port" for IPv6.
func (a Addr) String() string {
	if strings.Contains(a.Host, ":") {
		return "[" + a.Host + "]:" + strconv.Itoa(int(a.Port))
	}
	return a.Host + ":" + strconv.Itoa(int(a.Port))
}

// IsZero reports whether a stands for nil.
func (a Addr) IsZero() bool { return a.Host == "" && a.Port == 0 }
