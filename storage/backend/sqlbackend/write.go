package sqlbackend

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

// StorePack writes pack order p under id.
func StorePack(ctx context.Context, tx Tx, id proto.Tid, p *backend.PackOrder) error {
	var approved, oids any
	switch p.State {
	case backend.PackApproved:
		approved = 1
	case backend.PackRejected:
		approved = 0
	}
	if p.Partial {
		oids = backend.PackOids(p.Oids)
	}
	if _, err := tx.ExecContext(ctx, `REPLACE INTO pack VALUES (?, ?, ?, ?, ?)`,
		int64(id), approved, p.Partial, oids, int64(p.PackTid)); err != nil {
		return fmt.Errorf("store pack order %s: %w", id, err)
	}
	return nil
}

// LockTx records the final tid of voted transaction ttid.
func LockTx(ctx context.Context, tx Tx, ttid, tid proto.Tid, approvePack bool) error {
	if tid < ttid {
		return fmt.Errorf("final tid %s < ttid", tid)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE ttrans SET tid=? WHERE ttid=?`, int64(tid), int64(ttid)); err != nil {
		return err
	}
	if approvePack {
		if _, err := tx.ExecContext(ctx, `UPDATE pack SET approved=1 WHERE tid=?`, int64(ttid)); err != nil {
			return err
		}
	}
	return nil
}

// LockTxs runs LockTx for each of locks.
func LockTxs(ctx context.Context, tx Tx, locks []backend.Lock) error {
	for _, l := range locks {
		if err := LockTx(ctx, tx, l.TTid, l.Tid, l.ApprovePack); err != nil {
			return fmt.Errorf("lock %s as %s: %w", l.TTid, l.Tid, err)
		}
	}
	return nil
}

// VoteRows says which rows a vote wrote, so that its unlock runs only the
// statements that move something: most transactions have no pack order,
// and a storage without the metadata of a transaction has no ttrans row.
type VoteRows struct{ Objects, Meta, Pack bool }

// AllRows is what the unlock of a vote it did not see (made before a
// restart) must assume.
var AllRows = VoteRows{Objects: true, Meta: true, Pack: true}

// Or returns the rows of both votes.
func (r VoteRows) Or(o VoteRows) VoteRows {
	return VoteRows{r.Objects || o.Objects, r.Meta || o.Meta, r.Pack || o.Pack}
}

// UnlockTx moves transaction ttid from the temporary tables to trans/obj
// under tid; its pack order takes the final tid. rows are the rows its
// vote wrote (AllRows if unknown).
func UnlockTx(ctx context.Context, tx Tx, ttid, tid proto.Tid, rows VoteRows) error {
	type stmt struct {
		sql  string
		args []any
	}
	var qs [6]stmt
	n := 0
	add := func(q string, args ...any) { qs[n] = stmt{q, args}; n++ }
	if rows.Objects {
		add("REPLACE INTO obj SELECT `partition`, oid, ?, data_id, value_tid FROM tobj WHERE tid=?", int64(tid), int64(ttid))
		add("DELETE FROM tobj WHERE tid=?", int64(ttid))
	}
	if rows.Meta {
		add("REPLACE INTO trans SELECT `partition`, ?, packed, oids, user, description, ext, ttid FROM ttrans WHERE ttid=?", int64(tid), int64(ttid))
		add("DELETE FROM ttrans WHERE ttid=?", int64(ttid))
	}
	// The pack order of ttid, if any, replaces one at tid; statements
	// only, no query, so that a backend can send them all at once.
	if rows.Pack && tid != ttid {
		add(`REPLACE INTO pack SELECT ?, approved, partial, oids, pack_tid FROM pack WHERE tid=?`, int64(tid), int64(ttid))
		add(`DELETE FROM pack WHERE tid=?`, int64(ttid))
	}
	for _, q := range qs[:n] {
		if _, err := tx.ExecContext(ctx, q.sql, q.args...); err != nil {
			return err
		}
	}
	return nil
}

// AbortTransaction deletes the temporary rows of ttid and their data.
func (d *Dialect) AbortTransaction(ctx context.Context, tx Tx, ttid proto.Tid) error {
	ids, err := d.DeleteRows(ctx, tx, "tobj", "tid=?", int64(ttid))
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM pack WHERE tid=? AND EXISTS (SELECT 1 FROM ttrans WHERE ttid=?)`, int64(ttid), int64(ttid)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM ttrans WHERE ttid=?`, int64(ttid)); err != nil {
		return err
	}
	return d.Prune(ctx, tx, ids)
}

// DropUnfinishedData deletes every temporary row and unreferenced data.
func (d *Dialect) DropUnfinishedData(ctx context.Context, tx Tx) error {
	ids, err := CollectDataIDs(ctx, tx, `SELECT data_id FROM tobj`)
	if err != nil {
		return err
	}
	for _, q := range []string{
		`DELETE FROM pack WHERE tid IN (SELECT ttid FROM ttrans)`,
		`DELETE FROM tobj`,
		`DELETE FROM ttrans`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return d.Prune(ctx, tx, ids)
}

// ReplicateTransactions adds committed transactions of partition (with
// their pack orders) and deletes the listed ones.
func ReplicateTransactions(ctx context.Context, tx Tx, partition uint32, add []backend.TxnMeta, del []proto.Tid) error {
	for _, t := range del {
		if _, err := tx.ExecContext(ctx, "DELETE FROM trans WHERE `partition`=? AND tid=?", partition, int64(t)); err != nil {
			return fmt.Errorf("delete transaction %s: %w", t, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM pack WHERE tid=?`, int64(t)); err != nil {
			return fmt.Errorf("delete pack order %s: %w", t, err)
		}
	}
	for i := range add {
		m := &add[i]
		if _, err := tx.ExecContext(ctx, `REPLACE INTO trans VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			partition, int64(m.Tid), m.Packed, backend.PackOids(m.Oids), Blob(m.User), Blob(m.Description), Blob(m.Ext), int64(m.TTid)); err != nil {
			return fmt.Errorf("add transaction %s: %w", m.Tid, err)
		}
		if m.Pack != nil {
			if err := StorePack(ctx, tx, m.Tid, m.Pack); err != nil {
				return err
			}
		}
	}
	return nil
}

// SignPackOrders marks pack orders approved or rejected.
func SignPackOrders(ctx context.Context, tx Tx, approved, rejected []proto.Tid) error {
	for v, ids := range [][]proto.Tid{rejected, approved} {
		for _, id := range ids {
			if _, err := tx.ExecContext(ctx, `UPDATE pack SET approved=? WHERE tid=?`, v, int64(id)); err != nil {
				return fmt.Errorf("sign pack order %s: %w", id, err)
			}
		}
	}
	return nil
}

// Pack implements [backend.Backend] with np partitions.
func (d *Dialect) Pack(ctx context.Context, tx Tx, np uint32, partition uint32, packTid proto.Tid, oids []proto.Oid, minOid proto.Oid, limit int) (proto.Oid, error) {
	next := proto.InvalidOid
	type group struct {
		count  int
		oid    int64
		maxTid int64
	}
	var groups []group
	scan := func(rows *sql.Rows, err error) error {
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var g group
			if err := rows.Scan(&g.count, &g.oid, &g.maxTid); err != nil {
				return err
			}
			groups = append(groups, g)
		}
		return rows.Err()
	}
	if oids == nil {
		if err := scan(tx.QueryContext(ctx, "SELECT COUNT(*), oid, MAX(tid) FROM obj"+d.PKHint+
			" WHERE `partition`=? AND tid<=? AND oid>=? GROUP BY oid ORDER BY oid LIMIT ?",
			partition, int64(packTid), int64(minOid), limit)); err != nil {
			return next, err
		}
		if len(groups) == limit {
			next = proto.Oid(groups[len(groups)-1].oid + 1)
		}
	} else {
		// Partial pack: the order's oids of this partition, all at once.
		for _, oid := range oids {
			if backend.Partition(oid, np) != partition {
				continue
			}
			if err := scan(tx.QueryContext(ctx, "SELECT COUNT(*), oid, MAX(tid) FROM obj"+
				" WHERE `partition`=? AND oid=? AND tid<=? GROUP BY oid", partition, int64(oid), int64(packTid))); err != nil {
				return next, err
			}
		}
	}
	var ids []int64
	for _, g := range groups {
		var hasData bool
		if err := tx.QueryRowContext(ctx, "SELECT data_id IS NOT NULL FROM obj WHERE `partition`=? AND oid=? AND tid=?",
			partition, g.oid, g.maxTid).Scan(&hasData); err != nil {
			return next, fmt.Errorf("oid %016x: %w", g.oid, err)
		}
		var where string
		switch {
		case !hasData: // the oid is deleted: all of it goes
			where = "`partition`=? AND oid=? AND tid<=?"
		case g.count > 1:
			where = "`partition`=? AND oid=? AND tid<?"
		default:
			continue
		}
		got, err := d.DeleteRows(ctx, tx, "obj", where, partition, g.oid, g.maxTid)
		if err != nil {
			return next, fmt.Errorf("oid %016x: %w", g.oid, err)
		}
		ids = append(ids, got...)
	}
	return next, d.Prune(ctx, tx, ids)
}

// DropPartition deletes up to limit records of partition, then its
// transactions and pack orders, with np partitions; done reports that
// nothing is left.
func (d *Dialect) DropPartition(ctx context.Context, tx Tx, np uint32, partition uint32, limit int) (done bool, err error) {
	ids, err := d.DeleteRows(ctx, tx, "tobj", "`partition`=?", partition)
	if err != nil {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM ttrans WHERE `partition`=?", partition); err != nil {
		return false, err
	}
	// The first limit records in (tid, oid) order, deleted up to the last.
	rows, err := tx.QueryContext(ctx, "SELECT tid, oid, data_id FROM obj"+d.TidHint+" WHERE `partition`=? ORDER BY tid, oid LIMIT ?", partition, limit)
	if err != nil {
		return false, err
	}
	var n int
	var tid, oid int64
	for rows.Next() {
		var id sql.NullInt64
		if err := rows.Scan(&tid, &oid, &id); err != nil {
			rows.Close()
			return false, err
		}
		n++
		if id.Valid {
			ids = append(ids, id.Int64)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, err
	}
	if n > 0 {
		if _, err := tx.ExecContext(ctx, "DELETE FROM obj WHERE `partition`=? AND (tid<? OR (tid=? AND oid<=?))", partition, tid, tid, oid); err != nil {
			return false, err
		}
	}
	if err := d.Prune(ctx, tx, ids); err != nil {
		return false, err
	}
	if n == limit {
		var more bool
		if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM obj WHERE `partition`=?)", partition).Scan(&more); err != nil || more {
			return false, err
		}
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM trans WHERE `partition`=?", partition); err != nil {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM pack WHERE tid % ? = ?`, np, partition); err != nil {
		return false, err
	}
	return true, nil
}

// Truncate implements [backend.Backend] for node me.
func (d *Dialect) Truncate(ctx context.Context, tx Tx, me proto.NodeID, tid proto.Tid, partitions []uint32) error {
	var ids []int64
	for _, p := range partitions {
		got, err := d.DeleteRows(ctx, tx, "obj", "`partition`=? AND tid>?", p, int64(tid))
		if err != nil {
			return fmt.Errorf("partition %d: %w", p, err)
		}
		ids = append(ids, got...)
		if _, err := tx.ExecContext(ctx, "DELETE FROM trans WHERE `partition`=? AND tid>?", p, int64(tid)); err != nil {
			return fmt.Errorf("partition %d: %w", p, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM pack WHERE tid>?`, int64(tid)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE pt SET tid=? WHERE nid=? AND tid>?`, int64(tid), me, int64(tid)); err != nil {
		return err
	}
	if err := SetConfig(ctx, tx, "truncate_tid", nil); err != nil {
		return err
	}
	return d.Prune(ctx, tx, ids)
}
