"""ZODB's own FileStorage as the oracle of package filestorage's tests.

Run with the peers' Python ($PY from ../shared/peers/env.sh):

  zodbfs.py gen FILE         write FILE (and FILE.index) with ZODB's
                             FileStorage: a real application history
  zodbfs.py dump FILE        ZODB's iterator over FILE, as JSON lines
  zodbfs.py loads FILE       load/loadBefore/loadSerial answers for every
                             oid of FILE, as JSON lines
  zodbfs.py copy SRC DST     DST.copyTransactionsFrom(SRC), ZODB's copy
  zodbfs.py open FILE        open FILE read-write (truncating a bad tail),
                             then close it
  zodbfs.py pack FILE        pack FILE now, with garbage collection
  zodbfs.py crash FILE       commit a transaction to FILE up to its vote,
                             then exit at once: a crash before tpc_finish
  zodbfs.py index FILE       check that FILE.index loads and equals the
                             index ZODB builds by scanning FILE

The JSON lines are what the Go tests produce from our reader (keys in
this order, bytes in hex, data of loads as sha256):
  {"tid", "status", "user", "description", "extension"}    a transaction
  {"oid", "tid", "data", "data_txn"}                        its records
  {"op", "oid", "tid", "result"}                            a load
"""

import hashlib
import json
import os
import sys
import time

import transaction
import ZODB
import ZODB.FileStorage
from BTrees.IOBTree import IOBTree
from BTrees.OOBTree import OOBTree
from persistent import Persistent
from persistent.mapping import PersistentMapping
from ZODB.Connection import TransactionMetaData
from ZODB.POSException import POSKeyError
from ZODB.serialize import referencesf
from ZODB.utils import p64, u64


class Item(Persistent):
    def __init__(self, name, payload=b''):
        self.name = name
        self.payload = payload


class Counter(Persistent):
    def __init__(self):
        self.n = 0


class Folder(Persistent):
    def __init__(self):
        self.children = PersistentMapping()


def commit(user='', note='', **ext):
    t = transaction.get()
    if user:
        t.user = user
    if note:
        t.note(note)
    for k, v in ext.items():
        t.setExtendedInfo(k, v)
    t.commit()


def last_undo_id(db):
    # the undo id of the last transaction (FileStorage: base64 of its tid)
    return db.undoLog(0, 1)[0]['id']


def gen(path):
    st = ZODB.FileStorage.FileStorage(path, create=True)
    db = ZODB.DB(st)
    conn = db.open()
    root = conn.root()
    sizes = [1, 10, 100, 1000, 10000, 100000]

    # 1. the application's structure
    root['tree'] = OOBTree()
    root['ids'] = IOBTree()
    root['counter'] = Counter()
    root['folder'] = Folder()
    root['items'] = PersistentMapping()
    commit('alice', 'initial structure', app='zodbfs', step=1)

    def grow(rounds, base):
        for r in range(rounds):
            # BTree inserts that split buckets
            for k in range(60):
                key = 'k%05d' % (base + r * 60 + k)
                root['tree'][key] = (key * (1 + k % 3)).encode()
                root['ids'][base + r * 60 + k] = key
            root['counter'].n += 1
            # objects of every size, some of them rewritten
            name = 'item%d' % (base + r)
            root['items'][name] = Item(name, b'x' * sizes[(base + r) % len(sizes)])
            if r % 3 == 0:
                for it in list(root['items'].values())[:3]:
                    it.payload = it.payload[:50] + b'%d' % r
            child = Item('child%d' % r, os.urandom(sizes[r % 4]))
            root['folder'].children[str(r)] = child
            kw = {'round': r} if r % 2 else {}
            commit('bob' if r % 2 else '', 'grow %d' % r if r % 4 else '', **kw)

    def undo_some():
        # an undone modification: a back-pointer to the previous state
        it = root['items']['item%d' % 0]
        it.payload = b'to be undone'
        commit('carol', 'modify, then undo')
        db.undo(last_undo_id(db))
        commit('carol', 'undo of the modification')
        # undo of the undo: back to the modified state
        db.undo(last_undo_id(db))
        commit('carol', 'undo of the undo')
        # creation undone: the new object gets a "no data" record
        root['tmp'] = Item('tmp', b'temporary')
        commit('dave', 'create tmp')
        db.undo(last_undo_id(db))
        commit('dave', 'undo of the creation of tmp')
        conn.sync()

    grow(20, 0)
    undo_some()
    time.sleep(0.05)
    pack_time = time.time()
    time.sleep(0.05)
    grow(10, 2000)
    # a pack in the middle of the history, then life goes on
    db.pack(pack_time)
    conn.sync()
    grow(10, 4000)
    undo_some()

    # a deletion through the storage API, of an object no longer referenced
    victim = root['folder'].children['1']
    oid, serial = victim._p_oid, victim._p_serial
    del root['folder'].children['1']
    commit('erin', 'unlink child 1')
    t = TransactionMetaData(b'erin', b'delete child 1')
    st.tpc_begin(t)
    st.deleteObject(oid, serial, t)
    st.tpc_vote(t)
    st.tpc_finish(t)
    conn.sync()
    # a few more revisions of everything
    grow(3, 6000)
    conn.close()
    db.close()  # writes FILE.index


def hx(b):
    return None if b is None else b.hex()


def dump(path):
    st = ZODB.FileStorage.FileStorage(path, read_only=True)
    out = sys.stdout
    for txn in st.iterator():
        out.write(json.dumps({
            'tid': hx(txn.tid), 'status': txn.status,
            'user': hx(txn.user), 'description': hx(txn.description),
            'extension': hx(txn.extension_bytes)}) + '\n')
        for r in txn:
            out.write(json.dumps({
                'oid': hx(r.oid), 'tid': hx(r.tid), 'data': hx(r.data),
                'data_txn': hx(r.data_txn)}) + '\n')
    st.close()


def sha(b):
    return hashlib.sha256(b).hexdigest()


def loads(path):
    st = ZODB.FileStorage.FileStorage(path, read_only=True)
    oids, tids, revs = set(), [], []
    for txn in st.iterator():
        tids.append(txn.tid)
        for r in txn:
            oids.add(r.oid)
            revs.append((r.oid, r.tid))
    befores = [p64(0), p64(u64(tids[-1]) + 1)] + tids + [p64(u64(t) + 1) for t in tids[::3]]
    out = sys.stdout

    def line(op, oid, tid, result):
        out.write(json.dumps({'op': op, 'oid': hx(oid), 'tid': hx(tid), 'result': result}) + '\n')

    for oid in sorted(oids):
        try:
            data, serial = st.load(oid)
            line('load', oid, None, [sha(data), hx(serial)])
        except POSKeyError:
            line('load', oid, None, 'POSKeyError')
        for before in befores:
            try:
                r = st.loadBefore(oid, before)
            except POSKeyError:
                line('loadBefore', oid, before, 'POSKeyError')
                continue
            if r is None:
                line('loadBefore', oid, before, None)
            else:
                line('loadBefore', oid, before, [sha(r[0]), hx(r[1]), hx(r[2])])
    for oid, tid in revs + [(oid, p64(1)) for oid in sorted(oids)[:5]]:
        try:
            line('loadSerial', oid, tid, sha(st.loadSerial(oid, tid)))
        except POSKeyError:
            line('loadSerial', oid, tid, 'POSKeyError')
    st.close()


def copy(src, dst):
    s = ZODB.FileStorage.FileStorage(src, read_only=True)
    d = ZODB.FileStorage.FileStorage(dst, create=True)
    d.copyTransactionsFrom(s)
    d.close()
    s.close()


def open_rw(path):
    ZODB.FileStorage.FileStorage(path).close()


def pack(path):
    st = ZODB.FileStorage.FileStorage(path)
    st.pack(time.time(), referencesf)
    st.close()


def crash(path):
    st = ZODB.FileStorage.FileStorage(path)
    oid = st.new_oid()
    t = TransactionMetaData(b'crash', b'voted, never finished')
    st.tpc_begin(t)
    st.store(oid, p64(0), b'\x80\x03}q\x00.', '', t)
    st.tpc_vote(t)
    sys.stdout.flush()
    os._exit(0)  # no tpc_finish, no close


def check_index(path):
    from ZODB.fsIndex import fsIndex
    from ZODB.FileStorage.FileStorage import read_index
    saved = fsIndex.load(path + '.index')
    st = ZODB.FileStorage.FileStorage(path, read_only=True)
    if saved['pos'] != st._pos:
        sys.exit('index pos %d, file end %d' % (saved['pos'], st._pos))
    index = fsIndex()
    with open(path, 'rb') as f:
        read_index(f, path, index, {}, read_only=1)
    a, b = dict(saved['index'].items()), dict(index.items())
    st.close()
    if a != b:
        sys.exit('index differs: %d entries saved, %d scanned' % (len(a), len(b)))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    {'gen': gen, 'dump': dump, 'loads': loads, 'copy': copy, 'open': open_rw,
     'pack': pack, 'index': check_index, 'crash': crash}[cmd](*args)


if __name__ == '__main__':
    main()
