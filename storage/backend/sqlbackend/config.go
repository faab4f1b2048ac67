package sqlbackend

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
func Meta(ctx context.Context, q Querier) (backend.Meta, error) {
	m := backend.Meta{BackupTid: proto.InvalidTid, TruncateTid: proto.InvalidTid}
	rows, err := q.QueryContext(ctx, `SELECT name, value FROM config WHERE value IS NOT NULL`)
	if err != nil {
		return m, fmt.Errorf("read config: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return m, fmt.Errorf("read config: %w", err)
		}
		if err := m.SetConfig(k, v); err != nil {
			return m, fmt.Errorf("read %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return m, fmt.Errorf("read config: %w", err)
	}
	return m, nil
}

// SetConfig writes config row key, or deletes it if value is nil.
func SetConfig(ctx context.Context, tx Tx, key string, value *string) error {
	var err error
	if value == nil {
		_, err = tx.ExecContext(ctx, `DELETE FROM config WHERE name=?`, key)
	} else {
		_, err = tx.ExecContext(ctx, `REPLACE INTO config VALUES (?, ?)`, key, *value)
	}
	if err != nil {
		return fmt.Errorf("set config %s: %w", key, err)
	}
	return nil
}

// SetConfigs writes the config rows of m, deleting those whose value is
// "" ([backend.BulkImporter]'s convention).
func SetConfigs(ctx context.Context, tx Tx, m map[string]string) error {
	for k, v := range m {
		var value *string
		if v != "" {
			value = &v
		}
		if err := SetConfig(ctx, tx, k, value); err != nil {
			return err
		}
	}
	return nil
}

// SetMeta writes the fields of m that [backend.Backend.SetMeta] saves; a
// new NID replacing another takes over that node's cells (§8.11).
func SetMeta(ctx context.Context, tx Tx, m backend.Meta) error {
	old, err := Meta(ctx, tx)
	if err != nil {
		return err
	}
	if old.NID != 0 && m.NID != 0 && old.NID != m.NID {
		if err := moveCells(ctx, tx, old.NID, m.NID); err != nil {
			return err
		}
	}
	for _, kv := range m.ConfigValues() {
		if err := SetConfig(ctx, tx, kv.Key, kv.Value); err != nil {
			return err
		}
	}
	return nil
}

// moveCells gives the pt rows of node from to node to, states, resume
// points and pack ids unchanged: a clone's copied cells become its own.
func moveCells(ctx context.Context, tx Tx, from, to proto.NodeID) error {
	if _, err := tx.ExecContext(ctx, "DELETE FROM pt WHERE nid=?", to); err != nil {
		return fmt.Errorf("move cells of %s to %s: %w", from, to, err)
	}
	if _, err := tx.ExecContext(ctx, "UPDATE pt SET nid=? WHERE nid=?", to, from); err != nil {
		return fmt.Errorf("move cells of %s to %s: %w", from, to, err)
	}
	return nil
}

// PartitionTable implements [backend.Backend].
func PartitionTable(ctx context.Context, q Querier) (proto.PTid, int, []backend.Cell, error) {
	m, err := Meta(ctx, q)
	if err != nil {
		return 0, 0, nil, err
	}
	rows, err := q.QueryContext(ctx, "SELECT `partition`, nid, tid, pack FROM pt ORDER BY `partition`, nid")
	if err != nil {
		return 0, 0, nil, fmt.Errorf("read partition table: %w", err)
	}
	defer rows.Close()
	var cells []backend.Cell
	for rows.Next() {
		k, r, err := scanPT(rows)
		if err != nil {
			return 0, 0, nil, fmt.Errorf("read partition table: %w", err)
		}
		cells = append(cells, r.Cell(k.Partition, k.NID))
	}
	if err := rows.Err(); err != nil {
		return 0, 0, nil, fmt.Errorf("read partition table: %w", err)
	}
	return m.PTID, m.NumReplicas, cells, nil
}

func scanPT(rows *sql.Rows) (backend.CellKey, backend.PTRow, error) {
	var k backend.CellKey
	var r backend.PTRow
	var pack sql.NullInt64
	err := rows.Scan(&k.Partition, &k.NID, &r.Tid, &pack)
	r.Pack = TidOrInvalid(pack)
	return k, r, err
}

// PartitionCount is the number of partitions of the saved table, 0 if
// none.
func PartitionCount(ctx context.Context, q Querier) (uint32, error) {
	var n sql.NullInt64
	if err := q.QueryRowContext(ctx, "SELECT MAX(`partition`)+1 FROM pt").Scan(&n); err != nil {
		return 0, fmt.Errorf("read partition count: %w", err)
	}
	return uint32(n.Int64), nil
}

// ChangePartitionTable applies cell changes as [backend.Backend] says,
// me being the node's nid, and returns the new number of partitions.
func (d *Dialect) ChangePartitionTable(ctx context.Context, tx Tx, me proto.NodeID, ptid proto.PTid, numReplicas int, changes []backend.CellChange, reset bool) (uint32, error) {
	u := backend.PTUpdate{Me: me, Old: map[backend.CellKey]backend.PTRow{}, BackupTid: proto.InvalidTid,
		LastTid: func(p uint32) (int64, error) {
			var t int64
			err := tx.QueryRowContext(ctx, "SELECT "+d.Greatest+"("+
				"(SELECT COALESCE(MAX(tid), -1) FROM trans WHERE `partition`=?),"+
				"(SELECT COALESCE(MAX(tid), -1) FROM obj WHERE `partition`=?))", p, p).Scan(&t)
			if err != nil {
				return 0, fmt.Errorf("last tid of partition %d: %w", p, err)
			}
			return t, nil
		},
		Put: func(k backend.CellKey, r *backend.PTRow) error {
			var err error
			if r == nil {
				_, err = tx.ExecContext(ctx, "DELETE FROM pt WHERE `partition`=? AND nid=?", k.Partition, k.NID)
			} else {
				_, err = tx.ExecContext(ctx, `REPLACE INTO pt VALUES (?, ?, ?, ?)`, k.Partition, k.NID, r.Tid, NullTid(r.Pack))
			}
			return err
		}}
	rows, err := tx.QueryContext(ctx, "SELECT `partition`, nid, tid, pack FROM pt")
	if err != nil {
		return 0, err
	}
	for rows.Next() {
		k, r, err := scanPT(rows)
		if err != nil {
			rows.Close()
			return 0, err
		}
		u.Old[k] = r
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if reset {
		if _, err := tx.ExecContext(ctx, `DELETE FROM pt`); err != nil {
			return 0, err
		}
	}
	var backupTid sql.NullString
	err = tx.QueryRowContext(ctx, `SELECT value FROM config WHERE name='backup_tid'`).Scan(&backupTid)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, err
	}
	if backupTid.Valid {
		if u.BackupTid, err = backend.ParseHexTid(backupTid.String); err != nil {
			return 0, fmt.Errorf("backup_tid %q: %w", backupTid.String, err)
		}
	}
	var maxApproved int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(tid), 0) FROM pack WHERE approved=1`).Scan(&maxApproved); err != nil {
		return 0, err
	}
	u.MaxApproved = proto.Tid(maxApproved)
	if err := backend.ApplyCellChanges(changes, u); err != nil {
		return 0, err
	}
	for k, v := range map[string]string{"ptid": strconv.FormatUint(uint64(ptid), 10), "replicas": strconv.Itoa(numReplicas)} {
		if err := SetConfig(ctx, tx, k, &v); err != nil {
			return 0, err
		}
	}
	return PartitionCount(ctx, tx)
}

// SetCellTid implements [backend.Backend] for node me.
func SetCellTid(ctx context.Context, tx Tx, me proto.NodeID, partition uint32, tid proto.Tid) error {
	_, err := tx.ExecContext(ctx, "UPDATE pt SET tid=? WHERE `partition`=? AND nid=? AND tid>=0", int64(tid), partition, me)
	return err
}

// SetPartitionPacked implements [backend.Backend] for node me.
func SetPartitionPacked(ctx context.Context, tx Tx, me proto.NodeID, partition uint32, id proto.Tid, lower bool) error {
	q := "UPDATE pt SET pack=? WHERE `partition`=? AND nid=?"
	args := []any{int64(id), partition, me}
	if lower {
		q += " AND (pack IS NULL OR pack>?)"
		args = append(args, int64(id))
	}
	_, err := tx.ExecContext(ctx, q, args...)
	return err
}
