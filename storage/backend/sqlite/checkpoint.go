package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// autoCheckpointPages is the write connection's wal_autocheckpoint (see
// writePragmas), suspended while an import runs (importCkpt).
const autoCheckpointPages = 4000

// importCkpt checkpoints the WAL on a connection of its own while an
// import runs, so that the import's commits (the one stage of the import
// that cannot spread over the CPUs) no longer copy pages from the WAL to
// the database nor wait for its two fdatasyncs (a 1.15 GB Data.fs: 0.8 s
// of the writer's 9.6 CPU s, and most of its 1.5 s waiting for the disk).
//
// SQLite writes the WAL from its start again only if a checkpoint
// copied all of it before the writer's next transaction, so every
// ckptRestartCommits import commits the writer waits for a checkpoint of
// everything: the WAL stays within a few batches.
//
// Other commits during the import do not checkpoint either (their
// autocheckpoint would copy a whole batch): they ask the checkpointer.
// importIdle after the last import commit, the checkpointer stops and
// the write connection checkpoints by itself again.
//
// Checkpoints do not touch durability: a committed transaction is durable
// in the WAL until checkpointed, and the checkpointer's connection syncs
// the database file before the WAL may be restarted.
type importCkpt struct {
	pool     *sql.DB // of conn alone
	conn     *sql.Conn
	req      chan struct{} // a checkpoint wanted; at most one outstanding
	done     chan error    // the result of each request
	exited   chan struct{}
	inflight bool
	commits  int       // import commits since the WAL was last fully checkpointed
	last     time.Time // of the last import commit
}

const ckptRestartCommits = 4

// importIdle is a variable for tests.
var importIdle = 2 * time.Second

// startImportCkpt starts the checkpointer if it does not run; db.mu held.
func (db *DB) startImportCkpt(ctx context.Context) error {
	if db.ckpt != nil {
		return nil
	}
	// A connection of its own, not one of the read pool's: taking one
	// under db.mu would wait for the readers to free one.
	pool, err := sql.Open(db.drv.name, db.drv.dsn(db.params.Path, db.params.CacheSize))
	if err != nil {
		return fmt.Errorf("checkpointer connection: %w", err)
	}
	conn, err := pool.Conn(ctx)
	if err != nil {
		pool.Close()
		return fmt.Errorf("checkpointer connection: %w", err)
	}
	fail := func(err error) error {
		conn.Close()
		pool.Close()
		return err
	}
	// Its sync of the database file is what makes restarting the WAL safe.
	if _, err := conn.ExecContext(ctx, "PRAGMA synchronous="+db.params.Synchronous); err != nil {
		return fail(fmt.Errorf("checkpointer connection: set synchronous=%s: %w", db.params.Synchronous, err))
	}
	if _, err := db.mu.tx.ExecContext(ctx, "PRAGMA wal_autocheckpoint=0"); err != nil {
		return fail(fmt.Errorf("suspend wal_autocheckpoint: %w", err))
	}
	c := &importCkpt{pool: pool, conn: conn, req: make(chan struct{}, 1), done: make(chan error, 1), exited: make(chan struct{}), last: time.Now()}
	go c.loop()
	db.ckpt = c
	return nil
}

func (c *importCkpt) loop() {
	defer close(c.exited)
	for range c.req {
		_, err := c.conn.ExecContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)")
		if err != nil {
			err = fmt.Errorf("checkpoint: %w", err)
		}
		c.done <- err
	}
}

func (c *importCkpt) start() {
	if !c.inflight {
		c.req <- struct{}{}
		c.inflight = true
	}
}

// wait waits for the checkpoint in flight, if any.
func (c *importCkpt) wait() error {
	if !c.inflight {
		return nil
	}
	c.inflight = false
	return <-c.done
}

// poll collects a finished checkpoint without waiting.
func (c *importCkpt) poll() error {
	if !c.inflight {
		return nil
	}
	select {
	case err := <-c.done:
		c.inflight = false
		return err
	default:
		return nil
	}
}

// ckptCommitted asks for a checkpoint after a commit while the
// checkpointer runs; db.mu held. A failed checkpoint loses nothing (the
// WAL keeps the pages): it is logged and the next commit asks again.
func (db *DB) ckptCommitted(imported bool) {
	c := db.ckpt
	err := c.poll()
	if imported {
		c.last = time.Now()
		if c.commits++; c.commits >= ckptRestartCommits {
			// Everything checkpointed before the next transaction:
			// the one in flight, then one of the last commit.
			err = errors.Join(err, c.wait())
			c.start()
			err = errors.Join(err, c.wait())
			c.commits = 0
		}
	}
	c.start()
	if err != nil {
		db.log.Warn("sqlite: background checkpoint failed", "err", err)
	}
}

// stopImportCkpt stops the checkpointer, if it runs, and gives the write
// connection its wal_autocheckpoint back; db.mu held.
func (db *DB) stopImportCkpt(ctx context.Context) error {
	c := db.ckpt
	if c == nil {
		return nil
	}
	db.ckpt = nil
	err := c.wait()
	close(c.req)
	<-c.exited
	err = errors.Join(err, c.conn.Close(), c.pool.Close())
	if !db.mu.closed {
		if _, e := db.mu.tx.ExecContext(ctx, fmt.Sprintf("PRAGMA wal_autocheckpoint=%d", autoCheckpointPages)); e != nil {
			err = errors.Join(err, fmt.Errorf("restore wal_autocheckpoint: %w", e))
		}
	}
	return err
}
