"""neoppod's reading of an importer.conf, for importconf's tests.

  neoconf.py FILE...   prints per file one JSON line: {"error": "..."} if neoppod
                    refuses the file, else what it read: the main
                    options, and per source its oid, mount points (in
                    setup order) and ZConfig storage values.

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


if __name__ == '__main__':
    for path in sys.argv[1:]:
        try:
            out = read(path)
        except Exception as e:
            out = {'error': '%s: %s' % (type(e).__name__, e)}
        print(json.dumps(out))
