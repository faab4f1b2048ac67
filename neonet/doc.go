// Package neonet is NEO's link layer (protocol.md §1): one [Link] per TCP
// (optionally TLS) connection to a peer node, carrying multiplexed
// requests, answers and notifications.
//
// # Stream
//
//	TCP connect
//	  └─ [TLS 1.2, mutual certificates]          if a [TLSConfig] is given
//	       └─ 92 a3 4e 45 4f 05                  handshake, sent by both ends at once
//	            └─ [id, code, [args...]] ...     msgpack packets (package proto)
//
// [Dial] and [Listener.Accept] return a Link only after both handshakes were
// exchanged: a peer speaking another protocol version fails with an error
// matching [ErrVersionMismatch], one that does not speak NEO with
// [ErrNotNEO]; in both cases the connection is closed without sending
// anything else, as neoppod does. Bytes the peer queued right behind its
// handshake (neoppod sends its RequestIdentification without waiting) are
// kept for the packet reader. Dial waits for the peer's handshake before
// returning, so that a mismatch is its error rather than a later one; on a
// long-lived link the round trip this adds to the first request does not
// matter. A received packet is bounded by [Config.MaxPacketSize] (64 MiB
// and some, neoppod's limit) as soon as its header declares its sizes,
// before its bytes are buffered.
//
// # Message ids
//
// Each end numbers the packets it originates (requests and notifications)
// with its own 32-bit counter, starting at 0 and wrapping. An answer carries
// the id of the request it answers. [Link.Ask] and [Link.Start] register the
// request before sending it, and the reader goroutine hands the answer to
// the waiting call directly. Several requests may be outstanding and be
// answered in any order. [Link.SendWithID] and [Request.Reply] send with an
// explicit id: answers, the AddTransaction/AddObject notifications that
// reuse the id of the AskFetch* request they belong to (§5.12), and the
// admin's relay of master answers with neoctl's id (§5.14).
//
// # Concurrency and ownership
//
// A Link is safe for use by any number of goroutines. Each link runs a
// reader and a writer goroutine, started by Dial/Accept and ended by the
// link's close; [Link.Done] is closed when both have exited. A sender
// writes its packet to the socket itself when no write is in progress
// (no goroutine switch on the round trip of a lone request); otherwise
// the packet is queued and the writer goroutine writes the queue in
// batches (see link_write.go, and bench_test.go). Send, Reply and
// Start therefore return once the packet is written or queued; a write
// error closes the link. [Link.StartQueued] leaves its request unwritten
// for a while, so that many asynchronous requests go out in one write
// (see queue.go). Locks: wmu (write side) is taken before mu
// (shared state), never the reverse.
//
// One goroutine at a time reads the socket: the reader goroutine, or,
// on links with [Config.CallerReads], a goroutine waiting in [Call.Wait]
// when no other reads, which then dispatches what arrives up to its own
// answer (handler included) and gives the role back: a serial caller's
// round trip then wakes one goroutine, not two. The reader goroutine
// takes the role back when callers leave it unused (link_read.go). Reads
// and writes of plain sockets are non-blocking system calls that skip the
// runtime's blocking-call bookkeeping (sockio_linux.go).
//
// Incoming requests and notifications go to [Config.Handler], called on the
// reader goroutine, or, without a handler, to an unbounded queue read by
// [Link.Recv]: the reader never blocks on the owner, so answers keep
// flowing while the owner is busy. [Link.SetHandler] switches a link from
// the queue to a handler, e.g. once the peer is identified: a request
// served on the reader goroutine costs no goroutine switch, and
// [Request.More] tells the handler whether others wait behind it. Ping is answered with Pong by the link
// itself and never reaches the owner. A message handed to the owner, and
// the answer stored in a call, belongs to the receiver; its byte slices do
// not alias any buffer the link reuses.
//
// # Closing
//
// [Link.Close] closes at once. [Link.Abort] is neoppod's abort: incoming
// data is no longer processed, packets sent before are flushed, then the
// connection is closed; use it after replying Error(PROTOCOL_ERROR) or
// NotPrimaryMaster. After either, or when the peer or the network breaks
// the link, every pending and later operation fails with an error matching
// [ErrClosed] whose text and chain also hold the cause ([io.EOF] when the
// peer closed, [ErrAborted] or [ErrClosedLocally] for our own close, a
// protocol violation, a socket error); [Link.Err] returns it.
//
// The link layer applies the generic rules of protocol.md §1.7: an answer
// whose id matches no outstanding request is answered with
// Error(PROTOCOL_ERROR) and the link aborted (Pong and Error excepted:
// dropped), and so is an answer of the wrong type; a packet that cannot be
// decoded closes the link. It has no notion of node roles or
// identification: that belongs to the nodes.
package neonet
