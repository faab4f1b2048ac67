// Package nodelog is a node's log file (`-l PATH`) in neoppod's SQLite
// format (cluster.md §10.1), so that neoppod's neolog and ours read it:
// tables log, packet, protocol and node, WITHOUT ROWID, dates as unique
// UNIX float seconds, journal mode MEMORY.
//
// Records (slog records through [Log.Handler], packets through the link
// observer [Log.Observer]) are kept in a RAM ring buffer of about 16 MiB
// and written to the file only on a record of level WARNING or above,
// [Log.Flush] (neoctl flush_log, a crash; SIGRTMIN is ignored, see HandleSignals) and [Log.Close]; the
// oldest records are dropped when the buffer is full. [Log.Reopen]
// (SIGRTMIN+1) starts a new file at the same path after a rename.
//
// The protocol table holds a definition of our own (see protocol.go), not
// neoppod's protocol source: neoppod's neolog shows our packets' names
// and raw msgpack arguments, ours decodes them with package proto.
package nodelog

import (
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/neogo/neo/proto"
	_ "modernc.org/sqlite" // database/sql driver "sqlite"
)

// Defaults of [Options].
const (
	DefaultMaxBuffer = 16 << 20
	DefaultMaxPacket = 1 << 20
)

// Python logging's levels, which the log table stores.
const (
	levelDebug   = 10
	levelInfo    = 20
	levelWarning = 30
	levelError   = 40
)

// chunkLen is the number of records of a chunk of the buffer: records
// are appended without copying the older ones, and dropped a chunk at a
// time.
const chunkLen = 256

// arenaSize is the size of the blocks the packet bodies are copied into:
// one allocation for many packets. A larger body gets its own.
const arenaSize = 64 << 10

// maxFreeArenas bounds the arenas kept for reuse: on a full buffer, one
// is freed by the oldest records as one is filled by the newest.
const maxFreeArenas = 4

// arena is a block of packet bodies, reused once no buffered record
// points into it: a busy node then copies its packets into the same
// memory instead of allocating a new block every 64 KiB, which costs
// the garbage collector (BenchmarkLogPacket).
type arena struct {
	buf  []byte
	refs int // records of the buffer whose body is in buf
}

// recordOverhead is what we count for one record in the buffer besides
// its text and body: the struct and the slice slot.
const recordOverhead = 128

// Options parameterise a [Log].
type Options struct {
	// MaxBuffer is the size of the RAM buffer in bytes, records'
	// overhead included: 0 means DefaultMaxBuffer, a negative value no
	// buffer (each record is written at once, as neoppod's neoctl does).
	MaxBuffer int
	// MaxPacket bounds the packet bodies recorded: a larger one is
	// recorded without its body (NULL). 0 means DefaultMaxPacket.
	MaxPacket int
	// Level is the lowest level of the slog records recorded: nil means
	// slog.LevelInfo. neoppod records its debug messages too; ours cost
	// the commit path about 3% more (client/bench_test.go's
	// BenchmarkCommitLog), so they are recorded only when asked
	// (NEO_DEBUG for the daemons). Packets are always recorded.
	Level slog.Leveler
}

// record is one row to be: of the log table, or of the packet table when
// packet is set.
type record struct {
	date   float64
	node   nodeKey
	packet bool

	// log
	level    int
	pc       uintptr // of the call that logged it, for its source line
	pathname string  // the source file and line, if not from pc
	lineno   int
	msg      string

	// packet (the small fields first: 160 bytes in all, a size class)
	sent  bool
	nbody bool // body omitted (too large)
	code  uint16
	id    uint32
	peer  proto.NodeID
	addr  net.Addr
	body  []byte
	arena *arena // holding body, if one does
}

func (r *record) size() int { return recordOverhead + len(r.msg) + len(r.body) }

// nodeKey is a row of the node table: what neoppod keys its node ids
// with (its logger's name, which is always NULL for us).
type nodeKey struct {
	cluster string
	nid     proto.NodeID
}

// Log is a node's SQLite log. Its methods are safe for concurrent use.
type Log struct {
	maxBuffer int
	maxPacket int
	level     slog.Leveler

	// mu guards the buffer and the node's identity; it is held only to
	// queue or take records, never during a write.
	mu      sync.Mutex
	chunks  [][]record // the records kept, oldest first, in chunks of chunkLen
	head    int        // chunks[0][head:] are the oldest kept
	size    int
	node    nodeKey // the node's identity once it knows its id
	cluster string
	arena   *arena   // where packet bodies are copied, arenaSize at a time
	free    []*arena // arenas no buffered record points into
	spare   []record // an emptied chunk, for the next one

	links linkSet // the node's links, for the state dump

	// wmu guards the file and serialises the writes.
	wmu         sync.Mutex
	path        string
	db          *sql.DB
	nodeIDs     map[nodeKey]int64
	lastLog     float64 // date of the last log row written, to keep them unique
	lastPacket  float64
	closed      bool
	wroteAnyPkt bool   // a packet was written to this file
	crashPath   string // the runtime's crash output (CatchCrashes), "" if not set
}

// Open opens (creating it if needed) the log file at path. A crash
// report that the runtime left beside it ([Log.CatchCrashes]) is moved
// into it.
func Open(path string, opts Options) (*Log, error) {
	l := &Log{maxBuffer: opts.MaxBuffer, maxPacket: opts.MaxPacket, level: opts.Level, path: path}
	if l.level == nil {
		l.level = slog.LevelInfo
	}
	if l.maxBuffer == 0 {
		l.maxBuffer = DefaultMaxBuffer
	}
	if l.maxPacket <= 0 {
		l.maxPacket = DefaultMaxPacket
	}
	if err := l.open(); err != nil {
		return nil, err
	}
	if err := l.importCrash(); err != nil {
		fmt.Fprintf(os.Stderr, "log file %s: %v\n", l.path, err)
	}
	return l, nil
}

// open opens l.path and sets its schema up; wmu must be held (or l not
// shared yet).
func (l *Log) open() error {
	// Create the file first: its errors say what failed better than
	// SQLite's ("unable to open database file").
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	f.Close()
	// A reader (neolog) may hold the file a moment: wait, as neoppod retries.
	db, err := sql.Open("sqlite", "file:"+l.path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("log file %s: %w", l.path, err)
	}
	db.SetMaxOpenConns(1) // one connection: PRAGMAs and transactions apply to it
	if err := setup(db); err != nil {
		db.Close()
		return fmt.Errorf("log file %s: %w", l.path, err)
	}
	nodeIDs := make(map[nodeKey]int64)
	rows, err := db.Query("SELECT id, cluster, nid FROM node")
	if err != nil {
		db.Close()
		return fmt.Errorf("log file %s: %w", l.path, err)
	}
	for rows.Next() {
		var id int64
		var cluster sql.NullString
		var nid sql.NullInt64
		if err := rows.Scan(&id, &cluster, &nid); err != nil {
			rows.Close()
			db.Close()
			return fmt.Errorf("log file %s: node table: %w", l.path, err)
		}
		nodeIDs[nodeKey{cluster.String, proto.NodeID(nid.Int64)}] = id
	}
	rows.Close()
	l.db, l.nodeIDs, l.wroteAnyPkt = db, nodeIDs, false
	return nil
}

// setup creates the tables of cluster.md §10.1, renaming the tables of
// older logs (with a name column) to log1 and packet1 as neoppod does,
// and records our protocol definition if the file's latest differs.
func setup(db *sql.DB) error {
	if _, err := db.Exec("PRAGMA journal_mode = MEMORY"); err != nil {
		return err
	}
	tables := []struct{ name, columns string }{
		{"log", "level INTEGER NOT NULL,\n  pathname TEXT,\n  lineno INTEGER,\n  msg TEXT"},
		{"packet", "msg_id INTEGER NOT NULL,\n  code INTEGER NOT NULL,\n  peer TEXT NOT NULL,\n  body BLOB"},
	}
	for _, t := range tables {
		var old int
		if err := db.QueryRow("SELECT COUNT(*) FROM pragma_table_info(?) WHERE cid = 2 AND name = 'name'", t.name).Scan(&old); err != nil {
			return err
		}
		if old > 0 {
			if _, err := db.Exec(fmt.Sprintf("ALTER TABLE %s RENAME TO %s1", t.name, t.name)); err != nil {
				return err
			}
		}
		q := fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (\n  date REAL PRIMARY KEY,\n  node INTEGER,\n  %s) WITHOUT ROWID", t.name, t.columns)
		if _, err := db.Exec(q); err != nil {
			return err
		}
	}
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS protocol (
                    date REAL PRIMARY KEY,
                    text BLOB NOT NULL) WITHOUT ROWID`); err != nil {
		return err
	}
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS node (
                    id INTEGER PRIMARY KEY,
                    name TEXT,
                    cluster TEXT,
                    nid INTEGER)`); err != nil {
		return err
	}
	var last []byte
	err := db.QueryRow("SELECT text FROM protocol ORDER BY date DESC LIMIT 1").Scan(&last)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		// A fresh file: the definition applies from the start (date 0),
		// as neoppod does.
		_, err = db.Exec("INSERT INTO protocol VALUES (?, ?)", 0.0, protocolDef)
	case err == nil && string(last) != string(protocolDef):
		_, err = db.Exec("INSERT INTO protocol VALUES (?, ?)", unixNow(), protocolDef)
	}
	return err
}

// unixNow returns the time as the log stores it.
func unixNow() float64 { return float64(time.Now().UnixNano()) / 1e9 }

// SetCluster records the name of the node's cluster, for the node table.
// A nil Log does nothing.
func (l *Log) SetCluster(name string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.cluster = name
	l.mu.Unlock()
}

// setNID records the node's id, which the records that follow refer to
// (node table): neoppod logs it as "Node ID: S1".
func (l *Log) setNID(nid proto.NodeID) {
	l.mu.Lock()
	k := nodeKey{l.cluster, nid}
	changed := l.node != k
	l.node = k
	l.mu.Unlock()
	if changed {
		l.add(record{date: unixNow(), node: k, level: levelInfo, msg: "Node ID: " + nodeIDString(nid)})
	}
}

// add queues r, dropping the oldest records past the buffer's size, and
// writes the queue out at once when r is a warning or worse, or when
// there is no buffer. A packet's body is copied: the caller's is only
// valid during the call.
func (l *Log) add(r record) {
	l.mu.Lock()
	if r.body != nil {
		r.body, r.arena = l.copyBody(r.body)
	}
	if r.node == (nodeKey{}) {
		r.node = l.node
	}
	if n := len(l.chunks); n == 0 || len(l.chunks[n-1]) == chunkLen {
		c := l.spare
		if c == nil {
			c = make([]record, 0, chunkLen)
		}
		l.chunks, l.spare = append(l.chunks, c), nil
	}
	last := &l.chunks[len(l.chunks)-1]
	*last = append(*last, r)
	l.size += r.size()
	flush := l.maxBuffer < 0 || !r.packet && r.level >= levelWarning
	for !flush && l.size > l.maxBuffer {
		first := l.chunks[0]
		l.size -= first[l.head].size()
		l.release(first[l.head].arena)
		first[l.head] = record{}
		if l.head++; l.head == len(first) {
			l.chunks[0] = nil
			l.chunks, l.head = l.chunks[1:], 0
			l.spare = first[:0]
		}
	}
	l.mu.Unlock()
	if flush {
		l.Flush()
	}
}

// copyBody returns a copy of b and the arena holding it (nil for a body
// too large for one); l.mu must be held.
func (l *Log) copyBody(b []byte) ([]byte, *arena) {
	if len(b) > arenaSize/4 {
		return append([]byte(nil), b...), nil
	}
	a := l.arena
	if a == nil || cap(a.buf)-len(a.buf) < len(b) {
		if n := len(l.free); n > 0 {
			a, l.free = l.free[n-1], l.free[:n-1]
		} else {
			a = &arena{buf: make([]byte, 0, arenaSize)}
		}
		l.arena = a
	}
	n := len(a.buf)
	a.buf = append(a.buf, b...)
	a.refs++
	return a.buf[n:len(a.buf):len(a.buf)], a
}

// release tells that a record whose body is in a (if not nil) left the
// buffer, dropped; l.mu must be held. Records taken to be written keep
// their arena's count above zero, so it is never reused under them.
func (l *Log) release(a *arena) {
	if a == nil {
		return
	}
	if a.refs--; a.refs == 0 && a != l.arena && len(l.free) < maxFreeArenas {
		a.buf = a.buf[:0]
		l.free = append(l.free, a)
	}
}

// take returns the buffered records, oldest first, and empties the
// buffer.
func (l *Log) take() [][]record {
	l.mu.Lock()
	q := l.chunks
	if len(q) > 0 {
		q[0] = q[0][l.head:]
	}
	l.chunks, l.head, l.size = nil, 0, 0
	l.mu.Unlock()
	return q
}

// Flush writes the buffered records to the file. Errors go to stderr:
// the log has nowhere else to say them. A nil Log does nothing.
func (l *Log) Flush() {
	if l == nil {
		return
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if err := l.flushLocked(); err != nil {
		fmt.Fprintf(os.Stderr, "log file %s: %v\n", l.path, err)
	}
}

// flushLocked writes the records taken from the buffer in one
// transaction; wmu must be held.
func (l *Log) flushLocked() error {
	chunks := l.take()
	if len(chunks) == 0 || l.closed {
		return nil
	}
	tx, err := l.db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	insLog, err := tx.Prepare("INSERT INTO log VALUES (?, ?, ?, ?, ?, ?)")
	if err != nil {
		return err
	}
	insPacket, err := tx.Prepare("INSERT INTO packet VALUES (?, ?, ?, ?, ?, ?)")
	if err != nil {
		return err
	}
	for _, q := range chunks {
		if err := l.writeChunk(tx, insLog, insPacket, q); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// writeChunk inserts the records of q; wmu must be held.
func (l *Log) writeChunk(tx *sql.Tx, insLog, insPacket *sql.Stmt, q []record) error {
	for i := range q {
		r := &q[i]
		node, err := l.nodeRow(tx, r.node)
		if err != nil {
			return err
		}
		if r.packet {
			err = insertUnique(&l.lastPacket, r.date, func(date float64) error {
				_, err := insPacket.Exec(date, node, r.id, r.code, peerString(r), bodyArg(r))
				return err
			})
			l.wroteAnyPkt = true
		} else {
			if r.pc != 0 {
				r.pathname, r.lineno = source(r.pc)
			}
			err = insertUnique(&l.lastLog, r.date, func(date float64) error {
				_, err := insLog.Exec(date, node, r.level, r.pathname, r.lineno, r.msg)
				return err
			})
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// insertUnique inserts a row at date, made later than *last and bumped to
// the next float while it collides with a row of the file (the primary
// key is the date), as neoppod does; *last becomes the date used.
func insertUnique(last *float64, date float64, insert func(float64) error) error {
	if date <= *last {
		date = math.Nextafter(*last, math.Inf(1))
	}
	for range 1000 {
		err := insert(date)
		if err == nil {
			*last = date
			return nil
		}
		if !strings.Contains(err.Error(), "UNIQUE constraint failed") {
			return err
		}
		date = math.Nextafter(date, math.Inf(1))
	}
	return fmt.Errorf("no free date after %f", date)
}

// nodeRow returns the id of k in the node table, adding it if new: NULL
// (nil) while the node does not know its id, as neoppod.
func (l *Log) nodeRow(tx *sql.Tx, k nodeKey) (any, error) {
	if k == (nodeKey{}) {
		return nil, nil
	}
	if id, ok := l.nodeIDs[k]; ok {
		return id, nil
	}
	id := int64(0)
	for _, v := range l.nodeIDs {
		id = max(id, v+1)
	}
	var cluster any
	if k.cluster != "" {
		cluster = k.cluster
	}
	if _, err := tx.Exec("INSERT INTO node VALUES (?, NULL, ?, ?)", id, cluster, int64(k.nid)); err != nil {
		return nil, err
	}
	l.nodeIDs[k] = id
	return id, nil
}

// peerString returns a packet's peer as neoppod writes it:
// "> S1 (127.0.0.1:20000)" for a packet sent to S1, "<" for received,
// "None" for a peer not identified yet.
func peerString(r *record) string {
	dir := "<"
	if r.sent {
		dir = ">"
	}
	addr := ""
	if r.addr != nil {
		if a, err := netip(r.addr); err == nil {
			addr = a.String()
		} else {
			addr = r.addr.String()
		}
	}
	return dir + " " + nodeIDString(r.peer) + " (" + addr + ")"
}

// netip returns a TCP address as neoppod's formatAddress writes it.
func netip(a net.Addr) (proto.Addr, error) {
	t, ok := a.(*net.TCPAddr)
	if !ok {
		return proto.Addr{}, errors.New("not TCP")
	}
	return proto.Addr{Host: t.IP.String(), Port: uint16(t.Port)}, nil
}

// nodeIDString is neoppod's uuid_str: "None" for no id.
func nodeIDString(id proto.NodeID) string {
	if id == 0 {
		return "None"
	}
	return id.String()
}

func bodyArg(r *record) any {
	if r.nbody {
		return nil
	}
	return r.body
}

// Reopen closes the file and opens it again at its path: after a
// rename (log rotation), records go to a new file. Buffered records are
// written to the old file first. If no packet was logged in the old file,
// its protocol table is dropped, as neoppod does. A nil Log does nothing.
func (l *Log) Reopen() error {
	if l == nil {
		return nil
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed {
		return nil
	}
	err := l.flushLocked()
	if !l.wroteAnyPkt {
		var any int
		if l.db.QueryRow("SELECT 1 FROM packet LIMIT 1").Scan(&any) == sql.ErrNoRows {
			if _, derr := l.db.Exec("DROP TABLE protocol"); derr == nil {
				l.db.Exec("VACUUM")
			}
		}
	}
	l.db.Close()
	l.lastLog, l.lastPacket = 0, 0
	if oerr := l.open(); oerr != nil {
		l.closed = true // records are dropped from now on
		return errors.Join(err, oerr)
	}
	return err
}

// Close writes the buffered records and closes the file. A nil Log
// does nothing.
func (l *Log) Close() error {
	if l == nil {
		return nil
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed {
		return nil
	}
	err := l.flushLocked()
	l.closed = true
	l.removeCrashFile()
	return errors.Join(err, l.db.Close())
}
