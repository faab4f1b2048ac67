// Package importer is the Importer storage backend (cluster.md §8.10): a
// storage node serves ZODB FileStorage databases (Data.fs) at once, while
// they are imported in the background into its real backend.
//
// The configuration is neoppod's importer.conf (package importconf): the
// first section names the destination backend (SQLite or MySQL), the others
// the source databases, merged into one oid space with the renumbering of
// package pickleref when there are several.
//
// Reads. The sources are read-only and hold every revision up to ltid,
// their last tid; the destination holds what is imported, always a prefix
// in tid order, and what clients committed since the node started, with
// tids above ltid. A read of a revision up to ltid is answered from the
// source until the import is done, imported or not: its data, and the
// serial of the next revision from the source too (or the first new
// commit), so that an answer never depends on how far the import got.
// neoppod reads its destination first and has two faults there, which
// tests here pin down: a deletion or "creation undone" not yet imported
// after an imported revision, and an imported revision whose successor is
// not imported yet, reported as the latest (a client then caches it as
// current). See loadPlan and nextSerial, which are pure. The oids voted
// since the import began are tracked (newOids): a read of any other goes
// to the source alone, without asking the destination first.
//
// Import. A goroutine iterates the sources' transactions after the last
// one imported, merged by tid (nextTid), repickles and compresses the
// records, and commits them in batches (BatchBytes, CommitInterval)
// through [backend.BulkImporter], each commit also recording the last tid
// it holds: a restart, even after kill -9, resumes after it, with nothing
// lost or written twice. The renumbering computed at the first start is
// kept in the destination too (config "zodb", as neoppod's config.zodb);
// clearing it and restarting imports the transactions the sources got
// since (incremental mode). Progress goes to the log every
// ProgressInterval; the end logs "All data are imported".
//
// Writeback (writeback=true, a single source): the transactions committed
// to the node are appended to the source Data.fs after each commit, in
// the background, as ZODB's copyTransactionsFrom writes them; Close makes
// a last pass. The setup keeps ltid, so they are not imported back.
//
// While importing, Transaction, TIDsFrom (a client's iterator) and TIDs
// (AskTIDs, newest first) see the transactions not imported yet in the
// sources. History, undo lookups,
// pack and serving as a replication source answer BACKEND_NOT_IMPLEMENTED;
// truncation below ltid, or with writeback, is refused.
//
// import_rate, an option of the first section that neoppod ignores, caps
// the bytes of source read per second (0, the default: no cap). The
// import's goroutines run on threads of their own at nice 19.
//
// Speed (scripts/importer-bench, a 1.15 GB Data.fs of 65,081 transactions
// and 342,171 objects, on this project's 2-CPU machine shared with other
// work, load average 17-24, 2026-12-07; neoppod's run on the same file
// just before ours): ours 109.8 s, 10.5 MB/s, 24.7 CPU s of the storage
// (46.7 MB per CPU second); neoppod's Importer 1750.1 s, 0.7 MB/s, 210.1
// CPU s (5.5 MB per CPU second): 15.9x in wall time, 8.5x in CPU. The
// import's threads run at nice 19, so on a loaded machine its wall time
// is what the other processes leave it: two runs minutes later, at load
// average 7-10, took 24.3 and 30.2 s (47.5 and 38.2 MB/s, 53.6 and 53.0
// MB per CPU second), and on the machine idle for once (load average
// 0.1-0.6) 15.7 s: 73.4 MB/s, 22.0 CPU s, so 1.4 of the 2 CPUs busy on
// average: Go shared the CPUs evenly between the compressors and the
// writer, the one stage that cannot spread, so it ran on 2/3 of a CPU
// (now cpuTokens), and its commits rewrote obj's leaves more often (now
// 16 MiB batches). Since (2026-12-08, load average 5-7): 19.5 and 20.8
// s, 59.0 and 55.4 MB/s, 20.8 and 21.5 CPU s (55.4 and 53.5 MB per CPU
// second), peak anonymous RSS 144-147 MB (the batches in the pipeline);
// not measured idle, but BenchmarkImport at load 3.5 took 13.3 s (86.8
// MB/s) where the code before took 17.0 s. Since the background
// checkpoints (sqlite's importCkpt), data rows inserted OR FAIL and
// batch-sized argument slices, BenchmarkImport took 10.8 and 10.7 s
// (107 MB/s, 63 MB per CPU second, ~198 MB per writer CPU second) at
// load average 2.9-3.1 (2026-12-08), and 11.0-11.3 s (102-106 MB/s)
// at load 1.5-2.4 with unbuffered stages, which brought the benchmark
// process's peak RSS from 164-177 MB to 129-136 MB. Alternated with the
// code before these at load 4-4.6, the wall time was the same (medians
// 14.2 and 14.1 s), the writer's CPU 16% less (161.6/168.0/154.7 ->
// 195.4/185.6/180.1 MB per writer CPU second): the commits no longer set
// the pace, the compressors do. Where the CPU goes (BenchmarkImport, 1.15
// GB, compress=true, 17-18 CPU s, pprof): zlib about half (level 1;
// HuffmanOnly would take 20% less CPU overall and store 15% more;
// klauspost's stateless deflate no less than level 1), the commits about
// a third (5.9 s: 7.5 s of wall time in them, of which 0.85 s waiting
// for the checkpoint that lets SQLite restart the WAL every 4 commits;
// every 8 halved that wait but was no faster; 3 s waiting for compressed
// batches, the compressors being the bound), the background
// checkpoints 1.3 s, reading 6%. The commits'
// share: obj's inserts (its primary key (partition, oid, tid) takes
// updated oids all over the table) and data's, of both a good part
// writing WAL frames, hence importPageSize. Loads during the import
// as fast as after it (p50 0.24 and 0.39 ms through neoppod's client;
// neoppod's: 1.98 and 0.31); peak anonymous RSS 109 MB with 8 MiB
// batches (neoppod's 108).
package importer
