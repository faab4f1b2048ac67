package sqlbackend

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/neogo/neo/proto"
)

// OidBound is an upper bound of the oids in table obj. A store of a new
// object (oids come from the master in increasing order) asks for its
// last serial: above the bound the answer is "none" without a query,
// which was a fifth of a storage's CPU when populating.
//
// Every path that adds obj rows raises the bound before its rows commit,
// so a reader never sees a row above the bound. Deletions leave it as
// is: a bound too high only costs queries. The first use computes it
// from the database (one index seek per partition), merged with the
// raises made meanwhile.
type OidBound struct {
	max   atomic.Int64 // -1: no oid
	known atomic.Bool
	init  sync.Mutex
}

// NewOidBound returns a bound to compute on first use.
func NewOidBound() *OidBound {
	b := &OidBound{}
	b.max.Store(-1)
	return b
}

// Raise makes the bound at least oid.
func (b *OidBound) Raise(oid int64) {
	for {
		cur := b.max.Load()
		if oid <= cur || b.max.CompareAndSwap(cur, oid) {
			return
		}
	}
}

// Above reports whether no obj row has this oid because the oid is above
// the bound; it computes the bound on first use with np partitions.
func (b *OidBound) Above(ctx context.Context, r Querier, np uint32, oid proto.Oid) (bool, error) {
	if !b.known.Load() {
		if err := b.compute(ctx, r, np); err != nil {
			return false, err
		}
	}
	return int64(oid) > b.max.Load(), nil
}

func (b *OidBound) compute(ctx context.Context, r Querier, np uint32) error {
	b.init.Lock()
	defer b.init.Unlock()
	if b.known.Load() {
		return nil
	}
	for p := range np {
		var m sql.NullInt64
		if err := r.QueryRowContext(ctx, "SELECT MAX(oid) FROM obj WHERE `partition`=?", p).Scan(&m); err != nil {
			return fmt.Errorf("greatest oid of partition %d: %w", p, err)
		}
		if m.Valid {
			b.Raise(m.Int64)
		}
	}
	// Voted records of before a restart, moved to obj by validation.
	var m sql.NullInt64
	if err := r.QueryRowContext(ctx, `SELECT MAX(oid) FROM tobj`).Scan(&m); err != nil {
		return fmt.Errorf("greatest oid of voted transactions: %w", err)
	}
	if m.Valid {
		b.Raise(m.Int64)
	}
	b.known.Store(true)
	return nil
}

// RaiseFromTobj raises the bound to the oids of a transaction about to
// move from tobj to obj, for validation after a restart (stores raise it
// for the transactions voted since).
func (b *OidBound) RaiseFromTobj(ctx context.Context, tx Querier, ttid int64) error {
	var m sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT MAX(oid) FROM tobj WHERE tid=?`, ttid).Scan(&m); err != nil {
		return fmt.Errorf("greatest oid of transaction %s: %w", proto.Tid(ttid), err)
	}
	if m.Valid {
		b.Raise(m.Int64)
	}
	return nil
}
