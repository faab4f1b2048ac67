// Package client is NEO's native Go client (cluster.md §7): what a ZODB
// storage needs from a NEO cluster, over the wire protocol, without
// conflict resolution and (yet) without a cache.
//
//	c, err := client.Open(ctx, client.Config{Masters: []string{"127.0.0.1:10000"}, Cluster: "test"})
//	oid, _ := c.NewOID(ctx)
//	txn, _ := c.Begin(ctx)
//	txn.Store(ctx, oid, proto.ZeroTid, data)     // to every cell of oid's partition
//	txn.Vote(ctx)                                // conflicts come out here: *ConflictError
//	tid, _ := txn.Finish(ctx)
//	obj, _ := c.Load(ctx, oid, proto.InvalidTid) // current: last tid + 1
//	old, _ := c.LoadSerial(ctx, oid, tid)
//	for inv := range c.Watch(ctx) { ... }        // (tid, oids) of every commit, in tid order
//
// # Connections
//
// [Open] finds the primary master among [Config.Masters] (a secondary
// master redirects with NotPrimaryMaster; a master of a cluster that is
// not RUNNING answers NOT_READY and the next one is tried), identifies as
// a CLIENT and learns its node id, its id_timestamp, the node list, the
// partition table and the last tid, all kept current from the master's
// notifications. Storage links are opened on demand, identified with our
// node id and id_timestamp (protocol.md §5.6).
//
// Reads go to a readable cell of the object's partition, chosen at random
// with the storages that failed recently last (§7.2); on a broken link,
// NOT_READY or NON_READABLE_CELL the next cell is tried. When every cell
// was tried, the client syncs with the master (so that a partition
// table change on the way is applied) and tries again. Failures are
// counted (NON_READABLE_CELL, a table race, is not): once they
// outnumber the readable cells, the read fails with a [*NoStorageError]
// (errors.Is [ErrNoStorage]) naming the oid and partition; the loss of
// the master connection during the read gives an error matching
// [ErrMasterLost]. Both are to be retried later, as neoppod's
// NEOStorageError and NEOPrimaryMasterLost; the client does not wait
// for storages to come back. The SHA-1 of every object
// received is checked: bad data from every readable cell is a
// [*ChecksumError].
//
// A transaction ([Client.Begin], [Txn]) stores to every cell of each
// object's partition; the stores to a storage are written together,
// 64 KiB at a time or at the vote (neonet's StartQueued: one system call
// instead of one per store). A storage whose link breaks during the transaction
// is treated as having answered; at vote the client checks that every
// partition written keeps a live (and locked) copy and reports the
// failed storages to the master (FailedVote, §6.7), which accepts only if
// the cluster stays operational without them.
//
// # Reconnection
//
// When the link to the primary master breaks, the client forgets the
// partition table and its storage links (the master forgets the client,
// so will the storages) and looks for the primary again, round robin
// over the configured masters and those the master announced, pausing
// between rounds (from 50 ms, growing by half, up to 1 s) until it finds
// one or
// [Client.Close] is called. Meanwhile:
//
//   - Load, LoadSerial, Begin, NewOID, LastTid and Sync wait for the new
//     connection, within their context; except that reads fail at once
//     (ErrMasterLost) after the master said the cluster left operation
//     (StopOperation, e.g. every storage of a partition lost): waiting
//     would last until an administrator acts;
//   - a transaction begun on the lost connection fails with an error
//     matching [ErrMasterLost] (the master aborted it); the caller
//     aborts and begins again;
//   - a transaction whose Finish was sent when the link broke is not
//     lost: Finish asks the new primary, then the storages, whether it
//     committed (AskFinalTID, §6.9), and returns its tid if it did;
//   - watchers get an [Invalidation] with All set if commits happened
//     while disconnected.
//
// A storage's NotifyDeadlock (§6.6) is answered with AskRelockObject
// while the transaction still waits for store answers; the relock's
// conflict, if the other transaction committed, is a [*ConflictError]
// at vote like any other.
//
// # TLS
//
// [Config.TLS] (from [github.com/neogo/neo/neonet.LoadTLS]) secures the
// master and storage links with mutual authentication; every node of
// the cluster must use it too.
//
// # Not done (yet)
//
//   - No cache: every Load asks a storage. [Object]'s serials and
//     [Client.Watch] are what a cache in front of Load needs.
//   - No conflict resolution: a conflict, from a store or a relock, is a
//     [*ConflictError] at vote; the caller aborts and begins again. No
//     re-store after a resolved conflict, so no list of resolved oids.
//   - No read-current checks (AskCheckCurrentSerial), deletions (a
//     store without data), undo (AskUndoTransaction, data_serial),
//     history (AskObjectHistory), iteration over transactions (AskTIDs,
//     AskTransactionInformation, AskObjectUndoSerial), pack (AskPack) or
//     replication/backup-specific reads.
//   - Oids allocated but not used are dropped when the master is lost
//     (neoppod's too); a Begin with a chosen tid is not offered.
//
// # Design notes
//
// The master link's notifications are applied on its reader goroutine,
// so that the answer that ends [Client.Sync] comes after every
// invalidation sent before it. Sync asks AskLastTransaction, not Ping as
// neoppod's client does: a master may have its link layer answer Ping
// ahead of notifications it has queued (ours does). [Client.Load] is the path a cache will sit in front of:
// its [Object] carries the serial and next serial that bound the
// validity of the data, and [Client.Watch] the invalidations to apply.
package client
