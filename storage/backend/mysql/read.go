package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

// The three forms of Load: one statement each, so that the record and its
// next serial come from one snapshot.
const (
	loadCols = "SELECT o.tid, o.value_tid, d.compression, d.hash, d.value," +
		" (SELECT tid FROM obj FORCE INDEX(PRIMARY) WHERE `partition`=o.`partition` AND oid=o.oid AND tid>o.tid ORDER BY tid LIMIT 1)" +
		" FROM obj o FORCE INDEX(PRIMARY) LEFT JOIN data d ON d.id=o.data_id "
	loadAtSQL     = loadCols + "WHERE o.`partition`=? AND o.oid=? AND o.tid=?"
	loadBeforeSQL = loadCols + "WHERE o.`partition`=? AND o.oid=? AND o.tid<? ORDER BY o.tid DESC LIMIT 1"
	loadLastSQL   = loadCols + "WHERE o.`partition`=? AND o.oid=? ORDER BY o.tid DESC LIMIT 1"
)

// Load implements [backend.Backend].
func (db *DB) Load(ctx context.Context, oid proto.Oid, at, before proto.Tid) (*backend.Object, error) {
	np, err := db.np()
	if err != nil {
		return nil, fmt.Errorf("load oid %s: %w", oid, err)
	}
	p := backend.Partition(oid, np)
	var row *sql.Row
	switch {
	case at != proto.InvalidTid:
		row = db.r.QueryRowContext(ctx, loadAtSQL, p, int64(oid), int64(at))
	case before != proto.InvalidTid:
		row = db.r.QueryRowContext(ctx, loadBeforeSQL, p, int64(oid), int64(before))
	default:
		row = db.r.QueryRowContext(ctx, loadLastSQL, p, int64(oid))
	}
	o := &backend.Object{}
	o.Oid = oid
	var serial int64
	var valueTid, next, compression sql.NullInt64
	var hash []byte
	err = row.Scan(&serial, &valueTid, &compression, &hash, &o.Data, &next)
	if errors.Is(err, sql.ErrNoRows) {
		var exists bool
		if err := db.r.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM obj WHERE `partition`=? AND oid=?)", p, int64(oid)).Scan(&exists); err != nil {
			return nil, fmt.Errorf("load oid %s: %w", oid, err)
		}
		err = backend.ErrOidDoesNotExist
		if exists {
			err = backend.ErrOidNotFound
		}
	}
	if err != nil {
		return nil, fmt.Errorf("load oid %s at %s before %s: %w", oid, at, before, err)
	}
	o.Serial = proto.Tid(serial)
	o.DataSerial = tidOrInvalid(valueTid)
	o.NextSerial = tidOrInvalid(next)
	o.Compression = uint8(compression.Int64)
	if o.Compression&bigFlag != 0 {
		o.Compression &^= bigFlag
		// Chunks are never rewritten: the value's own rows are those the
		// header names for as long as the data row exists.
		if o.Data, err = readBig(ctx, db.r, o.Data); err != nil {
			return nil, fmt.Errorf("load oid %s at %s: %w", oid, o.Serial, err)
		}
	}
	if len(hash) != 0 && copy(o.Checksum[:], hash) != len(o.Checksum) {
		return nil, fmt.Errorf("load oid %s at %s: hash of %d bytes", oid, o.Serial, len(hash))
	}
	return o, nil
}

// LastObjectTid implements [backend.Backend].
func (db *DB) LastObjectTid(ctx context.Context, oid proto.Oid) (proto.Tid, error) {
	np, err := db.np()
	if err != nil {
		return 0, fmt.Errorf("last serial of oid %s: %w", oid, err)
	}
	var t sql.NullInt64
	if err := db.r.QueryRowContext(ctx, "SELECT MAX(tid) FROM obj WHERE `partition`=? AND oid=?",
		backend.Partition(oid, np), int64(oid)).Scan(&t); err != nil {
		return 0, fmt.Errorf("last serial of oid %s: %w", oid, err)
	}
	return tidOrInvalid(t), nil
}

// History implements [backend.Backend]. The size of a split value is the
// length its header records.
func (db *DB) History(ctx context.Context, oid proto.Oid, offset, length int) ([]backend.HistoryEntry, error) {
	np, err := db.np()
	if err != nil {
		return nil, fmt.Errorf("history of oid %s: %w", oid, err)
	}
	rows, err := db.r.QueryContext(ctx, "SELECT o.tid, COALESCE(IF(d.compression<128, LENGTH(d.value),"+
		" CAST(CONV(HEX(SUBSTR(d.value, 5, 4)), 16, 10) AS INT)), 0)"+
		" FROM obj o FORCE INDEX(PRIMARY) LEFT JOIN data d ON d.id=o.data_id"+
		" WHERE o.`partition`=? AND o.oid=? ORDER BY o.tid DESC LIMIT ? OFFSET ?",
		backend.Partition(oid, np), int64(oid), length, offset)
	if err != nil {
		return nil, fmt.Errorf("history of oid %s [%d:+%d]: %w", oid, offset, length, err)
	}
	defer rows.Close()
	var h []backend.HistoryEntry
	for rows.Next() {
		var e backend.HistoryEntry
		var t int64
		if err := rows.Scan(&t, &e.Size); err != nil {
			return nil, fmt.Errorf("history of oid %s: %w", oid, err)
		}
		e.Serial = proto.Tid(t)
		h = append(h, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history of oid %s: %w", oid, err)
	}
	if len(h) == 0 {
		return nil, fmt.Errorf("history of oid %s [%d:+%d]: %w", oid, offset, length, backend.ErrOidNotFound)
	}
	return h, nil
}

// scanTids reads a column of tids; a NULL is InvalidTid.
func scanTids(rows *sql.Rows, err error) ([]proto.Tid, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var tids []proto.Tid
	for rows.Next() {
		var t sql.NullInt64
		if err := rows.Scan(&t); err != nil {
			return nil, err
		}
		tids = append(tids, tidOrInvalid(t))
	}
	return tids, rows.Err()
}

// UndoHistory implements [backend.Backend].
func (db *DB) UndoHistory(ctx context.Context, oid proto.Oid, undoTid proto.Tid) (backend.UndoHistory, bool, error) {
	h := backend.UndoHistory{Before: proto.InvalidTid}
	fail := func(err error) (backend.UndoHistory, bool, error) {
		return h, false, fmt.Errorf("undo history of oid %s at %s: %w", oid, undoTid, err)
	}
	np, err := db.np()
	if err != nil {
		return fail(err)
	}
	p := backend.Partition(oid, np)
	// One read transaction: both queries see the same snapshot.
	tx, err := db.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	tids, err := scanTids(tx.QueryContext(ctx, "SELECT tid FROM obj WHERE `partition`=? AND oid=? AND tid<=? ORDER BY tid DESC LIMIT 2",
		p, int64(oid), int64(undoTid)))
	if err != nil {
		return fail(err)
	}
	if len(tids) == 0 || tids[0] != undoTid {
		return h, false, nil
	}
	if len(tids) == 2 {
		h.Before = tids[1]
	}
	rows, err := tx.QueryContext(ctx, "SELECT tid, value_tid FROM obj WHERE `partition`=? AND oid=? AND tid>? ORDER BY tid",
		p, int64(oid), int64(undoTid))
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	for rows.Next() {
		var t int64
		var vt sql.NullInt64
		if err := rows.Scan(&t, &vt); err != nil {
			return fail(err)
		}
		h.After = append(h.After, backend.UndoRecord{Tid: proto.Tid(t), ValueTid: tidOrInvalid(vt)})
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	return h, true, nil
}

// Transaction implements [backend.Backend].
func (db *DB) Transaction(ctx context.Context, tid proto.Tid) (*backend.TxnMeta, error) {
	np, err := db.np()
	if err != nil {
		return nil, fmt.Errorf("transaction %s: %w", tid, err)
	}
	m := &backend.TxnMeta{Tid: tid}
	var oids, packOids []byte
	var ttid int64
	var approved, partial sql.NullBool
	var packTid sql.NullInt64
	err = db.r.QueryRowContext(ctx, "SELECT t.oids, t.user, t.description, t.ext, t.packed, t.ttid,"+
		" p.approved, p.partial, p.oids, p.pack_tid"+
		" FROM trans t LEFT JOIN pack p ON p.tid=t.tid WHERE t.`partition`=? AND t.tid=?",
		backend.Partition(tid, np), int64(tid)).Scan(&oids, &m.User, &m.Description, &m.Ext, &m.Packed, &ttid,
		&approved, &partial, &packOids, &packTid)
	if errors.Is(err, sql.ErrNoRows) {
		err = backend.ErrTidNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("transaction %s: %w", tid, err)
	}
	m.TTid = proto.Tid(ttid)
	if m.Oids, err = backend.UnpackOids(oids); err != nil {
		return nil, fmt.Errorf("transaction %s: %w", tid, err)
	}
	for _, b := range []*[]byte{&m.User, &m.Description, &m.Ext} {
		if *b == nil {
			*b = []byte{}
		}
	}
	if partial.Valid {
		po := &backend.PackOrder{ID: tid, Partial: partial.Bool, PackTid: proto.Tid(packTid.Int64), State: packState(approved)}
		if po.Partial {
			if po.Oids, err = backend.UnpackOids(packOids); err != nil {
				return nil, fmt.Errorf("transaction %s: pack order: %w", tid, err)
			}
		}
		m.Pack = po
	}
	return m, nil
}

func packState(approved sql.NullBool) backend.PackState {
	switch {
	case !approved.Valid:
		return backend.PackUnsigned
	case approved.Bool:
		return backend.PackApproved
	}
	return backend.PackRejected
}

// TIDs implements [backend.Backend].
func (db *DB) TIDs(ctx context.Context, offset, length int, partitions []uint32) ([]proto.Tid, error) {
	if len(partitions) == 0 {
		return nil, nil
	}
	tids, err := scanTids(db.r.QueryContext(ctx, "SELECT tid FROM trans WHERE `partition` IN ("+intList(partitions)+")"+
		" ORDER BY tid DESC LIMIT ? OFFSET ?", length, offset))
	if err != nil {
		return nil, fmt.Errorf("tids [%d:+%d] of partitions %v: %w", offset, length, partitions, err)
	}
	return tids, nil
}

// TIDsFrom implements [backend.Backend].
func (db *DB) TIDsFrom(ctx context.Context, partition uint32, minTid, maxTid proto.Tid, length int) ([]proto.Tid, error) {
	tids, err := scanTids(db.r.QueryContext(ctx, "SELECT tid FROM trans WHERE `partition`=? AND tid>=? AND tid<=? ORDER BY tid LIMIT ?",
		partition, int64(minTid), int64(maxTid), length))
	if err != nil {
		return nil, fmt.Errorf("tids of partition %d in [%s, %s]: %w", partition, minTid, maxTid, err)
	}
	return tids, nil
}

// ObjectsFrom implements [backend.Backend].
func (db *DB) ObjectsFrom(ctx context.Context, partition uint32, minTid, maxTid proto.Tid, minOid proto.Oid, length int) ([]backend.ObjectKey, error) {
	fail := func(err error) ([]backend.ObjectKey, error) {
		return nil, fmt.Errorf("records of partition %d from (%s, %s) to %s: %w", partition, minTid, minOid, maxTid, err)
	}
	rows, err := db.r.QueryContext(ctx, "SELECT tid, oid FROM obj FORCE INDEX(tid) WHERE `partition`=? AND tid<=?"+
		" AND (tid>? OR (tid=? AND oid>=?)) ORDER BY tid, oid LIMIT ?",
		partition, int64(maxTid), int64(minTid), int64(minTid), int64(minOid), length)
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	var keys []backend.ObjectKey
	for rows.Next() {
		var t, o int64
		if err := rows.Scan(&t, &o); err != nil {
			return fail(err)
		}
		keys = append(keys, backend.ObjectKey{Tid: proto.Tid(t), Oid: proto.Oid(o)})
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	return keys, nil
}

// OIDsFrom implements [backend.Backend].
func (db *DB) OIDsFrom(ctx context.Context, partition uint32, minOid proto.Oid, tid proto.Tid, length int) (proto.Oid, []proto.Oid, error) {
	fail := func(err error) (proto.Oid, []proto.Oid, error) {
		return proto.InvalidOid, nil, fmt.Errorf("oids of partition %d from %s at %s: %w", partition, minOid, tid, err)
	}
	np, err := db.np()
	if err != nil {
		return fail(err)
	}
	rows, err := db.r.QueryContext(ctx, "SELECT o.oid, o.data_id IS NOT NULL FROM obj o JOIN"+
		" (SELECT oid, MAX(tid) AS tid FROM obj WHERE `partition`=? AND oid>=? AND tid<=?"+
		"  GROUP BY oid ORDER BY oid LIMIT ?) t ON o.`partition`=? AND o.oid=t.oid AND o.tid=t.tid"+
		" ORDER BY o.oid", partition, int64(minOid), int64(tid), length, partition)
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	var oids []proto.Oid
	var n int
	var last int64
	for rows.Next() {
		var hasData bool
		if err := rows.Scan(&last, &hasData); err != nil {
			return fail(err)
		}
		n++
		if hasData {
			oids = append(oids, proto.Oid(last))
		}
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	next := proto.InvalidOid
	if n == length && n > 0 {
		next = proto.Oid(last) + proto.Oid(np)
	}
	return next, oids, nil
}

// LastIDs implements [backend.Backend].
func (db *DB) LastIDs(ctx context.Context, partitions []uint32) (backend.LastIDs, error) {
	ids := backend.LastIDs{LastTid: proto.InvalidTid, LastOid: proto.InvalidOid, FirstTid: proto.MaxTid}
	if len(partitions) == 0 {
		return ids, nil
	}
	tx, err := db.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return ids, fmt.Errorf("last ids: %w", err)
	}
	defer tx.Rollback()
	lastTid, lastOid, firstTid := int64(-1), int64(-1), int64(proto.MaxTid)
	for _, p := range partitions {
		var t1, t2, o, f sql.NullInt64
		if err := tx.QueryRowContext(ctx, "SELECT"+
			" (SELECT MAX(tid) FROM trans WHERE `partition`=?),"+
			" (SELECT MAX(tid) FROM obj FORCE INDEX(tid) WHERE `partition`=?),"+
			" (SELECT MAX(oid) FROM obj WHERE `partition`=?),"+
			" (SELECT MIN(tid) FROM trans WHERE `partition`=?)", p, p, p, p).Scan(&t1, &t2, &o, &f); err != nil {
			return ids, fmt.Errorf("last ids of partition %d: %w", p, err)
		}
		for _, t := range []sql.NullInt64{t1, t2} {
			if t.Valid && t.Int64 > lastTid {
				lastTid = t.Int64
			}
		}
		if o.Valid && o.Int64 > lastOid {
			lastOid = o.Int64
		}
		if f.Valid && f.Int64 < firstTid {
			firstTid = f.Int64
		}
	}
	if lastTid >= 0 {
		ids.LastTid = proto.Tid(lastTid)
	}
	if lastOid >= 0 {
		ids.LastOid = proto.Oid(lastOid)
	}
	ids.FirstTid = proto.Tid(firstTid)
	return ids, nil
}

// FinalTid implements [backend.Backend].
func (db *DB) FinalTid(ctx context.Context, ttid proto.Tid) (proto.Tid, error) {
	var t sql.NullInt64
	err := db.r.QueryRowContext(ctx, `SELECT tid FROM ttrans WHERE ttid=? AND tid IS NOT NULL`, int64(ttid)).Scan(&t)
	if errors.Is(err, sql.ErrNoRows) {
		np, nerr := db.np()
		if nerr != nil {
			return proto.InvalidTid, fmt.Errorf("final tid of %s: %w", ttid, nerr)
		}
		err = db.r.QueryRowContext(ctx, "SELECT tid FROM trans WHERE `partition`=? AND tid>=? AND ttid=? LIMIT 1",
			backend.Partition(ttid, np), int64(ttid), int64(ttid)).Scan(&t)
		if errors.Is(err, sql.ErrNoRows) {
			return proto.InvalidTid, nil
		}
	}
	if err != nil {
		return proto.InvalidTid, fmt.Errorf("final tid of %s: %w", ttid, err)
	}
	return tidOrInvalid(t), nil
}

// PackOrders implements [backend.Backend].
func (db *DB) PackOrders(ctx context.Context, minID proto.Tid, partitions []uint32) ([]backend.PackOrder, error) {
	if len(partitions) == 0 {
		return nil, nil
	}
	np, err := db.np()
	if err != nil {
		return nil, fmt.Errorf("pack orders from %s: %w", minID, err)
	}
	rows, err := db.r.QueryContext(ctx, `SELECT tid, approved, partial, oids, pack_tid FROM pack
		WHERE tid>=? AND tid % ? IN (`+intList(partitions)+`) ORDER BY tid`, int64(minID), np)
	if err != nil {
		return nil, fmt.Errorf("pack orders from %s: %w", minID, err)
	}
	defer rows.Close()
	var orders []backend.PackOrder
	for rows.Next() {
		var id, packTid int64
		var approved sql.NullBool
		var oids []byte
		var o backend.PackOrder
		if err := rows.Scan(&id, &approved, &o.Partial, &oids, &packTid); err != nil {
			return nil, fmt.Errorf("pack orders from %s: %w", minID, err)
		}
		o.ID, o.PackTid, o.State = proto.Tid(id), proto.Tid(packTid), packState(approved)
		if o.Partial {
			if o.Oids, err = backend.UnpackOids(oids); err != nil {
				return nil, fmt.Errorf("pack order %s: %w", o.ID, err)
			}
		}
		orders = append(orders, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pack orders from %s: %w", minID, err)
	}
	return orders, nil
}
