// Package mysql is the MySQL (MariaDB) storage backend: the logical schema
// of package backend (format version 4) in a database of a MySQL server,
// with the tables and column types of neoppod's MySQL backend, so that a
// database is interchangeable with it (cluster.md §8.1–8.4).
//
// Data source names ([ParseDSN]): "mysql:" followed by neoppod's
// --database syntax, [user[:password]@]database[socket], the unix socket
// path starting with "/", "." or "~" (without it, the driver's default
// TCP address). The database must exist; an empty one gets the schema,
// created with the engine of [backend.Options] (InnoDB, or RocksDB with
// neoppod's column families). The server's max_allowed_packet must be at
// least 32769 KiB, as neoppod requires.
//
// # Connections and locking
//
// One connection writes, serialised by a mutex; it holds the lock
// GET_LOCK('<database>.neostorage') that keeps two storage processes (Go
// or Python) off one database. A pool of four connections reads, in
// autocommit mode: each statement sees the last commit. An unlock is
// deferred (below); a read that could see it commits it first.
// Queries carry their arguments inline (the driver's interpolateParams):
// one round trip each, where server-side prepared statements cost three.
// The commit path goes further (batchTx, on the write connection that
// allows multi-statements): a vote of plain records, a lock or an unlock
// is BEGIN, its statements and COMMIT in one round trip, a query sending
// what is pending first. On a loaded machine every round trip wakes a
// server thread, and that, more than the redo log's fsync, made a small
// commit slow.
//
// # Durability
//
// Every Backend call that writes is one transaction, but for
// UnlockTransaction: an unlock need not be durable (cluster.md §6.10:
// verification replays a lost one from its locked ttrans row), so its
// statements wait in memory and go first in the next write transaction,
// committed with it, or within a second by a timer, or when a read needs
// them (a load or conflict check of one of their oids, any other read of
// the tables), or at Close. A small commit is then two InnoDB commits per
// storage (vote, lock) instead of three. When the server loses the write
// connection, the next write sends them again on the new one: the lock
// committed their rows, and their statements do nothing if they were
// committed after all. InnoDB with the server's
// innodb_flush_log_at_trx_commit=1 (its default) syncs the redo log at
// each commit, so everything the durability contract of package backend
// asks is durable when it returns; a lower setting trades that for speed,
// on the server's side.
//
// # Server gone
//
// When the server closes the write connection (restart, kill, timeout),
// the call in progress fails: what it wrote is lost with the server's
// session, and the storage node reacts as to any failed write. The next
// write connects again (up to 3 tries, and takes the lock again) before
// it writes anything, as neoppod does when nothing is uncommitted;
// readers get a new pooled connection by themselves.
//
// # Values of 16 MiB or more
//
// data.value is a MEDIUMBLOB (< 16 MiB): a bigger value is split in rows
// of 8 MiB of table bigdata with consecutive ids, and data.value holds
// the first id and the length (two big-endian 32-bit integers), with
// flag 0x80 in data.compression (cluster.md §8.3).
//
// # Shared code
//
// The queries that read and write the schema the same way as the SQLite
// backend are package sqlbackend's (with a Dialect: index hints, no
// DELETE … RETURNING, bigdata pruned with data); this package has the
// connections, the schema's DDL, votes (multi-row INSERTs cut to fit
// max_allowed_packet), data storage and loads.
//
// # Tests
//
// The tests need a server: NEO_MYSQL_SOCKET names a running one (root,
// empty password), else with NEO_PEERS set TestMain starts a private one
// with ../shared/peers/mariadb.sh; `make mysql` does the former for this
// package and cmd/neostorage. The conformance suite of package backendtest
// runs on InnoDB, and on RocksDB when the server has it.
//
// # Measured
//
// scripts/neobench, our cluster and neoppod's on the same MariaDB 10.11
// server (2 storages, 1 replica, 12 partitions, InnoDB with
// innodb_flush_log_at_trx_commit=1), 3 rounds, medians (ratio: median of
// the per-round ratios, and their range), on the 2-core machine shared
// with other work (load average 23-27 during the run):
//
//	NEO_ADAPTER=MySQL NEO_DB_SOCKET=$S NEOBENCH_ROUNDS=3 scripts/neobench -n 5000 -l 2000 -c 500 -w 0
//
//	                     Go/MariaDB   neoppod/MariaDB  ratio (range)
//	populate objects/s       1206          183          7.23 (5.90..8.14)
//	cold loads/s, 1 thr      3339          250         13.4  (13.4..24.6)
//	cold loads/s, 4 thr      6546          310         21.1  (15.6..22.8)
//	small commits/s          49.2         36.1          1.38 (1.35..2.10)
//	small commit p50, ms     13.4         19.4          0.69 (0.49..0.77)
//
// (The previous session, at load 12-15: populate 6.05, cold loads 21.9
// and 27.3, small commits 0.98, with the unlock committed at once.)
//
// Per one-object commit (SHOW GLOBAL STATUS deltas over neobench -n 500
// -c 500, both storages; populate's 5 commits included): ours 4.00 InnoDB
// commits (Com_commit) and 4.41 data fsyncs, neoppod's 3.99 and 4.44;
// before the unlock was deferred, ours 5.99 and 6.24. That is the floor
// of cluster.md §6.10 on each storage holding the transaction's metadata:
// the vote is committed before its answer and the lock's tid before its
// own, two durable commits one after the other, as neoppod's; only the
// unlock may wait. A small commit therefore waits for two redo log syncs
// on each storage in both implementations, and what is left to win over
// neoppod is the rest of its path (its nodes' CPU per small commit: ours
// 2.6 ms, neoppod's 4.1 ms in that run). A/B of the deferred unlock alone
// (scripts/neobench -n 1000 -l 200 -c 500 -w 0 with ZBENCH_SYSTEMS=go,
// the binaries before and after, alternately, 3 rounds each, load 17-21):
// p50 10.5 -> 6.5 ms, our nodes' CPU per commit 3.0 -> 2.2 ms, commits/s
// 62 -> 74 (medians; commits/s varied 26..97 with the load). Sending
// each commit's statements in one round trip (batchTx) had taken our
// nodes' CPU per small commit from 5.0 to 2.5 ms and its p50 from 26 to
// 16 ms.
//
// # Deferred deletions
//
// neoppod may leave data ids to prune in table todel; opening the
// database prunes them (the rows no record references are deleted).
// This backend prunes data in the transaction that drops references.
package mysql
