package sqlite

import (
	"context"
	"fmt"

	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
	"github.com/neogo/neo/storage/backend/sqlbackend"
)

// dialect is how SQLite differs from the SQL shared with MySQL: no index
// hints needed, deletions return their data ids.
var dialect = &sqlbackend.Dialect{
	Greatest: "MAX",
	DataSize: "LENGTH(d.value)",
	DeleteRows: func(ctx context.Context, tx sqlbackend.Tx, table, where string, args ...any) ([]int64, error) {
		return sqlbackend.CollectDataIDs(ctx, tx, "DELETE FROM "+table+" WHERE "+where+" RETURNING data_id", args...)
	},
	Prune: prune,
}

// SetMeta implements [backend.Backend].
func (db *DB) SetMeta(ctx context.Context, m backend.Meta) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if err := db.writeTx(ctx, true, func(tx *wtx) error { return sqlbackend.SetMeta(ctx, tx, m) }); err != nil {
		return fmt.Errorf("set meta %+v: %w", m, err)
	}
	db.mu.nid = m.NID
	return nil
}

// ChangePartitionTable implements [backend.Backend].
func (db *DB) ChangePartitionTable(ctx context.Context, ptid proto.PTid, numReplicas int, changes []backend.CellChange, reset bool) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	var np uint32
	err := db.writeTx(ctx, true, func(tx *wtx) (err error) {
		np, err = dialect.ChangePartitionTable(ctx, tx, db.mu.nid, ptid, numReplicas, changes, reset)
		return err
	})
	if err != nil {
		return fmt.Errorf("change partition table to ptid %d (%d changes, reset=%v): %w", ptid, len(changes), reset, err)
	}
	if np > db.mu.np {
		// The number of partitions never shrinks; keep it if cells of the
		// last partitions were all discarded.
		db.mu.np = np
		db.npRead.store(np)
	}
	return nil
}

// SetCellTid implements [backend.Backend].
func (db *DB) SetCellTid(ctx context.Context, partition uint32, tid proto.Tid) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if err := db.writeTx(ctx, false, func(tx *wtx) error { return sqlbackend.SetCellTid(ctx, tx, db.mu.nid, partition, tid) }); err != nil {
		return fmt.Errorf("set cell tid of partition %d to %s: %w", partition, tid, err)
	}
	return nil
}

// SetPartitionPacked implements [backend.Backend].
func (db *DB) SetPartitionPacked(ctx context.Context, partition uint32, id proto.Tid, lower bool) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if err := db.writeTx(ctx, false, func(tx *wtx) error {
		return sqlbackend.SetPartitionPacked(ctx, tx, db.mu.nid, partition, id, lower)
	}); err != nil {
		return fmt.Errorf("set packed id of partition %d to %s (lower=%v): %w", partition, id, lower, err)
	}
	return nil
}

// LockTransaction implements [backend.Backend].
func (db *DB) LockTransaction(ctx context.Context, ttid, tid proto.Tid, approvePack bool) error {
	return db.LockTransactions(ctx, []backend.Lock{{TTid: ttid, Tid: tid, ApprovePack: approvePack}})
}

// LockTransactions implements [backend.GroupLocker]: one transaction, one
// sync.
func (db *DB) LockTransactions(ctx context.Context, locks []backend.Lock) error {
	ctx = short(ctx)
	return db.write(ctx, true, func(tx *wtx) error { return sqlbackend.LockTxs(ctx, tx, locks) })
}

// UnlockTransaction implements [backend.Backend]. The unlock of a
// transaction voted here is deferred (sqlbackend.Unlocks); one voted
// before the process started is committed at once. Neither is synced: if
// lost, verification replays it from the locked ttrans row.
func (db *DB) UnlockTransaction(ctx context.Context, ttid, tid proto.Tid) error {
	ctx = short(ctx)
	return db.unlocks.Unlock(ttid, tid, func() error {
		return db.writeTx(ctx, false, func(tx *wtx) error { return sqlbackend.UnlockTx(ctx, tx, ttid, tid, sqlbackend.AllRows) })
	})
}

// ValidateTransaction implements [backend.Backend].
func (db *DB) ValidateTransaction(ctx context.Context, ttid, tid proto.Tid) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	db.unlocks.Forget(ttid)
	err := db.writeTx(ctx, true, func(tx *wtx) error {
		if err := sqlbackend.LockTx(ctx, tx, ttid, tid, false); err != nil {
			return err
		}
		// Its records may have been stored before a restart.
		if err := db.oids.RaiseFromTobj(ctx, tx, int64(ttid)); err != nil {
			return err
		}
		return sqlbackend.UnlockTx(ctx, tx, ttid, tid, sqlbackend.AllRows)
	})
	if err != nil {
		return fmt.Errorf("validate %s as %s: %w", ttid, tid, err)
	}
	return nil
}

// AbortTransaction implements [backend.Backend].
func (db *DB) AbortTransaction(ctx context.Context, ttid proto.Tid) error {
	ctx = short(ctx)
	db.mu.Lock()
	defer db.mu.Unlock()
	db.unlocks.Forget(ttid)
	if err := db.writeTx(ctx, false, func(tx *wtx) error { return dialect.AbortTransaction(ctx, tx, ttid) }); err != nil {
		return fmt.Errorf("abort %s: %w", ttid, err)
	}
	return nil
}

// DropUnfinishedData implements [backend.Backend].
func (db *DB) DropUnfinishedData(ctx context.Context) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	db.unlocks.ForgetAll()
	if err := db.writeTx(ctx, false, func(tx *wtx) error { return dialect.DropUnfinishedData(ctx, tx) }); err != nil {
		return fmt.Errorf("drop unfinished data: %w", err)
	}
	return nil
}

// ReplicateTransactions implements [backend.Backend].
func (db *DB) ReplicateTransactions(ctx context.Context, partition uint32, add []backend.TxnMeta, del []proto.Tid) error {
	if err := db.write(ctx, false, func(tx *wtx) error { return sqlbackend.ReplicateTransactions(ctx, tx, partition, add, del) }); err != nil {
		return fmt.Errorf("replicate partition %d: %d transactions, %d deletions: %w", partition, len(add), len(del), err)
	}
	return nil
}

// SignPackOrders implements [backend.Backend].
func (db *DB) SignPackOrders(ctx context.Context, approved, rejected []proto.Tid) error {
	if err := db.write(ctx, false, func(tx *wtx) error { return sqlbackend.SignPackOrders(ctx, tx, approved, rejected) }); err != nil {
		return fmt.Errorf("sign pack orders (approved %v, rejected %v): %w", approved, rejected, err)
	}
	return nil
}

// Pack implements [backend.Backend].
func (db *DB) Pack(ctx context.Context, partition uint32, packTid proto.Tid, oids []proto.Oid, minOid proto.Oid, limit int) (proto.Oid, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	np, err := db.writeNP()
	if err != nil {
		return proto.InvalidOid, fmt.Errorf("pack partition %d at %s: %w", partition, packTid, err)
	}
	var next proto.Oid
	err = db.writeTx(ctx, false, func(tx *wtx) (err error) {
		next, err = dialect.Pack(ctx, tx, np, partition, packTid, oids, minOid, limit)
		return err
	})
	if err != nil {
		return proto.InvalidOid, fmt.Errorf("pack partition %d at %s from oid %s: %w", partition, packTid, minOid, err)
	}
	return next, nil
}

// DropPartition implements [backend.Backend].
func (db *DB) DropPartition(ctx context.Context, partition uint32, limit int) (bool, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	np, err := db.writeNP()
	if err != nil {
		return false, fmt.Errorf("drop partition %d: %w", partition, err)
	}
	var done bool
	err = db.writeTx(ctx, false, func(tx *wtx) (err error) {
		done, err = dialect.DropPartition(ctx, tx, np, partition, limit)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("drop partition %d: %w", partition, err)
	}
	return done, nil
}

// Truncate implements [backend.Backend].
func (db *DB) Truncate(ctx context.Context, tid proto.Tid, partitions []uint32) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if err := db.writeTx(ctx, true, func(tx *wtx) error { return dialect.Truncate(ctx, tx, db.mu.nid, tid, partitions) }); err != nil {
		return fmt.Errorf("truncate after %s: %w", tid, err)
	}
	return nil
}
