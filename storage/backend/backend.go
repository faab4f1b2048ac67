package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/neogo/neo/proto"
)

// SchemaVersion is the logical schema format a backend writes (cluster.md
// §8.2). Backends refuse a database of a newer version.
const SchemaVersion = 4

// ZeroHash is the checksum of "no data" (a deletion, or an undone creation).
var ZeroHash [20]byte

// Sentinel errors. Backends wrap them with the operation and input that
// failed; callers test them with [errors.Is].
var (
	// ErrOidDoesNotExist: the oid has no record at all (wire OID_DOES_NOT_EXIST).
	ErrOidDoesNotExist = errors.New("backend: oid does not exist")
	// ErrOidNotFound: the oid has records but none at the asked point
	// (wire OID_NOT_FOUND).
	ErrOidNotFound = errors.New("backend: oid not found")
	// ErrTidNotFound: no committed transaction with that tid (TID_NOT_FOUND).
	ErrTidNotFound = errors.New("backend: tid not found")
	// ErrUndoPacked: an undo store points to a record that was packed away
	// and carries no data of its own (UNDO_PACK_ERROR).
	ErrUndoPacked = errors.New("backend: undo target packed away")
	// ErrNoPartitionTable: an operation needs the number of partitions and
	// no partition table was saved yet.
	ErrNoPartitionTable = errors.New("backend: no partition table")
	// ErrLocked: another process has the database open (neoppod exits with
	// "error: database is locked").
	ErrLocked = errors.New("backend: database is locked")
	// ErrDowngrade: the database was written by a newer schema version
	// (neoppod's message).
	ErrDowngrade = errors.New("The database can not be downgraded.") //nolint:staticcheck // neoppod's text
	// ErrUnfinished: the database schema needs an upgrade step that requires
	// empty temporary tables.
	// neoppod's message.
	ErrUnfinished = errors.New("The database can not be upgraded because you have unfinished transactions. Use an older version of NEO to verify them.") //nolint:staticcheck // neoppod's text
	// ErrClosed: the backend was closed.
	ErrClosed = errors.New("backend: closed")
)

// Meta is the node's persistent configuration (the config table). Optional
// tids are [proto.InvalidTid] when unset.
type Meta struct {
	Name        string       // cluster name; "" until first set
	NID         proto.NodeID // own node id; 0 until assigned
	PTID        proto.PTid   // id of the saved partition table; 0 = none
	NumReplicas int          // replicas of the saved partition table
	BackupTid   proto.Tid    // backup DB: tid up to which it has all data
	TruncateTid proto.Tid    // pending truncation, applied at LastIDs time
}

// Cell is one saved partition-table cell.
type Cell struct {
	Partition uint32
	NID       proto.NodeID
	State     proto.CellState // never DISCARDED
	// Tid: for the node's own OUT_OF_DATE cells, the tid up to which the
	// cell is known complete (replication resumes after it); 0 otherwise.
	Tid proto.Tid
	// Pack: for the node's own cells, the id of the last pack order
	// completed on that partition; InvalidTid for other nodes' cells.
	Pack proto.Tid
}

// CellChange is one cell update of a partition-table change. State
// DISCARDED removes the cell.
type CellChange struct {
	Partition uint32
	NID       proto.NodeID
	State     proto.CellState
}

// Record is one object revision as stored and as sent on the wire
// (AskStoreObject, AddObject, AnswerObject).
type Record struct {
	Oid    proto.Oid
	Serial proto.Tid // the revision's tid; ignored by StoreTransaction (the ttid is used)
	// Compression is 0 (raw) or 1 (zlib); 0 for no data.
	Compression uint8
	// Checksum is the SHA-1 of Data; [ZeroHash] with empty Data means no
	// data (deletion or undone creation).
	Checksum [20]byte
	Data     []byte
	// DataSerial is the undo back-pointer ("value_tid"): the revision whose
	// data this record shares; InvalidTid if none.
	DataSerial proto.Tid
}

// HasData reports whether r carries data rather than "no data".
func (r *Record) HasData() bool { return r.Checksum != ZeroHash || len(r.Data) != 0 }

// Object is a loaded revision: the record plus the serial of the next
// revision of the same oid (InvalidTid if it is the latest).
type Object struct {
	Record
	NextSerial proto.Tid
}

// HistoryEntry is one revision in AnswerObjectHistory.
type HistoryEntry struct {
	Serial proto.Tid
	Size   int // stored (possibly compressed) length, 0 without data
}

// TxnMeta is transaction metadata (trans / ttrans rows, AddTransaction).
type TxnMeta struct {
	Tid         proto.Tid // final tid; ignored by StoreTransaction
	TTid        proto.Tid // tid under which the transaction was voted
	User        []byte
	Description []byte
	Ext         []byte
	Oids        []proto.Oid // as sent at vote: stored, deleted and checked oids
	Packed      bool
	// Pack is the pack order carried by the transaction, or nil. In
	// StoreTransaction its ID is ignored (the ttid, then the final tid).
	Pack *PackOrder
}

// PackState is the signature state of a pack order.
type PackState int8

const (
	PackUnsigned PackState = iota // approved NULL
	PackRejected                  // approved 0
	PackApproved                  // approved 1
)

func (s PackState) String() string {
	switch s {
	case PackUnsigned:
		return "unsigned"
	case PackRejected:
		return "rejected"
	case PackApproved:
		return "approved"
	}
	return fmt.Sprintf("PackState(%d)", int8(s))
}

// PackOrder is a pack order (protocol.md §4.8): pack up to PackTid, all
// oids or only Oids when Partial.
type PackOrder struct {
	ID      proto.Tid // tid of the transaction that carried it
	State   PackState
	Partial bool
	Oids    []proto.Oid // nil unless Partial
	PackTid proto.Tid
}

// ObjectKey names one object revision (replication, replica check).
type ObjectKey struct {
	Tid proto.Tid
	Oid proto.Oid
}

// LastIDs answers AskLastIDs for a set of partitions. Fields are
// InvalidTid/InvalidOid when nothing is stored; FirstTid is MaxTid then.
type LastIDs struct {
	LastTid  proto.Tid
	LastOid  proto.Oid
	FirstTid proto.Tid
}

// UndoHistory is what findUndoTID needs about one oid around the undone
// transaction (cluster.md §8.4).
type UndoHistory struct {
	// Before is the tid of the record just before the undone one;
	// InvalidTid if the undone transaction created the oid.
	Before proto.Tid
	// After lists the records after the undone one, ascending.
	After []UndoRecord
}

// UndoRecord is one (tid, value_tid) pair of [UndoHistory].
type UndoRecord struct {
	Tid      proto.Tid
	ValueTid proto.Tid // InvalidTid if the record is not a back-pointer
}

// Options are given to a backend at open.
type Options struct {
	Logger *slog.Logger
	// Reset erases the database before use (neostorage --reset).
	Reset bool
	// Dedup enables data deduplication; it only matters when the database
	// is created (neostorage --dedup).
	Dedup bool
	// Engine is the storage engine of a server backend used when the
	// database is created (neostorage --engine); "" for its default.
	Engine string
	// Wait is how long a server backend waits at open for the server to
	// accept connections (neostorage --wait); negative: forever.
	Wait time.Duration
	// PageSize is the page size in bytes of an embedded backend's file
	// (SQLite), used only when the database is created; 0 for its
	// default.
	PageSize int
}

// Backend is the storage a storage node persists to. It is a plain store:
// write locks, conflict detection, read delays, data caching and which
// partitions are readable are the storage node's business. The node
// passes the partitions it wants read; the backend trusts them.
//
// Concurrency: reads may run concurrently with each other and with one
// write; the node serialises writes (a backend may also do so). Slices
// passed in are not retained after a call returns; returned slices belong
// to the caller.
//
// Durability (see doc.go): LockTransaction (with the vote before it),
// ValidateTransaction, StoreTransaction without metadata and
// configuration/partition-table changes are durable when they return
// (they survive a power loss). Other writes are
// committed when they return (they survive a process crash) and become
// durable with the next durable write, except UnlockTransaction, which a
// backend may defer (a crash loses it; verification replays it).
type Backend interface {
	// Meta returns the saved configuration.
	Meta(ctx context.Context) (Meta, error)
	// SetMeta saves the configuration fields Name, NID, BackupTid and
	// TruncateTid (PTID and NumReplicas are saved by ChangePartitionTable).
	// A NID replacing another one takes over the saved cells of the old
	// NID with their resume points (a clone, cluster.md §8.11).
	SetMeta(ctx context.Context, m Meta) error

	// PartitionTable returns the saved table: ptid, replicas and cells
	// ordered by (partition, nid).
	PartitionTable(ctx context.Context) (proto.PTid, int, []Cell, error)
	// ChangePartitionTable applies cell changes (or replaces the whole
	// table when reset) and saves ptid and numReplicas. For the node's own
	// cells it maintains Cell.Tid and Cell.Pack as cluster.md §8.2 says.
	ChangePartitionTable(ctx context.Context, ptid proto.PTid, numReplicas int, changes []CellChange, reset bool) error
	// SetCellTid records the tid up to which the node's own OUT_OF_DATE
	// cell of partition is complete (replication resume point).
	SetCellTid(ctx context.Context, partition uint32, tid proto.Tid) error
	// SetPartitionPacked records pack order id as the last one completed on
	// the node's own cell of partition; with lower, only if it is smaller
	// than the current value (replication adopting the source's marker).
	SetPartitionPacked(ctx context.Context, partition uint32, id proto.Tid, lower bool) error

	// StoreTransaction writes, at vote, the records stored in transaction
	// ttid and, if meta is not nil (this node holds partition(ttid)), its
	// metadata and pack order, in temporary tables. It is durable when meta
	// is nil; with meta, it may become durable only with LockTransaction.
	// An undo record (DataSerial set) reuses the data of that revision; if
	// it is gone, its own data is stored, or ErrUndoPacked is returned if it
	// has none.
	StoreTransaction(ctx context.Context, ttid proto.Tid, records []Record, meta *TxnMeta) error
	// LockTransaction records the final tid of a voted transaction (and
	// approves its pack order if approvePack) durably.
	LockTransaction(ctx context.Context, ttid, tid proto.Tid, approvePack bool) error
	// UnlockTransaction makes a locked transaction permanent: temporary
	// rows move to trans/obj under tid, the pack order is renamed to tid.
	// Reads see it when it returns; its commit may come later (doc.go).
	UnlockTransaction(ctx context.Context, ttid, tid proto.Tid) error
	// ValidateTransaction is LockTransaction + UnlockTransaction in one
	// durable step (verification).
	ValidateTransaction(ctx context.Context, ttid, tid proto.Tid) error
	// AbortTransaction deletes the temporary rows of ttid and the data only
	// they referenced. The node must not abort a locked transaction.
	AbortTransaction(ctx context.Context, ttid proto.Tid) error
	// LockedTransactions returns every ttid present in the temporary
	// tables, mapped to its final tid if locked, else to InvalidTid.
	LockedTransactions(ctx context.Context) (map[proto.Tid]proto.Tid, error)
	// DropUnfinishedData deletes every temporary row and unreferenced data.
	DropUnfinishedData(ctx context.Context) error
	// FinalTid returns the final tid of the locked or committed transaction
	// voted as ttid, or InvalidTid.
	FinalTid(ctx context.Context, ttid proto.Tid) (proto.Tid, error)

	// Load returns a committed revision of oid: exactly at if at is not
	// InvalidTid, else the greatest serial < before if before is not
	// InvalidTid, else the latest. Errors: ErrOidDoesNotExist,
	// ErrOidNotFound.
	Load(ctx context.Context, oid proto.Oid, at, before proto.Tid) (*Object, error)
	// LastObjectTid returns the serial of the latest committed revision of
	// oid, or InvalidTid if none (conflict detection).
	LastObjectTid(ctx context.Context, oid proto.Oid) (proto.Tid, error)
	// History returns revisions of oid newest first, skipping offset and
	// returning at most length. ErrOidNotFound if that is empty.
	History(ctx context.Context, oid proto.Oid, offset, length int) ([]HistoryEntry, error)
	// UndoHistory returns what findUndoTID needs (§8.4); ok is false if oid
	// has no record at undoTid.
	UndoHistory(ctx context.Context, oid proto.Oid, undoTid proto.Tid) (h UndoHistory, ok bool, err error)
	// Transaction returns a committed transaction with its pack order if
	// it carried one. ErrTidNotFound if unknown.
	Transaction(ctx context.Context, tid proto.Tid) (*TxnMeta, error)
	// TIDs returns committed tids of the given partitions, newest first,
	// skipping offset and returning at most length (AskTIDs).
	TIDs(ctx context.Context, offset, length int, partitions []uint32) ([]proto.Tid, error)
	// TIDsFrom returns at most length committed tids of partition with
	// minTid <= tid <= maxTid, ascending (AskTIDsFrom, replication, check).
	TIDsFrom(ctx context.Context, partition uint32, minTid, maxTid proto.Tid, length int) ([]proto.Tid, error)
	// ObjectsFrom returns at most length (tid, oid) of partition's records
	// with (tid == minTid and oid >= minOid) or minTid < tid <= maxTid,
	// ordered by (tid, oid) (AskFetchObjects, AskCheckSerialRange).
	ObjectsFrom(ctx context.Context, partition uint32, minTid, maxTid proto.Tid, minOid proto.Oid, length int) ([]ObjectKey, error)
	// OIDsFrom examines at most length oids >= minOid of partition having
	// a revision <= tid, ascending, and returns those whose revision at tid
	// is not a deletion, with the oid to continue from (last examined + the
	// number of partitions; InvalidOid when the end was reached)
	// (AskOIDsFrom).
	OIDsFrom(ctx context.Context, partition uint32, minOid proto.Oid, tid proto.Tid, length int) (next proto.Oid, oids []proto.Oid, err error)
	// LastIDs returns the last tid (trans or obj), last oid and first tid
	// over the given partitions.
	LastIDs(ctx context.Context, partitions []uint32) (LastIDs, error)

	// ReplicateTransactions adds committed transactions (with their pack
	// orders) and deletes the listed tids of partition, in one commit.
	ReplicateTransactions(ctx context.Context, partition uint32, add []TxnMeta, del []proto.Tid) error
	// ReplicateObjects adds committed records, deletes the listed ones of
	// partition and, unless cellTid is InvalidTid, records the cell's
	// resume point, in one commit. Undo records are handled as in
	// StoreTransaction.
	ReplicateObjects(ctx context.Context, partition uint32, add []Record, del []ObjectKey, cellTid proto.Tid) error

	// SignPackOrders marks pack orders approved or rejected.
	SignPackOrders(ctx context.Context, approved, rejected []proto.Tid) error
	// PackOrders returns the pack orders with id >= minID held in the given
	// partitions (partition(id)), by id.
	PackOrders(ctx context.Context, minID proto.Tid, partitions []uint32) ([]PackOrder, error)
	// Pack removes, in partition, revisions made useless by packing at
	// packTid (§8.7 step 4), for at most limit oids starting at minOid (all
	// oids, or only oids if not nil). It returns the oid to continue from,
	// InvalidOid when done.
	Pack(ctx context.Context, partition uint32, packTid proto.Tid, oids []proto.Oid, minOid proto.Oid, limit int) (next proto.Oid, err error)
	// DropPartition deletes up to limit records of partition (and then its
	// transactions and pack orders); done reports that nothing is left.
	DropPartition(ctx context.Context, partition uint32, limit int) (done bool, err error)
	// Truncate deletes, in the given partitions, the transactions and
	// records after tid (and pack orders after tid), lowers the node's own
	// OUT_OF_DATE cells' resume point to tid, and clears TruncateTid.
	Truncate(ctx context.Context, tid proto.Tid, partitions []uint32) error

	// Close releases the database. Calls after Close return ErrClosed.
	Close() error
}

// CachedLoader is an optional [Backend] interface: LoadCached answers
// Load from memory when it can, without I/O nor waiting, and reports
// false otherwise (then Load must be asked). The storage node answers
// such hits on the link's reader, in order, however many loads queue.
type CachedLoader interface {
	LoadCached(oid proto.Oid, at, before proto.Tid) (*Object, bool)
}

// BulkImporter is an optional [Backend] interface, what the Importer
// backend (cluster.md §8.10) needs of its destination. ImportTransactions
// writes committed transactions (Tid set) and records (Serial set, in tid
// order: an undo record may reuse the data of an earlier one) of any
// partitions, and sets configuration entries, in one commit that survives
// a process crash (an empty value deletes the entry); it may run
// concurrently with the node's writes. ImportConfig reads such an entry.
type BulkImporter interface {
	ImportTransactions(ctx context.Context, txns []TxnMeta, records []Record, config map[string]string) error
	ImportConfig(ctx context.Context, key string) (value string, ok bool, err error)
}

// ImportReporter is an optional [Backend] interface of a backend that
// imports data in the background (the Importer): the storage node answers
// an admin's AskMonitorInformation with its report, which neoctl's
// "print summary" shows.
type ImportReporter interface {
	// ImportProgress is a one-line report of the import, "" when none
	// runs.
	ImportProgress() string
}

// Unwrapper is a [Backend] over another one, such as a cache.
type Unwrapper interface {
	Unwrap() Backend
}

// ImportProgress is the report of b's [ImportReporter], or of the
// backends b wraps; "" if none.
func ImportProgress(b Backend) string {
	for b != nil {
		if r, ok := b.(ImportReporter); ok {
			return r.ImportProgress()
		}
		u, ok := b.(Unwrapper)
		if !ok {
			break
		}
		b = u.Unwrap()
	}
	return ""
}

// Stats counts rows; a backend may implement StatsReporter (tests,
// operators).
type Stats struct {
	Transactions, Objects, Data, TempTransactions, TempObjects int
}

// StatsReporter is an optional [Backend] interface.
type StatsReporter interface {
	Stats(ctx context.Context) (Stats, error)
}

// SizeReporter is an optional [Backend] interface: a database on a
// server (MySQL) tells the bytes its tables take, data and indexes, as
// the server estimates them; a file database's size is that of its
// files (neo_storage_database_bytes).
type SizeReporter interface {
	Size(ctx context.Context) (int64, error)
}

// Partition returns the partition of a tid or oid given the number of
// partitions (protocol.md §4.1).
func Partition[T ~uint64](x T, np uint32) uint32 { return uint32(uint64(x) % uint64(np)) }

// Lock is the lock of one transaction: LockTransaction's arguments.
type Lock struct {
	TTid, Tid   proto.Tid
	ApprovePack bool
}

// GroupLocker is a [Backend] that locks several transactions in one
// durable write: concurrent locks then share one sync (group commit).
type GroupLocker interface {
	LockTransactions(ctx context.Context, locks []Lock) error
}

// LockTransactions locks every transaction of locks durably: in one write
// if b is a [GroupLocker], else one after the other. On error, none or
// some of them are locked.
func LockTransactions(ctx context.Context, b Backend, locks []Lock) error {
	if g, ok := b.(GroupLocker); ok {
		return g.LockTransactions(ctx, locks)
	}
	for _, l := range locks {
		if err := b.LockTransaction(ctx, l.TTid, l.Tid, l.ApprovePack); err != nil {
			return err
		}
	}
	return nil
}
