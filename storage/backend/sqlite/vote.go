package sqlite

import (
	"context"
	"database/sql/driver"
	"fmt"
	"slices"
	"strings"

	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
	"github.com/neogo/neo/storage/backend/sqlbackend"
)

// A vote writes its records with multi-row INSERT statements: one
// statement per row cost about as much CPU in database/sql, the driver
// and the virtual machine's setup as the row itself. A batch is cut into
// chunks of a power of two rows, up to maxVoteChunk, so that a few
// prepared statements (cached by the write connection) serve every size.
const (
	maxVoteChunk = 64
	voteChunks   = 7 // 1, 2, 4, ... maxVoteChunk
)

// Column counts of the rows a vote inserts.
const (
	dataCols = 4 // id, hash, compression, value
	tobjCols = 5 // partition, oid, tid, data_id, value_tid
)

// insertDataSQL[k] and insertTobjSQL[k] insert 1<<k rows.
//
// Data rows are inserted OR FAIL rather than with the default ABORT: a
// statement that may abort after writing some rows saves every page it
// changes in a statement journal to undo them, while a failed statement
// here fails its whole transaction, which writeTx rolls back anyway.
var insertDataSQL, insertTobjSQL [voteChunks]string

func init() {
	for k := range voteChunks {
		insertDataSQL[k] = multiRowInsert(`INSERT OR FAIL INTO data VALUES `, dataCols, 1<<k)
		insertTobjSQL[k] = multiRowInsert(`INSERT OR REPLACE INTO tobj VALUES `, tobjCols, 1<<k)
	}
}

// multiRowInsert returns prefix followed by rows groups of cols
// parameters.
func multiRowInsert(prefix string, cols, rows int) string {
	row := "(?" + strings.Repeat(", ?", cols-1) + ")"
	var b strings.Builder
	b.WriteString(prefix)
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	return b.String()
}

// insertRows inserts the rows whose cols values follow each other in args
// with the statements of sqls, largest chunks first.
func insertRows(ctx context.Context, tx *wtx, sqls *[voteChunks]string, cols int, args []driver.NamedValue) error {
	for k := voteChunks - 1; k >= 0 && len(args) > 0; k-- {
		n := cols << k
		for len(args) >= n {
			chunk := args[:n]
			for i := range chunk {
				chunk[i].Ordinal = i + 1
			}
			if err := tx.execDriver(ctx, sqls[k], chunk); err != nil {
				return err
			}
			args = args[n:]
		}
	}
	return nil
}

// execDriver executes q with args, values the driver takes as they are
// (int64, []byte, nil), through the driver's own prepared statement:
// database/sql checks and converts every argument of every call, a
// quarter of the CPU of a vote's multi-row INSERTs. A driver without
// prepared statements of its own goes through database/sql.
func (tx *wtx) execDriver(ctx context.Context, q string, args []driver.NamedValue) error {
	err := tx.conn.Raw(func(dc any) error {
		st, err := tx.driverStmts.prepare(ctx, dc, q)
		if err != nil {
			return err
		}
		_, err = st.ExecContext(ctx, args)
		return err
	})
	if err != errNoDriverStmt {
		return err
	}
	vals := make([]any, len(args))
	for i, a := range args {
		vals[i] = a.Value
	}
	_, err = tx.ExecContext(ctx, q, vals...)
	return err
}

// storeRecords writes the tobj rows of a vote, and the data rows of its
// records that carry new data; db.mu must be held. Undo records and, with
// deduplication, every record take the row-by-row path of storeData.
//
// The data rows go in partition order, hence ascending ids: ids are
// partition<<48 + n, so records in oid order would cycle through the
// partitions' ranges and each INSERT would seek and split leaves in all
// of them, and save each of their pages in its statement journal.
func (db *DB) storeRecords(ctx context.Context, tx *wtx, np uint32, ttid proto.Tid, records []backend.Record) error {
	data, sorted, tobj := tx.dataArgs[:0], tx.sortedArgs[:0], tx.tobjArgs[:0]
	parts := tx.dataParts[:0]
	defer func() {
		// Keep the buffers, not the caller's data.
		clear(data)
		clear(sorted)
		clear(tobj)
		tx.dataArgs, tx.sortedArgs, tx.tobjArgs, tx.dataParts = data[:0], sorted[:0], tobj[:0], parts[:0]
	}()
	tid := any(int64(ttid))
	for i := range records {
		r := &records[i]
		partition := backend.Partition(r.Oid, np)
		var id any
		if r.DataSerial != proto.InvalidTid || db.dedup || !r.HasData() {
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
			data = append(data, driver.NamedValue{Value: id}, driver.NamedValue{Value: r.Checksum[:]},
				driver.NamedValue{Value: int64(r.Compression)}, driver.NamedValue{Value: sqlbackend.Blob(r.Data)})
			parts = append(parts, partition)
		}
		tobj = append(tobj, driver.NamedValue{Value: int64(partition)}, driver.NamedValue{Value: int64(r.Oid)},
			driver.NamedValue{Value: tid}, driver.NamedValue{Value: id}, driver.NamedValue{Value: sqlbackend.NullTid(r.DataSerial)})
	}
	sorted = byPartition(sorted, data, parts, np)
	if err := insertRows(ctx, tx, &insertDataSQL, dataCols, sorted); err != nil {
		return fmt.Errorf("store data of %d records: %w", len(parts), err)
	}
	if err := insertRows(ctx, tx, &insertTobjSQL, tobjCols, tobj); err != nil {
		return fmt.Errorf("store %d oids: %w", len(records), err)
	}
	return nil
}

// byPartition appends to dst the data rows of rows (dataCols values each,
// rows[i] of partition parts[i]) grouped by partition, keeping their order
// within a partition: a counting sort.
func byPartition(dst, rows []driver.NamedValue, parts []uint32, np uint32) []driver.NamedValue {
	start := make([]int, np+1)
	for _, p := range parts {
		start[p+1]++
	}
	for p := range np {
		start[p+1] += start[p]
	}
	n := len(dst)
	dst = slices.Grow(dst, len(rows))[:n+len(rows)]
	out := dst[n:]
	for i, p := range parts {
		copy(out[start[p]*dataCols:], rows[i*dataCols:(i+1)*dataCols])
		start[p]++
	}
	return dst
}
