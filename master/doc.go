// Package master is NEO's master node: it owns the cluster state, the node
// table and the partition table, allocates object and transaction ids and
// drives the two-phase commit (cluster.md §1.2, §2, §5, §6).
//
// The node is split in two:
//
//   - package [github.com/neogo/neo/master/core] is the pure state
//     machine ([core.Machine]): events in, effects out, no I/O, no clock
//     of its own. All the rules of the master live there.
//   - [Server] is the driver: it listens, dials the masters the machine
//     asks for (at most one attempt per address every 100 ms), runs one
//     reader per link feeding the machine's single goroutine, performs
//     the effects in order, ticks every second, and reads and writes the
//     dynamic master list file.
package master
