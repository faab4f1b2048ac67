// Package filestorage reads and writes ZODB FileStorage files (Data.fs),
// byte-compatible with ZODB's own FileStorage: the format a ZODB site
// imports into NEO and exports back to (../shared/spec/filestorage.md).
//
// A Data.fs is a 4-byte magic ("FS30", or "FS21" from Python 2) followed
// by transaction records, each holding its metadata and the data records
// of the objects it changed:
//
//	 magic   transaction                                   transaction
//	+------+-----------------------------------------------+----------...
//	| FS30 | header | user | descr | ext | data records | tlen | ...
//	+------+-----------------------------------------------+----------...
//	        ^ T                          ^ T+H            ^ T+tlen
//
//	data record: oid | tid | prev | tloc | vlen | plen | data (plen bytes)
//	                                                   | or back-pointer (8)
//
// The redundant tlen at the end of each transaction lets the file be
// walked backwards. A data record points to the previous record of its
// object (prev), so that, from an index oid -> latest record, every
// revision is reachable. A record without data holds a back-pointer to
// an older record of the same object whose data it shares (undo), or 0
// for a deletion ("creation undone").
//
// [Open] opens a file and builds that index (from Data.fs.index when it
// is valid, else by scanning), stopping before an incomplete or
// unfinished last transaction left by a crash (see [Tail]). The [Index]
// is laid out as ZODB's fsIndex, 8 to 9 bytes an object;
// [Options.NoIndex] keeps none, for readers that only stream. [Storage]
// answers [Storage.Load], [Storage.LoadBefore] and [Storage.LoadSerial],
// and iterates over transactions forward or backward ([TxnIter]),
// reading sequentially through a bounded window. [Storage.Begin]
// appends a transaction with ZODB's commit discipline (status 'c',
// fsync, flip, fsync); what it writes is byte for byte what ZODB's
// copyTransactionsFrom writes. [Verify] makes fstest's checks.
//
// The tests compare all of this with ZODB itself: testdata/zodbfs.py
// drives ZODB's FileStorage (make integration).
//
// format.go and pickle.go are pure (headers, the .index pickles); the
// rest does the file I/O. Errors about the content of a file are
// [*CorruptError]s naming the file and offset; nothing in a file makes
// this package panic.
package filestorage
