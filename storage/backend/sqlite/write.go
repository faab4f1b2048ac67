package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

// nextDataID returns the next free data id of partition (ids are
// partition<<48 + n); db.mu must be held.
func (db *DB) nextDataID(ctx context.Context, tx *wtx, partition uint32) (int64, error) {
	if id := db.mu.nextID[partition]; id != 0 {
		return id, nil
	}
	lo := int64(partition) << 48
	var id int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), ?) FROM data WHERE id>=? AND id<?`,
		lo-1, lo, lo+1<<48).Scan(&id); err != nil {
		return 0, fmt.Errorf("next data id of partition %d: %w", partition, err)
	}
	return id + 1, nil
}

// insertData stores a data row and returns its id; with dedup an
// identical row is reused. db.mu must be held.
func (db *DB) insertData(ctx context.Context, tx *wtx, partition uint32, r *backend.Record) (int64, error) {
	id, err := db.nextDataID(ctx, tx, partition)
	if err != nil {
		return 0, err
	}
	if db.dedup {
		res, err := tx.ExecContext(ctx, `INSERT INTO data VALUES (?, ?, ?, ?) ON CONFLICT(hash, compression) DO NOTHING`,
			id, r.Checksum[:], r.Compression, r.Data)
		if err != nil {
			return 0, fmt.Errorf("store data %x: %w", r.Checksum, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return 0, fmt.Errorf("store data %x: %w", r.Checksum, err)
		} else if n == 0 {
			var old int64
			var value []byte
			if err := tx.QueryRowContext(ctx, `SELECT id, value FROM data WHERE hash=? AND compression=?`,
				r.Checksum[:], r.Compression).Scan(&old, &value); err != nil {
				return 0, fmt.Errorf("store data %x: read duplicate: %w", r.Checksum, err)
			}
			if !bytes.Equal(value, r.Data) {
				return 0, fmt.Errorf("store data %x of oid %s: SHA-1 collision with data %d", r.Checksum, r.Oid, old)
			}
			return old, nil
		}
	} else if _, err := tx.ExecContext(ctx, `INSERT INTO data VALUES (?, ?, ?, ?)`,
		id, r.Checksum[:], r.Compression, r.Data); err != nil {
		return 0, fmt.Errorf("store data %x of oid %s: %w", r.Checksum, r.Oid, err)
	}
	db.mu.nextID[partition] = id + 1
	return id, nil
}

// storeData returns the data id (nil for no data) of record r: reused from
// the revision an undo points to, or newly stored.
func (db *DB) storeData(ctx context.Context, tx *wtx, np uint32, r *backend.Record) (any, error) {
	partition := backend.Partition(r.Oid, np)
	if r.DataSerial != proto.InvalidTid {
		var id sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT data_id FROM obj WHERE partition=? AND oid=? AND tid=?`,
			partition, int64(r.Oid), int64(r.DataSerial)).Scan(&id)
		switch {
		case err == nil:
			if id.Valid {
				return id.Int64, nil
			}
			return nil, nil
		case !errors.Is(err, sql.ErrNoRows):
			return nil, fmt.Errorf("undo oid %s to %s: %w", r.Oid, r.DataSerial, err)
		case !r.HasData():
			return nil, fmt.Errorf("undo oid %s to %s: %w", r.Oid, r.DataSerial, backend.ErrUndoPacked)
		}
	}
	if !r.HasData() {
		return nil, nil
	}
	return db.insertData(ctx, tx, partition, r)
}

// StoreTransaction implements [backend.Backend].
func (db *DB) StoreTransaction(ctx context.Context, ttid proto.Tid, records []backend.Record, meta *backend.TxnMeta) error {
	ctx = short(ctx)
	db.mu.Lock()
	defer db.mu.Unlock()
	np, err := db.writeNP()
	if err != nil {
		return fmt.Errorf("vote %s: %w", ttid, err)
	}
	// A node holding the metadata commits the vote without a sync: its
	// lock updates the ttrans row, and that synced commit makes the
	// vote's earlier WAL frames durable too. Until the lock, the vote
	// need not survive a power loss: a transaction that is not locked on
	// the metadata nodes is discarded by verification whatever the
	// other nodes kept, and a node that lost its vote lost its link to
	// the master, which drops it from the commit. A node without the
	// metadata has nothing to update at lock, so its vote stays synced.
	err = db.writeTx(ctx, meta == nil, func(tx *wtx) error {
		if err := db.storeRecords(ctx, tx, np, ttid, records); err != nil {
			return err
		}
		// Raised now, so that unlock needs no query for it.
		for i := range records {
			db.oids.raise(int64(records[i].Oid))
		}
		if meta == nil {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM ttrans WHERE ttid=?`, int64(ttid)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO ttrans VALUES (?, NULL, ?, ?, ?, ?, ?, ?)`,
			backend.Partition(ttid, np), meta.Packed, backend.PackOids(meta.Oids), blob(meta.User), blob(meta.Description), blob(meta.Ext), int64(ttid)); err != nil {
			return fmt.Errorf("store metadata: %w", err)
		}
		if meta.Pack != nil {
			if err := storePack(ctx, tx, ttid, meta.Pack); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("vote %s (%d records): %w", ttid, len(records), err)
	}
	return nil
}

// blob stores nil as an empty value: the columns are NOT NULL.
func blob(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func storePack(ctx context.Context, tx *wtx, id proto.Tid, p *backend.PackOrder) error {
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
	if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO pack VALUES (?, ?, ?, ?, ?)`,
		int64(id), approved, p.Partial, oids, int64(p.PackTid)); err != nil {
		return fmt.Errorf("store pack order %s: %w", id, err)
	}
	return nil
}

func lockTx(ctx context.Context, tx *wtx, ttid, tid proto.Tid, approvePack bool) error {
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

// unlockTx moves a transaction from tobj to obj; the oid bound was raised
// when its records were stored (or by ValidateTransaction, for records
// stored before a restart).
func (db *DB) unlockTx(ctx context.Context, tx *wtx, ttid, tid proto.Tid) error {
	for _, q := range []string{
		`INSERT OR REPLACE INTO obj SELECT partition, oid, ?1, data_id, value_tid FROM tobj WHERE tid=?2`,
		`DELETE FROM tobj WHERE tid=?2`,
		`INSERT OR REPLACE INTO trans SELECT partition, ?1, packed, oids, user, description, ext, ttid FROM ttrans WHERE ttid=?2`,
		`DELETE FROM ttrans WHERE ttid=?2`,
	} {
		if _, err := tx.ExecContext(ctx, q, int64(tid), int64(ttid)); err != nil {
			return err
		}
	}
	if tid != ttid {
		if _, err := tx.ExecContext(ctx, `UPDATE OR REPLACE pack SET tid=? WHERE tid=?`, int64(tid), int64(ttid)); err != nil {
			return err
		}
	}
	return nil
}

// LockTransaction implements [backend.Backend].
func (db *DB) LockTransaction(ctx context.Context, ttid, tid proto.Tid, approvePack bool) error {
	ctx = short(ctx)
	err := db.write(ctx, true, func(tx *wtx) error { return lockTx(ctx, tx, ttid, tid, approvePack) })
	if err != nil {
		return fmt.Errorf("lock %s as %s: %w", ttid, tid, err)
	}
	return nil
}

// UnlockTransaction implements [backend.Backend]. The commit is not
// synced: if lost, verification replays it from the locked ttrans row.
func (db *DB) UnlockTransaction(ctx context.Context, ttid, tid proto.Tid) error {
	ctx = short(ctx)
	err := db.write(ctx, false, func(tx *wtx) error { return db.unlockTx(ctx, tx, ttid, tid) })
	if err != nil {
		return fmt.Errorf("unlock %s as %s: %w", ttid, tid, err)
	}
	return nil
}

// ValidateTransaction implements [backend.Backend].
func (db *DB) ValidateTransaction(ctx context.Context, ttid, tid proto.Tid) error {
	err := db.write(ctx, true, func(tx *wtx) error {
		if err := lockTx(ctx, tx, ttid, tid, false); err != nil {
			return err
		}
		// Its records may have been stored before a restart.
		if err := db.oids.raiseFromTobj(ctx, tx, int64(ttid)); err != nil {
			return err
		}
		return db.unlockTx(ctx, tx, ttid, tid)
	})
	if err != nil {
		return fmt.Errorf("validate %s as %s: %w", ttid, tid, err)
	}
	return nil
}

// collectDataIDs returns the non-NULL data ids a query selects.
func collectDataIDs(ctx context.Context, tx *wtx, q string, args ...any) ([]int64, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id sql.NullInt64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		if id.Valid {
			ids = append(ids, id.Int64)
		}
	}
	return ids, rows.Err()
}

// prune deletes the data rows among ids that no record references.
func prune(ctx context.Context, tx *wtx, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	for _, id := range ids {
		if _, err := tx.ExecContext(ctx, `DELETE FROM data WHERE id=?1
			AND NOT EXISTS (SELECT 1 FROM obj WHERE data_id=?1)
			AND NOT EXISTS (SELECT 1 FROM tobj WHERE data_id=?1)`, id); err != nil {
			return fmt.Errorf("prune data %d: %w", id, err)
		}
	}
	return nil
}

// AbortTransaction implements [backend.Backend].
func (db *DB) AbortTransaction(ctx context.Context, ttid proto.Tid) error {
	err := db.write(ctx, false, func(tx *wtx) error {
		ids, err := collectDataIDs(ctx, tx, `SELECT data_id FROM tobj WHERE tid=?`, int64(ttid))
		if err != nil {
			return err
		}
		for _, q := range []string{
			`DELETE FROM tobj WHERE tid=?1`,
			`DELETE FROM pack WHERE tid=?1 AND EXISTS (SELECT 1 FROM ttrans WHERE ttid=?1)`,
			`DELETE FROM ttrans WHERE ttid=?1`,
		} {
			if _, err := tx.ExecContext(ctx, q, int64(ttid)); err != nil {
				return err
			}
		}
		return prune(ctx, tx, ids)
	})
	if err != nil {
		return fmt.Errorf("abort %s: %w", ttid, err)
	}
	return nil
}

// LockedTransactions implements [backend.Backend].
func (db *DB) LockedTransactions(ctx context.Context) (map[proto.Tid]proto.Tid, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT ttid, tid FROM ttrans
		UNION SELECT DISTINCT tid, NULL FROM tobj`)
	if err != nil {
		return nil, fmt.Errorf("locked transactions: %w", err)
	}
	defer rows.Close()
	m := map[proto.Tid]proto.Tid{}
	for rows.Next() {
		var ttid int64
		var tid sql.NullInt64
		if err := rows.Scan(&ttid, &tid); err != nil {
			return nil, fmt.Errorf("locked transactions: %w", err)
		}
		if old, ok := m[proto.Tid(ttid)]; !ok || old == proto.InvalidTid {
			m[proto.Tid(ttid)] = tidOrInvalid(tid)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("locked transactions: %w", err)
	}
	return m, nil
}

// DropUnfinishedData implements [backend.Backend].
func (db *DB) DropUnfinishedData(ctx context.Context) error {
	err := db.write(ctx, false, func(tx *wtx) error {
		ids, err := collectDataIDs(ctx, tx, `SELECT data_id FROM tobj`)
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
		return prune(ctx, tx, ids)
	})
	if err != nil {
		return fmt.Errorf("drop unfinished data: %w", err)
	}
	return nil
}

// ReplicateTransactions implements [backend.Backend].
func (db *DB) ReplicateTransactions(ctx context.Context, partition uint32, add []backend.TxnMeta, del []proto.Tid) error {
	err := db.write(ctx, false, func(tx *wtx) error {
		for _, t := range del {
			if _, err := tx.ExecContext(ctx, `DELETE FROM trans WHERE partition=? AND tid=?`, partition, int64(t)); err != nil {
				return fmt.Errorf("delete transaction %s: %w", t, err)
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM pack WHERE tid=?`, int64(t)); err != nil {
				return fmt.Errorf("delete pack order %s: %w", t, err)
			}
		}
		for i := range add {
			m := &add[i]
			if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO trans VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
				partition, int64(m.Tid), m.Packed, backend.PackOids(m.Oids), blob(m.User), blob(m.Description), blob(m.Ext), int64(m.TTid)); err != nil {
				return fmt.Errorf("add transaction %s: %w", m.Tid, err)
			}
			if m.Pack != nil {
				if err := storePack(ctx, tx, m.Tid, m.Pack); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("replicate partition %d: %d transactions, %d deletions: %w", partition, len(add), len(del), err)
	}
	return nil
}

// ReplicateObjects implements [backend.Backend].
func (db *DB) ReplicateObjects(ctx context.Context, partition uint32, add []backend.Record, del []backend.ObjectKey, cellTid proto.Tid) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	np, err := db.writeNP()
	if err != nil {
		return fmt.Errorf("replicate partition %d: %w", partition, err)
	}
	err = db.writeTx(ctx, false, func(tx *wtx) error {
		var ids []int64
		for _, k := range del {
			got, err := collectDataIDs(ctx, tx, `DELETE FROM obj WHERE partition=? AND oid=? AND tid=? RETURNING data_id`,
				partition, int64(k.Oid), int64(k.Tid))
			if err != nil {
				return fmt.Errorf("delete oid %s at %s: %w", k.Oid, k.Tid, err)
			}
			ids = append(ids, got...)
		}
		for i := range add {
			r := &add[i]
			if p := backend.Partition(r.Oid, np); p != partition {
				return fmt.Errorf("oid %s is in partition %d", r.Oid, p)
			}
			id, err := db.storeData(ctx, tx, np, r)
			if err != nil {
				return err
			}
			db.oids.raise(int64(r.Oid))
			if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO obj VALUES (?, ?, ?, ?, ?)`,
				partition, int64(r.Oid), int64(r.Serial), id, nullTid(r.DataSerial)); err != nil {
				return fmt.Errorf("add oid %s at %s: %w", r.Oid, r.Serial, err)
			}
		}
		if err := prune(ctx, tx, ids); err != nil {
			return err
		}
		if cellTid != proto.InvalidTid {
			if _, err := tx.ExecContext(ctx, `UPDATE pt SET tid=? WHERE partition=? AND nid=? AND tid>=0`,
				int64(cellTid), partition, db.mu.nid); err != nil {
				return fmt.Errorf("set cell tid %s: %w", cellTid, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("replicate partition %d: %d records, %d deletions: %w", partition, len(add), len(del), err)
	}
	return nil
}

// SignPackOrders implements [backend.Backend].
func (db *DB) SignPackOrders(ctx context.Context, approved, rejected []proto.Tid) error {
	err := db.write(ctx, false, func(tx *wtx) error {
		for v, ids := range [][]proto.Tid{rejected, approved} {
			for _, id := range ids {
				if _, err := tx.ExecContext(ctx, `UPDATE pack SET approved=? WHERE tid=?`, v, int64(id)); err != nil {
					return fmt.Errorf("sign pack order %s: %w", id, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sign pack orders (approved %v, rejected %v): %w", approved, rejected, err)
	}
	return nil
}

// Pack implements [backend.Backend].
func (db *DB) Pack(ctx context.Context, partition uint32, packTid proto.Tid, oids []proto.Oid, minOid proto.Oid, limit int) (proto.Oid, error) {
	next := proto.InvalidOid
	db.mu.Lock()
	defer db.mu.Unlock()
	np, err := db.writeNP()
	if err != nil {
		return next, fmt.Errorf("pack partition %d at %s: %w", partition, packTid, err)
	}
	err = db.writeTx(ctx, false, func(tx *wtx) error {
		type group struct {
			count  int
			oid    int64
			maxTid int64
		}
		var groups []group
		scan := func(rows *sql.Rows) error {
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
			rows, err := tx.QueryContext(ctx, `SELECT COUNT(*), oid, MAX(tid) FROM obj
				WHERE partition=? AND tid<=? AND oid>=? GROUP BY oid ORDER BY oid LIMIT ?`,
				partition, int64(packTid), int64(minOid), limit)
			if err != nil {
				return err
			}
			if err := scan(rows); err != nil {
				return err
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
				rows, err := tx.QueryContext(ctx, `SELECT COUNT(*), oid, MAX(tid) FROM obj
					WHERE partition=? AND oid=? AND tid<=? GROUP BY oid`, partition, int64(oid), int64(packTid))
				if err != nil {
					return err
				}
				if err := scan(rows); err != nil {
					return err
				}
			}
		}
		var ids []int64
		for _, g := range groups {
			var hasData bool
			if err := tx.QueryRowContext(ctx, `SELECT data_id IS NOT NULL FROM obj WHERE partition=? AND oid=? AND tid=?`,
				partition, g.oid, g.maxTid).Scan(&hasData); err != nil {
				return fmt.Errorf("oid %016x: %w", g.oid, err)
			}
			var q string
			switch {
			case !hasData:
				q = `DELETE FROM obj WHERE partition=? AND oid=? AND tid<=? RETURNING data_id`
			case g.count > 1:
				q = `DELETE FROM obj WHERE partition=? AND oid=? AND tid<? RETURNING data_id`
			default:
				continue
			}
			got, err := collectDataIDs(ctx, tx, q, partition, g.oid, g.maxTid)
			if err != nil {
				return fmt.Errorf("oid %016x: %w", g.oid, err)
			}
			ids = append(ids, got...)
		}
		return prune(ctx, tx, ids)
	})
	if err != nil {
		return proto.InvalidOid, fmt.Errorf("pack partition %d at %s from oid %s: %w", partition, packTid, minOid, err)
	}
	return next, nil
}

// DropPartition implements [backend.Backend].
func (db *DB) DropPartition(ctx context.Context, partition uint32, limit int) (bool, error) {
	var done bool
	db.mu.Lock()
	defer db.mu.Unlock()
	np, err := db.writeNP()
	if err != nil {
		return false, fmt.Errorf("drop partition %d: %w", partition, err)
	}
	err = db.writeTx(ctx, false, func(tx *wtx) error {
		ids, err := collectDataIDs(ctx, tx, `SELECT data_id FROM tobj WHERE partition=?`, partition)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM tobj WHERE partition=?`, partition); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM ttrans WHERE partition=?`, partition); err != nil {
			return err
		}
		got, err := collectDataIDs(ctx, tx, `DELETE FROM obj WHERE partition=?1 AND (oid, tid) IN
			(SELECT oid, tid FROM obj WHERE partition=?1 ORDER BY tid, oid LIMIT ?2) RETURNING data_id`, partition, limit)
		if err != nil {
			return err
		}
		ids = append(ids, got...)
		if err := prune(ctx, tx, ids); err != nil {
			return err
		}
		var more bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM obj WHERE partition=?)`, partition).Scan(&more); err != nil {
			return err
		}
		if more {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM trans WHERE partition=?`, partition); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM pack WHERE tid % ? = ?`, np, partition); err != nil {
			return err
		}
		done = true
		return nil
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
	err := db.writeTx(ctx, true, func(tx *wtx) error {
		var ids []int64
		for _, p := range partitions {
			got, err := collectDataIDs(ctx, tx, `DELETE FROM obj WHERE partition=? AND tid>? RETURNING data_id`, p, int64(tid))
			if err != nil {
				return fmt.Errorf("partition %d: %w", p, err)
			}
			ids = append(ids, got...)
			if _, err := tx.ExecContext(ctx, `DELETE FROM trans WHERE partition=? AND tid>?`, p, int64(tid)); err != nil {
				return fmt.Errorf("partition %d: %w", p, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM pack WHERE tid>?`, int64(tid)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE pt SET tid=?1 WHERE nid=?2 AND tid>?1`, int64(tid), db.mu.nid); err != nil {
			return err
		}
		if err := setConfig(ctx, tx, "truncate_tid", nil); err != nil {
			return err
		}
		return prune(ctx, tx, ids)
	})
	if err != nil {
		return fmt.Errorf("truncate after %s: %w", tid, err)
	}
	return nil
}
