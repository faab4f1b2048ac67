#!/usr/bin/python3
"""clientshare: how much of each operation's time neoppod's Python client
spends on its own CPU, against any NEO cluster.

It runs the operations zbench.py times (populate in transactions of K
objects, one-thread loads through a fresh client, one-object commits)
and prints, per phase, one JSON line with the wall time per operation,
the client process's CPU time per operation (all its threads, user +
system, from time.process_time) and their ratio `client_share`. A share
near 1 means the client is busy the whole time: a faster server cannot
make that operation much faster, whatever the server.

usage: clientshare.py --neo MASTERS --name CLUSTER [-n 2000] [-k 100]
                      [-l 1000] [-c 300] [--label LABEL]
"""
import argparse, json, os, random, sys, time
from ZODB.Connection import TransactionMetaData
from ZODB.utils import p64, u64, z64
from ZODB.tests.MinPO import MinPO
from ZODB.tests.StorageTestBase import zodb_pickle
from neo.client.Storage import Storage


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--neo', required=True, metavar='MASTERS')
    p.add_argument('--name', required=True, metavar='CLUSTER')
    p.add_argument('--label', default='')
    p.add_argument('-n', '--objects', type=int, default=2000)
    p.add_argument('-k', '--txn-objects', type=int, default=100)
    p.add_argument('-s', '--size', type=int, default=1024)
    p.add_argument('-l', '--loads', type=int, default=1000)
    p.add_argument('-c', '--small-commits', type=int, default=300)
    a = p.parse_args()
    rnd = random.Random(1)
    noise = os.urandom(1 << 20)

    def payload():
        off = rnd.randrange(0, len(noise) - a.size)
        return zodb_pickle(MinPO(noise[off:off + a.size]))

    def commit(st, items):
        t = TransactionMetaData()
        st.tpc_begin(t)
        try:
            for oid, serial, data in items:
                st.store(oid, serial, data, '', t)
            st.tpc_vote(t)
            return st.tpc_finish(t)
        except BaseException:
            st.tpc_abort(t)
            raise

    def emit(metric, ops, wall, cpu, **kw):
        rec = dict(bench='clientshare', label=a.label, metric=metric, n=ops,
                   wall_us_per_op=round(wall / ops * 1e6),
                   client_cpu_us_per_op=round(cpu / ops * 1e6),
                   client_share=round(cpu / wall, 2))
        rec.update(kw)
        print(json.dumps(rec), flush=True)

    def measure(fn):
        c0, w0 = time.process_time(), time.perf_counter()
        n = fn()
        return n, time.perf_counter() - w0, time.process_time() - c0

    st = Storage(master_nodes=a.neo, name=a.name)
    serial = {}

    def populate():
        n = 0
        while n < a.objects:
            items = [(st.new_oid(), z64, payload()) for _ in range(min(a.txn_objects, a.objects - n))]
            tid = commit(st, items)
            for oid, _, _ in items:
                serial[oid] = tid
            n += len(items)
        return n // a.txn_objects
    n, wall, cpu = measure(populate)
    emit('populate', n, wall, cpu, txn_objects=a.txn_objects)
    st.close()

    oids = list(serial)
    rnd.shuffle(oids)
    st = Storage(master_nodes=a.neo, name=a.name)
    before = p64(u64(st.lastTransaction()) + 1)

    def loads():
        for oid in oids[:a.loads]:
            st.loadBefore(oid, before)
        return min(a.loads, len(oids))
    n, wall, cpu = measure(loads)
    emit('load_cold', n, wall, cpu)

    def small():
        for oid in oids[:a.small_commits]:
            serial[oid] = commit(st, [(oid, serial[oid], payload())])
        return min(a.small_commits, len(oids))
    n, wall, cpu = measure(small)
    emit('small_commit', n, wall, cpu)
    st.close()


if __name__ == '__main__':
    sys.exit(main())
