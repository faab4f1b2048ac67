// Package storage is the NEO storage node: it identifies to the primary
// master, answers the master during recovery and verification, then serves
// clients (object loads, the storage side of the two-phase commit) and
// other storages, persisting everything through a storage backend.
//
// The node keeps in memory what the database does not: write locks and
// conflict detection between concurrent transactions, delayed answers and
// deadlock avoidance (txn.go, cluster.md §6.4 and §6.6). The backend only
// persists.
//
// Durability (cluster.md §6.10): a vote is answered after the temporary
// rows are committed; a lock is answered after the final tid is committed
// on nodes holding the transaction metadata; an unlock is committed within
// a second, and verification replays it from the temporary tables if the
// node dies before.
package storage
