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
	"github.com/neogo/neo/storage/backend/sqlbackend"
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
			db.oids.Raise(int64(records[i].Oid))
		}
		if meta == nil {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM ttrans WHERE ttid=?`, int64(ttid)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO ttrans VALUES (?, NULL, ?, ?, ?, ?, ?, ?)`,
			backend.Partition(ttid, np), meta.Packed, backend.PackOids(meta.Oids), sqlbackend.Blob(meta.User), sqlbackend.Blob(meta.Description), sqlbackend.Blob(meta.Ext), int64(ttid)); err != nil {
			return fmt.Errorf("store metadata: %w", err)
		}
		if meta.Pack != nil {
			if err := sqlbackend.StorePack(ctx, tx, ttid, meta.Pack); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("vote %s (%d records): %w", ttid, len(records), err)
	}
	oids := make([]proto.Oid, len(records))
	for i := range records {
		oids[i] = records[i].Oid
	}
	db.unlocks.Voted(ttid, oids, sqlbackend.VoteRows{Objects: len(records) > 0, Meta: meta != nil, Pack: meta != nil && meta.Pack != nil})
	return nil
}

// prune deletes the data rows among ids that no record references.
func prune(ctx context.Context, tx sqlbackend.Tx, ids []int64) error {
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
			got, err := sqlbackend.CollectDataIDs(ctx, tx, `DELETE FROM obj WHERE partition=? AND oid=? AND tid=? RETURNING data_id`,
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
			db.oids.Raise(int64(r.Oid))
			if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO obj VALUES (?, ?, ?, ?, ?)`,
				partition, int64(r.Oid), int64(r.Serial), id, sqlbackend.NullTid(r.DataSerial)); err != nil {
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
