// Package objcache is a bounded in-memory cache of object revisions in
// front of a storage node's [backend.Backend].
//
// A ZODB client mostly loads the latest revision of an object
// (loadBefore(oid, last_tid+1)). Answering it from a backend costs a
// database read transaction per load; [Wrap] returns a decorator that
// answers Load and LastObjectTid from memory when it can, and passes every
// other call through. neoppod's storage has no such cache: size it like any
// buffer pool (neostorage --cache-size).
//
// # What is cached
//
// One revision per oid: the last one a Load returned (the latest revision
// is not replaced by an older one), or the one a commit wrote: an unlock
// caches the records of the transaction that have data of their own as
// the latest revisions, with the final tid (write-through: objects just
// written are often read soon, by other clients once invalidated, and by
// the next conflict check). Undo records and deletions are not cached. Memory is accounted as the capacity of
// the data plus a fixed overhead per entry; each shard (chosen by a hash of
// the oid, so that a node holding a few partitions still uses every shard)
// evicts its least recently used entries when over its share of the
// budget. An entry never holds an error: "oid not found" is always asked
// to the backend.
//
// A cached entry with NextSerial = InvalidTid was the latest revision when
// it was loaded, and stays so until a write invalidates it. Hence:
//
//	Load(oid, at, -)        hit if entry.Serial == at
//	Load(oid, -, before)    hit if entry.Serial < before and
//	                        (entry.NextSerial == InvalidTid or before <= entry.NextSerial)
//	Load(oid, -, -)         hit if entry.NextSerial == InvalidTid
//	LastObjectTid(oid)      hit if entry.NextSerial == InvalidTid: entry.Serial
//
// # Invalidation
//
// Every write that changes what Load or LastObjectTid return invalidates
// the affected oids before it returns, after the backend's write:
//
//	StoreTransaction         nothing visible (temporary rows); remembers ttid -> oids
//	                         and a copy of its records with data
//	LockTransaction          nothing visible (sets the final tid of temporary rows)
//	UnlockTransaction,       the remembered oids of ttid, then caches its records;
//	ValidateTransaction      everything if ttid is unknown (voted before a
//	                         restart, or by another path)
//	AbortTransaction         nothing visible; forgets ttid
//	DropUnfinishedData       nothing visible; forgets every ttid
//	ReplicateObjects         the oids added and deleted
//	Pack                     the entries that packing may delete: older revisions
//	                         and deletions up to the pack tid (any partition)
//	DropPartition, Truncate  everything (rare; the oids touched are not known
//	                         without asking the backend)
//	ChangePartitionTable     everything on reset (the number of partitions, hence
//	                         where an oid lives, may change) or when a cell is
//	                         DISCARDED (its data may be dropped or reassigned)
//	Close                    everything
//
// The other methods do not change committed objects: SetMeta,
// SetCellTid, SetPartitionPacked, ReplicateTransactions (trans rows
// only), SignPackOrders, and the reads.
//
// A load that read the database before a commit must not install its
// answer after the commit's invalidation. Each shard has a generation,
// bumped by every invalidation touching it; a filler reads the generation
// before asking the backend and inserts only if it is unchanged, both
// under the shard's mutex. Between the backend's write and the
// invalidation, a hit may still return the previous revision: the storage
// node does not read an oid in that window (see [Wrap]).
//
// # Slice ownership
//
// The Data of a returned [backend.Object] is shared with the cache and
// with other callers: it must not be modified. The storage node only
// encodes it into packets. Every returned Object is a fresh copy
// otherwise.
package objcache
