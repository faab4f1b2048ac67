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
	"github.com/neogo/neo/storage/backend/sqlbackend"
)

const errDupEntry = 1062 // ER_DUP_ENTRY

// nextDataID returns the next free data id of partition (ids are
// partition<<48 + n); db.mu must be held.
func (db *DB) nextDataID(ctx context.Context, tx sqlbackend.Tx, partition uint32) (int64, error) {
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
func readBig(ctx context.Context, q sqlbackend.Querier, header []byte) ([]byte, error) {
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

// storeBig writes a value of bigValue bytes or more in bigdata rows of
// consecutive ids and returns the data.value that points to them.
func storeBig(ctx context.Context, tx sqlbackend.Tx, data []byte) ([]byte, error) {
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
func (db *DB) insertData(ctx context.Context, tx sqlbackend.Tx, partition uint32, r *backend.Record) (int64, error) {
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
func (db *DB) sameData(ctx context.Context, tx sqlbackend.Tx, r *backend.Record, id int64, stored []byte, big bool) (int64, error) {
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
func undoDataID(ctx context.Context, tx sqlbackend.Tx, partition uint32, r *backend.Record) (any, bool, error) {
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
func (db *DB) storeData(ctx context.Context, tx sqlbackend.Tx, np uint32, r *backend.Record) (any, error) {
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
	tx     sqlbackend.Tx
	prefix string // "INSERT INTO t VALUES "
	row    string // "(?, ?, ...)"
	max    int    // bytes of query
	args   []any
	size   int
}

func newBatch(ctx context.Context, tx sqlbackend.Tx, prefix string, cols, maxPacket int) *batch {
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
func (db *DB) storeRecords(ctx context.Context, tx sqlbackend.Tx, np uint32, ttid proto.Tid, records []backend.Record) error {
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
		// Raised now, so that unlock needs no query for it.
		db.oids.Raise(int64(r.Oid))
		if err := tobj.add(0, int64(partition), int64(r.Oid), int64(ttid), id, sqlbackend.NullTid(r.DataSerial)); err != nil {
			return fmt.Errorf("store oids: %w", err)
		}
	}
	// Ascending ids: each partition's rows go to the end of its id range.
	slices.SortFunc(rows, func(a, b dataRow) int { return cmp.Compare(a.id, b.id) })
	data := newBatch(ctx, tx, `INSERT INTO data VALUES `, 4, db.maxPacket)
	for _, x := range rows {
		if err := data.add(2*(len(x.r.Data)+20), x.id, x.r.Checksum[:], int64(x.r.Compression), sqlbackend.Blob(x.r.Data)); err != nil {
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

// StoreTransaction implements [backend.Backend]. InnoDB makes every
// commit durable (innodb_flush_log_at_trx_commit=1, the server's choice).
func (db *DB) StoreTransaction(ctx context.Context, ttid proto.Tid, records []backend.Record, meta *backend.TxnMeta) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	np, err := db.writeNP()
	if err != nil {
		return fmt.Errorf("vote %s: %w", ttid, err)
	}
	store := func(tx sqlbackend.Tx) error {
		if err := db.storeRecords(ctx, tx, np, ttid, records); err != nil {
			return err
		}
		if meta == nil {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `REPLACE INTO ttrans VALUES (?, NULL, ?, ?, ?, ?, ?, ?)`,
			backend.Partition(ttid, np), meta.Packed, backend.PackOids(meta.Oids), sqlbackend.Blob(meta.User), sqlbackend.Blob(meta.Description), sqlbackend.Blob(meta.Ext), int64(ttid)); err != nil {
			return fmt.Errorf("store metadata: %w", err)
		}
		if meta.Pack != nil {
			if err := sqlbackend.StorePack(ctx, tx, ttid, meta.Pack); err != nil {
				return err
			}
		}
		return nil
	}
	if db.dedup || slices.ContainsFunc(records, func(r backend.Record) bool {
		return r.DataSerial != proto.InvalidTid || !r.HasData() || len(r.Data) >= bigValue
	}) {
		// storeData's paths need answers: one round trip per statement.
		err = db.writeTx(ctx, func(tx *sql.Tx) error { return store(tx) })
	} else {
		err = db.writeBatch(ctx, func(tx *batchTx) error { return store(tx) })
	}
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

// pruneChunk bounds the ids of one pruning query.
const pruneChunk = 1000

// prune deletes the data rows among ids that no record references, and
// the bigdata rows of split values.
func prune(ctx context.Context, tx sqlbackend.Tx, ids []int64) error {
	slices.Sort(ids)
	ids = slices.Compact(ids)
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), pruneChunk)]
		ids = ids[len(chunk):]
		rows, err := tx.QueryContext(ctx, `SELECT id, IF(compression>=128, value, NULL) FROM data
			WHERE id IN (`+sqlbackend.IntList(chunk)+`)
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
		if _, err := tx.ExecContext(ctx, `DELETE FROM data WHERE id IN (`+sqlbackend.IntList(del)+`)`); err != nil {
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
			got, err := dialect.DeleteRows(ctx, tx, "obj", "`partition`=? AND oid=? AND tid=?", partition, int64(k.Oid), int64(k.Tid))
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
			db.oids.Raise(int64(r.Oid))
			if err := obj.add(0, partition, int64(r.Oid), int64(r.Serial), id, sqlbackend.NullTid(r.DataSerial)); err != nil {
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
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		trans := newBatch(ctx, tx, `REPLACE INTO trans VALUES `, 8, db.maxPacket)
		for i := range txns {
			m := &txns[i]
			size := 2 * (8*len(m.Oids) + len(m.User) + len(m.Description) + len(m.Ext))
			if err := trans.add(size, backend.Partition(m.Tid, np), int64(m.Tid), m.Packed, backend.PackOids(m.Oids),
				sqlbackend.Blob(m.User), sqlbackend.Blob(m.Description), sqlbackend.Blob(m.Ext), int64(m.TTid)); err != nil {
				return fmt.Errorf("add transactions: %w", err)
			}
		}
		if err := trans.flush(); err != nil {
			return fmt.Errorf("add transactions: %w", err)
		}
		// In order, each obj row before the next record's data: an undo
		// record reuses the data of an earlier one, maybe of this batch.
		for i := range records {
			r := &records[i]
			id, err := db.storeData(ctx, tx, np, r)
			if err != nil {
				return err
			}
			db.oids.Raise(int64(r.Oid))
			if _, err := tx.ExecContext(ctx, `REPLACE INTO obj VALUES (?, ?, ?, ?, ?)`,
				backend.Partition(r.Oid, np), int64(r.Oid), int64(r.Serial), id, sqlbackend.NullTid(r.DataSerial)); err != nil {
				return fmt.Errorf("add oid %s at %s: %w", r.Oid, r.Serial, err)
			}
		}
		return sqlbackend.SetConfigs(ctx, tx, config)
	})
	if err != nil {
		return fmt.Errorf("import %d transactions, %d records: %w", len(txns), len(records), err)
	}
	return nil
}

var _ backend.BulkImporter = (*DB)(nil)
