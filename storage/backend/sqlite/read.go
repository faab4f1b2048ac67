package sqlite

import (
	"context"
	"database/sql/driver"
	"fmt"
	"io"

	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
	"github.com/neogo/neo/storage/backend/sqlbackend"
)

// The three forms of Load: one statement each, so that the record and its
// next serial come from one snapshot. The partition is compared with
// CAST(? AS INTEGER), not a bare parameter: SQLite propagates a bare
// parameter into the correlated subquery as a constant and then compiles
// the statement again whenever its value changes, i.e. at most loads (a
// fifth of a load's CPU); the query plan is the same. The latest revision
// has no next one: its statement selects NULL instead of the subquery
// (and still casts: with a bare parameter, a 1.67 GB database's loads cost
// 28 us of CPU instead of 20, the statement being compiled again).
const (
	loadCols = `SELECT o.tid, o.value_tid, d.compression, d.hash, d.value, `
	nextCol  = `(SELECT tid FROM obj WHERE partition=o.partition AND oid=o.oid AND tid>o.tid ORDER BY tid LIMIT 1)`
	loadFrom = ` FROM obj o LEFT JOIN data d ON d.id=o.data_id `

	loadAtSQL     = loadCols + nextCol + loadFrom + `WHERE o.partition=CAST(? AS INTEGER) AND o.oid=? AND o.tid=?`
	loadBeforeSQL = loadCols + nextCol + loadFrom + `WHERE o.partition=CAST(? AS INTEGER) AND o.oid=? AND o.tid<? ORDER BY o.tid DESC LIMIT 1`
	loadLastSQL   = loadCols + `NULL` + loadFrom + `WHERE o.partition=CAST(? AS INTEGER) AND o.oid=? ORDER BY o.tid DESC LIMIT 1`
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
	q, args := loadLastSQL, [3]int64{int64(p), int64(oid)}
	n := 2
	switch {
	case at != proto.InvalidTid:
		q, args[2], n = loadAtSQL, int64(at), 3
	case before != proto.InvalidTid:
		q, args[2], n = loadBeforeSQL, int64(before), 3
	}
	o := &backend.Object{}
	o.Oid = oid
	found, err := db.readRow(ctx, q, args[:n], loadColumns, func(row []driver.Value) error { return loadValues(row, o) })
	if err == nil && !found {
		err = sqlbackend.LoadMissing(ctx, db.r, p, oid)
	}
	if err != nil {
		return nil, fmt.Errorf("load oid %s at %s before %s: %w", oid, at, before, err)
	}
	return o, nil
}

// loadColumns is the number of columns of loadCols.
const loadColumns = 6

// readConn is what readRow keeps of a reader connection: its driver
// statements and their argument and value buffers.
type readConn struct {
	stmts driverStmts
	args  [3]driver.NamedValue
	row   [loadColumns]driver.Value
}

// readRow runs q, a query of at most one row of at most loadColumns
// columns, with args on a reader connection, through the driver's own
// statement (database/sql's Scan cost an eighth of a load's CPU and
// copied the data once more), and passes the row, if any, to fn; false if
// there is none. fn must not keep the row, only its values.
func (db *DB) readRow(ctx context.Context, q string, args []int64, columns int, fn func(row []driver.Value) error) (found bool, err error) {
	c, err := db.r.Conn(ctx)
	if err != nil {
		return false, err
	}
	defer c.Close()
	err = c.Raw(func(dc any) error {
		v, ok := db.readConns.Load(dc)
		if !ok {
			v, _ = db.readConns.LoadOrStore(dc, &readConn{})
		}
		rc := v.(*readConn)
		st, err := rc.stmts.prepare(ctx, dc, q)
		if err != nil {
			return err
		}
		for i, a := range args {
			rc.args[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
		}
		rows, err := st.QueryContext(ctx, rc.args[:len(args)])
		if err != nil {
			return err
		}
		row := rc.row[:columns]
		defer clear(row) // keep no data
		err = rows.Next(row)
		if cerr := rows.Close(); err == nil || err == io.EOF {
			if cerr != nil {
				return cerr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		return fn(row)
	})
	return found, err
}

// loadValues fills o with the columns of loadCols.
func loadValues(row []driver.Value, o *backend.Object) error {
	serial, ok := row[0].(int64)
	if !ok {
		return fmt.Errorf("serial %T", row[0])
	}
	o.Serial = proto.Tid(serial)
	o.DataSerial = nullTid(row[1])
	o.NextSerial = nullTid(row[5])
	if c, ok := row[2].(int64); ok {
		o.Compression = uint8(c)
	}
	if hash, _ := row[3].([]byte); len(hash) != 0 && copy(o.Checksum[:], hash) != len(o.Checksum) {
		return fmt.Errorf("serial %s: hash of %d bytes", o.Serial, len(hash))
	}
	o.Data, _ = row[4].([]byte) // the driver's copy: not reused
	return nil
}

// nullTid is the tid of an integer column, InvalidTid if NULL.
func nullTid(v driver.Value) proto.Tid {
	if t, ok := v.(int64); ok {
		return proto.Tid(t)
	}
	return proto.InvalidTid
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
	t := proto.InvalidTid
	_, err = db.readRow(ctx, lastTidSQL, []int64{int64(backend.Partition(oid, np)), int64(oid)}, 1, func(row []driver.Value) error {
		t = nullTid(row[0])
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("last serial of oid %s: %w", oid, err)
	}
	return t, nil
}
