package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
	"github.com/neogo/neo/storage/backend/sqlbackend"
)

// The three forms of Load: one statement each, so that the record and its
// next serial come from one snapshot. The partition is compared with
// CAST(? AS INTEGER), not a bare parameter: SQLite propagates a bare
// parameter into the correlated subquery as a constant and then compiles
// the statement again whenever its value changes, i.e. at most loads (a
// fifth of a load's CPU); the query plan is the same.
const (
	loadCols = `SELECT o.tid, o.value_tid, d.compression, d.hash, d.value,
		(SELECT tid FROM obj WHERE partition=o.partition AND oid=o.oid AND tid>o.tid ORDER BY tid LIMIT 1)
		FROM obj o LEFT JOIN data d ON d.id=o.data_id `
	loadAtSQL     = loadCols + `WHERE o.partition=CAST(? AS INTEGER) AND o.oid=? AND o.tid=?`
	loadBeforeSQL = loadCols + `WHERE o.partition=CAST(? AS INTEGER) AND o.oid=? AND o.tid<? ORDER BY o.tid DESC LIMIT 1`
	loadLastSQL   = loadCols + `WHERE o.partition=CAST(? AS INTEGER) AND o.oid=? ORDER BY o.tid DESC LIMIT 1`
	lastTidSQL    = `SELECT MAX(tid) FROM obj WHERE partition=? AND oid=?`
)

// Load implements [backend.Backend].
func (db *DB) Load(ctx context.Context, oid proto.Oid, at, before proto.Tid) (*backend.Object, error) {
	ctx = short(ctx)
	np, err := db.np()
	if err != nil {
		return nil, fmt.Errorf("load oid %s: %w", oid, err)
	}
	if db.unlocks.Has(oid) {
		if err := db.unlocks.Settle(ctx); err != nil {
			return nil, fmt.Errorf("load oid %s: %w", oid, err)
		}
	}
	p := backend.Partition(oid, np)
	var row *sql.Row
	switch {
	case at != proto.InvalidTid:
		row = db.loadAt.QueryRowContext(ctx, p, int64(oid), int64(at))
	case before != proto.InvalidTid:
		row = db.loadBefore.QueryRowContext(ctx, p, int64(oid), int64(before))
	default:
		row = db.loadLast.QueryRowContext(ctx, p, int64(oid))
	}
	o := &backend.Object{}
	o.Oid = oid
	var serial int64
	var valueTid, next, compression sql.NullInt64
	var hash []byte
	err = row.Scan(&serial, &valueTid, &compression, &hash, &o.Data, &next)
	if errors.Is(err, sql.ErrNoRows) {
		err = sqlbackend.LoadMissing(ctx, db.r, p, oid)
	}
	if err != nil {
		return nil, fmt.Errorf("load oid %s at %s before %s: %w", oid, at, before, err)
	}
	o.Serial = proto.Tid(serial)
	o.DataSerial = sqlbackend.TidOrInvalid(valueTid)
	o.NextSerial = sqlbackend.TidOrInvalid(next)
	o.Compression = uint8(compression.Int64)
	if len(hash) != 0 && copy(o.Checksum[:], hash) != len(o.Checksum) {
		return nil, fmt.Errorf("load oid %s at %s: hash of %d bytes", oid, o.Serial, len(hash))
	}
	return o, nil
}

// LastObjectTid implements [backend.Backend].
func (db *DB) LastObjectTid(ctx context.Context, oid proto.Oid) (proto.Tid, error) {
	ctx = short(ctx)
	np, err := db.np()
	if err != nil {
		return 0, fmt.Errorf("last serial of oid %s: %w", oid, err)
	}
	if db.unlocks.Has(oid) {
		if err := db.unlocks.Settle(ctx); err != nil {
			return 0, fmt.Errorf("last serial of oid %s: %w", oid, err)
		}
	}
	if above, err := db.oids.Above(ctx, db.r, np, oid); err != nil {
		return 0, fmt.Errorf("last serial of oid %s: %w", oid, err)
	} else if above {
		return proto.InvalidTid, nil
	}
	var t sql.NullInt64
	if err := db.lastTid.QueryRowContext(ctx, backend.Partition(oid, np), int64(oid)).Scan(&t); err != nil {
		return 0, fmt.Errorf("last serial of oid %s: %w", oid, err)
	}
	return sqlbackend.TidOrInvalid(t), nil
}
