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
		var perr error
		switch k {
		case "name":
			m.Name = v.String
		case "nid":
			var x int64
			x, perr = strconv.ParseInt(v.String, 10, 32)
			m.NID = proto.NodeID(x)
		case "ptid":
			var x uint64
			x, perr = strconv.ParseUint(v.String, 10, 64)
			m.PTID = proto.PTid(x)
		case "replicas":
			m.NumReplicas, perr = strconv.Atoi(v.String)
		case "backup_tid":
			m.BackupTid, perr = parseHexTid(v.String)
		case "truncate_tid":
			m.TruncateTid, perr = parseHexTid(v.String)
		}
		if perr != nil {
			return m, fmt.Errorf("read config %s=%q: %w", k, v.String, perr)
		}
	}
	if err := rows.Err(); err != nil {
		return m, fmt.Errorf("read config: %w", err)
	}
	return m, nil
}

func parseHexTid(s string) (proto.Tid, error) {
	x, err := strconv.ParseUint(s, 16, 64)
	return proto.Tid(x), err
}

// hexTid is the config form of backup_tid/truncate_tid (16 lowercase hex
// digits), nil when unset.
func hexTid(t proto.Tid) any {
	if t == proto.InvalidTid {
		return nil
	}
	return t.String()
}

func setConfig(ctx context.Context, tx *wtx, key string, value any) error {
	var err error
	if value == nil {
		_, err = tx.ExecContext(ctx, `DELETE FROM config WHERE name=?`, key)
	} else {
		_, err = tx.ExecContext(ctx, `INSERT OR REPLACE INTO config VALUES (?, ?)`, key, value)
	}
	if err != nil {
		return fmt.Errorf("set config %s=%v: %w", key, value, err)
	}
	return nil
}

// SetMeta implements [backend.Backend].
func (db *DB) SetMeta(ctx context.Context, m backend.Meta) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	err := db.writeTx(ctx, true, func(tx *wtx) error {
		var name, nid any
		if m.Name != "" {
			name = m.Name
		}
		if m.NID != 0 {
			nid = strconv.FormatInt(int64(m.NID), 10)
		}
		for _, kv := range []struct {
			k string
			v any
		}{{"name", name}, {"nid", nid}, {"backup_tid", hexTid(m.BackupTid)}, {"truncate_tid", hexTid(m.TruncateTid)}} {
			if err := setConfig(ctx, tx, kv.k, kv.v); err != nil {
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
		var c backend.Cell
		var tid int64
		var pack sql.NullInt64
		if err := rows.Scan(&c.Partition, &c.NID, &tid, &pack); err != nil {
			return 0, 0, nil, fmt.Errorf("read partition table: %w", err)
		}
		if tid < 0 {
			c.State = proto.CellState(-tid)
		} else {
			c.State, c.Tid = proto.OUT_OF_DATE, proto.Tid(tid)
		}
		c.Pack = tidOrInvalid(pack)
		cells = append(cells, c)
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
		type row struct {
			tid  int64
			pack sql.NullInt64
		}
		old := map[[2]int64]row{}
		rows, err := tx.QueryContext(ctx, `SELECT partition, nid, tid, pack FROM pt`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var p, nid int64
			var r row
			if err := rows.Scan(&p, &nid, &r.tid, &r.pack); err != nil {
				rows.Close()
				return err
			}
			old[[2]int64{p, nid}] = r
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
		var maxApproved int64
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(tid), 0) FROM pack WHERE approved=1`).Scan(&maxApproved); err != nil {
			return err
		}
		for _, c := range changes {
			key := [2]int64{int64(c.Partition), int64(c.NID)}
			if c.State == proto.DISCARDED {
				if _, err := tx.ExecContext(ctx, `DELETE FROM pt WHERE partition=? AND nid=?`, c.Partition, c.NID); err != nil {
					return fmt.Errorf("discard cell %d/%s: %w", c.Partition, c.NID, err)
				}
				continue
			}
			if !c.State.Valid() {
				return fmt.Errorf("cell %d/%s: invalid state %d", c.Partition, c.NID, c.State)
			}
			prev, existed := old[key]
			var tid int64
			var pack any
			if existed {
				pack = prev.pack
			}
			switch {
			case c.State != proto.OUT_OF_DATE:
				tid = -int64(c.State)
				if !existed && c.NID == me {
					pack = int64(0)
				}
			case c.NID != me:
				tid = 0
			case existed && prev.tid >= 0:
				tid = prev.tid // stays out of date: keep the resume point
			case existed:
				// A readable cell becomes out of date: replication only needs
				// what comes after what is already here.
				if backupTid.Valid {
					t, err := parseHexTid(backupTid.String)
					if err != nil {
						return fmt.Errorf("backup_tid %q: %w", backupTid.String, err)
					}
					tid = int64(t)
				} else if tid, err = lastTidTx(ctx, tx, c.Partition); err != nil {
					return err
				} else if tid < 0 {
					tid = 0
				}
			default:
				tid = 0
				pack = maxApproved // what it will replicate is already packed
			}
			if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO pt VALUES (?, ?, ?, ?)`, c.Partition, c.NID, tid, pack); err != nil {
				return fmt.Errorf("set cell %d/%s %s: %w", c.Partition, c.NID, c.State, err)
			}
		}
		if err := setConfig(ctx, tx, "ptid", strconv.FormatUint(uint64(ptid), 10)); err != nil {
			return err
		}
		if err := setConfig(ctx, tx, "replicas", strconv.Itoa(numReplicas)); err != nil {
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
