package sqlite

import (
	"cmp"
	"context"
	"database/sql/driver"
	"fmt"
	"slices"

	"github.com/neogo/neo/proto"
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
	db.mu.importing = true
	err := db.writeTx(ctx, false, func(tx *wtx) error {
		// After begin: the write connection's pragmas are set.
		if err := db.startImportCkpt(ctx); err != nil {
			return err
		}
		// Multi-row INSERTs, as for records: a statement per
		// transaction took 4.5% of the writer's CPU, these 3.3%
		// (profile of BenchmarkImport, 65,081 transactions).
		rows := make([]driver.NamedValue, 0, len(txns)*transCols)
		for i := range txns {
			m := &txns[i]
			rows = append(rows, driver.NamedValue{Value: int64(backend.Partition(m.Tid, np))}, driver.NamedValue{Value: int64(m.Tid)},
				driver.NamedValue{Value: m.Packed}, driver.NamedValue{Value: backend.PackOids(m.Oids)},
				driver.NamedValue{Value: sqlbackend.Blob(m.User)}, driver.NamedValue{Value: sqlbackend.Blob(m.Description)},
				driver.NamedValue{Value: sqlbackend.Blob(m.Ext)}, driver.NamedValue{Value: int64(m.TTid)})
		}
		if err := insertRows(ctx, tx, &insertTransSQL, transCols, rows); err != nil {
			return fmt.Errorf("add %d transactions: %w", len(txns), err)
		}
		if err := db.importRecords(ctx, tx, np, records); err != nil {
			return err
		}
		return sqlbackend.SetConfigs(ctx, tx, config)
	})
	db.mu.importing = false
	if err != nil {
		return fmt.Errorf("import %d transactions, %d records: %w", len(txns), len(records), err)
	}
	return nil
}

// ImportConfig is sqlbackend.Reader's.
var _ backend.BulkImporter = (*DB)(nil)

// transCols is the column count of trans (and ttrans) rows.
const transCols = 8

// insertObjSQL[k] and insertTransSQL[k] insert 1<<k obj or trans rows.
var insertObjSQL, insertTransSQL [voteChunks]string

func init() {
	for k := range voteChunks {
		insertObjSQL[k] = multiRowInsert(`INSERT OR REPLACE INTO obj VALUES `, tobjCols, 1<<k)
		insertTransSQL[k] = multiRowInsert(`INSERT OR REPLACE INTO trans VALUES `, transCols, 1<<k)
	}
}

// importRecords writes committed records as storeRecords writes a vote's:
// multi-row INSERTs, data rows in partition order. Records are taken in
// order: an undo record may reuse the data of an earlier one of the same
// batch, so the rows pending are written before it is looked up.
func (db *DB) importRecords(ctx context.Context, tx *wtx, np uint32, records []backend.Record) error {
	// Sized for the whole batch: grown by append, they took 5% of the
	// writer's CPU (BenchmarkImport's profile), most of a batch being new
	// data.
	data := make([]driver.NamedValue, 0, len(records)*dataCols)
	obj := make([]driver.NamedValue, 0, len(records)*tobjCols)
	parts := make([]uint32, 0, len(records))
	var sorted []driver.NamedValue
	flush := func() error {
		sorted = byPartition(sorted[:0], data, parts, np)
		if err := insertRows(ctx, tx, &insertDataSQL, dataCols, sorted); err != nil {
			return fmt.Errorf("store data of %d records: %w", len(parts), err)
		}
		obj = sortObjRows(obj)
		if err := insertRows(ctx, tx, &insertObjSQL, tobjCols, obj); err != nil {
			return fmt.Errorf("store %d records: %w", len(obj)/tobjCols, err)
		}
		data, obj, parts = data[:0], obj[:0], parts[:0]
		return nil
	}
	for i := range records {
		r := &records[i]
		partition := backend.Partition(r.Oid, np)
		var id any
		if r.DataSerial != proto.InvalidTid || db.dedup || !r.HasData() {
			if r.DataSerial != proto.InvalidTid {
				if err := flush(); err != nil {
					return err
				}
			}
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
		db.oids.Raise(int64(r.Oid))
		obj = append(obj, driver.NamedValue{Value: int64(partition)}, driver.NamedValue{Value: int64(r.Oid)},
			driver.NamedValue{Value: int64(r.Serial)}, driver.NamedValue{Value: id}, driver.NamedValue{Value: sqlbackend.NullTid(r.DataSerial)})
	}
	return flush()
}

// sortObjRows orders obj rows by their primary key (partition, oid, tid),
// so that a batch's inserts walk its B-tree once, in order, rather than
// at random oids: 8% less CPU for the import of a 210 MB Data.fs (see
// importRecords).
func sortObjRows(rows []driver.NamedValue) []driver.NamedValue {
	n := len(rows) / tobjCols
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	key := func(i int) (int64, int64, int64) {
		r := rows[i*tobjCols:]
		return r[0].Value.(int64), r[1].Value.(int64), r[2].Value.(int64)
	}
	slices.SortFunc(idx, func(a, b int) int {
		pa, oa, ta := key(a)
		pb, ob, tb := key(b)
		return cmp.Or(cmp.Compare(pa, pb), cmp.Compare(oa, ob), cmp.Compare(ta, tb))
	})
	out := make([]driver.NamedValue, 0, len(rows))
	for _, i := range idx {
		out = append(out, rows[i*tobjCols:(i+1)*tobjCols]...)
	}
	return out
}
