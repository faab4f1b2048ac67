# Reads a database written by a Go backend with neoppod's backend of the
# same adapter (SQLite by default, or argv[2]) and prints what it sees
# (backendtest.PyRead: TestPythonReadsOurDatabase of packages sqlite and
# mysql).
import sys
from neo.storage.database import buildDatabaseManager
from neo.lib.util import p64, u64, dump
dm = buildDatabaseManager(sys.argv[2] if len(sys.argv) > 2 else 'SQLite', (sys.argv[1],))
dm.setup()
print("version", dm.getConfiguration('version'), "nid", dm.getUUID(), "name", dm.getName(), "ptid", dm.getPTID())
print("pt", dm.getPartitionTable())
dm._updateReadable()
print("locked", {u64(k): v and u64(v) for k, v in dm.getUnfinishedTIDDict().items()})
for oid, tid, before in [(1, None, None), (1, 0x20, None), (1, None, 0x30), (2, None, None), (2, 0x10, None), (9, None, None)]:
    r = dm.getObject(p64(oid), tid and p64(tid), before and p64(before))
    if r and r is not None and not isinstance(r, bool):
        serial, next_serial, compression, checksum, data, data_serial = r
        print("obj", oid, hex(u64(serial)), next_serial and hex(u64(next_serial)), compression, data, data_serial and hex(u64(data_serial)))
    else:
        print("obj", oid, r)
print("lastids", [x and hex(u64(x)) for x in dm.getLastIDs()])
t = dm.getTransaction(p64(0x30))
print("trans", t)
print("history", [(hex(u64(a)), b) for a, b in dm.getObjectHistoryWithLength(p64(1), 0, 10)])
print("check", dm.checkTIDRange(1, 10, p64(0), p64(0x7fffffffffffffff)))
dm.close()
