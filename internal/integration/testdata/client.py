# A ZODB client of a NEO cluster, through neoppod's neo.client: it opens
# the database (creating the root: transaction 1), commits one change
# (transaction 2), prints "TIDS <tid1> <tid2>" in hex and stays connected
# for the given seconds.
# usage: client.py MASTERS CLUSTER SECONDS
import sys, time
from neo.client.Storage import Storage
import ZODB, transaction
s = Storage(master_nodes=sys.argv[1], name=sys.argv[2])
db = ZODB.DB(s)
t1 = s.lastTransaction()
c = db.open(); r = c.root(); r['x'] = 1; transaction.commit()
t2 = s.lastTransaction()
print('TIDS', t1.hex(), t2.hex(), flush=True)
time.sleep(float(sys.argv[3]))
