// Package storage is the NEO storage node: it identifies to the primary
// master, answers the master during recovery and verification, then serves
// clients (object loads, the storage side of the two-phase commit) and
// other storages, persisting everything through a storage backend.
//
// The node keeps in memory what the database does not: write locks and
// conflict detection between concurrent transactions, delayed answers and
// deadlock avoidance (cluster.md §6.4 and §6.6). The backend only persists.
//
// Files:
//
//	storage.go      Node, Config, Run/Shutdown, connection to the primary master
//	master.go       packets from the master: recovery, verification, pt, lock/unlock
//	client.go       identification of clients and storages, client requests
//	txn.go          transaction manager: write/read locks, delays, relock (pure)
//	db.go           the transaction manager's view of the backend
//	feed.go         feeding side of replication and replica checks
//	replication.go  replica side: bringing OUT_OF_DATE cells up to date
//	backup.go       backup cluster: replicating from the upstream cluster
//	pack.go         processing approved pack orders
//	pt.go           the node's copy of the partition table
//
// Concurrency: the master link is served by Run's goroutine, in order,
// except the durable write of a lock, which runs in its own goroutine:
// the locks and unlocks behind it overlap it, other packets wait for it,
// and the locks waiting for the writer share one write and one sync
// (txnStore.lockTransaction); every incoming link by its own goroutine, except that an identified
// client's requests are served, in order, on its link's reader goroutine
// (loads that pile up run in up to 8 goroutines per link); the replicator
// and the packer run in their own goroutines while the node is
// operational. Lock order:
// txnManager.mu, then Node.mu, then Node.wmu (serialises backend writes).
//
// Durability (cluster.md §6.10): a vote is answered after the temporary
// rows are durable; a lock is answered after the final tid is durable on
// nodes holding the transaction metadata; an unlock is committed when it
// returns (not fsynced), and verification replays it from the temporary
// tables if it is lost.
package storage
