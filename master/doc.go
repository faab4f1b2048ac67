// Package master is NEO's master node: it owns the cluster state, the node
// table and the partition table, allocates object and transaction ids and
// drives the two-phase commit (cluster.md §1.2, §2, §5, §6).
//
// The node is split in two:
//
//   - [Core] is a pure state machine. Events go in ([Recv]: a packet from a
//     link; [Answer]: the answer to one of the master's requests; [Closed]:
//     a link ended; [Tick]), a batch of [Effect]s comes out (send, reply,
//     ask, abort a link, stop listening, exit). It does no I/O and reads
//     time only through [Config.Now]. The behaviour of each cluster state
//     (RECOVERING, VERIFYING, RUNNING, STOPPING) is a [role]: a set of step
//     functions swapped on state change. Election and the secondary role
//     (election.go) dial the other masters with [Dial] effects.
//   - [Server] is the driver: it listens, runs one reader per link feeding
//     the core's single goroutine, and performs the effects in order.
//
// Transitions requested while handling an event (leaving operation after a
// storage loss, STOPPING asked by an admin) are applied at the end of the
// step, after the answers of that step, like neoppod's exceptions.
//
// Where neoppod makes peers wait a second (its CONNECT_LIMIT) during a
// failover, this master answers as soon as it can: it retries masters
// after 100 ms, holds identifications while an election or a recovery is
// under way (hold.go), and keeps a client's link when it refers to a
// transaction begun on a previous primary.
//
// Not implemented yet: backup mode.
package master
