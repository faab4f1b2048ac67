package objcache

import (
	"context"

	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

// The methods below do not change what Load and LastObjectTid return:
// they pass through.

func (c *cache) Meta(ctx context.Context) (backend.Meta, error) { return c.b.Meta(ctx) }

func (c *cache) SetMeta(ctx context.Context, m backend.Meta) error { return c.b.SetMeta(ctx, m) }

func (c *cache) PartitionTable(ctx context.Context) (proto.PTid, int, []backend.Cell, error) {
	return c.b.PartitionTable(ctx)
}

func (c *cache) SetCellTid(ctx context.Context, partition uint32, tid proto.Tid) error {
	return c.b.SetCellTid(ctx, partition, tid)
}

func (c *cache) SetPartitionPacked(ctx context.Context, partition uint32, id proto.Tid, lower bool) error {
	return c.b.SetPartitionPacked(ctx, partition, id, lower)
}

// LockTransaction only sets the final tid of temporary rows.
func (c *cache) LockTransaction(ctx context.Context, ttid, tid proto.Tid, approvePack bool) error {
	return c.b.LockTransaction(ctx, ttid, tid, approvePack)
}

// LockTransactions implements [backend.GroupLocker] over the backend's.
func (c *cache) LockTransactions(ctx context.Context, locks []backend.Lock) error {
	return backend.LockTransactions(ctx, c.b, locks)
}

func (c *cache) LockedTransactions(ctx context.Context) (map[proto.Tid]proto.Tid, error) {
	return c.b.LockedTransactions(ctx)
}

func (c *cache) FinalTid(ctx context.Context, ttid proto.Tid) (proto.Tid, error) {
	return c.b.FinalTid(ctx, ttid)
}

func (c *cache) History(ctx context.Context, oid proto.Oid, offset, length int) ([]backend.HistoryEntry, error) {
	return c.b.History(ctx, oid, offset, length)
}

func (c *cache) UndoHistory(ctx context.Context, oid proto.Oid, undoTid proto.Tid) (backend.UndoHistory, bool, error) {
	return c.b.UndoHistory(ctx, oid, undoTid)
}

func (c *cache) Transaction(ctx context.Context, tid proto.Tid) (*backend.TxnMeta, error) {
	return c.b.Transaction(ctx, tid)
}

func (c *cache) TIDs(ctx context.Context, offset, length int, partitions []uint32) ([]proto.Tid, error) {
	return c.b.TIDs(ctx, offset, length, partitions)
}

func (c *cache) TIDsFrom(ctx context.Context, partition uint32, minTid, maxTid proto.Tid, length int) ([]proto.Tid, error) {
	return c.b.TIDsFrom(ctx, partition, minTid, maxTid, length)
}

func (c *cache) ObjectsFrom(ctx context.Context, partition uint32, minTid, maxTid proto.Tid, minOid proto.Oid, length int) ([]backend.ObjectKey, error) {
	return c.b.ObjectsFrom(ctx, partition, minTid, maxTid, minOid, length)
}

func (c *cache) OIDsFrom(ctx context.Context, partition uint32, minOid proto.Oid, tid proto.Tid, length int) (proto.Oid, []proto.Oid, error) {
	return c.b.OIDsFrom(ctx, partition, minOid, tid, length)
}

func (c *cache) LastIDs(ctx context.Context, partitions []uint32) (backend.LastIDs, error) {
	return c.b.LastIDs(ctx, partitions)
}

// ReplicateTransactions writes trans rows only.
func (c *cache) ReplicateTransactions(ctx context.Context, partition uint32, add []backend.TxnMeta, del []proto.Tid) error {
	return c.b.ReplicateTransactions(ctx, partition, add, del)
}

func (c *cache) SignPackOrders(ctx context.Context, approved, rejected []proto.Tid) error {
	return c.b.SignPackOrders(ctx, approved, rejected)
}

func (c *cache) PackOrders(ctx context.Context, minID proto.Tid, partitions []uint32) ([]backend.PackOrder, error) {
	return c.b.PackOrders(ctx, minID, partitions)
}
