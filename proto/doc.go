// Package proto defines the NEO wire protocol, version 5, as spoken by
// neoppod (the Python NEO): every packet as a Go struct, and their msgpack
// codec. It imports nothing else of this module.
//
// # Stream
//
// After TCP (and optionally TLS) each end sends the 6-byte handshake, then
// an endless stream of msgpack objects, one per packet, with no length
// prefix and no checksum:
//
//	+----+----+----+----+----+----+
//	| 92 | a3 | 'N'| 'E'| 'O'| 05 |   handshake: msgpack ["NEO", 5]
//	+----+----+----+----+----+----+
//	+----+---------+-----------+----------------------+
//	| 93 | msg_id  | code      | args (array)         |   packet: [id, code, args]
//	+----+---------+-----------+----------------------+
//	      uint32    uint16: bit 15 (ResponseMask) set for answers and Error
//
// Ids and tids are 8-byte bin (big-endian), byte strings are always bin,
// enums are ext types (CellStates 0, ClusterStates 1, NodeStates 3,
// NodeTypes 4) holding a msgpack integer, nil stands for absent values.
//
// # API
//
// Every packet type implements [Msg]. [AppendPacket] encodes a packet,
// [FrameScanner] finds where the next packet ends in a byte stream that
// arrives in pieces ([FrameSize] in a buffer at hand), bounding every
// declared length before anything is allocated, and [DecodePacket] turns
// one framed packet into its id and message ([DecodeHeader] only into its
// id, code and undecoded args). [MsgKind] and
// [AnswerCode] classify codes for the link layer. An Error packet is a Go
// error: errors.Is(err, [ErrOidNotFound]) and the like work on it.
//
// # Go representation
//
// Struct fields are declared in wire order. A nested struct is an array of
// its fields, a slice is an array, a slice field tagged `neo:"map"` is a map
// whose entries are the two fields of the element struct, in wire order.
// Go string and []byte are both bin. Enums are ext types; ErrorCode is a
// plain integer. nil (None) is represented, for every field of these types
// whether or not the argument is optional, by:
//
//	Tid, Oid   InvalidTid, InvalidOid (all ones)
//	NodeID     0
//	PTid       0
//	Addr       the zero Addr
//	Opt[T]     Valid == false (id timestamps, ?int, ?bool, optional tuples
//	           and lists, optional enums)
//
// Python never sends the sentinel values themselves, so every packet it
// sends decodes and re-encodes to the same bytes.
package proto
