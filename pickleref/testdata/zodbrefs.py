"""ZODB's side of pickleref's tests: records written by ZODB's own
serializer, and the check of rewritten records with ZODB's unpickler.

  zodbrefs.py gen     JSON lines {"name", "proto", "record", "referencesf"}:
                      records of a two-database ZODB ("main", "other") with
                      references of every form, at protocol 3 (ZODB 5/6) and
                      as Python 2 wrote them (protocols 1 and 2: oids and
                      names as str)
  zodbrefs.py fs PATH MB
                      writes a Data.fs of about MB MiB, an application's
                      history: a BTree of documents (mappings of text,
                      with references to other documents, weak ones too),
                      created then edited; prints per data record a line
                      {"oid", "tid", "referencesf"} (hex)
  zodbrefs.py check   reads JSON lines {"name", "orig", "new", "offset",
                      "mount": {oid: oid}, "merge": {db: offset}} (hex
                      bytes and oids) and prints one line per record: "ok
                      NAME" or "FAIL NAME: why". The new record must give
                      ZODB's referencesf the mapped oids, and unpickle to
                      the same values as the original with its references
                      mapped.
"""

import io
import json
import struct
import sys

import transaction
import ZODB
import ZODB.serialize
from BTrees.Length import Length
from BTrees.OOBTree import OOBTree
from persistent import Persistent
from persistent.list import PersistentList
from persistent.mapping import PersistentMapping
from persistent.wref import WeakRef
import zodbpickle.pickle
from zodbpickle import pickle_3 as zpickle
from ZODB.utils import p64, u64


class NewArgs(Persistent):
    """Referenced by a bare oid: its class has __getnewargs__."""

    def __init__(self, x=0):
        self.x = x

    def __getnewargs__(self):
        return (self.x,)


class Py2Pickler(zpickle._Pickler):
    """Pickles bytes and ASCII text as Python 2 str, as ZODB < 5.4 did."""

    dispatch = dict(zpickle._Pickler.dispatch)

    def save_py2str(self, orig, pack=struct.pack):
        obj = orig
        if isinstance(obj, str):
            obj = obj.encode('ascii')
        n = len(obj)
        if n < 256:
            self.write(b'U' + bytes([n]) + obj)
        else:
            self.write(b'T' + pack('<i', n) + obj)
        self.memoize(orig)

    dispatch[bytes] = save_py2str
    dispatch[str] = save_py2str


def records(objs):
    """Yields (name, proto, record) for each object, in three eras."""
    for name, obj in objs:
        w = ZODB.serialize.ObjectWriter(obj)
        yield name, 3, w.serialize(obj)
        for proto in (1, 2):
            w = ZODB.serialize.ObjectWriter(obj)
            p = Py2Pickler(w._file, proto)
            p.persistent_id = w.persistent_id
            w._p = p
            yield name, proto, w.serialize(obj)


def gen():
    main = ZODB.DB(None, database_name='main')
    other = ZODB.DB(None, database_name='other', databases=main.databases)
    c = main.open()
    oc = c.get_connection('other')
    root = c.root()
    a = PersistentMapping({'x': 1})
    b = NewArgs(7)
    far = PersistentMapping({'far': True})
    farnew = NewArgs(9)
    oc.root()['far'] = far
    oc.root()['farnew'] = farnew
    oc.add(far)
    oc.add(farnew)
    root['a'] = a
    root['b'] = b
    root['w'] = WeakRef(a)
    root['m'] = far
    root['n'] = farnew
    root['wx'] = WeakRef(far)
    root['again'] = a
    tree = OOBTree()
    for i in range(200):
        tree['k%03d' % i] = PersistentMapping({'i': i}) if i % 50 == 0 else i
    root['tree'] = tree
    root['len'] = Length(3)
    root['list'] = PersistentList([a, b, a, WeakRef(b)])
    transaction.commit()
    # The oid string itself in the data (an application keeping _p_oid):
    # the same bytes object as in the reference, shared through the memo.
    holder = PersistentList()
    holder.append(a)
    holder.append(a._p_oid)
    root['holder'] = holder
    transaction.commit()
    objs = [('root', root), ('a', a), ('b', b), ('tree', tree),
            ('list', root['list']), ('holder', holder), ('len', root['len'])]
    bucket = tree._firstbucket
    if bucket is not None:
        objs.append(('bucket', bucket))
    for name, proto, rec in records(objs):
        print(json.dumps({
            'name': '%s/p%d' % (name, proto), 'proto': proto,
            'record': rec.hex(),
            'referencesf': [o.hex() for o in ZODB.serialize.referencesf(rec)],
        }))


def fs(path, mb):
    import random
    from ZODB.FileStorage import FileStorage
    rng = random.Random(1)
    storage = FileStorage(path, create=True)
    db = ZODB.DB(storage)
    c = db.open()
    root = c.root()
    tree = root['docs'] = OOBTree()
    docs = []
    words = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta']
    while storage.getSize() < mb << 20:
        for _ in range(50):
            if docs and rng.random() < 0.5:
                d = rng.choice(docs)
            else:
                d = PersistentMapping()
                tree['doc%08d' % len(docs)] = d
                docs.append(d)
            d['title'] = ' '.join(rng.choice(words) for _ in range(5))
            d['body'] = ' '.join(rng.choice(words) for _ in range(rng.randrange(10, 150)))
            d['n'] = rng.randrange(1 << 30)
            if len(docs) > 1:
                d['see'] = [rng.choice(docs) for _ in range(3)]
                d['weak'] = WeakRef(rng.choice(docs))
        transaction.commit()
    db.close()
    for txn in FileStorage(path, read_only=True).iterator():
        for r in txn:
            if r.data:
                print(json.dumps({'oid': r.oid.hex(), 'tid': r.tid.hex(),
                                  'referencesf': [o.hex() for o in ZODB.serialize.referencesf(r.data)]}))


def asbytes(oid):
    return oid.encode('ascii') if isinstance(oid, str) else oid


def normalize(pid, mapped):
    """A comparable form of a persistent id, its oids mapped."""
    if isinstance(pid, (bytes, str)):
        return ('oid', mapped(None, asbytes(pid))[0])
    if isinstance(pid, tuple):
        oid, klass = pid
        new, keep = mapped(None, asbytes(oid))
        return ('oidc', new, klass) if keep else ('oid', new)
    if len(pid) == 1:
        return ('legacy', mapped(None, asbytes(pid[0]))[0])
    kind, args = pid
    if kind == 'w':
        db = args[1] if len(args) > 1 else None
        new, _ = mapped(db, asbytes(args[0]))
        return ('w', new) if db is None or mapped(db, None) else ('w', new, db)
    if kind == 'm':
        db, oid, klass = args
        new, _ = mapped(db, asbytes(oid))
        return ('oidc', new, klass) if mapped(db, None) else ('m', db, new, klass)
    if kind == 'n':
        db, oid = args
        new, _ = mapped(db, asbytes(oid))
        return ('oid', new) if mapped(db, None) else ('n', db, new)
    raise ValueError('unknown reference %r' % (pid,))


def identity(db, oid):
    if oid is None:
        return False
    return oid, True


def mapper(offset, mount, merge):
    def mapped(db, oid):
        if oid is None:  # is db merged into the local database?
            return db in merge
        if db is None:
            if oid in mount:
                return mount[oid], False
            return p64(u64(oid) + offset), True
        if db in merge:
            return p64(u64(oid) + merge[db]), True
        return oid, True
    return mapped


def load(record, mapped):
    f = io.BytesIO(record)
    # Python 2 str as ZODB < 6 read them on Python 3 (pickle-refs.md §2).
    u = zodbpickle.pickle.Unpickler(f, encoding='ASCII', errors='bytes')
    u.persistent_load = lambda pid: normalize(pid, mapped)
    klass = u.load()
    state = u.load()
    if f.read():
        raise ValueError('bytes after the state pickle')
    return klass, state


def referencesf(record):
    """ZODB's referencesf; for Python 2 str oids that are not ASCII, which
    ZODB 6 no longer reads, the same with errors='bytes' as ZODB 5 did."""
    try:
        return ZODB.serialize.referencesf(record)
    except UnicodeDecodeError:
        pass
    refs = []
    u = zodbpickle.pickle.Unpickler(io.BytesIO(record), encoding='ASCII',
                                    errors='bytes')
    u.persistent_load = refs.append
    u.noload()
    u.noload()
    oids = []
    for ref in refs:
        if isinstance(ref, tuple):
            ref = ref[0]
        elif isinstance(ref, list):
            continue
        oids.append(asbytes(ref))
    return oids


def check():
    for line in sys.stdin:
        t = json.loads(line)
        name = t['name']
        orig, new = bytes.fromhex(t['orig']), bytes.fromhex(t['new'])
        mount = {bytes.fromhex(k): bytes.fromhex(v)
                 for k, v in t.get('mount', {}).items()}
        mapped = mapper(t.get('offset', 0), mount, t.get('merge', {}))
        try:
            want = []
            for o in referencesf(orig):
                want.append(mount.get(o) or p64(u64(o) + t.get('offset', 0)))
            got = referencesf(new)
            # References made local by a merge are strong ones now.
            if not t.get('merge') and got != want:
                raise AssertionError('referencesf %s, want %s'
                                     % ([o.hex() for o in got], [o.hex() for o in want]))
            a = load(orig, mapped)
            b = load(new, identity)
            if a != b:
                raise AssertionError('unpickled %r, want %r' % (b, a))
        except Exception as e:
            print('FAIL %s: %s: %s' % (name, type(e).__name__, e))
        else:
            print('ok %s' % name)


if __name__ == '__main__':
    if sys.argv[1] == 'fs':
        fs(sys.argv[2], int(sys.argv[3]))
    else:
        {'gen': gen, 'check': check}[sys.argv[1]]()
