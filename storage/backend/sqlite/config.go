package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"

	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

// Meta implements [backend.Backend].
func (db *DB) Meta(ctx context.Context) (backend.Meta, error) {
	m := backend.Meta{BackupTid: proto.InvalidTid, TruncateTid: proto.InvalidTid}
	rows, err := db.r.QueryContext(ctx, `SELECT name, value FROM config`)
	if err != nil {
		return m, fmt.Errorf("read config: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var v sql.NullString
		if err := rows.Scan(&k, &v); err != nil {
			return m, fmt.Errorf("read config: %w", err)
		}
		if !v.Valid {
			continue
		}
		if err := m.SetConfig(k, v.String); err != nil {
			return m, fmt.Errorf("read %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return m, fmt.Errorf("read config: %w", err)
	}
	return m, nil
}

func setConfig(ctx context.Context, tx *wtx, key string, value *string) error {
	var err error
	if value == nil {
		_, err = tx.ExecContext(ctx, `DELETE FROM config WHERE name=?`, key)
	} else {
		_, err = tx.ExecContext(ctx, `INSERT OR REPLACE INTO config VALUES (?, ?)`, key, *value)
	}
	if err != nil {
		return fmt.Errorf("set config %s: %w", key, err)
	}
	return nil
}

func ptr(s string) *string { return &s }

// SetMeta implements [backend.Backend].
func (db *DB) SetMeta(ctx context.Context, m backend.Meta) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	err := db.writeTx(ctx, true, func(tx *wtx) error {
		for _, kv := range m.ConfigValues() {
			if err := setConfig(ctx, tx, kv.Key, kv.Value); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("set meta %+v: %w", m, err)
	}
	db.mu.nid = m.NID
	return nil
}

// PartitionTable implements [backend.Backend].
func (db *DB) PartitionTable(ctx context.Context) (proto.PTid, int, []backend.Cell, error) {
	m, err := db.Meta(ctx)
	if err != nil {
		return 0, 0, nil, err
	}
	rows, err := db.r.QueryContext(ctx, `SELECT partition, nid, tid, pack FROM pt ORDER BY partition, nid`)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("read partition table: %w", err)
	}
	defer rows.Close()
	var cells []backend.Cell
	for rows.Next() {
		var k backend.CellKey
		var r backend.PTRow
		var pack sql.NullInt64
		if err := rows.Scan(&k.Partition, &k.NID, &r.Tid, &pack); err != nil {
			return 0, 0, nil, fmt.Errorf("read partition table: %w", err)
		}
		r.Pack = tidOrInvalid(pack)
		cells = append(cells, r.Cell(k.Partition, k.NID))
	}
	if err := rows.Err(); err != nil {
		return 0, 0, nil, fmt.Errorf("read partition table: %w", err)
	}
	return m.PTID, m.NumReplicas, cells, nil
}

// lastTidTx is the greatest tid of partition in trans or obj, -1 if none.
func lastTidTx(ctx context.Context, tx *wtx, partition uint32) (int64, error) {
	var t int64
	err := tx.QueryRowContext(ctx, `SELECT MAX(
		(SELECT COALESCE(MAX(tid), -1) FROM trans WHERE partition=?),
		(SELECT COALESCE(MAX(tid), -1) FROM obj WHERE partition=?))`, partition, partition).Scan(&t)
	if err != nil {
		return 0, fmt.Errorf("last tid of partition %d: %w", partition, err)
	}
	return t, nil
}

// ChangePartitionTable implements [backend.Backend].
func (db *DB) ChangePartitionTable(ctx context.Context, ptid proto.PTid, numReplicas int, changes []backend.CellChange, reset bool) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	me := db.mu.nid
	var np uint32
	err := db.writeTx(ctx, true, func(tx *wtx) error {
		u := backend.PTUpdate{Me: me, Old: map[backend.CellKey]backend.PTRow{}, BackupTid: proto.InvalidTid,
			LastTid: func(p uint32) (int64, error) { return lastTidTx(ctx, tx, p) },
			Put: func(k backend.CellKey, r *backend.PTRow) error {
				var err error
				if r == nil {
					_, err = tx.ExecContext(ctx, `DELETE FROM pt WHERE partition=? AND nid=?`, k.Partition, k.NID)
				} else {
					_, err = tx.ExecContext(ctx, `INSERT OR REPLACE INTO pt VALUES (?, ?, ?, ?)`, k.Partition, k.NID, r.Tid, nullTid(r.Pack))
				}
				return err
			}}
		rows, err := tx.QueryContext(ctx, `SELECT partition, nid, tid, pack FROM pt`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var k backend.CellKey
			var r backend.PTRow
			var pack sql.NullInt64
			if err := rows.Scan(&k.Partition, &k.NID, &r.Tid, &pack); err != nil {
				rows.Close()
				return err
			}
			r.Pack = tidOrInvalid(pack)
			u.Old[k] = r
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if reset {
			if _, err := tx.ExecContext(ctx, `DELETE FROM pt`); err != nil {
				return err
			}
		}
		var backupTid sql.NullString
		err = tx.QueryRowContext(ctx, `SELECT value FROM config WHERE name='backup_tid'`).Scan(&backupTid)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if backupTid.Valid {
			if u.BackupTid, err = backend.ParseHexTid(backupTid.String); err != nil {
				return fmt.Errorf("backup_tid %q: %w", backupTid.String, err)
			}
		}
		var maxApproved int64
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(tid), 0) FROM pack WHERE approved=1`).Scan(&maxApproved); err != nil {
			return err
		}
		u.MaxApproved = proto.Tid(maxApproved)
		if err := backend.ApplyCellChanges(changes, u); err != nil {
			return err
		}
		if err := setConfig(ctx, tx, "ptid", ptr(strconv.FormatUint(uint64(ptid), 10))); err != nil {
			return err
		}
		if err := setConfig(ctx, tx, "replicas", ptr(strconv.Itoa(numReplicas))); err != nil {
			return err
		}
		var n sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT MAX(partition)+1 FROM pt`).Scan(&n); err != nil {
			return err
		}
		np = uint32(n.Int64)
		return nil
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
	err := db.writeTx(ctx, false, func(tx *wtx) error {
		_, err := tx.ExecContext(ctx, `UPDATE pt SET tid=? WHERE partition=? AND nid=? AND tid>=0`, int64(tid), partition, db.mu.nid)
		return err
	})
	if err != nil {
		return fmt.Errorf("set cell tid of partition %d to %s: %w", partition, tid, err)
	}
	return nil
}

// SetPartitionPacked implements [backend.Backend].
func (db *DB) SetPartitionPacked(ctx context.Context, partition uint32, id proto.Tid, lower bool) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	err := db.writeTx(ctx, false, func(tx *wtx) error {
		q := `UPDATE pt SET pack=? WHERE partition=? AND nid=?`
		if lower {
			q = `UPDATE pt SET pack=?1 WHERE partition=?2 AND nid=?3 AND (pack IS NULL OR pack>?1)`
		}
		_, err := tx.ExecContext(ctx, q, int64(id), partition, db.mu.nid)
		return err
	})
	if err != nil {
		return fmt.Errorf("set packed id of partition %d to %s (lower=%v): %w", partition, id, lower, err)
	}
	return nil
}
