package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/neogo/neo/storage/backend"
	"github.com/neogo/neo/storage/backend/sqlbackend"
)

// ImportTransactions implements [backend.BulkImporter].
func (db *DB) ImportTransactions(ctx context.Context, txns []backend.TxnMeta, records []backend.Record, config map[string]string) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	var np uint32
	if len(txns)+len(records) > 0 {
		var err error
		if np, err = db.writeNP(); err != nil {
			return fmt.Errorf("import %d transactions: %w", len(txns), err)
		}
	}
	err := db.writeTx(ctx, false, func(tx *wtx) error {
		for i := range txns {
			m := &txns[i]
			if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO trans VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
				backend.Partition(m.Tid, np), int64(m.Tid), m.Packed, backend.PackOids(m.Oids), sqlbackend.Blob(m.User), sqlbackend.Blob(m.Description), sqlbackend.Blob(m.Ext), int64(m.TTid)); err != nil {
				return fmt.Errorf("add transaction %s: %w", m.Tid, err)
			}
		}
		// In order: an undo record reuses the data of an earlier one,
		// maybe of this batch.
		for i := range records {
			r := &records[i]
			id, err := db.storeData(ctx, tx, np, r)
			if err != nil {
				return err
			}
			db.oids.raise(int64(r.Oid))
			if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO obj VALUES (?, ?, ?, ?, ?)`,
				backend.Partition(r.Oid, np), int64(r.Oid), int64(r.Serial), id, sqlbackend.NullTid(r.DataSerial)); err != nil {
				return fmt.Errorf("add oid %s at %s: %w", r.Oid, r.Serial, err)
			}
		}
		for k, v := range config {
			var value *string
			if v != "" { // "" deletes
				value = &v
			}
			if err := sqlbackend.SetConfig(ctx, tx, k, value); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("import %d transactions, %d records: %w", len(txns), len(records), err)
	}
	return nil
}

// ImportConfig implements [backend.BulkImporter].
func (db *DB) ImportConfig(ctx context.Context, key string) (string, bool, error) {
	var v sql.NullString
	err := db.r.QueryRowContext(ctx, `SELECT value FROM config WHERE name=?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) || err == nil && !v.Valid {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read config %s: %w", key, err)
	}
	return v.String, true, nil
}

var _ backend.BulkImporter = (*DB)(nil)
