// Package neo is NEO in Go: a distributed, redundant, transactional object
// storage for ZODB that speaks the wire protocol of neoppod (the Python NEO,
// protocol version 5), so that Python ZODB applications using neoppod's
// client, mixed Go/Python clusters and Go programs all work together.
//
// # Architecture
//
// A cluster has master nodes (one primary, the others waiting to take
// over), storage nodes (every revision of every object, spread over
// partitions and replicated), an admin node driven by neoctl, and clients.
// The code is layered so that dependencies point one way:
//
//	proto      wire protocol: every packet and its msgpack codec (imports nothing of ours)
//	neonet     link layer: TCP/TLS, handshake, multiplexed Ask/Answer/Notify
//	parttab    partition table: pure data structure and algorithms
//	nodetab    node table: pure
//	storage/backend  storage backend interface and its implementations (sqlite)
//	ctl        neoctl operations as a library
//	cmd/*      thin programs: flags -> Config -> Run(ctx)
//
// Pure packages (proto, parttab, nodetab) do no I/O and read no clock, so
// that the state machines built on them can be tested deterministically.
//
// # Glossary
//
//	oid     object id, 8 bytes; oid 0 is the ZODB root
//	tid     transaction id, a ZODB timestamp; ttid is the temporary tid given at begin
//	nid     node id ("uuid" in neoppod), e.g. S1, M1, C3
//	ptid    partition table id, +1 per change
//	cell    a (partition, storage node) pair with a state (UP_TO_DATE, OUT_OF_DATE, ...)
package neo
