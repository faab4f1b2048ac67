package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
	"github.com/neogo/neo/storage/backend/sqlbackend"
)

func init() {
	backend.Register("sqlite", Open)
	backend.Register("file", Open) // neoppod's file:PATH?k=v form
}

// sqlDriver is the database/sql driver used and how to give it a path
// with a busy timeout. Tests swap it to benchmark other drivers.
type sqlDriver struct {
	name string
	// dsn names the file at path for the driver, with the per-connection
	// settings; cacheSize is PRAGMA cache_size ("": SQLite's default).
	dsn func(path, cacheSize string) string
}

// escapePath keeps a path intact inside a "file:" URI.
func escapePath(path string) string {
	return strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
}

var defaultDriver = sqlDriver{
	name: "sqlite", // modernc.org/sqlite
	// No mmap_size: SQLite then reads each page with pread(2) into the
	// connection's page cache. A map saved no CPU per load (random loads
	// in a 2.6 GB database: 51-53 us of storage CPU per load with no map,
	// 44-75 with 1 GiB, 51-59 with 2 GiB, the most modernc allows), but
	// its pages are the process's: peak RSS 158 MiB with no map, 1.0 GiB
	// with 1 GiB, 2.1 GiB with 2 GiB (--cache-size 64M).
	//
	// VFS unix-excl: the process holds the file's lock from open to close
	// and keeps the WAL index in its memory, shared by its connections,
	// instead of a -shm file: each read transaction otherwise took and
	// released a read lock of that file, two fcntl(2) per load. No other
	// process may open the database meanwhile, which lockFile forbids
	// anyway (neoppod's rule).
	dsn: func(path, cacheSize string) string {
		dsn := "file:" + escapePath(path) + "?vfs=unix-excl&_pragma=busy_timeout(10000)"
		if cacheSize != "" {
			dsn += "&_pragma=cache_size(" + cacheSize + ")"
		}
		return dsn
	},
}

// Params are the settings a data source name may carry (neoppod's
// file:PATH?k=v keys).
type Params struct {
	Path string
	// Synchronous is the PRAGMA synchronous used for durable commits
	// (default FULL). Non-durable commits always use NORMAL.
	Synchronous string
	JournalMode string // default WAL
	CacheSize   string // PRAGMA cache_size, default SQLite's
}

// ParseDSN parses "sqlite:///path?k=v", "sqlite://path", "file:path?k=v"
// or a plain path ("~" is expanded).
func ParseDSN(dsn string) (Params, error) {
	p := Params{Synchronous: "FULL", JournalMode: "WAL"}
	rest := dsn
	var query string
	switch {
	case strings.HasPrefix(dsn, "sqlite://"):
		rest = strings.TrimPrefix(dsn, "sqlite://")
	case strings.HasPrefix(dsn, "sqlite:"):
		rest = strings.TrimPrefix(dsn, "sqlite:")
	case strings.HasPrefix(dsn, "file:"):
		rest = strings.TrimPrefix(dsn, "file:")
	default:
		p.Path = dsn
	}
	if p.Path == "" {
		if i := strings.IndexByte(rest, '?'); i >= 0 {
			rest, query = rest[:i], rest[i+1:]
		}
		path, err := url.PathUnescape(rest)
		if err != nil {
			return p, fmt.Errorf("parse %q: %w", dsn, err)
		}
		p.Path = path
	}
	if strings.HasPrefix(p.Path, "~/") {
		home, err := os.UserHomeDir()
		if err != nil {
			return p, fmt.Errorf("parse %q: expand ~: %w", dsn, err)
		}
		p.Path = filepath.Join(home, p.Path[2:])
	}
	if p.Path == "" {
		return p, fmt.Errorf("parse %q: empty path", dsn)
	}
	if query != "" {
		q, err := url.ParseQuery(query)
		if err != nil {
			return p, fmt.Errorf("parse %q: %w", dsn, err)
		}
		for k, v := range q {
			if len(v) != 1 {
				return p, fmt.Errorf("parse %q: duplicate key %q", dsn, k)
			}
			switch k {
			case "synchronous":
				p.Synchronous = strings.ToUpper(v[0])
			case "journal_mode":
				p.JournalMode = strings.ToUpper(v[0])
			case "cache_size":
				if _, err := strconv.Atoi(v[0]); err != nil {
					return p, fmt.Errorf("parse %q: cache_size %q: %w", dsn, v[0], err)
				}
				p.CacheSize = v[0]
			case "cksumvfs":
				if v[0] != "0" {
					return p, fmt.Errorf("parse %q: cksumvfs=%s is not supported", dsn, v[0])
				}
			default:
				return p, fmt.Errorf("parse %q: unknown key %q", dsn, k)
			}
		}
	}
	for _, s := range []string{p.Synchronous, p.JournalMode} {
		for _, c := range s {
			if c < 'A' || c > 'Z' {
				return p, fmt.Errorf("parse %q: invalid pragma value %q", dsn, s)
			}
		}
	}
	return p, nil
}

// DB is the SQLite backend. Writes go through one connection (SQLite has
// a single writer anyway), guarded by mu; reads use a pool of connections
// that see the last committed state (WAL mode).
type DB struct {
	params Params
	drv    sqlDriver
	log    *slog.Logger
	dedup  bool
	lock   net.Listener // exclusive lock across processes

	r *sql.DB // read pool
	sqlbackend.Reader
	w *sql.DB // write pool of one connection

	// readConns are the readConn of each driver connection of r.
	readConns sync.Map
	oids      *sqlbackend.OidBound

	mu struct {
		sync.Mutex
		conn   *sql.Conn
		tx     wtx // the transaction on conn, with its statement cache
		closed bool
		sync   string           // current PRAGMA synchronous of conn
		np     uint32           // number of partitions, 0 if no pt
		nid    proto.NodeID     // own nid, for pt encoding
		nextID map[uint32]int64 // next data id per partition
		// importing: the transaction is an import's (importCkpt).
		importing bool
	}
	unlocks sqlbackend.Unlocks // deferred unlocks, guarded by mu
	ckpt    *importCkpt        // the import's checkpointer, guarded by mu
	npRead  syncUint32         // np for readers
}

type syncUint32 struct {
	mu sync.Mutex
	v  uint32
}

func (s *syncUint32) load() uint32 { s.mu.Lock(); defer s.mu.Unlock(); return s.v }
func (s *syncUint32) store(v uint32) {
	s.mu.Lock()
	s.v = v
	s.mu.Unlock()
}

var _ backend.Backend = (*DB)(nil)

// Open opens (creating if needed) the SQLite database named by dsn.
func Open(ctx context.Context, dsn string, opts backend.Options) (backend.Backend, error) {
	p, err := ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	return open(ctx, p, opts, defaultDriver)
}

func open(ctx context.Context, p Params, opts backend.Options, drv sqlDriver) (_ *DB, err error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	db := &DB{params: p, drv: drv, log: log.With("db", p.Path), oids: sqlbackend.NewOidBound()}
	db.unlocks = sqlbackend.Unlocks{Mu: &db.mu.Mutex, Commit: db.commitUnlocks, Log: db.log}
	defer func() {
		if err != nil {
			db.closeAll()
		}
	}()
	if opts.Reset {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if err := os.Remove(p.Path + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("reset %s: %w", p.Path, err)
			}
		}
	}
	// Create the file so that it has an inode to lock before SQLite opens it.
	f, err := os.OpenFile(p.Path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", p.Path, err)
	}
	f.Close()
	if err := db.lockFile(); err != nil {
		return nil, err
	}
	if db.w, err = sql.Open(drv.name, drv.dsn(p.Path, p.CacheSize)); err != nil {
		return nil, fmt.Errorf("open %s: %w", p.Path, err)
	}
	db.w.SetMaxOpenConns(1)
	db.w.SetMaxIdleConns(1)
	db.w.SetConnMaxLifetime(0)
	conn, err := db.w.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", p.Path, err)
	}
	db.mu.conn = conn
	db.mu.tx = wtx{conn: conn, stmts: map[string]*sql.Stmt{}}
	var pragmas []string
	if opts.PageSize > 0 {
		// First: a new file takes it at its first write (the switch to
		// WAL); an existing one keeps its own.
		pragmas = append(pragmas, fmt.Sprintf("PRAGMA page_size=%d", opts.PageSize))
	}
	pragmas = append(pragmas, "PRAGMA journal_mode="+p.JournalMode, "PRAGMA synchronous="+p.Synchronous)
	db.mu.sync = p.Synchronous
	for _, q := range pragmas {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return nil, fmt.Errorf("open %s: %s: %w", p.Path, q, err)
		}
	}
	if err := db.setup(ctx, opts.Dedup); err != nil {
		return nil, fmt.Errorf("open %s: %w", p.Path, err)
	}
	if db.r, err = sql.Open(drv.name, drv.dsn(p.Path, p.CacheSize)); err != nil {
		return nil, fmt.Errorf("open %s: %w", p.Path, err)
	}
	db.Reader = sqlbackend.Reader{DB: db.r, Dialect: dialect, NP: db.npRead.load, Settle: db.unlocks.Settle}
	db.r.SetMaxOpenConns(4)
	db.r.SetMaxIdleConns(4)
	return db, nil
}

// lockFile binds the abstract Unix socket neoppod uses, so that no two
// storage processes (Go or Python) ever open the same database.
func (db *DB) lockFile() error {
	var st syscall.Stat_t
	if err := syscall.Stat(db.params.Path, &st); err != nil {
		return fmt.Errorf("lock %s: %w", db.params.Path, err)
	}
	name := fmt.Sprintf("@neostorage:%d:%d", st.Dev, st.Ino)
	l, err := net.Listen("unix", name)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("lock %s: %w", db.params.Path, backend.ErrLocked)
		}
		return fmt.Errorf("lock %s: %w", db.params.Path, err)
	}
	db.lock = l
	return nil
}

func (db *DB) closeAll() error {
	var errs []error
	if db.mu.conn != nil {
		errs = append(errs, db.mu.tx.close(), db.mu.conn.Close())
	}
	if db.w != nil {
		errs = append(errs, db.w.Close())
	}
	// No read runs any more: no connection is in use. database/sql
	// closed those it found invalid (a query its context interrupted):
	// finalizing their statements would crash the driver. SQLite keeps
	// such a connection as a zombie for them (sqlite3_close_v2): a leak
	// per interrupted read, until the process ends.
	db.readConns.Range(func(dc, v any) bool {
		if vd, ok := dc.(driver.Validator); ok && !vd.IsValid() {
			return true
		}
		errs = append(errs, v.(*readConn).stmts.close())
		return true
	})
	if db.r != nil {
		errs = append(errs, db.r.Close())
	}
	if db.lock != nil {
		errs = append(errs, db.lock.Close())
	}
	return errors.Join(errs...)
}

// Close closes the database.
func (db *DB) Close() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.mu.closed {
		return nil
	}
	var errs []error
	db.unlocks.Stop()
	if err := db.unlocks.CommitNow(context.Background()); err != nil {
		// Verification replays them from the locked ttrans rows.
		errs = append(errs, fmt.Errorf("commit %d deferred unlocks: %w", db.unlocks.Len(), err))
	}
	if err := db.stopImportCkpt(context.Background()); err != nil {
		errs = append(errs, fmt.Errorf("stop the import's checkpointer: %w", err))
	}
	db.mu.closed = true
	if err := errors.Join(append(errs, db.closeAll())...); err != nil {
		return fmt.Errorf("close %s: %w", db.params.Path, err)
	}
	return nil
}

// Schema (cluster.md §8.2), the layout neoppod's SQLite backend uses.
var schema = []string{
	`CREATE TABLE IF NOT EXISTS config (
		name TEXT NOT NULL PRIMARY KEY,
		value TEXT) WITHOUT ROWID`,
	`CREATE TABLE IF NOT EXISTS pt (
		partition INTEGER NOT NULL,
		nid INTEGER NOT NULL,
		tid INTEGER NOT NULL,
		pack INTEGER,
		PRIMARY KEY (partition, nid)) WITHOUT ROWID`,
	`CREATE TABLE IF NOT EXISTS pack (
		tid INTEGER PRIMARY KEY,
		approved BOOLEAN,
		partial BOOLEAN NOT NULL,
		oids BLOB,
		pack_tid INTEGER)`,
	`CREATE TABLE IF NOT EXISTS trans (
		partition INTEGER NOT NULL,
		tid INTEGER NOT NULL,
		packed BOOLEAN NOT NULL,
		oids BLOB NOT NULL,
		user BLOB NOT NULL,
		description BLOB NOT NULL,
		ext BLOB NOT NULL,
		ttid INTEGER NOT NULL,
		PRIMARY KEY (partition, tid)) WITHOUT ROWID`,
	`CREATE TABLE IF NOT EXISTS obj (
		partition INTEGER NOT NULL,
		oid INTEGER NOT NULL,
		tid INTEGER NOT NULL,
		data_id INTEGER,
		value_tid INTEGER,
		PRIMARY KEY (partition, oid, tid)) WITHOUT ROWID`,
	`CREATE INDEX IF NOT EXISTS _obj_i1 ON obj(partition, tid, oid)`,
	`CREATE INDEX IF NOT EXISTS _obj_i2 ON obj(data_id)`,
	`CREATE TABLE IF NOT EXISTS data (
		id INTEGER PRIMARY KEY,
		hash BLOB NOT NULL,
		compression INTEGER NOT NULL,
		value BLOB NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS ttrans (
		partition INTEGER NOT NULL,
		tid INTEGER,
		packed BOOLEAN NOT NULL,
		oids BLOB NOT NULL,
		user BLOB NOT NULL,
		description BLOB NOT NULL,
		ext BLOB NOT NULL,
		ttid INTEGER NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS tobj (
		partition INTEGER NOT NULL,
		oid INTEGER NOT NULL,
		tid INTEGER NOT NULL,
		data_id INTEGER,
		value_tid INTEGER,
		PRIMARY KEY (tid, oid)) WITHOUT ROWID`,
}

const dedupIndex = `CREATE UNIQUE INDEX IF NOT EXISTS _data_i1 ON data(hash, compression)`

func (db *DB) setup(ctx context.Context, dedup bool) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.writeTx(ctx, true, func(tx *wtx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name='config'`).Scan(&n); err != nil {
			return fmt.Errorf("read schema: %w", err)
		}
		fresh := n == 0
		if !fresh {
			var v sql.NullString
			err := tx.QueryRowContext(ctx, `SELECT value FROM config WHERE name='version'`).Scan(&v)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("read schema version: %w", err)
			}
			version, _ := strconv.Atoi(v.String)
			if version != backend.SchemaVersion {
				u := sqlbackend.Upgrader{Tx: tx, Schema: schema, HasTable: func(ctx context.Context, table string) (bool, error) {
					var n int
					err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name=?`, table).Scan(&n)
					return n > 0, err
				}}
				if err := u.Upgrade(ctx, version); err != nil {
					return err
				}
			}
		}
		for _, q := range schema {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("create schema: %w", err)
			}
		}
		if fresh {
			if _, err := tx.ExecContext(ctx, `INSERT INTO config VALUES ('version', ?)`, strconv.Itoa(backend.SchemaVersion)); err != nil {
				return fmt.Errorf("create schema: %w", err)
			}
			if dedup {
				if _, err := tx.ExecContext(ctx, dedupIndex); err != nil {
					return fmt.Errorf("create schema: %w", err)
				}
			}
		}
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type='index' AND name='_data_i1'`).Scan(&n); err != nil {
			return fmt.Errorf("read schema: %w", err)
		}
		db.dedup = n > 0
		var np sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT MAX(partition)+1 FROM pt`).Scan(&np); err != nil {
			return fmt.Errorf("read partition count: %w", err)
		}
		db.mu.np = uint32(np.Int64)
		db.npRead.store(db.mu.np)
		var nid sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT value FROM config WHERE name='nid'`).Scan(&nid)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("read nid: %w", err)
		}
		if nid.Valid {
			x, err := strconv.ParseInt(nid.String, 10, 32)
			if err != nil {
				return fmt.Errorf("read nid %q: %w", nid.String, err)
			}
			db.mu.nid = proto.NodeID(x)
		}
		db.mu.nextID = map[uint32]int64{}
		return nil
	})
}

// writeTx runs fn in a write transaction on the write connection, after
// the deferred unlocks; db.mu must be held. durable commits with the configured PRAGMA synchronous
// (FULL by default: the WAL is fsynced), else with NORMAL (no fsync: the
// commit survives a process crash and becomes durable with the next
// durable commit, since the WAL is written in order).
func (db *DB) writeTx(ctx context.Context, durable bool, fn func(*wtx) error) error {
	if db.mu.closed {
		return backend.ErrClosed
	}
	if db.ckpt != nil && !db.mu.importing && time.Since(db.ckpt.last) > importIdle {
		if err := db.stopImportCkpt(ctx); err != nil {
			db.log.Warn("sqlite: stop the import's checkpointer", "err", err)
		}
	}
	want := "NORMAL"
	if durable {
		want = db.params.Synchronous
	}
	if db.mu.sync != want {
		// Through the statement cache: a commit switches twice (vote,
		// lock), and compiling the PRAGMA each time cost ~2% of a
		// storage's CPU per commit.
		if _, err := db.mu.tx.ExecContext(ctx, "PRAGMA synchronous="+want); err != nil {
			return fmt.Errorf("set synchronous=%s: %w", want, err)
		}
		db.mu.sync = want
	}
	tx := &db.mu.tx
	if err := tx.begin(ctx); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	err := db.unlocks.Apply(ctx, tx)
	if err == nil {
		err = fn(tx)
	}
	if err != nil {
		tx.rollback()
		// Ids allocated in the rolled back transaction may be reused.
		clear(db.mu.nextID)
		return err
	}
	if err := tx.commit(ctx); err != nil {
		clear(db.mu.nextID)
		return fmt.Errorf("commit: %w", err)
	}
	db.unlocks.Committed()
	if db.ckpt != nil {
		db.ckptCommitted(db.mu.importing)
	}
	return nil
}

// commitUnlocks commits a transaction of nothing but the deferred unlocks
// (sqlbackend.Unlocks.Commit); db.mu must be held. Not synced, as an
// unlock.
func (db *DB) commitUnlocks(ctx context.Context) error {
	return db.writeTx(ctx, false, func(*wtx) error { return nil })
}

// write runs fn under the write lock in one transaction.
func (db *DB) write(ctx context.Context, durable bool, fn func(*wtx) error) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.writeTx(ctx, durable, fn)
}

// np returns the number of partitions for readers.
func (db *DB) np() (uint32, error) {
	np := db.npRead.load()
	if np == 0 {
		return 0, backend.ErrNoPartitionTable
	}
	return np, nil
}

// writeNP returns the number of partitions; db.mu must be held.
func (db *DB) writeNP() (uint32, error) {
	if db.mu.np == 0 {
		return 0, backend.ErrNoPartitionTable
	}
	return db.mu.np, nil
}

// Helpers converting between our ids and SQLite's signed integers. Tids
// and oids stored are below 2^63 (proto.MaxTid); InvalidTid maps to NULL.
