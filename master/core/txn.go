package core

import (
	"maps"
	"slices"
	"time"

	"github.com/neogo/neo/proto"
)

// txn is a transaction between AskBeginTransaction and its commit or abort
// (cluster.md §6.3).
type txn struct {
	ttid proto.Tid
	tid  proto.Tid // final tid; 0 until AskFinishTransaction was accepted

	born       time.Time    // when it began, for the state dump
	client     proto.NodeID // 0 once orphaned (client lost after finish)
	finishConn ConnID       // connection and id of AskFinishTransaction
	finishID   uint32

	// readiness is the storage readiness counter when the transaction
	// began: only storages ready by then take part in it.
	readiness uint64

	oids       []proto.Oid // invalidated objects
	partitions []uint32    // partitions of oids and deleted objects
	involved   map[proto.NodeID]bool
	locking    map[proto.NodeID]bool // involved storages not locked yet
	failed     map[proto.NodeID]bool // accepted FailedVote set

	// notify are storages waiting for the end of this transaction (asked
	// AskUnfinishedTransactions); they get NotifyTransactionFinished.
	notify map[proto.NodeID]bool
	// finalWaiters are clients that asked AskFinalTID while the
	// transaction was being finished.
	finalWaiters []reply
}

// reply identifies a request to answer later.
type reply struct {
	conn  ConnID
	msgID uint32
}

// txnManager keeps the pending transactions and the commit queue.
// It is part of the core: owned by the core's goroutine.
type txnManager struct {
	txns map[proto.Tid]*txn
	// queue holds the ttids of transactions with a final tid, in
	// increasing final tid order: they are committed in this order.
	queue    []proto.Tid
	lastOid  proto.Oid
	firstTid proto.Tid // smallest tid stored; MaxTid if none
}

func newTxnManager() *txnManager {
	tm := &txnManager{}
	tm.reset()
	return tm
}

func (tm *txnManager) reset() {
	tm.txns = map[proto.Tid]*txn{}
	tm.queue = nil
	tm.lastOid = 0
	tm.firstTid = proto.MaxTid
}

// lastTid returns L of cluster.md §6.1: the greatest tid used, counting
// pending ttids and the final tid of the last queued transaction.
func (tm *txnManager) lastTid(committed proto.Tid) proto.Tid {
	if len(tm.txns) == 0 {
		return committed
	}
	var max proto.Tid
	for ttid := range tm.txns {
		if ttid > max {
			max = ttid
		}
	}
	if n := len(tm.queue); n > 0 {
		if t := tm.txns[tm.queue[n-1]]; t != nil && t.tid > max {
			max = t.tid
		}
	}
	return max
}

func (tm *txnManager) newOids(n int) []proto.Oid {
	oids := make([]proto.Oid, n)
	for i := range oids {
		tm.lastOid++
		oids[i] = tm.lastOid
	}
	return oids
}

func (tm *txnManager) setLastOid(oid proto.Oid) {
	if oid != proto.InvalidOid && oid > tm.lastOid {
		tm.lastOid = oid
	}
}

func (tm *txnManager) setFirstTid(tid proto.Tid) {
	if tid < tm.firstTid {
		tm.firstTid = tid
	}
}

// errBeginWithTid is the refusal of mixing specified-tid and normal
// transactions (cluster.md §6.1).
var errBeginWithTid = protocolError("There can't be concurrent transactions when a TID is specified for any of them.")

// begin starts a transaction for client; tid is InvalidTid normally, or the
// tid the client wants (import tools).
func (tm *txnManager) begin(client proto.NodeID, readiness uint64, tid proto.Tid, committed proto.Tid, now time.Time) (proto.Tid, error) {
	if tid == proto.InvalidTid {
		if len(tm.txns) == 1 && len(tm.queue) == 1 {
			if t := tm.txns[tm.queue[0]]; t != nil && t.tid == 0 {
				return 0, errBeginWithTid
			}
		}
		tid = proto.NextTTID(tm.lastTid(committed), now)
	} else if len(tm.txns) > 0 {
		return 0, errBeginWithTid
	} else if tid <= committed {
		return 0, protocolError("new TID must be greater than the last committed one")
	} else {
		tm.queue = append(tm.queue, tid)
	}
	tm.txns[tid] = &txn{
		ttid:      tid,
		born:      now,
		client:    client,
		readiness: readiness,
		notify:    map[proto.NodeID]bool{},
	}
	return tid, nil
}

func (tm *txnManager) get(ttid proto.Tid) (*txn, error) {
	t := tm.txns[ttid]
	if t == nil {
		// As neoppod, PROTOCOL_ERROR (the client raises it), but the link
		// stays: the transaction was typically begun on a previous
		// primary, and a closed link would cost the client a second
		// before it reconnects (CONNECT_LIMIT).
		return nil, &handlerError{e: proto.Error{Code: proto.PROTOCOL_ERROR, Message: "unknown ttid " + ttid.String()}, keep: true}
	}
	return t, nil
}

// remove forgets a transaction (abort or commit).
func (tm *txnManager) remove(ttid proto.Tid) {
	delete(tm.txns, ttid)
	if i := slices.Index(tm.queue, ttid); i >= 0 {
		tm.queue = slices.Delete(tm.queue, i, i+1)
	}
}

// allFailed returns the union of the accepted FailedVote sets.
func (tm *txnManager) allFailed(extra map[proto.NodeID]bool) map[proto.NodeID]bool {
	all := maps.Clone(extra)
	for _, t := range tm.txns {
		for n := range t.failed {
			all[n] = true
		}
	}
	return all
}

// registerForNotification makes storage nid wait for every pending
// transaction and returns their ttids.
func (tm *txnManager) registerForNotification(nid proto.NodeID) []proto.Tid {
	ttids := make([]proto.Tid, 0, len(tm.txns))
	for ttid, t := range tm.txns {
		t.notify[nid] = true
		ttids = append(ttids, ttid)
	}
	slices.Sort(ttids)
	return ttids
}

// sortedTids returns the keys of a node set in a stable order, so that
// effects are deterministic.
func sortedNIDs(m map[proto.NodeID]bool) []proto.NodeID {
	ids := make([]proto.NodeID, 0, len(m))
	for id, ok := range m {
		if ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}
