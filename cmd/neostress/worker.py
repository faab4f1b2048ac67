#!/usr/bin/python3
"""neostress worker: a ZODB application workload through neoppod's
unchanged Python client (neo.client.Storage.Storage + ZODB.DB), and the
helpers cmd/neostress needs on the Python side. cmd/neostress embeds this
file and writes it into its work directory; it is not meant to be run by
hand, but can be (see the modes below).

modes:
  init MASTERS CLUSTER --workers N
      create root['stress'] = {tree: OOBTree, length: Length,
      hot: PersistentMapping{'n': 0}, logs: {'P.T': PersistentList}}
      with N = procs*threads logs named by "P.T" (threads numbered
      per process).
  run MASTERS CLUSTER --proc P --threads T --dir D [options]
      T threads, each with its own transaction.TransactionManager and
      Connection on one DB, run transactions until SIGTERM. Each thread
      appends JSON lines to D/rec-P-T.jsonl (one 'begin' record per
      transaction, then exactly one of 'ack', 'error', 'gaveup'; a
      'conflict' record per ConflictError retry). D/hb-P.json is rewritten
      every second (heartbeat). SIGUSR1 dumps every thread's stack to
      stderr (faulthandler).
  dump MASTERS CLUSTER [--pack-age S]
      with a fresh client: optionally pack at now-S and wait until every
      storage completed it, then print the database state as one JSON
      object.
  ctl ADMIN
      neoppod's neoctl, persistent: reads one JSON list of arguments per
      line, answers one JSON object {"out": ..., "err": ...} per line.
  logscan FILE SINCE
      records (date level message) of a neoppod SQLite log newer than SINCE
      (UNIX time), one JSON list per line.

Transactions (one kind each, picked at random):
  insert  1-3 new keys "P.T.SEQ.I" in the shared OOBTree plus
          Length.change(n): conflicts are resolved by BTrees/Length,
          except bucket splits (BTreesConflictError, retried).
  hot     root['stress']['hot']['n'] += 1: a PersistentMapping has no
          conflict resolution, so concurrent increments raise
          ConflictError and the application retries (the normal ZODB
          retry signal: recorded as 'conflict', not as an error).
  append  SEQ appended to this thread's own PersistentList in 'logs' (no
          conflicts).
  uappend SEQ appended to this thread's own PersistentList in 'ulogs',
          decided at once to be undone or not (half each); no other
          uappend until it is undone or --undo-window old.
  undo    db.undo() of the last uappend, once --undo-delay old (at most
          --undo-window). The delay is what applications get from
          undoLog(), which lists only transactions the storages have
          unlocked: neoppod's storage answers AskTransactionInformation for
          a tid it has not unlocked yet with TidNotFound, so an undo right
          after the commit can fail.
  pack    proc 0 thread 0 only, every --pack-every seconds:
          db.pack(now - --pack-age).

Any exception other than ZODB.POSException.ConflictError (and its
subclasses ReadConflictError, BTreesConflictError...) is an 'error' record
with its traceback; its outcome is 'unknown' when it was raised inside
tpc_finish (the transaction may or may not be committed), 'none' otherwise.
"""
import argparse
import faulthandler
import json
import os
import random
import signal
import sys
import threading
import time
import traceback

MAX_ATTEMPTS = 20
TB_KEEP = 20        # tracebacks recorded per exception type and place
ERROR_PAUSE = 0.05  # after an exception, before the next transaction


def open_db(masters, cluster):
    from neo.client.Storage import Storage
    import ZODB
    st = Storage(master_nodes=masters, name=cluster)
    return st, ZODB.DB(st)


def hexid(b):
    return b.hex() if b else None


def cmd_init(a):
    import transaction
    from BTrees.OOBTree import OOBTree
    from BTrees.Length import Length
    from persistent.mapping import PersistentMapping
    from persistent.list import PersistentList
    st, db = open_db(a.masters, a.cluster)
    try:
        tm = transaction.TransactionManager()
        conn = db.open(transaction_manager=tm)
        tm.begin()
        root = conn.root()
        if 'stress' not in root:
            s = PersistentMapping()
            s['tree'] = OOBTree()
            s['length'] = Length()
            s['hot'] = PersistentMapping({'n': 0})
            s['logs'] = PersistentMapping()
            s['ulogs'] = PersistentMapping()
            root['stress'] = s
        for kind in 'logs', 'ulogs':
            logs = root['stress'][kind]
            for name in a.workers.split(','):
                if name and name not in logs:
                    logs[name] = PersistentList()
        tm.get().note(u'neostress init')
        tm.commit()
        conn.close()
    finally:
        db.close()



def via_primary(e, frames):
    """Whether e comes from the client's link to the primary master: a
    request on it that the link's loss failed, or a transaction the
    client began with a primary that is gone (the new one does not know
    its ttid). Such a transaction was in flight when that primary died."""
    msg = str(e)
    if 'connection to primary master node closed' in msg or 'unknown ttid' in msg:
        return True
    return type(e).__name__ == 'ConnectionClosed' and any(
        f.name in ('_askPrimary', '_connectToPrimaryNode') for f in frames)

class Worker(threading.Thread):
    """One application thread: its own TransactionManager and Connection."""

    def __init__(self, proc, idx, db, a, stop):
        threading.Thread.__init__(self, name='worker-%d.%d' % (proc, idx),
                                  daemon=True)
        self.proc, self.idx, self.db, self.a, self.stop = \
            proc, idx, db, a, stop
        self.me = '%d.%d' % (proc, idx)
        self.rnd = random.Random(a.seed * 1000003 + proc * 1009 + idx)
        self.out = open(os.path.join(a.dir, 'rec-%s.jsonl' % self.me.replace('.', '-')),
                        'a', buffering=1)
        self.seq = 0
        self.tb_seen = {}  # (type, innermost frame) -> count
        # last uappend: (seq, tid bytes, ack time, to be undone)
        self.last_uappend = None
        self.last_pack = time.time()
        now = time.time()
        # heartbeat fields, read by the process's heartbeat thread
        self.progress = now
        self.last_commit = None
        self.op = None
        self.op_start = None
        self.commits = self.conflicts = self.errors = 0

    def write(self, rec):
        rec['t'] = time.time()
        self.out.write(json.dumps(rec) + '\n')
        self.out.flush()

    def run(self):
        import transaction
        tm = transaction.TransactionManager()
        self.tm = tm
        conn = None
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = self.db.open(transaction_manager=tm)
                self.step(conn)
            except Exception as e:
                # Failure outside a transaction (e.g. opening the
                # connection): an error too.
                self.write_error(e, {'seq': self.seq, 'op': 'setup', 'outcome': 'none'})
                self.progress = time.time()
                self.safe_abort()
                try:
                    if conn is not None:
                        conn.close()
                except Exception:
                    pass
                conn = None
                self.stop.wait(0.1)
        try:
            if conn is not None:
                conn.close()
        except Exception:
            pass
        self.out.close()

    def write_error(self, e, rec):
        """Record an exception; its traceback only the first TB_KEEP
        times per type and place (a broken client can raise the same
        one thousands of times)."""
        self.errors += 1
        frames = traceback.extract_tb(e.__traceback__)
        where = '%s:%s' % (frames[-1].filename, frames[-1].lineno) if frames else '?'
        key = (type(e).__name__, where)
        n = self.tb_seen[key] = self.tb_seen.get(key, 0) + 1
        rec.update(k='error', type=type(e).__name__, msg=str(e)[:2000], where=where)
        if via_primary(e, frames):
            rec['via_primary'] = True
        if n <= TB_KEEP:
            rec['tb'] = ''.join(traceback.format_exception(type(e), e, e.__traceback__))
        self.write(rec)

    def safe_abort(self):
        try:
            self.tm.abort()
        except Exception:
            pass

    def pick(self):
        a = self.a
        now = time.time()
        if (self.proc == 0 and self.idx == 0 and a.pack_every > 0 and
                now - self.last_pack >= a.pack_every):
            return 'pack'
        u = self.last_uappend
        if u is not None and (not u[3] or now - u[2] > a.undo_window):
            u = self.last_uappend = None  # not to be undone, or too old
        if u is not None and now - u[2] >= a.undo_delay:
            return 'undo'
        r = self.rnd.random() * 100
        if r < a.undo_pct:
            return 'append' if u is not None else 'uappend'
        r = self.rnd.random() * 100
        if r < 45:
            return 'insert'
        if r < 70:
            return 'hot'
        return 'append'

    def step(self, conn):
        op = self.pick()
        self.seq += 1
        seq = self.seq
        rec = {'k': 'begin', 'seq': seq, 'op': op}
        if op == 'insert':
            n = self.rnd.randint(1, 3)
            rec['keys'] = ['%s.%d.%d' % (self.me, seq, i) for i in range(n)]
            rec['vals'] = ['%016x' % self.rnd.getrandbits(64) for _ in range(n)]
        elif op == 'undo':
            rec['undone_seq'] = self.last_uappend[0]
            rec['undone_tid'] = hexid(self.last_uappend[1])
        self.write(rec)
        t0 = time.time()
        self.op, self.op_start = op, t0
        try:
            self.transact(conn, op, seq, rec, t0)
        finally:
            self.op = self.op_start = None
            self.progress = time.time()

    def transact(self, conn, op, seq, rec, t0):
        from ZODB.POSException import ConflictError
        tm = self.tm
        for attempt in range(1, MAX_ATTEMPTS + 1):
            ta = time.time()
            if self.stop.is_set() and attempt > 1:
                break
            try:
                res = {}
                if op == 'pack':
                    self.last_pack = ta
                    self.db.pack(time.time() - self.a.pack_age)
                else:
                    tm.begin()
                    s = conn.root()['stress']
                    if op == 'insert':
                        tree = s['tree']
                        for k, v in zip(rec['keys'], rec['vals']):
                            tree[k] = v
                        ln = s['length']
                        ln.change(len(rec['keys']))
                        tm.get().note(u'insert %s' % self.me)
                        tm.commit()
                        res['tid'] = hexid(ln._p_serial)
                    elif op == 'hot':
                        h = s['hot']
                        v = h['n'] + 1
                        h['n'] = v
                        tm.get().note(u'hot %s' % self.me)
                        tm.commit()
                        res['tid'] = hexid(h._p_serial)
                        res['value'] = v
                    elif op in ('append', 'uappend'):
                        lst = s['logs' if op == 'append' else 'ulogs'][self.me]
                        lst.append(seq)
                        tm.get().note(u'%s %s %d' % (op, self.me, seq))
                        tm.commit()
                        res['tid'] = hexid(lst._p_serial)
                    elif op == 'undo':
                        self.db.undo(self.last_uappend[1], tm.get())
                        tm.get().note(u'undo %s %d' % (self.me, rec['undone_seq']))
                        tm.commit()
            except ConflictError as e:
                self.safe_abort()
                self.conflicts += 1
                self.progress = time.time()
                self.write({'k': 'conflict', 'seq': seq, 'attempt': attempt,
                            'type': type(e).__name__})
                if op == 'undo':
                    # the target changed under us: not this thread's to undo
                    break
                self.stop.wait(self.rnd.random() * 0.005 * attempt)
                continue
            except Exception as e:
                tb = e.__traceback__
                unknown = any(f.f_code.co_name == 'tpc_finish'
                              for f, _ in traceback.walk_tb(tb))
                self.safe_abort()
                self.write_error(e, {'seq': seq, 'op': op, 'attempt': attempt,
                                     'outcome': 'unknown' if unknown else 'none',
                                     't0': t0, 'ta': ta})
                if op in ('uappend', 'undo'):
                    # no undo across a failure
                    self.last_uappend = None
                # An application would not retry in a tight loop either.
                self.stop.wait(ERROR_PAUSE)
                return
            now = time.time()
            self.commits += 1
            self.last_commit = now
            ack = {'k': 'ack', 'seq': seq, 'op': op, 'attempts': attempt,
                   't0': t0, 'ta': ta}
            # what it wrote, again, so that an ack line stands alone
            for k in 'keys', 'vals', 'undone_seq', 'undone_tid':
                if k in rec:
                    ack[k] = rec[k]
            if op in ('append', 'uappend'):
                ack['entry'] = seq
            ack.update(res)
            self.write(ack)
            if op == 'uappend':
                self.last_uappend = (seq, bytes.fromhex(res['tid']), now,
                                     self.rnd.random() < 0.5)
            elif op == 'undo':
                self.last_uappend = None
            return
        self.write({'k': 'gaveup', 'seq': seq, 'op': op})
        if op == 'undo':
            self.last_uappend = None


def write_json_atomic(path, obj):
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(obj, f)
    os.replace(tmp, path)


def cmd_run(a):
    faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    hb = os.path.join(a.dir, 'hb-%d.json' % a.proc)
    started = time.time()
    write_json_atomic(hb, {'t': started, 'pid': os.getpid(), 'phase': 'connecting',
                           'threads': []})
    if os.environ.get('NEOSTRESS_CLIENT_LOG'):
        # neoppod's client log (an SQLite file, read with neolog): what
        # the client received and decided, for a failure's post-mortem.
        from neo.lib import logging as neolog
        neolog.setup(os.path.join(a.dir, 'client-%d.log' % a.proc))
    st, db = open_db(a.masters, a.cluster)
    workers = [Worker(a.proc, i, db, a, stop) for i in range(a.threads)]

    def beat(phase):
        write_json_atomic(hb, {
            't': time.time(), 'pid': os.getpid(), 'phase': phase,
            'threads': [{'thread': w.idx, 'progress': w.progress,
                         'last_commit': w.last_commit, 'op': w.op,
                         'op_start': w.op_start, 'commits': w.commits,
                         'conflicts': w.conflicts, 'errors': w.errors,
                         'alive': w.is_alive()} for w in workers]})

    for w in workers:
        w.start()

    def heartbeat():
        while not stop.wait(1):
            beat('running')
    hbt = threading.Thread(target=heartbeat, name='heartbeat', daemon=True)
    hbt.start()
    # The main thread sleeps in short waits so that SIGTERM is handled.
    while not stop.wait(0.5):
        if not any(w.is_alive() for w in workers):
            break
    stop.set()
    beat('stopping')
    for w in workers:
        while w.is_alive():
            w.join(1)
            beat('stopping')
    beat('stopped')
    try:
        db.close()
    except Exception:
        traceback.print_exc()
    beat('done')


def cmd_dump(a):
    import transaction
    import BTrees.check
    st, db = open_db(a.masters, a.cluster)
    out = {}
    try:
        if a.pack_age > 0:
            # neoppod's client waits for the pack to be completed by every
            # storage only with this flag (meant for tests): replicas then
            # hold the same records, which `neoctl check` compares.
            st.app.wait_for_pack = True
            t = time.time()
            db.pack(time.time() - a.pack_age)
            out['pack_wait'] = time.time() - t
        tm = transaction.TransactionManager()
        conn = db.open(transaction_manager=tm)
        tm.begin()
        s = conn.root()['stress']
        tree = s['tree']
        try:
            BTrees.check.check(tree)
            tree._check()
            out['tree_check'] = None
        except Exception as e:
            out['tree_check'] = '%s: %s' % (type(e).__name__, e)
        out['tree'] = [[k, v] for k, v in tree.items()]
        out['length'] = s['length']()
        out['hot'] = s['hot']['n']
        out['logs'] = {k: list(v) for k, v in s['logs'].items()}
        out['ulogs'] = {k: list(v) for k, v in s['ulogs'].items()}
        out['last_tid'] = hexid(db.lastTransaction())
        tm.abort()
        conn.close()
    finally:
        db.close()
    json.dump(out, sys.stdout)
    sys.stdout.write('\n')


def cmd_ctl(a):
    from neo.lib import logging  # noqa: F401 (neoctl's logger setup)
    from neo.lib.util import parseNodeAddress
    from neo.neoctl.app import Application
    app = Application(parseNodeAddress(a.admin, 9999))
    for line in sys.stdin:
        args = json.loads(line)
        res = {'out': None, 'err': None}
        try:
            r = app.execute(args)
            res['out'] = '' if r is None else str(r)
        except SystemExit as e:
            res['err'] = str(e.code)
        except Exception as e:
            res['err'] = '%s: %s' % (type(e).__name__, e)
        sys.stdout.write(json.dumps(res) + '\n')
        sys.stdout.flush()


def cmd_logscan(a):
    import sqlite3
    db = sqlite3.connect('file:%s?mode=ro' % a.file, uri=True, timeout=5)
    try:
        rows = db.execute('SELECT date, level, msg FROM log WHERE date >= ? '
                          'ORDER BY date', (a.since,)).fetchall()
    except sqlite3.OperationalError as e:
        sys.exit('logscan %s: %s' % (a.file, e))
    for r in rows:
        sys.stdout.write(json.dumps(list(r)) + '\n')


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    sub = p.add_subparsers(dest='mode', required=True)
    i = sub.add_parser('init')
    i.add_argument('masters')
    i.add_argument('cluster')
    i.add_argument('--workers', required=True)
    r = sub.add_parser('run')
    r.add_argument('masters')
    r.add_argument('cluster')
    r.add_argument('--proc', type=int, required=True)
    r.add_argument('--threads', type=int, default=2)
    r.add_argument('--dir', required=True)
    r.add_argument('--seed', type=int, default=1)
    r.add_argument('--pack-every', type=float, default=10)
    r.add_argument('--pack-age', type=float, default=10)
    r.add_argument('--undo-pct', type=float, default=5)
    r.add_argument('--undo-delay', type=float, default=1)
    r.add_argument('--undo-window', type=float, default=5)
    d = sub.add_parser('dump')
    d.add_argument('masters')
    d.add_argument('cluster')
    d.add_argument('--pack-age', type=float, default=0)
    c = sub.add_parser('ctl')
    c.add_argument('admin')
    s = sub.add_parser('logscan')
    s.add_argument('file')
    s.add_argument('since', type=float)
    a = p.parse_args()
    {'init': cmd_init, 'run': cmd_run, 'dump': cmd_dump, 'ctl': cmd_ctl,
     'logscan': cmd_logscan}[a.mode](a)


if __name__ == '__main__':
    main()
