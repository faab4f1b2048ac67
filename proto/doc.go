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
// [FrameSize] finds where the next packet ends in a byte stream (bounding
// every declared length before anything is allocated), and [DecodePacket]
// turns one framed packet into its id and message.
package proto
