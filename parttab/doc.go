// Package parttab is NEO's partition table: which storage nodes hold which
// partitions, and in which state (cluster.md §4, protocol.md §4.6).
//
// The database is cut into np partitions; an object lives in partition
// oid % np and a transaction's metadata in partition tid % np. Each
// partition is a row of cells (storage node id, cell state):
//
//	          S1 S2 S3
//	row 0     U  U  .      U = UP_TO_DATE (readable and written)
//	row 1     .  U  O      O = OUT_OF_DATE (written, replicating, not read)
//	row 2     F  .  U      F = FEEDING (readable, about to be dropped)
//	                        . = no cell
//
// A table also carries the number of replicas nr (a partition wants nr+1
// readable cells), its id ptid (1 for the first table, +1 per change; 0
// when there is none) and its node set: the storages taking part in the
// table, including those that were added but got no cell yet.
//
// Everything here is pure: node states come in as a [States] function, the
// storage topology as a map, and every mutation returns the list of
// [Change]s that NotifyPartitionChanges carries. The algorithms (the
// canonical layout and its search in [Table.Tweak], [Table.Outdate],
// [Table.SetUpToDate], [Table.DropNodes]) produce the same results, cell
// order included, as neoppod's master for the same input; testdata holds
// cases computed by neoppod.
//
// A Table is not safe for concurrent use: its owner (the master's core, a
// storage's or client's main loop) serialises access.
package parttab
