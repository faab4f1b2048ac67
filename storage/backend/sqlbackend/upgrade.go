package sqlbackend

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/neogo/neo/storage/backend"
)

// Upgrader is what the storage format upgrade (cluster.md §8.12) needs
// from a backend.
type Upgrader struct {
	// Tx runs the statements: a transaction where DDL is transactional
	// (SQLite), else a connection (MySQL commits each DDL statement, and
	// the version stored after each step is where a retry resumes).
	Tx Tx
	// Schema is the backend's CREATE TABLE IF NOT EXISTS statements of the
	// current format; indexes that are separate statements are created
	// after the upgrade, with the rest of the schema.
	Schema []string
	// HasTable tells whether table exists.
	HasTable func(ctx context.Context, table string) (bool, error)
}

// CreateTable is the statement of schema that creates table.
func CreateTable(schema []string, table string) string {
	prefix := "CREATE TABLE IF NOT EXISTS " + table + " "
	for _, q := range schema {
		if strings.HasPrefix(q, prefix) {
			return q
		}
	}
	panic("sqlbackend: no table " + table + " in schema")
}

// CheckVersion compares a database's format version to ours: a newer
// one is refused with neoppod's message.
func CheckVersion(version int) error {
	if version > backend.SchemaVersion {
		return fmt.Errorf("%w (format version %d, ours %d)", backend.ErrDowngrade, version, backend.SchemaVersion)
	}
	return nil
}

// Upgrade applies the steps of cluster.md §8.12 after version (0 when
// config holds none) in order, storing the version reached after each;
// the caller then creates what is missing with its schema.
func (u *Upgrader) Upgrade(ctx context.Context, version int) error {
	if err := CheckVersion(version); err != nil {
		return err
	}
	steps := []func(context.Context) error{u.step1, u.step2, u.step3, u.step4}
	for version < backend.SchemaVersion {
		if version < 0 {
			version = 0
		}
		if err := steps[version](ctx); err != nil {
			return fmt.Errorf("upgrade to format version %d: %w", version+1, err)
		}
		version++
		if _, err := u.Tx.ExecContext(ctx, `REPLACE INTO config VALUES ('version', ?)`, strconv.Itoa(version)); err != nil {
			return fmt.Errorf("upgrade to format version %d: %w", version, err)
		}
	}
	return nil
}

// nonempty tells whether table exists and has rows.
func (u *Upgrader) nonempty(ctx context.Context, table string) (bool, error) {
	ok, err := u.HasTable(ctx, table)
	if err != nil || !ok {
		return false, err
	}
	var x int
	err = u.Tx.QueryRowContext(ctx, `SELECT 1 FROM `+table+` LIMIT 1`).Scan(&x)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// rebuild replaces table with the one of the current schema, filled with
// the columns sel of the old one (neither server changes a primary key in
// place everywhere). Where DDL is not transactional, a rebuild that died
// between dropping the old table and renaming the new one is completed,
// any other rebuild left unfinished is started again.
func (u *Upgrader) rebuild(ctx context.Context, table, sel string, args ...any) error {
	tmp := "_new_" + table
	has, err := u.HasTable(ctx, table)
	if err != nil {
		return err
	}
	if !has {
		if has, err = u.HasTable(ctx, tmp); err != nil || !has {
			return fmt.Errorf("rebuild %s: no table (err %v)", table, err)
		}
		_, err := u.Tx.ExecContext(ctx, "ALTER TABLE "+tmp+" RENAME TO "+table)
		return err
	}
	create := CreateTable(u.Schema, table)
	create = "CREATE TABLE " + tmp + " " + strings.TrimPrefix(create, "CREATE TABLE IF NOT EXISTS "+table+" ")
	for _, q := range []struct {
		q    string
		args []any
	}{
		{"DROP TABLE IF EXISTS " + tmp, nil},
		{create, nil},
		{"INSERT INTO " + tmp + " SELECT " + sel + " FROM " + table, args},
		{"DROP TABLE " + table, nil},
		{"ALTER TABLE " + tmp + " RENAME TO " + table, nil},
	} {
		if _, err := u.Tx.ExecContext(ctx, q.q, q.args...); err != nil {
			return fmt.Errorf("rebuild %s: %w", table, err)
		}
	}
	return nil
}

// Step 1: ttrans gets a nullable tid; only on empty temporary tables.
func (u *Upgrader) step1(ctx context.Context) error {
	for _, t := range []string{"ttrans", "tobj"} {
		ok, err := u.nonempty(ctx, t)
		if err != nil {
			return err
		}
		if ok {
			return backend.ErrUnfinished
		}
	}
	_, err := u.Tx.ExecContext(ctx, `DROP TABLE IF EXISTS ttrans`)
	return err
}

// Step 2: obj gets its primary key (partition, oid, tid).
func (u *Upgrader) step2(ctx context.Context) error {
	return u.rebuild(ctx, "obj", "`partition`, oid, tid, data_id, value_tid")
}

// Step 3: pt(rid, nid, state) becomes pt(partition, nid, tid), with the
// cell state in the signed tid encoding: UP_TO_DATE (0 then) -1,
// FEEDING (2) -2, the others 1-state (OUT_OF_DATE 1 → 0 = replicate from
// scratch, CORRUPTED 4 → -3). The pack column is NULL until step 4.
func (u *Upgrader) step3(ctx context.Context) error {
	return u.rebuild(ctx, "pt", "rid, nid, CASE state"+
		" WHEN 0 THEN -1 WHEN 2 THEN -2 ELSE 1-CAST(state AS SIGNED) END, NULL")
}

// Step 4: config.partitions goes (the partition table gives the count),
// pt.pack is 0 for the node's own cells, NULL for the others.
func (u *Upgrader) step4(ctx context.Context) error {
	if _, err := u.Tx.ExecContext(ctx, `DELETE FROM config WHERE name='partitions'`); err != nil {
		return err
	}
	var nid sql.NullString
	err := u.Tx.QueryRowContext(ctx, `SELECT value FROM config WHERE name='nid'`).Scan(&nid)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	var own sql.NullInt64
	if nid.Valid {
		x, err := strconv.ParseInt(nid.String, 10, 32)
		if err != nil {
			return fmt.Errorf("read nid %q: %w", nid.String, err)
		}
		own = sql.NullInt64{Int64: x, Valid: true}
	}
	return u.rebuild(ctx, "pt", "`partition`, nid, tid, CASE WHEN nid=? THEN 0 END", own)
}
