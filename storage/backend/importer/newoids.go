package importer

import (
	"context"
	"fmt"
	"sync"

	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

// newOids tracks the oids that may have revisions after ltid (commits
// made since the import began), so that reads of the others, nearly all
// of them during an import, go to the source without asking the
// destination first: a read then costs a source read alone, no more
// than a read of the destination after the import. It is a superset:
// oids are added when voted, before their rows can be seen, and never
// removed.
type newOids struct {
	mu   sync.Mutex
	all  bool // unknown which: ask the destination for every oid
	oids map[proto.Oid]struct{}
}

func (n *newOids) add(records []backend.Record) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.oids == nil {
		n.oids = map[proto.Oid]struct{}{}
	}
	for i := range records {
		n.oids[records[i].Oid] = struct{}{}
	}
}

func (n *newOids) setAll() {
	n.mu.Lock()
	n.all = true
	n.mu.Unlock()
}

func (n *newOids) may(oid proto.Oid) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.oids[oid]
	return ok || n.all
}

// loadNewOids fills im.newOids from the destination at open: the records
// after ltid, and, when transactions were voted before a restart and not
// finished, every oid (their oids are not known).
func (im *Importer) loadNewOids(ctx context.Context) error {
	voted, err := im.Backend.LockedTransactions(ctx)
	if err != nil {
		return err
	}
	if len(voted) > 0 {
		im.newOids.setAll()
		return nil
	}
	_, _, cells, err := im.Backend.PartitionTable(ctx)
	if err != nil {
		return err
	}
	var np uint32
	for _, c := range cells {
		np = max(np, c.Partition+1)
	}
	const chunk = 10000
	for p := range np {
		minTid, minOid := im.ltid+1, proto.Oid(0)
		for {
			keys, err := im.Backend.ObjectsFrom(ctx, p, minTid, proto.MaxTid, minOid, chunk)
			if err != nil {
				return fmt.Errorf("importer: records of partition %d after %s: %w", p, im.ltid, err)
			}
			recs := make([]backend.Record, len(keys))
			for i, k := range keys {
				recs[i].Oid = k.Oid
			}
			im.newOids.add(recs)
			if len(keys) < chunk {
				break
			}
			last := keys[len(keys)-1]
			minTid, minOid = last.Tid, last.Oid+1
		}
	}
	return nil
}

// StoreTransaction implements [backend.Backend]: the oids voted may get
// revisions after ltid.
func (im *Importer) StoreTransaction(ctx context.Context, ttid proto.Tid, records []backend.Record, meta *backend.TxnMeta) error {
	im.newOids.add(records)
	return im.Backend.StoreTransaction(ctx, ttid, records, meta)
}

// ReplicateObjects implements [backend.Backend]: what it adds is not
// tracked.
func (im *Importer) ReplicateObjects(ctx context.Context, partition uint32, add []backend.Record, del []backend.ObjectKey, cellTid proto.Tid) error {
	im.newOids.setAll()
	return im.Backend.ReplicateObjects(ctx, partition, add, del, cellTid)
}
