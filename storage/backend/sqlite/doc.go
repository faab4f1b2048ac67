// Package sqlite is the embedded default storage backend: the logical
// schema of package backend (format version 4) in one SQLite file, laid
// out like neoppod's SQLite backend.
//
// Data source names ([ParseDSN]): "sqlite:///abs/path.db",
// "sqlite://rel/path.db", neoppod's "file:PATH?k=v" with the keys
// cache_size, journal_mode and synchronous (cksumvfs=0 only), or a plain
// path, "~" expanded. The file is locked against other processes (Go or
// Python) by binding the abstract Unix socket
// "\x00neostorage:<st_dev>:<st_ino>" as neoppod does, and SQLite's
// unix-excl VFS holds the file's lock until close, keeping the WAL index
// in the process's memory (no -shm file): no other process, not even the
// sqlite3 shell, can read the database while it is open.
//
// The file is interchangeable with neoppod's: TestReadNeoppodDatabase
// opens one written by a real neoppod storage and TestPythonReadsOurDatabase
// has neoppod read ours. Opening a neoppod database switches it to WAL
// mode, which persists (neoppod's SQLite adapter works in that mode too).
//
// # Connections
//
// One connection writes (SQLite has one writer anyway), serialised by a
// mutex; a pool of four connections reads. In WAL mode readers never wait
// for the writer and see the last commit. An unlock is deferred (below);
// a read that could see it commits it first. Loads are single
// prepared statements that also fetch the next serial, so that a record
// and its next_serial come from one snapshot.
//
// # Durability
//
// journal_mode=WAL. Commits the protocol needs durable (lock, a vote
// without metadata, validate, configuration and partition table,
// truncate) run with synchronous=FULL: the WAL is synced (fdatasync(2),
// as SQLite's Linux builds do: data and file size, not timestamps) before
// the commit returns, so an acknowledged transaction survives kill -9 and
// power loss. Other commits (a vote with metadata, unlock, abort,
// replication, pack, drop) switch the connection to synchronous=NORMAL:
// they reach the OS at commit, hence survive a process crash, and are
// synced with the next FULL commit or checkpoint, since the WAL is
// written in order. So one commit syncs once per node, at lock, where
// the metadata's ttrans row changes (backend's doc says why the vote may
// wait). A power loss can only cut the WAL at a frame boundary checked by
// its checksums, i.e. lose a suffix of commits; a lost unlock leaves its
// locked ttrans row, which verification replays (cluster.md §6.10).
// Hence an unlock is not even committed at once, as on MySQL
// (sqlbackend.Unlocks): its statements run first in the next write
// transaction (the next vote, usually), or within a second by a timer,
// or when a read needs them (a load or conflict check of one of their
// oids, any other read of the tables), or at Close. A small commit is
// then two SQLite transactions per storage (vote, lock) instead of three.
// "?synchronous=NORMAL" in the data source name trades power-loss safety
// of the lock for speed; kill -9 safety remains.
//
// # Driver
//
// modernc.org/sqlite (pure Go, v1.62.0) rather than mattn/go-sqlite3
// (cgo, v1.14.53). BenchmarkDriver runs the backend benchmarks of package
// backendtest with both:
//
//	go test -tags sqlitebench -run '^$' -bench Driver -benchtime 300x -count 4 ./storage/backend/sqlite
//
// Medians of 6 runs (benchstat) on the 2-core machine while other
// builds and clusters ran on it (load average 13-15): wall time is noisy,
// so cpu-ns/op (process user+sys CPU per op) is reported too.
//
//	                       wall/op            cpu/op
//	                       modernc  mattn     modernc  mattn
//	Commit/1x1KiB          1.58ms   4.98ms    0.99ms   1.82ms
//	Commit/10x4KiB         4.69ms   7.41ms    2.12ms   3.15ms
//	Commit/10x1-4KiB       3.75ms   7.15ms    2.11ms   3.36ms
//	Load/hot               45µs     85µs      28µs     39µs
//	Load/random            35µs     67µs      40µs     42µs  (~)
//	LoadBefore/random      64µs     41µs      69µs     44µs  (~, p=0.07)
//	ReplicationFetch/1000  36ms     82ms      28ms     45ms
//
// A commit was then bound by two fsyncs (vote, lock); the cgo driver brings
// no gain on our access pattern (it costs more CPU per commit here), and a
// pure-Go driver keeps CGO_ENABLED=0 builds and cross-compilation working.
package sqlite
