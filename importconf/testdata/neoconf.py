"""neoppod's reading of an importer.conf, for importconf's tests.

  neoconf.py FILE...   prints per file one JSON line: {"error": "..."} if neoppod
                    refuses the file, else what it read: the main
                    options, and per source its oid, mount points (in
                    setup order) and ZConfig storage values.

  neoconf.py setup FILE NAME=COUNT...
                    creates the FileStorage of each source NAME with COUNT
                    objects (oids 0 to COUNT-1), then runs neoppod's oid
                    mapping setup and prints {NAME: {"shift", "next",
                    "mapping": {oid: oid}}} and "loid".

It runs neoppod's own ImporterDatabaseManager._parse, the backend lookup
of _connect, ZODB's storage schema through ZConfig, and the checks of
the oid mapping setup (one root, every database mounted from it),
without opening any database.
"""

import json
import sys
from io import StringIO

from neo.storage.database import getAdapterKlass
from neo.storage.database.importer import ImporterDatabaseManager
from ZConfig import loadConfigFile
from ZODB.config import getStorageSchema


def read(path):
    d = ImporterDatabaseManager.__new__(ImporterDatabaseManager)
    d._parse(path)
    conf = d._conf
    getAdapterKlass(conf['adapter'])
    conf['database']  # _connect needs it
    compress = d.compress
    if compress is True or compress is False:
        compress = {'enabled': compress, 'level': 0}
    else:
        compress = {'enabled': True, 'level': compress[1] or 0}
    main = {'adapter': conf['adapter'], 'database': conf['database'],
            'engine': conf.get('engine', ''), 'wait': float(conf['wait']),
            'compress': compress, 'writeback': bool(d._writeback)}
    sources = []
    byname = {}
    for name, kw in d.zodb:
        kw = dict(kw)
        storage = kw.pop('storage')
        oid = int(kw.pop('oid', 0))
        mounts = [[k, int(v)] for k, v in kw.items()]
        config, _ = loadConfigFile(getStorageSchema(), StringIO(storage))
        c = config.storage.config
        g = lambda k: getattr(c, k, None)
        s = {'name': name, 'oid': oid, 'mounts': mounts,
             'type': type(config.storage).__name__,
             'path': g('path'), 'read_only': bool(g('read_only')),
             'quota': g('quota') or 0, 'packer': g('packer') or '',
             'pack_gc': bool(g('pack_gc')), 'pack_keep_old': bool(g('pack_keep_old')),
             'blob_dir': g('blob_dir') or '', 'create': bool(g('create'))}
        sources.append(s)
        byname[name] = s
    # ImporterDatabaseManager.setup and ZODB.setup, without the storages.
    root, = (s for s in sources if not s['oid'])
    done = set()

    def walk(s):
        done.add(s['name'])
        for name, _ in s['mounts']:
            m = byname[name]
            if m['name'] not in done:
                walk(m)
    walk(root)
    for s in sources:
        if s['name'] not in done:
            raise AttributeError("%s is never set up (no shift_oid)" % s['name'])
    return {'main': main, 'sources': sources}


def setup(path, counts):
    import transaction
    import ZODB as ZODBdb
    from persistent.mapping import PersistentMapping
    from ZODB.FileStorage import FileStorage
    from neo.storage.database.importer import ZODB
    d = ImporterDatabaseManager.__new__(ImporterDatabaseManager)
    d._parse(path)
    for name, kw in d.zodb:
        config, _ = loadConfigFile(getStorageSchema(), StringIO(kw['storage']))
        db = ZODBdb.DB(FileStorage(config.storage.config.path))
        c = db.open()
        r = c.root()
        for i in range(int(counts[name]) - 1):
            r[i] = PersistentMapping()
        transaction.commit()
        db.close()
    zodb = {k: ZODB(**v) for k, v in d.zodb}
    x, = (x for x in zodb.values() if not x.oid)
    x.setup(zodb)
    top = max(zodb.values(), key=lambda x: x.shift_oid)
    return {'loid': top.shift_oid + top.next_oid - 1, 'dbs': {
        k: {'shift': x.shift_oid, 'next': x.next_oid,
            'mapping': {str(a): b for a, b in x.mapping.items()}}
        for k, x in zodb.items()}}


if __name__ == '__main__':
    if sys.argv[1] == 'setup':
        print(json.dumps(setup(sys.argv[2], dict(a.split('=') for a in sys.argv[3:]))))
        sys.exit()
    for path in sys.argv[1:]:
        try:
            out = read(path)
        except Exception as e:
            out = {'error': '%s: %s' % (type(e).__name__, e)}
        print(json.dumps(out))
