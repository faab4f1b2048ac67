package mysql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"

	"github.com/neogo/neo/storage/backend"
)

// batchTx is a write transaction of the commit path (vote, lock, unlock)
// whose statements travel together: BEGIN, the statements and COMMIT in
// one multi-statement round trip, instead of one round trip each (three
// for a lock, seven for an unlock). A query, which needs the server's
// answer, first sends what is pending. Exec results are not available
// (nil): the paths that need them (split values, deduplication) use
// writeTx.
type batchTx struct {
	conn  *sql.Conn
	max   int // bytes of one round trip, under max_allowed_packet
	stmts []string
	args  []any
	size  int
	begun bool  // BEGIN reached the server
	wrote bool  // a write may have reached the server: a lost connection is no longer retried
	err   error // the first failure; the transaction is then rolled back
}

func (b *batchTx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if b.err != nil {
		return nil, b.err
	}
	size := len(q) + 1
	for _, a := range args {
		size += 24
		if v, ok := a.([]byte); ok {
			size += 2 * len(v) // escaped
		}
	}
	if len(b.stmts) > 0 && b.size+size > b.max {
		if err := b.flush(ctx, ""); err != nil {
			return nil, err
		}
	}
	b.stmts = append(b.stmts, q)
	b.args = append(b.args, args...)
	b.size += size
	return nil, nil
}

func (b *batchTx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if err := b.flush(ctx, ""); err != nil {
		return nil, err
	}
	return b.conn.QueryContext(ctx, q, args...)
}

// QueryRowContext sends what is pending first; a failure of that is
// reported by the commit.
func (b *batchTx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	b.flush(ctx, "")
	return b.conn.QueryRowContext(ctx, q, args...)
}

// flush sends the pending statements, BEGIN first if nothing was sent,
// and last if not empty.
func (b *batchTx) flush(ctx context.Context, last string) error {
	if b.err != nil {
		return b.err
	}
	stmts := b.stmts
	writes := len(stmts) > 0
	if !b.begun {
		stmts = append([]string{"BEGIN"}, stmts...)
	}
	if last != "" {
		stmts = append(stmts, last)
	}
	if len(stmts) == 0 {
		return nil
	}
	_, err := b.conn.ExecContext(ctx, strings.Join(stmts, ";\n"), b.args...)
	if !errors.Is(err, driver.ErrBadConn) { // the driver's "nothing was sent"
		b.begun = true
		b.wrote = b.wrote || writes || last != ""
	}
	b.stmts, b.args, b.size = b.stmts[:0], b.args[:0], 0
	if err != nil {
		b.err = err
	}
	return err
}

// commit sends what is pending with COMMIT; after a failure, it rolls
// back.
func (b *batchTx) commit(ctx context.Context) error {
	if b.err == nil {
		if err := b.flush(ctx, "COMMIT"); err == nil {
			return nil
		}
	}
	if b.begun && !serverGone(b.err) {
		if _, err := b.conn.ExecContext(ctx, "ROLLBACK"); err != nil {
			return fmt.Errorf("%w (rollback: %w)", b.err, err)
		}
	}
	return b.err
}

// writeBatch runs fn in a batchTx on the write connection; db.mu must be
// held. As writeTx, it connects again (up to 3 tries) when the server is
// gone before anything reached it, and fails the call afterwards.
func (db *DB) writeBatch(ctx context.Context, fn func(*batchTx) error) error {
	if db.mu.closed {
		return backend.ErrClosed
	}
	for try := 1; ; try++ {
		if db.mu.conn == nil {
			if err := db.connectWrite(ctx); err != nil {
				if !serverGone(err) || try == reconnect {
					return fmt.Errorf("begin: %w", err)
				}
				continue
			}
		}
		b := &batchTx{conn: db.mu.conn, max: db.maxPacket - 1024}
		err := db.unlocks.Apply(ctx, b)
		if err == nil {
			err = fn(b)
		}
		if err == nil {
			err = b.commit(ctx)
		} else {
			if b.err == nil {
				b.err = err
			}
			b.commit(ctx) // rolls back
		}
		if err == nil {
			db.unlocks.Committed()
			return nil
		}
		clear(db.mu.nextID) // ids of a rolled back transaction may be reused
		if serverGone(err) {
			db.dropConn()
			if !b.wrote && try < reconnect {
				db.log.Info("the MySQL server is gone; reconnecting", "err", err)
				continue
			}
		}
		return err
	}
}

// writeCommit runs fn under the write lock in one batchTx.
func (db *DB) writeCommit(ctx context.Context, fn func(*batchTx) error) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.writeBatch(ctx, fn)
}

// commitUnlocks commits a transaction of nothing but the deferred unlocks
// (sqlbackend.Unlocks.Commit); db.mu must be held.
func (db *DB) commitUnlocks(ctx context.Context) error {
	return db.writeBatch(ctx, func(*batchTx) error { return nil })
}
