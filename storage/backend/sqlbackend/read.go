package sqlbackend

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

// LoadMissing is the error of a load of oid, in partition p, that found
// no record: [backend.ErrOidNotFound] when oid has records, none of them
// the one asked for, else [backend.ErrOidDoesNotExist].
func LoadMissing(ctx context.Context, q Querier, p uint32, oid proto.Oid) error {
	var exists bool
	if err := q.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM obj WHERE `partition`=? AND oid=?)", p, int64(oid)).Scan(&exists); err != nil {
		return fmt.Errorf("whether oid %s has records: %w", oid, err)
	}
	if exists {
		return backend.ErrOidNotFound
	}
	return backend.ErrOidDoesNotExist
}

// History implements [backend.Backend] with np partitions.
func (d *Dialect) History(ctx context.Context, q Querier, np uint32, oid proto.Oid, offset, length int) ([]backend.HistoryEntry, error) {
	rows, err := q.QueryContext(ctx, "SELECT o.tid, COALESCE("+d.DataSize+", 0)"+
		" FROM obj o"+d.PKHint+" LEFT JOIN data d ON d.id=o.data_id"+
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

// ScanTids reads a column of tids; a NULL is InvalidTid.
func ScanTids(rows *sql.Rows, err error) ([]proto.Tid, error) {
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
		tids = append(tids, TidOrInvalid(t))
	}
	return tids, rows.Err()
}

// UndoHistory implements [backend.Backend] with np partitions, in one read
// transaction of db so that both its queries see the same state.
func UndoHistory(ctx context.Context, db *sql.DB, np uint32, oid proto.Oid, undoTid proto.Tid) (backend.UndoHistory, bool, error) {
	h := backend.UndoHistory{Before: proto.InvalidTid}
	fail := func(err error) (backend.UndoHistory, bool, error) {
		return h, false, fmt.Errorf("undo history of oid %s at %s: %w", oid, undoTid, err)
	}
	p := backend.Partition(oid, np)
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	tids, err := ScanTids(tx.QueryContext(ctx, "SELECT tid FROM obj WHERE `partition`=? AND oid=? AND tid<=? ORDER BY tid DESC LIMIT 2",
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
		h.After = append(h.After, backend.UndoRecord{Tid: proto.Tid(t), ValueTid: TidOrInvalid(vt)})
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	return h, true, nil
}

// Transaction implements [backend.Backend] with np partitions.
func Transaction(ctx context.Context, q Querier, np uint32, tid proto.Tid) (*backend.TxnMeta, error) {
	m := &backend.TxnMeta{Tid: tid}
	var oids, packOids []byte
	var ttid int64
	var approved, partial sql.NullBool
	var packTid sql.NullInt64
	err := q.QueryRowContext(ctx, "SELECT t.oids, t.user, t.description, t.ext, t.packed, t.ttid,"+
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
func TIDs(ctx context.Context, q Querier, offset, length int, partitions []uint32) ([]proto.Tid, error) {
	if len(partitions) == 0 {
		return nil, nil
	}
	tids, err := ScanTids(q.QueryContext(ctx, "SELECT tid FROM trans WHERE `partition` IN ("+IntList(partitions)+")"+
		" ORDER BY tid DESC LIMIT ? OFFSET ?", length, offset))
	if err != nil {
		return nil, fmt.Errorf("tids [%d:+%d] of partitions %v: %w", offset, length, partitions, err)
	}
	return tids, nil
}

// TIDsFrom implements [backend.Backend].
func TIDsFrom(ctx context.Context, q Querier, partition uint32, minTid, maxTid proto.Tid, length int) ([]proto.Tid, error) {
	tids, err := ScanTids(q.QueryContext(ctx, "SELECT tid FROM trans WHERE `partition`=? AND tid>=? AND tid<=? ORDER BY tid LIMIT ?",
		partition, int64(minTid), int64(maxTid), length))
	if err != nil {
		return nil, fmt.Errorf("tids of partition %d in [%s, %s]: %w", partition, minTid, maxTid, err)
	}
	return tids, nil
}

// ObjectsFrom implements [backend.Backend].
func (d *Dialect) ObjectsFrom(ctx context.Context, q Querier, partition uint32, minTid, maxTid proto.Tid, minOid proto.Oid, length int) ([]backend.ObjectKey, error) {
	fail := func(err error) ([]backend.ObjectKey, error) {
		return nil, fmt.Errorf("records of partition %d from (%s, %s) to %s: %w", partition, minTid, minOid, maxTid, err)
	}
	rows, err := q.QueryContext(ctx, "SELECT tid, oid FROM obj"+d.TidHint+" WHERE `partition`=? AND tid<=?"+
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

// OIDsFrom implements [backend.Backend] with np partitions.
func OIDsFrom(ctx context.Context, q Querier, np uint32, partition uint32, minOid proto.Oid, tid proto.Tid, length int) (proto.Oid, []proto.Oid, error) {
	fail := func(err error) (proto.Oid, []proto.Oid, error) {
		return proto.InvalidOid, nil, fmt.Errorf("oids of partition %d from %s at %s: %w", partition, minOid, tid, err)
	}
	rows, err := q.QueryContext(ctx, "SELECT o.oid, o.data_id IS NOT NULL FROM obj o JOIN"+
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

// LastIDs implements [backend.Backend], in one read transaction of db.
func (d *Dialect) LastIDs(ctx context.Context, db *sql.DB, partitions []uint32) (backend.LastIDs, error) {
	ids := backend.LastIDs{LastTid: proto.InvalidTid, LastOid: proto.InvalidOid, FirstTid: proto.MaxTid}
	if len(partitions) == 0 {
		return ids, nil
	}
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return ids, fmt.Errorf("last ids: %w", err)
	}
	defer tx.Rollback()
	lastTid, lastOid, firstTid := int64(-1), int64(-1), int64(proto.MaxTid)
	for _, p := range partitions {
		var t1, t2, o, f sql.NullInt64
		if err := tx.QueryRowContext(ctx, "SELECT"+
			" (SELECT MAX(tid) FROM trans WHERE `partition`=?),"+
			" (SELECT MAX(tid) FROM obj"+d.TidHint+" WHERE `partition`=?),"+
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

// FinalTid implements [backend.Backend] with np partitions (0: none).
func FinalTid(ctx context.Context, q Querier, np uint32, ttid proto.Tid) (proto.Tid, error) {
	var t sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT tid FROM ttrans WHERE ttid=? AND tid IS NOT NULL`, int64(ttid)).Scan(&t)
	if errors.Is(err, sql.ErrNoRows) {
		if np == 0 {
			return proto.InvalidTid, fmt.Errorf("final tid of %s: %w", ttid, backend.ErrNoPartitionTable)
		}
		err = q.QueryRowContext(ctx, "SELECT tid FROM trans WHERE `partition`=? AND tid>=? AND ttid=? LIMIT 1",
			backend.Partition(ttid, np), int64(ttid), int64(ttid)).Scan(&t)
		if errors.Is(err, sql.ErrNoRows) {
			return proto.InvalidTid, nil
		}
	}
	if err != nil {
		return proto.InvalidTid, fmt.Errorf("final tid of %s: %w", ttid, err)
	}
	return TidOrInvalid(t), nil
}

// PackOrders implements [backend.Backend] with np partitions.
func PackOrders(ctx context.Context, q Querier, np uint32, minID proto.Tid, partitions []uint32) ([]backend.PackOrder, error) {
	if len(partitions) == 0 {
		return nil, nil
	}
	rows, err := q.QueryContext(ctx, `SELECT tid, approved, partial, oids, pack_tid FROM pack
		WHERE tid>=? AND tid % ? IN (`+IntList(partitions)+`) ORDER BY tid`, int64(minID), np)
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

// LockedTransactions implements [backend.Backend].
func LockedTransactions(ctx context.Context, q Querier) (map[proto.Tid]proto.Tid, error) {
	rows, err := q.QueryContext(ctx, `SELECT ttid, tid FROM ttrans
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
			m[proto.Tid(ttid)] = TidOrInvalid(tid)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("locked transactions: %w", err)
	}
	return m, nil
}
