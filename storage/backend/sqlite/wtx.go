package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
)

// maxCachedStmts bounds the write connection's statement cache: the write
// queries are a fixed set of literals, the bound only guards against a
// future query built at run time.
const maxCachedStmts = 128

// wtx is a write transaction on the write connection. Its statements are
// prepared once per connection and cached: the driver would otherwise
// compile each SQL text again at every call, which cost more CPU than the
// statement itself for the per-object statements of a commit.
type wtx struct {
	conn  *sql.Conn
	stmts map[string]*sql.Stmt
	setup bool
	// driverStmts are the driver's own statements of execDriver.
	driverStmts driverStmts
	// Argument buffers of a vote's multi-row INSERT statements.
	dataArgs, sortedArgs, tobjArgs []driver.NamedValue
	dataParts                      []uint32
}

// stmt returns the prepared statement for q, nil if the cache is full.
func (tx *wtx) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if st, ok := tx.stmts[q]; ok {
		return st, nil
	}
	if len(tx.stmts) >= maxCachedStmts {
		return nil, nil
	}
	st, err := tx.conn.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	tx.stmts[q] = st
	return st, nil
}

// ExecContext is [sql.Tx.ExecContext].
func (tx *wtx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	st, err := tx.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return tx.conn.ExecContext(ctx, q, args...)
	}
	return st.ExecContext(ctx, args...)
}

// QueryContext is [sql.Tx.QueryContext].
func (tx *wtx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := tx.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return tx.conn.QueryContext(ctx, q, args...)
	}
	return st.QueryContext(ctx, args...)
}

// QueryRowContext is [sql.Tx.QueryRowContext]; a preparation error is
// returned by Scan, as with database/sql.
func (tx *wtx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	st, err := tx.stmt(ctx, q)
	if err != nil || st == nil {
		// QueryRowContext on the connection reports err through Scan.
		return tx.conn.QueryRowContext(ctx, q, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// writePragmas set up the write connection before its first transaction.
//
// temp_store=MEMORY keeps statement journals in memory: a statement that
// may write several rows inside a transaction (INSERT … SELECT at unlock,
// the multi-row INSERTs of a vote) saves the pages it changes in one, so
// that it can be undone alone, and past 64 KiB SQLite spilled it to a
// temporary file: about one write(2) per stored object. The journal only
// serves to roll back a failed statement: durability is unchanged.
//
// wal_autocheckpoint=4000 checkpoints every 4000 WAL pages (16 MiB with
// 4 KiB pages) instead of 1000: a checkpoint copies each page once however
// often the WAL has it, and the pages a commit rewrites (the tail pages of
// each partition in data, obj and its indexes, tobj, ttrans) recur in
// every commit. strace -c of Commit/100x1KiB per op: pwrite64 352 -> 334,
// pread64 60 -> 43, fdatasync 2.4 -> 2.1 (10000 saves little more, for
// longer checkpoints). A crash still loses nothing committed: the WAL is
// the durable copy until checkpointed. While an import runs, a
// connection of its own checkpoints instead (importCkpt).
var writePragmas = []string{"PRAGMA temp_store=MEMORY", fmt.Sprintf("PRAGMA wal_autocheckpoint=%d", autoCheckpointPages)}

// begin starts a transaction on conn. database/sql's own Tx is not used
// since statements prepared on a Conn cannot be shared with its Tx
// without preparing them again.
func (tx *wtx) begin(ctx context.Context) error {
	if !tx.setup {
		for _, q := range writePragmas {
			if _, err := tx.conn.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		tx.setup = true
	}
	st, err := tx.stmt(ctx, "BEGIN")
	if err == nil {
		_, err = st.ExecContext(ctx)
	}
	return err
}

func (tx *wtx) commit(ctx context.Context) error {
	st, err := tx.stmt(ctx, "COMMIT")
	if err == nil {
		_, err = st.ExecContext(ctx)
	}
	if err != nil {
		// A failed COMMIT (e.g. SQLITE_FULL) may leave the transaction
		// open: end it so that the next one starts clean.
		tx.rollback()
	}
	return err
}

// rollback ends the transaction whatever the state of the caller's
// context; an error means there was no transaction left to roll back.
func (tx *wtx) rollback() {
	tx.conn.ExecContext(context.Background(), "ROLLBACK")
}

// close closes the cached statements.
func (tx *wtx) close() error {
	var first error
	for q, st := range tx.stmts {
		if err := st.Close(); err != nil && first == nil {
			first = fmt.Errorf("close statement %q: %w", q, err)
		}
	}
	clear(tx.stmts)
	if len(tx.driverStmts) > 0 {
		err := tx.conn.Raw(func(any) error { return tx.driverStmts.close() })
		if err != nil && first == nil {
			first = fmt.Errorf("close driver statements: %w", err)
		}
	}
	return first
}

// short returns ctx without its cancellation, for the statements of loads
// and commits: they take microseconds to milliseconds, while the driver
// watches a cancellable context with a goroutine, a channel and a progress
// handler per statement, which cost more CPU than a load's query. Long
// operations (replication, pack, dropping partitions) keep theirs.
func short(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }
