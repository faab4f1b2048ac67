package sqlbackend

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

// Reader implements the reads of [backend.Backend] that both SQL
// backends answer with the same queries, on their pool of read
// connections. A backend embeds it.
type Reader struct {
	DB      *sql.DB
	Dialect *Dialect
	// NP returns the number of partitions, 0 until a table is saved.
	NP func() uint32
	// Settle, if not nil, runs before each read: it commits what the
	// backend wrote and left uncommitted (MySQL's deferred unlocks), which
	// the pool's connections would not see.
	Settle func(context.Context) error
}

func (r *Reader) settle(ctx context.Context) error {
	if r.Settle == nil {
		return nil
	}
	return r.Settle(ctx)
}

func (r *Reader) np() (uint32, error) {
	if np := r.NP(); np != 0 {
		return np, nil
	}
	return 0, backend.ErrNoPartitionTable
}

// Meta implements [backend.Backend].
func (r *Reader) Meta(ctx context.Context) (backend.Meta, error) {
	if err := r.settle(ctx); err != nil {
		return backend.Meta{}, err
	}
	return Meta(ctx, r.DB)
}

// PartitionTable implements [backend.Backend].
func (r *Reader) PartitionTable(ctx context.Context) (proto.PTid, int, []backend.Cell, error) {
	if err := r.settle(ctx); err != nil {
		return 0, 0, nil, err
	}
	return PartitionTable(ctx, r.DB)
}

// LockedTransactions implements [backend.Backend].
func (r *Reader) LockedTransactions(ctx context.Context) (map[proto.Tid]proto.Tid, error) {
	if err := r.settle(ctx); err != nil {
		return nil, err
	}
	return LockedTransactions(ctx, r.DB)
}

// FinalTid implements [backend.Backend].
func (r *Reader) FinalTid(ctx context.Context, ttid proto.Tid) (proto.Tid, error) {
	if err := r.settle(ctx); err != nil {
		return 0, err
	}
	return FinalTid(ctx, r.DB, r.NP(), ttid)
}

// History implements [backend.Backend].
func (r *Reader) History(ctx context.Context, oid proto.Oid, offset, length int) ([]backend.HistoryEntry, error) {
	if err := r.settle(ctx); err != nil {
		return nil, err
	}
	np, err := r.np()
	if err != nil {
		return nil, fmt.Errorf("history of oid %s: %w", oid, err)
	}
	return r.Dialect.History(ctx, r.DB, np, oid, offset, length)
}

// UndoHistory implements [backend.Backend].
func (r *Reader) UndoHistory(ctx context.Context, oid proto.Oid, undoTid proto.Tid) (backend.UndoHistory, bool, error) {
	if err := r.settle(ctx); err != nil {
		return backend.UndoHistory{}, false, err
	}
	np, err := r.np()
	if err != nil {
		return backend.UndoHistory{}, false, fmt.Errorf("undo history of oid %s at %s: %w", oid, undoTid, err)
	}
	return UndoHistory(ctx, r.DB, np, oid, undoTid)
}

// Transaction implements [backend.Backend].
func (r *Reader) Transaction(ctx context.Context, tid proto.Tid) (*backend.TxnMeta, error) {
	if err := r.settle(ctx); err != nil {
		return nil, err
	}
	np, err := r.np()
	if err != nil {
		return nil, fmt.Errorf("transaction %s: %w", tid, err)
	}
	return Transaction(ctx, r.DB, np, tid)
}

// TIDs implements [backend.Backend].
func (r *Reader) TIDs(ctx context.Context, offset, length int, partitions []uint32) ([]proto.Tid, error) {
	if err := r.settle(ctx); err != nil {
		return nil, err
	}
	return TIDs(ctx, r.DB, offset, length, partitions)
}

// TIDsFrom implements [backend.Backend].
func (r *Reader) TIDsFrom(ctx context.Context, partition uint32, minTid, maxTid proto.Tid, length int) ([]proto.Tid, error) {
	if err := r.settle(ctx); err != nil {
		return nil, err
	}
	return TIDsFrom(ctx, r.DB, partition, minTid, maxTid, length)
}

// ObjectsFrom implements [backend.Backend].
func (r *Reader) ObjectsFrom(ctx context.Context, partition uint32, minTid, maxTid proto.Tid, minOid proto.Oid, length int) ([]backend.ObjectKey, error) {
	if err := r.settle(ctx); err != nil {
		return nil, err
	}
	return r.Dialect.ObjectsFrom(ctx, r.DB, partition, minTid, maxTid, minOid, length)
}

// OIDsFrom implements [backend.Backend].
func (r *Reader) OIDsFrom(ctx context.Context, partition uint32, minOid proto.Oid, tid proto.Tid, length int) (proto.Oid, []proto.Oid, error) {
	if err := r.settle(ctx); err != nil {
		return 0, nil, err
	}
	np, err := r.np()
	if err != nil {
		return proto.InvalidOid, nil, fmt.Errorf("oids of partition %d from %s at %s: %w", partition, minOid, tid, err)
	}
	return OIDsFrom(ctx, r.DB, np, partition, minOid, tid, length)
}

// LastIDs implements [backend.Backend].
func (r *Reader) LastIDs(ctx context.Context, partitions []uint32) (backend.LastIDs, error) {
	if err := r.settle(ctx); err != nil {
		return backend.LastIDs{}, err
	}
	return r.Dialect.LastIDs(ctx, r.DB, partitions)
}

// PackOrders implements [backend.Backend].
func (r *Reader) PackOrders(ctx context.Context, minID proto.Tid, partitions []uint32) ([]backend.PackOrder, error) {
	if err := r.settle(ctx); err != nil {
		return nil, err
	}
	np, err := r.np()
	if err != nil {
		return nil, fmt.Errorf("pack orders from %s: %w", minID, err)
	}
	return PackOrders(ctx, r.DB, np, minID, partitions)
}

// Stats implements [backend.StatsReporter].
func (r *Reader) Stats(ctx context.Context) (backend.Stats, error) {
	if err := r.settle(ctx); err != nil {
		return backend.Stats{}, err
	}
	return Stats(ctx, r.DB)
}

// ImportConfig implements [backend.BulkImporter].
func (r *Reader) ImportConfig(ctx context.Context, key string) (string, bool, error) {
	if err := r.settle(ctx); err != nil {
		return "", false, err
	}
	var v sql.NullString
	err := r.DB.QueryRowContext(ctx, `SELECT value FROM config WHERE name=?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) || err == nil && !v.Valid {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read config %s: %w", key, err)
	}
	return v.String, true, nil
}
