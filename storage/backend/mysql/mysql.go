package mysql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
	"github.com/neogo/neo/storage/backend/sqlbackend"
)

func init() {
	backend.Register("mysql", Open)
}

// Engines are the storage engines a database may be created with
// (neostorage --engine); the first is the default.
var Engines = []string{"InnoDB", "RocksDB"}

// MinMaxAllowedPacket is the smallest max_allowed_packet the server may
// have, as neoppod requires: a data row holds up to 16 MiB (MEDIUMBLOB),
// sent escaped in a query.
const MinMaxAllowedPacket = 32769 * 1024

// Sizes of values (cluster.md §8.3): a value of bigValue bytes or more is
// split in rows of bigChunk bytes of table bigdata.
const (
	bigValue  = 0x1000000 // 16 MiB, MEDIUMBLOB's limit
	bigChunk  = 0x800000  // 8 MiB
	bigFlag   = 0x80      // data.compression flag of a split value
	lockName  = "neostorage"
	reconnect = 3 // tries of a write when the server is gone
)

// DB is the MySQL (MariaDB) backend. Writes go through one connection,
// guarded by mu, that also holds the database's lock (GET_LOCK); reads use
// a pool of connections in autocommit mode, each statement seeing the last
// commit.
type DB struct {
	params    Params
	log       *slog.Logger
	engine    string
	dedup     bool
	maxPacket int // the server's max_allowed_packet

	r *sql.DB // read pool
	sqlbackend.Reader
	oids *sqlbackend.OidBound // raised by every write of obj rows
	w    *sql.DB              // where the write connection comes from

	mu struct {
		sync.Mutex
		conn   *sql.Conn // nil after the server went away, until the next write
		closed bool
		np     uint32           // number of partitions, 0 if no pt
		nid    proto.NodeID     // own nid, for pt encoding
		nextID map[uint32]int64 // next data id per partition
	}
	unlocks sqlbackend.Unlocks // deferred unlocks, guarded by mu
	npRead  atomic.Uint32      // np for readers
}

var _ backend.Backend = (*DB)(nil)

var _ backend.SizeReporter = (*DB)(nil)

// Size returns the bytes of the database's tables, data and indexes, as
// information_schema estimates them.
func (db *DB) Size(ctx context.Context) (int64, error) {
	var n int64
	err := db.r.QueryRowContext(ctx, "SELECT CAST(COALESCE(SUM(data_length + index_length), 0) AS SIGNED)"+
		" FROM information_schema.tables WHERE table_schema = DATABASE()").Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("mysql: size of database %s: %w", db.params.Database, err)
	}
	return n, nil
}

// Open opens the database named by dsn ("mysql:" and neoppod's --database
// syntax), creating the schema in an empty database.
func Open(ctx context.Context, dsn string, opts backend.Options) (backend.Backend, error) {
	p, err := ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	db, err := open(ctx, p, opts)
	if err != nil {
		return nil, fmt.Errorf("open MySQL database %s: %w", p, err)
	}
	return db, nil
}

func open(ctx context.Context, p Params, opts backend.Options) (_ *DB, err error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	engine := Engines[0]
	if opts.Engine != "" {
		engine = ""
		for _, e := range Engines {
			if strings.EqualFold(e, opts.Engine) {
				engine = e
			}
		}
		if engine == "" {
			return nil, fmt.Errorf("engine %q: not one of %v", opts.Engine, Engines)
		}
	}
	db := &DB{params: p, log: log.With("db", p.String()), engine: engine, oids: sqlbackend.NewOidBound()}
	db.unlocks = sqlbackend.Unlocks{Mu: &db.mu.Mutex, Commit: db.commitUnlocks, Log: db.log}
	defer func() {
		if err != nil {
			db.closeAll()
		}
	}()
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.DBName = p.User, p.Password, p.Database
	if cfg.User == "" {
		cfg.User = "root" // what the client library defaults to without a user here
	}
	if p.Socket != "" {
		cfg.Net, cfg.Addr = "unix", p.Socket
	}
	// One round trip per statement: the driver would prepare, execute
	// and close a server-side statement for each query with arguments.
	cfg.InterpolateParams = true
	cfg.MaxAllowedPacket = 0 // the server's
	cfg.Timeout = 10 * time.Second
	cfg.Logger = driverLogger{db.log}
	// Session settings of cluster.md §8.1.
	cfg.Params = map[string]string{
		"wait_timeout":         "2147483",
		"sql_mode":             "'TRADITIONAL,NO_ENGINE_SUBSTITUTION'",
		"group_concat_max_len": strconv.FormatUint(1<<32-1, 10),
	}
	if engine == "RocksDB" {
		cfg.Params["rocksdb_max_row_locks"] = strconv.Itoa(1 << 30)
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	// The write connection sends a commit's statements together (batchTx).
	wcfg := cfg.Clone()
	wcfg.MultiStatements = true
	wconnector, err := mysql.NewConnector(wcfg)
	if err != nil {
		return nil, err
	}
	db.w = sql.OpenDB(wconnector)
	db.w.SetMaxOpenConns(1)
	db.w.SetMaxIdleConns(1)
	db.r = sql.OpenDB(connector)
	db.Reader = sqlbackend.Reader{DB: db.r, Dialect: dialect, NP: db.npRead.Load, Settle: db.unlocks.Settle}
	db.r.SetMaxOpenConns(4)
	db.r.SetMaxIdleConns(4)
	if err := db.waitServer(ctx, opts.Wait); err != nil {
		return nil, err
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if err := db.connectWrite(ctx); err != nil {
		return nil, err
	}
	var name string
	if err := db.mu.conn.QueryRowContext(ctx, `SHOW VARIABLES WHERE variable_name='max_allowed_packet'`).Scan(&name, &db.maxPacket); err != nil {
		return nil, fmt.Errorf("read max_allowed_packet: %w", err)
	}
	if db.maxPacket < MinMaxAllowedPacket {
		return nil, fmt.Errorf("global variable %s is too small (%d): minimal value must be %dk", name, db.maxPacket, MinMaxAllowedPacket/1024)
	}
	if opts.Reset {
		if _, err := db.mu.conn.ExecContext(ctx, `DROP TABLE IF EXISTS `+strings.Join(tables, ", ")); err != nil {
			return nil, fmt.Errorf("reset: %w", err)
		}
	}
	if err := db.setup(ctx, opts.Dedup); err != nil {
		return nil, err
	}
	return db, nil
}

// driverLogger sends the driver's messages (a connection that broke, for
// example) to the backend's log rather than to the standard logger.
type driverLogger struct{ log *slog.Logger }

func (l driverLogger) Print(v ...any) {
	l.log.Warn("mysql driver: " + strings.TrimSpace(fmt.Sprint(v...)))
}

// waitServer waits for the server to accept connections: up to wait (a
// negative wait: forever), one try a second (neostorage --wait).
func (db *DB) waitServer(ctx context.Context, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	var last string
	for {
		err := db.w.PingContext(ctx)
		if err == nil {
			return nil
		}
		if wait >= 0 && !time.Now().Before(deadline) {
			return fmt.Errorf("connect: %w", err)
		}
		if err.Error() != last {
			last = err.Error()
			db.log.Warn("connection to MySQL failed, retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("connect: %w (waiting: %w)", err, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

// connectWrite gets a new write connection and takes the database's lock
// on it; db.mu must be held.
func (db *DB) connectWrite(ctx context.Context) error {
	conn, err := db.w.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	// Waiting a second, not failing at once as neoppod: the server
	// releases the lock of a process that just died only once it has seen
	// its connection closed, which may take a few milliseconds more.
	var locked sql.NullInt64
	if err := conn.QueryRowContext(ctx, `SELECT GET_LOCK(?, 1)`, db.lockName()).Scan(&locked); err != nil {
		conn.Close()
		return fmt.Errorf("lock: %w", err)
	}
	if locked.Int64 != 1 {
		conn.Close()
		return fmt.Errorf("lock %s: %w", db.lockName(), backend.ErrLocked)
	}
	db.mu.conn = conn
	return nil
}

// lockName is the name of the database's lock (cluster.md §8.1).
func (db *DB) lockName() string { return db.params.Database + "." + lockName }

// serverGone reports whether err says the connection to the server is
// lost: nothing uncommitted survives it, and a new connection may work.
func serverGone(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 2006, 2013, // CR_SERVER_GONE_ERROR, CR_SERVER_LOST
			1053, // ER_SERVER_SHUTDOWN
			1927, // ER_CONNECTION_KILLED
			4031: // ER_CLIENT_INTERACTION_TIMEOUT
			return true
		}
		return false
	}
	return errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) || errors.Is(err, mysql.ErrInvalidConn)
}

// dropConn forgets a write connection the server may have lost; the next
// write connects again. db.mu must be held.
func (db *DB) dropConn() {
	if db.mu.conn != nil {
		db.mu.conn.Close()
		db.mu.conn = nil
	}
}

// writeTx runs fn in a transaction on the write connection; db.mu must be
// held. When the server is gone before anything is written, it connects
// again (up to 3 tries), as neoppod does; once fn ran, a lost connection
// fails the call: its changes are lost with the server's session and the
// caller decides.
func (db *DB) writeTx(ctx context.Context, fn func(*sql.Tx) error) error {
	if db.mu.closed {
		return backend.ErrClosed
	}
	var tx *sql.Tx
	for try := 1; ; try++ {
		var err error
		if db.mu.conn == nil {
			err = db.connectWrite(ctx)
		}
		if err == nil {
			if tx, err = db.mu.conn.BeginTx(ctx, nil); err == nil {
				if err = db.unlocks.Apply(ctx, tx); err == nil {
					break
				}
				tx.Rollback()
			}
		}
		if !serverGone(err) || try == reconnect {
			if serverGone(err) {
				db.dropConn()
			}
			return fmt.Errorf("begin: %w", err)
		}
		db.log.Info("the MySQL server is gone; reconnecting", "err", err)
		db.dropConn()
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		// Ids allocated in the rolled back transaction may be reused.
		clear(db.mu.nextID)
		if serverGone(err) {
			db.dropConn()
		}
		return err
	}
	if err := tx.Commit(); err != nil {
		clear(db.mu.nextID)
		if serverGone(err) {
			db.dropConn()
		}
		return fmt.Errorf("commit: %w", err)
	}
	db.unlocks.Committed()
	return nil
}

// write runs fn under the write lock in one transaction.
func (db *DB) write(ctx context.Context, fn func(*sql.Tx) error) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.writeTx(ctx, fn)
}

// np returns the number of partitions for readers.
func (db *DB) np() (uint32, error) {
	np := db.npRead.Load()
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

func (db *DB) closeAll() error {
	var errs []error
	if db.mu.conn != nil {
		// Released now, not when the server gets to the end of the session:
		// the next open would find it still taken.
		if _, err := db.mu.conn.ExecContext(context.Background(), `DO RELEASE_LOCK(?)`, db.lockName()); err != nil && !serverGone(err) {
			errs = append(errs, fmt.Errorf("release lock: %w", err))
		}
		errs = append(errs, db.mu.conn.Close())
		db.mu.conn = nil
	}
	for _, p := range []*sql.DB{db.w, db.r} {
		if p != nil {
			errs = append(errs, p.Close())
		}
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
	db.mu.closed = true
	if err := errors.Join(append(errs, db.closeAll())...); err != nil {
		return fmt.Errorf("close %s: %w", db.params, err)
	}
	return nil
}

// Helpers converting between our ids and signed integers: tids and oids
// stored are below 2^63 (proto.MaxTid); InvalidTid maps to NULL.
