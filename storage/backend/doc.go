// Package backend defines how a storage node persists its data: the
// [Backend] interface, optional interfaces for fast paths, and a registry
// of implementations by data source name scheme, like database/sql/driver.
//
// # What a backend is, and is not
//
// A backend is a plain store of the logical schema below. Everything that
// is policy stays in the storage node: write and read locks, conflict
// detection between concurrent transactions, delaying reads of locked
// objects, deciding which partitions are readable (the node passes the
// partitions to read), checksum verification of incoming data, caching.
// Pure logic shared by every backend is here as functions over the
// interface ([FindUndoTid], [CheckTIDRange], [CheckSerialRange]).
//
// Implementations register themselves with [Register]; [Open] picks one by
// the scheme of the data source name ("sqlite:///var/lib/neo/s1.db"), and a
// plain path (neoppod's -d option) goes to [DefaultScheme]. Every
// implementation runs the conformance suite of package backendtest.
//
// A wrapping backend such as neoppod's Importer (cluster.md §8.10) embeds
// another Backend, answers the reads it serves from elsewhere, and writes
// imported transactions as committed rows with ReplicateTransactions and
// ReplicateObjects.
//
// # Logical schema (format version 4, cluster.md §8.2)
//
//	config  name → value: version, name, nid, ptid, replicas,
//	        backup_tid, truncate_tid (16 hex digits, absent if unset)
//	pt      (partition, nid) → tid, pack
//	        tid < 0: state −tid (−1 UP_TO_DATE, −2 FEEDING, −3 CORRUPTED);
//	        tid ≥ 0: OUT_OF_DATE, and for the node's own cell the tid up to
//	        which it is complete (replication resumes after it).
//	        pack: last pack order completed on the node's own cell.
//	trans   (partition, tid) → packed, oids, user, description, ext, ttid
//	obj     (partition, oid, tid) → data_id (NULL: no data), value_tid
//	        (undo back-pointer, §8.4); indexes (partition, tid, oid), data_id
//	data    id → hash (SHA-1), compression, value; id = partition<<48 + n;
//	        UNIQUE(hash, compression) when created with deduplication
//	ttrans  like trans, tid NULL until locked, for voted transactions
//	tobj    (tid = the TTID, oid) → partition, data_id, value_tid
//	pack    tid (order id) → approved (NULL unsigned), partial, oids, pack_tid
//
// Partitions: oid % np for objects, tid % np for transactions (and pack
// orders), np being the number of partition-table rows.
//
// # Commit path and durability contract (cluster.md §6.3, §6.10)
//
//	store   nothing is written: the node keeps the records in memory.
//	vote    StoreTransaction writes data, tobj, ttrans and the pack order
//	        in one transaction. It is committed (survives kill -9); it
//	        must be durable (survive a power loss) when the node does not
//	        hold the metadata (meta is nil). On a node holding it, the
//	        vote may wait for the lock to become durable: a transaction
//	        whose ttrans row is not locked is discarded by verification,
//	        and a node that lost its vote also lost its master link, so
//	        the master drops it from the commit.
//	lock    LockTransaction sets ttrans.tid, durably, and makes the vote
//	        of the node durable with it: from here on the transaction can
//	        be acknowledged to the client.
//	unlock  UnlockTransaction moves the rows to trans/obj in one commit
//	        that need not be durable, nor even done when it returns (MySQL
//	        defers it up to a second, merged with the next commit, as
//	        cluster.md §6.3 allows); if it is lost, verification finds the
//	        locked ttrans row and replays it (ValidateTransaction). Reads
//	        see it as soon as it returns.
//	abort   AbortTransaction deletes the temporary rows and their data.
//
// So a transaction acknowledged to a client survives kill -9 of the
// storage process and, when the backend syncs durable commits, a power
// loss. Writes that are not durable when they return (abort, replication,
// pack, drop) are committed: they survive a process crash and become
// durable with the next durable commit; an unlock may be lost with the
// process, and is then replayed.
package backend
