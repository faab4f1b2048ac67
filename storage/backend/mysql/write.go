package mysql

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

const errDupEntry = 1062 // ER_DUP_ENTRY

// nextDataID returns the next free data id of partition (ids are
// partition<<48 + n); db.mu must be held.
func (db *DB) nextDataID(ctx context.Context, tx *sql.Tx, partition uint32) (int64, error) {
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

// bigHeader is data.value of a split value: the id of its first bigdata
// row and its length, two big-endian 32-bit integers (neoppod's ">LL").
func bigHeader(first int64, length int) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint32(b, uint32(first))
	binary.BigEndian.PutUint32(b[4:], uint32(length))
	return b
}

// bigRange returns the bigdata ids [first, end) of a split value.
func bigRange(header []byte) (first, end int64, length int, err error) {
	if len(header) != 8 {
		return 0, 0, 0, fmt.Errorf("split value header of %d bytes", len(header))
	}
	first = int64(binary.BigEndian.Uint32(header))
	length = int(binary.BigEndian.Uint32(header[4:]))
	return first, first + int64((length+bigChunk-1)/bigChunk), length, nil
}

// readBig reads a split value.
func readBig(ctx context.Context, q querier, header []byte) ([]byte, error) {
	first, end, length, err := bigRange(header)
	if err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, `SELECT value FROM bigdata WHERE id>=? AND id<? ORDER BY id`, first, end)
	if err != nil {
		return nil, fmt.Errorf("read bigdata %d-%d: %w", first, end-1, err)
	}
	defer rows.Close()
	data := make([]byte, 0, length)
	var n int64
	for rows.Next() {
		var chunk sql.RawBytes
		if err := rows.Scan(&chunk); err != nil {
			return nil, fmt.Errorf("read bigdata %d-%d: %w", first, end-1, err)
		}
		data = append(data, chunk...)
		n++
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read bigdata %d-%d: %w", first, end-1, err)
	}
	if n != end-first || len(data) != length {
		return nil, fmt.Errorf("read bigdata %d-%d: %d rows of %d bytes, want %d bytes", first, end-1, n, len(data), length)
	}
	return data, nil
}

// querier is what reads need of *sql.DB, *sql.Tx and *sql.Conn.
type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

// storeBig writes a value of bigValue bytes or more in bigdata rows of
// consecutive ids and returns the data.value that points to them.
func storeBig(ctx context.Context, tx *sql.Tx, data []byte) ([]byte, error) {
	var first int64
	for off := 0; off < len(data); off += bigChunk {
		chunk := data[off:min(off+bigChunk, len(data))]
		if off == 0 {
			res, err := tx.ExecContext(ctx, `INSERT INTO bigdata VALUES (NULL, ?)`, chunk)
			if err != nil {
				return nil, fmt.Errorf("store bigdata: %w", err)
			}
			if first, err = res.LastInsertId(); err != nil {
				return nil, fmt.Errorf("store bigdata: %w", err)
			}
			continue
		}
		// Only this connection writes: the next ids are free.
		id := first + int64(off/bigChunk)
		if _, err := tx.ExecContext(ctx, `INSERT INTO bigdata VALUES (?, ?)`, id, chunk); err != nil {
			return nil, fmt.Errorf("store bigdata %d: %w", id, err)
		}
	}
	return bigHeader(first, len(data)), nil
}

// insertData stores a data row and returns its id; with dedup an
// identical row is reused. db.mu must be held.
func (db *DB) insertData(ctx context.Context, tx *sql.Tx, partition uint32, r *backend.Record) (int64, error) {
	value, compression := r.Data, r.Compression
	big := len(value) >= bigValue
	if big {
		compression |= bigFlag
		if db.dedup {
			// Compare before writing the chunks: they cannot be rolled
			// back alone.
			var old int64
			var header []byte
			err := tx.QueryRowContext(ctx, `SELECT id, value FROM data WHERE hash=? AND compression=?`,
				r.Checksum[:], compression).Scan(&old, &header)
			if err == nil {
				return db.sameData(ctx, tx, r, old, header, true)
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return 0, fmt.Errorf("store data %x: %w", r.Checksum, err)
			}
		}
		var err error
		if value, err = storeBig(ctx, tx, value); err != nil {
			return 0, fmt.Errorf("store data %x of oid %s: %w", r.Checksum, r.Oid, err)
		}
	}
	id, err := db.nextDataID(ctx, tx, partition)
	if err != nil {
		return 0, err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO data VALUES (?, ?, ?, ?)`, id, r.Checksum[:], compression, value)
	var me *mysql.MySQLError
	if db.dedup && errors.As(err, &me) && me.Number == errDupEntry {
		var old int64
		var stored []byte
		if err := tx.QueryRowContext(ctx, `SELECT id, value FROM data WHERE hash=? AND compression=?`,
			r.Checksum[:], compression).Scan(&old, &stored); err != nil {
			return 0, fmt.Errorf("store data %x: read duplicate: %w", r.Checksum, err)
		}
		return db.sameData(ctx, tx, r, old, stored, big)
	}
	if err != nil {
		return 0, fmt.Errorf("store data %x of oid %s: %w", r.Checksum, r.Oid, err)
	}
	db.mu.nextID[partition] = id + 1
	return id, nil
}

// sameData returns id, the data row with r's hash, after checking that it
// holds r's bytes: a real SHA-1 collision must not lose data.
func (db *DB) sameData(ctx context.Context, tx *sql.Tx, r *backend.Record, id int64, stored []byte, big bool) (int64, error) {
	if big {
		var err error
		if stored, err = readBig(ctx, tx, stored); err != nil {
			return 0, fmt.Errorf("store data %x: read duplicate %d: %w", r.Checksum, id, err)
		}
	}
	if !bytes.Equal(stored, r.Data) {
		return 0, fmt.Errorf("store data %x of oid %s: SHA-1 collision with data %d", r.Checksum, r.Oid, id)
	}
	return id, nil
}

// undoDataID returns, for an undo record, the data id of the revision it
// points to (nil for no data) and true, or false if that revision is gone
// and r carries data of its own.
func undoDataID(ctx context.Context, tx *sql.Tx, partition uint32, r *backend.Record) (any, bool, error) {
	var id sql.NullInt64
	err := tx.QueryRowContext(ctx, "SELECT data_id FROM obj WHERE `partition`=? AND oid=? AND tid=?",
		partition, int64(r.Oid), int64(r.DataSerial)).Scan(&id)
	switch {
	case err == nil:
		if id.Valid {
			return id.Int64, true, nil
		}
		return nil, true, nil
	case !errors.Is(err, sql.ErrNoRows):
		return nil, false, fmt.Errorf("undo oid %s to %s: %w", r.Oid, r.DataSerial, err)
	case !r.HasData():
		return nil, false, fmt.Errorf("undo oid %s to %s: %w", r.Oid, r.DataSerial, backend.ErrUndoPacked)
	}
	return nil, false, nil
}

// storeData returns the data id (nil for no data) of record r: reused from
// the revision an undo points to, or newly stored.
func (db *DB) storeData(ctx context.Context, tx *sql.Tx, np uint32, r *backend.Record) (any, error) {
	partition := backend.Partition(r.Oid, np)
	if r.DataSerial != proto.InvalidTid {
		id, ok, err := undoDataID(ctx, tx, partition, r)
		if err != nil || ok {
			return id, err
		}
	}
	if !r.HasData() {
		return nil, nil
	}
	return db.insertData(ctx, tx, partition, r)
}

// batch accumulates the rows of a multi-row INSERT and sends them when
// the query would exceed the server's max_allowed_packet: a row per
// statement cost a round trip per record.
type batch struct {
	ctx    context.Context
	tx     *sql.Tx
	prefix string // "INSERT INTO t VALUES "
	row    string // "(?, ?, ...)"
	max    int    // bytes of query
	args   []any
	size   int
}

func newBatch(ctx context.Context, tx *sql.Tx, prefix string, cols, maxPacket int) *batch {
	return &batch{ctx: ctx, tx: tx, prefix: prefix, row: "(?" + strings.Repeat(", ?", cols-1) + ")",
		max: maxPacket - len(prefix) - 1024}
}

// add adds a row whose values take about size bytes once escaped.
func (b *batch) add(size int, values ...any) error {
	size += len(b.row) + 24*len(values)
	if len(b.args) > 0 && b.size+size > b.max {
		if err := b.flush(); err != nil {
			return err
		}
	}
	b.args = append(b.args, values...)
	b.size += size
	return nil
}

func (b *batch) flush() error {
	if len(b.args) == 0 {
		return nil
	}
	n := len(b.args) / strings.Count(b.row, "?")
	var q strings.Builder
	q.Grow(len(b.prefix) + n*(len(b.row)+1))
	q.WriteString(b.prefix)
	for i := range n {
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteString(b.row)
	}
	_, err := b.tx.ExecContext(b.ctx, q.String(), b.args...)
	clear(b.args)
	b.args, b.size = b.args[:0], 0
	return err
}

// storeRecords writes the tobj rows of a vote and the data rows of its
// records that carry new data, with multi-row INSERTs; db.mu must be held.
// Undo records, big values and, with deduplication, every record take the
// row-by-row path of storeData.
func (db *DB) storeRecords(ctx context.Context, tx *sql.Tx, np uint32, ttid proto.Tid, records []backend.Record) error {
	type dataRow struct {
		id int64
		r  *backend.Record
	}
	var rows []dataRow
	tobj := newBatch(ctx, tx, `REPLACE INTO tobj VALUES `, 5, db.maxPacket)
	for i := range records {
		r := &records[i]
		partition := backend.Partition(r.Oid, np)
		var id any
		if r.DataSerial != proto.InvalidTid || db.dedup || !r.HasData() || len(r.Data) >= bigValue {
			var err error
			if id, err = db.storeData(ctx, tx, np, r); err != nil {
				return err
			}
		} else {
			n, err := db.nextDataID(ctx, tx, partition)
			if err != nil {
				return err
			}
			db.mu.nextID[partition] = n + 1
			id = n
			rows = append(rows, dataRow{n, r})
		}
		if err := tobj.add(0, int64(partition), int64(r.Oid), int64(ttid), id, nullTid(r.DataSerial)); err != nil {
			return fmt.Errorf("store oids: %w", err)
		}
	}
	// Ascending ids: each partition's rows go to the end of its id range.
	slices.SortFunc(rows, func(a, b dataRow) int { return cmp.Compare(a.id, b.id) })
	data := newBatch(ctx, tx, `INSERT INTO data VALUES `, 4, db.maxPacket)
	for _, x := range rows {
		if err := data.add(2*(len(x.r.Data)+20), x.id, x.r.Checksum[:], int64(x.r.Compression), blob(x.r.Data)); err != nil {
			return fmt.Errorf("store data of %d records: %w", len(rows), err)
		}
	}
	if err := data.flush(); err != nil {
		return fmt.Errorf("store data of %d records: %w", len(rows), err)
	}
	if err := tobj.flush(); err != nil {
		return fmt.Errorf("store %d oids: %w", len(records), err)
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

// StoreTransaction implements [backend.Backend]. InnoDB makes every
// commit durable (innodb_flush_log_at_trx_commit=1, the server's choice).
func (db *DB) StoreTransaction(ctx context.Context, ttid proto.Tid, records []backend.Record, meta *backend.TxnMeta) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	np, err := db.writeNP()
	if err != nil {
		return fmt.Errorf("vote %s: %w", ttid, err)
	}
	err = db.writeTx(ctx, func(tx *sql.Tx) error {
		if err := db.storeRecords(ctx, tx, np, ttid, records); err != nil {
			return err
		}
		if meta == nil {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `REPLACE INTO ttrans VALUES (?, NULL, ?, ?, ?, ?, ?, ?)`,
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

func storePack(ctx context.Context, tx *sql.Tx, id proto.Tid, p *backend.PackOrder) error {
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

func lockTx(ctx context.Context, tx *sql.Tx, ttid, tid proto.Tid, approvePack bool) error {
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

// unlockTx moves a transaction from the temporary tables to trans/obj.
func unlockTx(ctx context.Context, tx *sql.Tx, ttid, tid proto.Tid) error {
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{"REPLACE INTO obj SELECT `partition`, oid, ?, data_id, value_tid FROM tobj WHERE tid=?", []any{int64(tid), int64(ttid)}},
		{"DELETE FROM tobj WHERE tid=?", []any{int64(ttid)}},
		{"REPLACE INTO trans SELECT `partition`, ?, packed, oids, user, description, ext, ttid FROM ttrans WHERE ttid=?", []any{int64(tid), int64(ttid)}},
		{"DELETE FROM ttrans WHERE ttid=?", []any{int64(ttid)}},
	} {
		if _, err := tx.ExecContext(ctx, q.sql, q.args...); err != nil {
			return err
		}
	}
	if tid != ttid {
		// The pack order carried by the transaction takes its final tid.
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM pack WHERE tid=?`, int64(ttid)).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			if _, err := tx.ExecContext(ctx, `DELETE FROM pack WHERE tid=?`, int64(tid)); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE pack SET tid=? WHERE tid=?`, int64(tid), int64(ttid)); err != nil {
				return err
			}
		}
	}
	return nil
}

// LockTransaction implements [backend.Backend].
func (db *DB) LockTransaction(ctx context.Context, ttid, tid proto.Tid, approvePack bool) error {
	err := db.write(ctx, func(tx *sql.Tx) error { return lockTx(ctx, tx, ttid, tid, approvePack) })
	if err != nil {
		return fmt.Errorf("lock %s as %s: %w", ttid, tid, err)
	}
	return nil
}

// UnlockTransaction implements [backend.Backend].
func (db *DB) UnlockTransaction(ctx context.Context, ttid, tid proto.Tid) error {
	err := db.write(ctx, func(tx *sql.Tx) error { return unlockTx(ctx, tx, ttid, tid) })
	if err != nil {
		return fmt.Errorf("unlock %s as %s: %w", ttid, tid, err)
	}
	return nil
}

// ValidateTransaction implements [backend.Backend].
func (db *DB) ValidateTransaction(ctx context.Context, ttid, tid proto.Tid) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		if err := lockTx(ctx, tx, ttid, tid, false); err != nil {
			return err
		}
		return unlockTx(ctx, tx, ttid, tid)
	})
	if err != nil {
		return fmt.Errorf("validate %s as %s: %w", ttid, tid, err)
	}
	return nil
}

// collectDataIDs returns the non-NULL data ids a query selects.
func collectDataIDs(ctx context.Context, tx *sql.Tx, q string, args ...any) ([]int64, error) {
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

// deleteRows deletes the rows of table matching where, returning their
// data ids: SELECT then DELETE, since MySQL has no DELETE … RETURNING.
func deleteRows(ctx context.Context, tx *sql.Tx, table, where string, args ...any) ([]int64, error) {
	ids, err := collectDataIDs(ctx, tx, "SELECT data_id FROM "+table+" WHERE "+where, args...)
	if err != nil {
		return nil, err
	}
	_, err = tx.ExecContext(ctx, "DELETE FROM "+table+" WHERE "+where, args...)
	return ids, err
}

// pruneChunk bounds the ids of one pruning query.
const pruneChunk = 1000

// prune deletes the data rows among ids that no record references, and
// the bigdata rows of split values.
func prune(ctx context.Context, tx *sql.Tx, ids []int64) error {
	slices.Sort(ids)
	ids = slices.Compact(ids)
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), pruneChunk)]
		ids = ids[len(chunk):]
		rows, err := tx.QueryContext(ctx, `SELECT id, IF(compression>=128, value, NULL) FROM data
			WHERE id IN (`+intList(chunk)+`)
			AND NOT EXISTS (SELECT 1 FROM obj WHERE obj.data_id=data.id)
			AND NOT EXISTS (SELECT 1 FROM tobj WHERE tobj.data_id=data.id)`)
		if err != nil {
			return fmt.Errorf("prune data: %w", err)
		}
		var del []int64
		var big [][2]int64
		for rows.Next() {
			var id int64
			var header []byte
			if err := rows.Scan(&id, &header); err != nil {
				rows.Close()
				return fmt.Errorf("prune data: %w", err)
			}
			del = append(del, id)
			if header != nil {
				first, end, _, err := bigRange(header)
				if err != nil {
					rows.Close()
					return fmt.Errorf("prune data %d: %w", id, err)
				}
				big = append(big, [2]int64{first, end})
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("prune data: %w", err)
		}
		if len(del) == 0 {
			continue
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM data WHERE id IN (`+intList(del)+`)`); err != nil {
			return fmt.Errorf("prune data: %w", err)
		}
		for _, r := range big {
			if _, err := tx.ExecContext(ctx, `DELETE FROM bigdata WHERE id>=? AND id<?`, r[0], r[1]); err != nil {
				return fmt.Errorf("prune bigdata %d-%d: %w", r[0], r[1]-1, err)
			}
		}
	}
	return nil
}

// AbortTransaction implements [backend.Backend].
func (db *DB) AbortTransaction(ctx context.Context, ttid proto.Tid) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		ids, err := deleteRows(ctx, tx, "tobj", "tid=?", int64(ttid))
		if err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM ttrans WHERE ttid=?`, int64(ttid)).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			for _, q := range []string{`DELETE FROM pack WHERE tid=?`, `DELETE FROM ttrans WHERE ttid=?`} {
				if _, err := tx.ExecContext(ctx, q, int64(ttid)); err != nil {
					return err
				}
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
	err := db.write(ctx, func(tx *sql.Tx) error {
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
	err := db.write(ctx, func(tx *sql.Tx) error {
		for _, t := range del {
			if _, err := tx.ExecContext(ctx, "DELETE FROM trans WHERE `partition`=? AND tid=?", partition, int64(t)); err != nil {
				return fmt.Errorf("delete transaction %s: %w", t, err)
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM pack WHERE tid=?`, int64(t)); err != nil {
				return fmt.Errorf("delete pack order %s: %w", t, err)
			}
		}
		trans := newBatch(ctx, tx, `REPLACE INTO trans VALUES `, 8, db.maxPacket)
		for i := range add {
			m := &add[i]
			size := 2 * (8*len(m.Oids) + len(m.User) + len(m.Description) + len(m.Ext))
			if err := trans.add(size, partition, int64(m.Tid), m.Packed, backend.PackOids(m.Oids), blob(m.User), blob(m.Description), blob(m.Ext), int64(m.TTid)); err != nil {
				return fmt.Errorf("add transactions: %w", err)
			}
			if m.Pack != nil {
				if err := storePack(ctx, tx, m.Tid, m.Pack); err != nil {
					return err
				}
			}
		}
		if err := trans.flush(); err != nil {
			return fmt.Errorf("add transactions: %w", err)
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
	err = db.writeTx(ctx, func(tx *sql.Tx) error {
		var ids []int64
		for _, k := range del {
			got, err := deleteRows(ctx, tx, "obj", "`partition`=? AND oid=? AND tid=?", partition, int64(k.Oid), int64(k.Tid))
			if err != nil {
				return fmt.Errorf("delete oid %s at %s: %w", k.Oid, k.Tid, err)
			}
			ids = append(ids, got...)
		}
		obj := newBatch(ctx, tx, `REPLACE INTO obj VALUES `, 5, db.maxPacket)
		for i := range add {
			r := &add[i]
			if p := backend.Partition(r.Oid, np); p != partition {
				return fmt.Errorf("oid %s is in partition %d", r.Oid, p)
			}
			id, err := db.storeData(ctx, tx, np, r)
			if err != nil {
				return err
			}
			if err := obj.add(0, partition, int64(r.Oid), int64(r.Serial), id, nullTid(r.DataSerial)); err != nil {
				return fmt.Errorf("add records: %w", err)
			}
		}
		if err := obj.flush(); err != nil {
			return fmt.Errorf("add records: %w", err)
		}
		if err := prune(ctx, tx, ids); err != nil {
			return err
		}
		if cellTid != proto.InvalidTid {
			if _, err := tx.ExecContext(ctx, "UPDATE pt SET tid=? WHERE `partition`=? AND nid=? AND tid>=0",
				int64(cellTid), partition, int32(db.mu.nid)); err != nil {
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
	err := db.write(ctx, func(tx *sql.Tx) error {
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
	err = db.writeTx(ctx, func(tx *sql.Tx) error {
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
			rows, err := tx.QueryContext(ctx, "SELECT COUNT(*), oid, MAX(tid) FROM obj FORCE INDEX(PRIMARY)"+
				" WHERE `partition`=? AND tid<=? AND oid>=? GROUP BY oid ORDER BY oid LIMIT ?",
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
				rows, err := tx.QueryContext(ctx, "SELECT COUNT(*), oid, MAX(tid) FROM obj"+
					" WHERE `partition`=? AND oid=? AND tid<=? GROUP BY oid", partition, int64(oid), int64(packTid))
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
			if err := tx.QueryRowContext(ctx, "SELECT data_id IS NOT NULL FROM obj WHERE `partition`=? AND oid=? AND tid=?",
				partition, g.oid, g.maxTid).Scan(&hasData); err != nil {
				return fmt.Errorf("oid %016x: %w", g.oid, err)
			}
			var where string
			switch {
			case !hasData:
				where = "`partition`=? AND oid=? AND tid<=?"
			case g.count > 1:
				where = "`partition`=? AND oid=? AND tid<?"
			default:
				continue
			}
			got, err := deleteRows(ctx, tx, "obj", where, partition, g.oid, g.maxTid)
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
	err = db.writeTx(ctx, func(tx *sql.Tx) error {
		ids, err := deleteRows(ctx, tx, "tobj", "`partition`=?", partition)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM ttrans WHERE `partition`=?", partition); err != nil {
			return err
		}
		got, err := deleteRows(ctx, tx, "obj", "`partition`=? ORDER BY tid, oid LIMIT ?", partition, limit)
		if err != nil {
			return err
		}
		ids = append(ids, got...)
		if err := prune(ctx, tx, ids); err != nil {
			return err
		}
		var more bool
		if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM obj WHERE `partition`=?)", partition).Scan(&more); err != nil {
			return err
		}
		if more {
			return nil
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM trans WHERE `partition`=?", partition); err != nil {
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
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		var ids []int64
		for _, p := range partitions {
			got, err := deleteRows(ctx, tx, "obj", "`partition`=? AND tid>?", p, int64(tid))
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
		if _, err := tx.ExecContext(ctx, `UPDATE pt SET tid=? WHERE nid=? AND tid>?`, int64(tid), int32(db.mu.nid), int64(tid)); err != nil {
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
