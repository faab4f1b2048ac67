// Package pickleref finds and renumbers the persistent references inside
// ZODB object records, without importing any application class
// (../shared/spec/pickle-refs.md). It is what the Importer backend needs
// to merge databases with oid offsets (cluster.md §8.10), and what an
// import check needs to list the objects a record points to.
//
// A record is two pickles back to back, the class description then the
// state, decoded with one shared memo. A reference is the operand of a
// BINPERSID (or text PERSID) opcode, the persistent id, in one of these
// forms ([Form]):
//
//	oid                             FormOid          strong, no class hint
//	(oid, class)                    FormOidClass     strong, the usual case
//	['w', (oid,)] ['w', (oid, db)]  FormWeak         persistent weak reference
//	['m', (db, oid, class)]         FormCrossClass   strong, into database db
//	['n', (db, oid)]                FormCross        same, no class hint
//	[oid]                           FormLegacyWeak   old weak reference
//
// [Refs] lists every reference of a record; [References] the strong
// same-database oids only, as ZODB's referencesf. Both run a small pickle
// machine for protocols 0 to 3 (all ZODB ever wrote) that builds nothing:
// strings, tuples, lists and globals are tracked, everything else is an
// opaque value.
//
// [Rewrite] renumbers the references through a [Mapper] (the importer's
// is [Shift]) and leaves every other byte alone. An oid is always an
// 8-byte string, so in the common case the new oid overwrites the old
// one in place and the record keeps its length:
//
//	SHORT_BINBYTES <8 bytes> BINPUT 5 BINGET 0 TUPLE2 BINPUT 6 BINPERSID
//	               ^^^^^^^^ new oid, nothing else moves
//
// That is only correct when every use of that string object is a
// reference that gets the same new oid: the pickler memoizes the oid
// string, and a later BINGET may put it in the object's data, or in a
// reference with another mapping. When it is not the case, or when the
// form of the reference changes (a class hint dropped for a mount point,
// a cross-database reference made local), the new persistent id is
// built from scratch right before the BINPERSID, after a POP of the old
// one:
//
//	... TUPLE2 BINPUT 6 | POP MARK SHORT_BINBYTES <new> BINGET 0 TUPLE | BINPERSID
//
// The old id is still built, so every memo entry keeps its value for
// the rest of the record; the class of the new id is fetched from the
// memo (the pickler always memoizes it) or copied. Unpickled, the
// result is the same structure with the new references.
//
// Limits: protocols 4 and 5, which ZODB never writes, are refused. A
// rebuilt id needs its class hint from the memo or from a copy of the
// opcodes that built it; a class hint produced by a persistent load or
// a REDUCE cannot be copied and gives an error (ZODB writes none). A
// text PERSID that changes is replaced by the binary form.
//
// A [Rewriter] keeps its buffers from one record to the next: the
// importer's loop allocates nothing. On this project's 2-CPU machine,
// reading an application's Data.fs with package filestorage and shifting
// every record runs at 450 to 570 MB/s of records (TestZODBFile); the
// benchmarks give 300 to 450 MB/s on records dense in references (about
// half that while the machine is busy with other work).
//
// Oids that applications store as data (an oid in a catalog, a
// PersistentReference dump) are not references and are never changed:
// no tool can know them.
//
// Malformed input gives an error wrapping [ErrPickle], never a panic.
package pickleref
