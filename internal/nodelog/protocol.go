package nodelog

import (
	_ "embed"
	"fmt"
	"strings"

	"github.com/neogo/neo/proto"
)

// protocolDef is the protocol table's text: bz2 of [protocolSource],
// made by `go test ./internal/nodelog -run TestProtocolDef -update`
// (Go's compress/bzip2 only decompresses; the test checks it is current).
//
//go:embed protocol.py.bz2
var protocolDef []byte

// protocolSource returns the definition of our protocol that the log
// files carry for neoppod's neolog, which executes it: a Python module of
// our own (not neoppod's protocol source) with uuid_str, the packet names
// by code (Packets) and a msgpack Unpacker. neoppod's neolog thus names
// our packets and, with -a, shows their raw msgpack arguments, without
// the decoding of its own protocol (Error, node lists, data).
func protocolSource() string {
	var b strings.Builder
	b.WriteString(`# NEO in Go (github.com/neogo/neo), protocol version 5: the packets'
# names by wire code, for neoppod's neolog. Bodies are msgpack arrays of
# the arguments (see the spec's protocol.md).
from msgpack import Unpacker

_ns = {-0x10: 'M', 0: 'S', -0x20: 'C', -0x30: 'A'}

def uuid_str(uuid):
    if not uuid:
        return str(uuid)
    return _ns.get(uuid >> 24, '?') + str(uuid & 0xffffff)

class Packet(object):
    pass

Packets = {}
for _code, _name in (
`)
	for _, code := range codes() {
		fmt.Fprintf(&b, "        (0x%04x, %q),\n", code, proto.MsgName(code))
	}
	b.WriteString(`        ):
    Packets[_code] = type(_name, (Packet,), {'_code': _code})
`)
	return b.String()
}

// codes returns the registered wire codes, requests then answers.
func codes() []uint16 {
	var out []uint16
	for _, base := range []uint16{0, proto.ResponseMask} {
		for c := range uint16(256) {
			if proto.NewMsg(base|c) != nil {
				out = append(out, base|c)
			}
		}
	}
	return out
}
