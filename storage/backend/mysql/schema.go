package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/neogo/neo/storage/backend"
	"github.com/neogo/neo/storage/backend/sqlbackend"
)

// tables are the tables of the schema, in the order neoppod drops them at
// reset.
var tables = []string{"config", "pt", "pack", "trans", "obj", "data", "bigdata", "ttrans", "tobj", "todel"}

// schema returns the CREATE TABLE statements of cluster.md §8.2 with the
// column types of neoppod's MySQL backend, so that a database is
// interchangeable with it. With RocksDB, indexes go to the column families
// (cf_neo_*) neoppod puts them in.
func schema(engine string, dedup bool) []string {
	cf := func(string) string { return "" }
	if engine == "RocksDB" {
		cf = func(name string) string { return " COMMENT '" + name + "'" }
	}
	unique := ""
	if dedup {
		// Named "hash", which is how neoppod finds out about dedup.
		unique = ", UNIQUE hash (hash, compression)" + cf("cf_neo_no_comp")
	}
	e := " ENGINE=" + engine
	return []string{
		`CREATE TABLE IF NOT EXISTS config (
			name VARBINARY(255) NOT NULL PRIMARY KEY,
			value VARBINARY(255) NULL)` + e,
		"CREATE TABLE IF NOT EXISTS pt (\n" +
			"`partition` SMALLINT UNSIGNED NOT NULL,\n" +
			`nid INT NOT NULL,
			tid BIGINT NOT NULL,
			pack BIGINT UNSIGNED,
			PRIMARY KEY (` + "`partition`" + `, nid))` + e,
		`CREATE TABLE IF NOT EXISTS pack (
			tid BIGINT UNSIGNED NOT NULL PRIMARY KEY,
			approved BOOLEAN,
			partial BOOLEAN NOT NULL,
			oids MEDIUMBLOB,
			pack_tid BIGINT UNSIGNED)` + e,
		"CREATE TABLE IF NOT EXISTS trans (\n" +
			"`partition` SMALLINT UNSIGNED NOT NULL,\n" +
			`tid BIGINT UNSIGNED NOT NULL,
			packed BOOLEAN NOT NULL,
			oids MEDIUMBLOB NOT NULL,
			user BLOB NOT NULL,
			description BLOB NOT NULL,
			ext BLOB NOT NULL,
			ttid BIGINT UNSIGNED NOT NULL,
			PRIMARY KEY (` + "`partition`" + `, tid)` + cf("cf_neo_append_meta") + `)` + e,
		"CREATE TABLE IF NOT EXISTS obj (\n" +
			"`partition` SMALLINT UNSIGNED NOT NULL,\n" +
			`oid BIGINT UNSIGNED NOT NULL,
			tid BIGINT UNSIGNED NOT NULL,
			data_id BIGINT UNSIGNED NULL,
			value_tid BIGINT UNSIGNED NULL,
			PRIMARY KEY (` + "`partition`" + `, oid, tid)` + cf("rev:cf_neo_obj_pk") + `,
			KEY tid (` + "`partition`" + `, tid, oid)` + cf("cf_neo_append_meta") + `,
			KEY (data_id)` + cf("cf_neo_append_meta") + `)` + e,
		`CREATE TABLE IF NOT EXISTS data (
			id BIGINT UNSIGNED NOT NULL,
			hash BINARY(20) NOT NULL,
			compression TINYINT UNSIGNED NULL,
			value MEDIUMBLOB NOT NULL,
			PRIMARY KEY (id)` + cf("cf_neo_append") + unique + `)` + e,
		`CREATE TABLE IF NOT EXISTS bigdata (
			id INT UNSIGNED NOT NULL AUTO_INCREMENT,
			value MEDIUMBLOB NOT NULL,
			PRIMARY KEY (id)` + cf("cf_neo_append") + `)` + e,
		"CREATE TABLE IF NOT EXISTS ttrans (\n" +
			"`partition` SMALLINT UNSIGNED NOT NULL,\n" +
			`tid BIGINT UNSIGNED,
			packed BOOLEAN NOT NULL,
			oids MEDIUMBLOB NOT NULL,
			user BLOB NOT NULL,
			description BLOB NOT NULL,
			ext BLOB NOT NULL,
			ttid BIGINT UNSIGNED NOT NULL,
			PRIMARY KEY (ttid)` + cf("cf_neo_no_comp") + `)` + e,
		"CREATE TABLE IF NOT EXISTS tobj (\n" +
			"`partition` SMALLINT UNSIGNED NOT NULL,\n" +
			`oid BIGINT UNSIGNED NOT NULL,
			tid BIGINT UNSIGNED NOT NULL,
			data_id BIGINT UNSIGNED NULL,
			value_tid BIGINT UNSIGNED NULL,
			PRIMARY KEY (tid, oid)` + cf("cf_neo_no_comp") + `)` + e,
		`CREATE TABLE IF NOT EXISTS todel (
			data_id BIGINT UNSIGNED NOT NULL,
			PRIMARY KEY (data_id)` + cf("cf_neo_no_comp") + `)` + e,
	}
}

const errNoSuchTable = 1146 // ER_NO_SUCH_TABLE

// setup creates the schema or checks its version, and loads what the
// backend keeps in memory; db.mu must be held. DDL statements commit
// implicitly in MySQL: they run outside transactions.
func (db *DB) setup(ctx context.Context, dedup bool) error {
	conn := db.mu.conn
	var v sql.NullString
	err := conn.QueryRowContext(ctx, `SELECT value FROM config WHERE name='version'`).Scan(&v)
	var me *mysql.MySQLError
	fresh := errors.As(err, &me) && me.Number == errNoSuchTable
	switch {
	case fresh:
	case err != nil && !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("read schema version: %w", err)
	default:
		version, _ := strconv.Atoi(v.String)
		if version != backend.SchemaVersion {
			u := sqlbackend.Upgrader{Tx: conn, Schema: schema(db.engine, false), HasTable: func(ctx context.Context, table string) (bool, error) {
				var n int
				err := conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.tables WHERE table_schema=DATABASE() AND table_name=?`, table).Scan(&n)
				return n > 0, err
			}}
			if err := u.Upgrade(ctx, version); err != nil {
				return err
			}
		}
	}
	for _, q := range schema(db.engine, fresh && dedup) {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("create schema: %s: %w", strings.Fields(q)[5], err)
		}
	}
	if fresh {
		if _, err := conn.ExecContext(ctx, `INSERT INTO config VALUES ('version', ?)`, strconv.Itoa(backend.SchemaVersion)); err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
	}
	rows, err := conn.QueryContext(ctx, `SHOW INDEX FROM data WHERE key_name='hash'`)
	if err != nil {
		return fmt.Errorf("read schema: %w", err)
	}
	db.dedup = rows.Next()
	rows.Close()
	var np sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT MAX(`partition`)+1 FROM pt").Scan(&np); err != nil {
		return fmt.Errorf("read partition count: %w", err)
	}
	db.mu.np = uint32(np.Int64)
	db.npRead.Store(db.mu.np)
	var nid sql.NullString
	err = conn.QueryRowContext(ctx, `SELECT value FROM config WHERE name='nid'`).Scan(&nid)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("read nid: %w", err)
	}
	if nid.Valid {
		var m backend.Meta
		if err := m.SetConfig("nid", nid.String); err != nil {
			return err
		}
		db.mu.nid = m.NID
	}
	db.mu.nextID = map[uint32]int64{}
	// Data rows neoppod left to prune later (cluster.md §8.7).
	return db.writeTx(ctx, func(tx *sql.Tx) error {
		ids, err := sqlbackend.CollectDataIDs(ctx, tx, `SELECT data_id FROM todel`)
		if err != nil || len(ids) == 0 {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM todel`); err != nil {
			return err
		}
		db.log.Info("pruning data left in todel", "rows", len(ids))
		return prune(ctx, tx, ids)
	})
}
