package core

import (
	"slices"

	"github.com/neogo/neo/proto"
)

// packManager keeps the pack orders the master knows (cluster.md §8.7):
// orders are transactions; the master signs (approves) them and tells
// storages, which report their progress with NotifyPackCompleted.
type packManager struct {
	maxCompleted proto.Tid // InvalidTid: none
	packs        map[proto.Tid]*packOrder
	// done are the last orders completed here, for backup masters
	// (dumpForBackup): our storages may complete an order before a
	// backup master, told it was signed, asks for it.
	done []proto.PackOrder
}

// keptDone is how many completed orders are kept for backup masters.
const keptDone = 16

type packOrder struct {
	proto.PackOrder
	waiters []reply // WaitForPack requests
}

func newPackManager() *packManager {
	pm := &packManager{}
	pm.reset()
	return pm
}

func (pm *packManager) reset() {
	pm.maxCompleted = proto.InvalidTid
	pm.packs = map[proto.Tid]*packOrder{}
	pm.done = nil
}

// add records an order learned from a storage.
func (pm *packManager) add(o proto.PackOrder) {
	p := pm.packs[o.ID]
	if p == nil {
		pm.packs[o.ID] = &packOrder{PackOrder: o}
		if pm.maxCompleted != proto.InvalidTid && pm.maxCompleted > o.ID {
			pm.maxCompleted = o.ID - 1
		}
	} else if !p.Approved.Valid {
		p.Approved = o.Approved
	}
}

// newOrder registers the order carried by the transaction committed at tid
// and returns whether it is approved at once (no other order is unsigned).
func (pm *packManager) newOrder(tid proto.Tid, oids proto.Opt[[]proto.Oid], packTid proto.Tid) bool {
	autosign := true
	for _, p := range pm.packs {
		if !p.Approved.Valid {
			autosign = false
		}
	}
	o := proto.PackOrder{ID: tid, Partial: oids.Valid && len(oids.V) > 0, Oids: oids, PackTid: packTid}
	if autosign {
		o.Approved = proto.Some(true)
	}
	pm.packs[tid] = &packOrder{PackOrder: o}
	return autosign
}

// dump returns the orders from packID on, or only the first approved one.
func (pm *packManager) dump(packID proto.Tid, onlyFirstApproved bool) []proto.PackOrder {
	var ids []proto.Tid
	for id, p := range pm.packs {
		if id >= packID && (!onlyFirstApproved || p.Approved.Valid && p.Approved.V) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	if onlyFirstApproved && len(ids) > 1 {
		ids = ids[:1]
	}
	out := make([]proto.PackOrder, 0, len(ids))
	for _, id := range ids {
		out = append(out, pm.packs[id].PackOrder)
	}
	return out
}

// dumpForBackup answers a backup master's AskPackOrders: the orders
// from packID on, those completed here included (the backup replicates
// them and packs once past them, cluster.md §8.9).
func (pm *packManager) dumpForBackup(packID proto.Tid) []proto.PackOrder {
	var out []proto.PackOrder
	for _, o := range pm.done {
		if o.ID >= packID {
			out = append(out, o)
		}
	}
	return append(out, pm.dump(packID, false)...)
}

func (pm *packManager) approvedRejected(min proto.Tid) (approved, rejected []proto.Tid) {
	if pm.maxCompleted != proto.InvalidTid && pm.maxCompleted != 0 && min <= pm.maxCompleted {
		approved = append(approved, pm.maxCompleted)
	}
	for _, id := range sortedTids(pm.packs) {
		p := pm.packs[id]
		if id >= min && p.Approved.Valid {
			if p.Approved.V {
				approved = append(approved, id)
			} else {
				rejected = append(rejected, id)
			}
		}
	}
	return approved, rejected
}

// completed records that every storage completed packs up to packID and
// returns the WaitForPack requests to answer.
func (pm *packManager) completed(packID proto.Tid) []reply {
	var done []reply
	for _, id := range sortedTids(pm.packs) {
		if id <= packID {
			done = append(done, pm.packs[id].waiters...)
			pm.done = append(pm.done, pm.packs[id].PackOrder)
			if len(pm.done) > keptDone {
				pm.done = slices.Delete(pm.done, 0, len(pm.done)-keptDone)
			}
			delete(pm.packs, id)
			if pm.maxCompleted == proto.InvalidTid || pm.maxCompleted < id {
				pm.maxCompleted = id
			}
		}
	}
	return done
}

func (pm *packManager) connLost(id ConnID) {
	for _, p := range pm.packs {
		p.waiters = slices.DeleteFunc(p.waiters, func(r reply) bool { return r.conn == id })
	}
}
