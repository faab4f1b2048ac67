#!/usr/bin/python3
"""pyloads: loads through neoppod's Python client with T threads, and the
client's own CPU time per load, round after round against one cluster.

It stores N objects of 1 KiB (unless the cluster already has them, oids
1..N), then runs ROUNDS rounds: each opens a fresh client (empty cache) and
loads L random oids with T threads sharing it (loadBefore, as ZODB does).
One JSON line per round: loads/s, wall and client CPU (all threads) per
load. Shows how much of the Python client's load rate is its own CPU.

usage: pyloads.py MASTERS CLUSTER [-n N] [-l L] [-t T] [--rounds R]
"""
import argparse, json, os, random, threading, time
from ZODB.Connection import TransactionMetaData
from ZODB.utils import z64, p64, u64
from ZODB.tests.MinPO import MinPO
from ZODB.tests.StorageTestBase import zodb_pickle
from neo.client.Storage import Storage


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('masters')
    p.add_argument('cluster')
    p.add_argument('-n', type=int, default=10000, help='objects (default 10000)')
    p.add_argument('-l', type=int, default=4000, help='loads per round (default 4000)')
    p.add_argument('-t', type=int, default=4, help='threads (default 4)')
    p.add_argument('--rounds', type=int, default=3)
    a = p.parse_args()
    if a.l > a.n:
        p.error('-l %d: at most -n (%d)' % (a.l, a.n))
    st = Storage(master_nodes=a.masters, name=a.cluster)
    if st.lastTransaction() == z64:
        noise = os.urandom(1 << 20)
        rnd = random.Random(1)
        for done in range(0, a.n, 100):
            t = TransactionMetaData()
            st.tpc_begin(t)
            for _ in range(min(100, a.n - done)):
                off = rnd.randrange(0, len(noise) - 1024)
                st.store(st.new_oid(), z64, zodb_pickle(MinPO(noise[off:off + 1024])), '', t)
            st.tpc_vote(t)
            st.tpc_finish(t)
    st.close()
    oids = [p64(i) for i in range(1, a.n + 1)]
    for r in range(a.rounds):
        st = Storage(master_nodes=a.masters, name=a.cluster)
        before = p64(u64(st.lastTransaction()) + 1)
        sample = random.Random(r).sample(oids, a.l)

        def run(part):
            for oid in part:
                st.loadBefore(oid, before)
        ts = [threading.Thread(target=run, args=(sample[i::a.t],)) for i in range(a.t)]
        c0, w0 = time.process_time(), time.perf_counter()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        print(json.dumps(dict(round=r + 1, threads=a.t, loads=a.l,
                              loads_per_s=round(a.l / wall),
                              wall_us_per_load=round(wall / a.l * 1e6, 1),
                              client_cpu_us_per_load=round(cpu / a.l * 1e6, 1))), flush=True)
        st.close()


if __name__ == '__main__':
    main()
