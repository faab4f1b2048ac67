package storage

import (
	"sync"
	"time"

	"github.com/neogo/neo/proto"
)

// Progress is how far the node's replication or check of one partition
// is: the tids From..To are to be gone through, up to Pos is done. A
// check goes through them twice (transaction ids, then object serials):
// Pass counts the passes done of Passes (0 and 0 for replication).
type Progress struct {
	Partition    uint32
	From, Pos    proto.Tid // From 0: not known yet
	To           proto.Tid
	Pass, Passes int
}

// Ratio returns the share done, 0 to 1. Tids grow with time: the share
// of a pass is that of the time span From..To covered, which is the
// share of the work when commits came at a steady rate.
func (p Progress) Ratio() float64 {
	passes := max(p.Passes, 1)
	var f float64
	switch {
	case p.Pos >= p.To:
		f = 1
	case p.From == 0 || p.Pos <= p.From:
		f = 0
	default:
		f = float64(p.Pos-p.From) / float64(p.To-p.From)
	}
	return min((float64(p.Pass)+f)/float64(passes), 1)
}

// Lag returns the commit time between Pos (or From, before anything is
// done) and To: how far behind the partition is. 0 when nothing is known
// of From yet.
func (p Progress) Lag() time.Duration {
	at := max(p.Pos, p.From)
	if at == 0 || at >= p.To {
		return 0
	}
	return proto.TidTime(p.To).Sub(proto.TidTime(at))
}

// PackProgress is the pack order being run: Done of Partitions packed.
type PackProgress struct {
	ID, PackTid      proto.Tid
	Partitions, Done int
}

// WorkStats are the counters of the node's background work since it
// started.
type WorkStats struct {
	// Checks counts the partition checks by outcome: ended with no
	// corruption found, with some reported, or aborted (a replica or the
	// source lost).
	ChecksOK, ChecksCorrupted, ChecksAborted uint64
	// PackedPartitions counts the partitions packed (one per order).
	PackedPartitions uint64
}

// work tracks the node's checks and packs, and counts for WorkStats;
// replication's progress is read from the replicator.
type work struct {
	mu     sync.Mutex
	checks map[uint32]Progress
	pack   PackProgress // ID 0: none
	stats  WorkStats
}

func (w *work) update(f func(w *work)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	f(w)
}

// checking records the progress of the check of p; end drops it.
func (w *work) checking(p Progress) {
	w.update(func(w *work) {
		if w.checks == nil {
			w.checks = map[uint32]Progress{}
		}
		w.checks[p.Partition] = p
	})
}

// checkOutcome is how a check of a partition ended.
type checkOutcome int

const (
	checkAborted checkOutcome = iota
	checkOK
	checkCorrupted
)

// checkEnded drops the check of p and counts its outcome.
func (w *work) checkEnded(p uint32, o checkOutcome) {
	w.update(func(w *work) {
		delete(w.checks, p)
		switch o {
		case checkOK:
			w.stats.ChecksOK++
		case checkCorrupted:
			w.stats.ChecksCorrupted++
		default:
			w.stats.ChecksAborted++
		}
	})
}
