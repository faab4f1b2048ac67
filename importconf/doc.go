// Package importconf reads the configuration file of the Importer
// storage backend: neoppod's importer.conf, unchanged (cluster.md §8.10).
//
// The file is an INI file, read as Python's configparser reads it
// (sections in brackets, "key = value" or "key: value", option names
// lower-cased, values continued on more indented lines, "#" and ";"
// comment lines, %(name)s interpolation, a DEFAULT section inherited by
// every other):
//
//	[neo]                      the destination: the real backend
//	adapter=SQLite             MySQL (the default), SQLite
//	database=/srv/neo/db.sqlite
//	compress=zlib=6            true (default), false, zlib or zlib=1..9
//	writeback=false            copy new transactions back to the source
//
//	[root]                     a source database: the one without oid=
//	storage=                   a ZConfig storage section
//	  <filestorage>
//	    path /srv/zodb/Data.fs
//	  </filestorage>
//	foo=421                    mount point: references to oid 421 here
//	                           go to the root object of section foo
//	[foo]
//	oid=123                    the mounted object, in this database
//	storage=
//	  <filestorage>
//	    path /srv/zodb/foo.fs
//	  </filestorage>
//
// [Parse] and [Load] return a typed [Config], validated: one root
// database, every other one mounted from a database reachable from the
// root, writeback with a single source, FileStorage sources only (the
// storage snippet is parsed with ZConfig's syntax and ZODB's
// <filestorage> keys; any other storage type is an error that says so).
// Errors are [*Error]s naming the file, the line, the section and the
// key.
//
// [Config.Setup] computes the oid renumbering of each source, as a
// [pickleref.Shift] for its records, the way neoppod does on the first
// start of the import.
//
// Numbers are decimal, as Python's int() reads them. Options of the
// first section that the importer does not use are kept in
// [Main.Unknown] rather than refused, since neoppod ignores them.
package importconf
