// Package ctl is neoctl as a library: it talks to an admin node
// (cluster.md §9.5, protocol.md §5.14) and formats what neoctl prints.
//
// A [Client] is one connection to an admin. neoctl never identifies: after
// the handshake it sends its requests directly, and the admin answers
// itself (node list, partition table, cluster state, primary, monitoring
// summary) or relays them to the primary master and sends back the
// master's answer under neoctl's message id. Client has one method per
// packet; requests answered by Error return the ACK message.
//
// The Print* and Format* functions produce neoctl's output text, byte for
// byte the same as neoppod's neoctl for the same answers, so that scripts
// parsing it keep working. Their results carry no trailing newline.
//
// Errors: a failed connection is [ErrNotConnected], a connection lost
// while waiting is [ErrConnectionClosed]; an Error packet from the admin
// or the master is returned as a *proto.Error (DENIED for refused
// commands, NOT_READY when the admin has no primary master).
package ctl
