package importer

// The pure decisions of the importer, apart from I/O: which source
// transaction comes next, where a read is answered from, and which next
// serial it reports.

import (
	"sort"

	"github.com/neogo/neo/proto"
)

// nextTid returns the smallest tid among heads (the next transaction of
// each source, InvalidTid when a source is exhausted) and the indexes of
// the sources that have it, in order: a tid in several sources is one
// transaction, with the metadata of the first (cluster.md §8.10).
// ok is false when every source is exhausted.
func nextTid(heads []proto.Tid) (tid proto.Tid, from []int, ok bool) {
	tid = proto.InvalidTid
	for i, h := range heads {
		switch {
		case h == proto.InvalidTid:
		case h < tid:
			tid, from = h, append(from[:0], i)
		case h == tid:
			from = append(from, i)
		}
	}
	return tid, from, tid != proto.InvalidTid
}

// where says which store answers a load.
type where int

const (
	// fromBackend: the backend alone (import done, an oid outside the
	// sources, or a revision committed after the import began).
	fromBackend where = iota
	// fromSource: the source alone, for a revision at or before ltid.
	fromSource
	// fromEither: the backend if it has a revision after ltid that
	// matches, else the source.
	fromEither
)

// loadPlan decides where Load(oid, at, before) is answered while the
// sources hold every revision up to ltid: a revision up to ltid is read
// from the source whether it is imported yet or not, so that an answer
// never depends on how far the import got, and the serial that follows it
// is the source's (a revision imported before its successor must not look
// like the latest). srcBefore is the bound of the source's loadBefore.
// inSource tells whether oid lies in the oid range of a source.
func loadPlan(done, inSource bool, ltid, at, before proto.Tid) (w where, srcBefore proto.Tid) {
	switch {
	case done || !inSource:
		return fromBackend, 0
	case at != proto.InvalidTid:
		if at > ltid {
			return fromBackend, 0
		}
		return fromSource, at + 1
	case before != proto.InvalidTid && before <= ltid+1:
		return fromSource, before
	}
	return fromEither, ltid + 1
}

// nextSerial is the serial that follows a source revision: the source's
// next revision if it has one up to ltid, else the first revision
// committed after the import began (firstNew, InvalidTid if none). srcNext
// is 0 when the source has no next revision. firstNew is only called when
// needed: it costs a backend read.
func nextSerial(srcNext, ltid proto.Tid, firstNew func() (proto.Tid, error)) (proto.Tid, error) {
	if srcNext != 0 && srcNext <= ltid {
		return srcNext, nil
	}
	return firstNew()
}

// oidRange is the range of oids of a source in the imported space.
type oidRange struct {
	start, end proto.Oid // [start, end)
}

// sourceOf returns the index of the range holding oid, or -1. ranges are
// sorted and disjoint.
func sourceOf(ranges []oidRange, oid proto.Oid) int {
	i := sort.Search(len(ranges), func(i int) bool { return ranges[i].end > oid })
	if i < len(ranges) && ranges[i].start <= oid {
		return i
	}
	return -1
}
