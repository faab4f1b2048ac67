package backend

import (
	"context"
	"crypto/sha1"
	"strconv"

	"github.com/neogo/neo/proto"
)

// UndoResult is findUndoTID's answer for one oid (AnswerObjectUndoSerial).
type UndoResult struct {
	Current   proto.Tid // latest serial visible to the undoing transaction
	UndoTo    proto.Tid // revision holding the data to restore; InvalidTid: undo a creation
	IsCurrent bool      // the undone revision is still the current one
}

// FindUndoTid resolves an undo of undoTid for one oid, as cluster.md §8.4
// says, from the oid's history h. ltid bounds what the undoing transaction
// sees (excluded); currentInTxn is the serial the undoing transaction
// itself stored for the oid (its ttid, or the data serial of its own undo
// store), or InvalidTid. ok is false when nothing is visible (the client
// gets OID_NOT_FOUND).
func FindUndoTid(h UndoHistory, ltid, undoTid, currentInTxn proto.Tid) (r UndoResult, ok bool) {
	before := h.Before
	current := currentInTxn
	if current == proto.InvalidTid {
		for _, a := range h.After {
			if a.Tid < ltid {
				current = a.Tid
			}
		}
		if current == proto.InvalidTid {
			if ltid <= undoTid {
				return UndoResult{}, false
			}
			current = undoTid
		}
	}
	isCurrent := current == undoTid
	for _, a := range h.After {
		switch {
		case a.ValueTid == proto.InvalidTid:
			// not a back-pointer: identical to nothing
		case a.ValueTid == before:
			// This record is undo-identical to "before": resolving to the
			// greatest candidate means packing never rewrites value_tid.
			before = a.Tid
		case a.ValueTid == undoTid:
			if current == a.Tid {
				isCurrent = true
			} else {
				undoTid = a.Tid
			}
		}
	}
	return UndoResult{Current: current, UndoTo: before, IsCurrent: isCurrent}, true
}

// digest returns the SHA-1 of the decimal numbers joined with ",".
func digest(xs []uint64) [20]byte {
	b := make([]byte, 0, len(xs)*20)
	for i, x := range xs {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, x, 10)
	}
	return sha1.Sum(b)
}

// TIDRangeCheck is AnswerCheckTIDRange (protocol.md §4.9).
type TIDRangeCheck struct {
	Count   int
	Digest  [20]byte
	LastTid proto.Tid
}

// SerialRangeCheck is AnswerCheckSerialRange (protocol.md §4.9).
type SerialRangeCheck struct {
	Count     int
	TidDigest [20]byte
	LastTid   proto.Tid
	OidDigest [20]byte
	LastOid   proto.Oid
}

// CheckTIDRange computes the replica-check digest of at most length
// committed tids of partition in [minTid, maxTid].
func CheckTIDRange(ctx context.Context, b Backend, partition uint32, length int, minTid, maxTid proto.Tid) (TIDRangeCheck, error) {
	tids, err := b.TIDsFrom(ctx, partition, minTid, maxTid, length)
	if err != nil || len(tids) == 0 {
		return TIDRangeCheck{}, err
	}
	xs := make([]uint64, len(tids))
	for i, t := range tids {
		xs[i] = uint64(t)
	}
	return TIDRangeCheck{Count: len(tids), Digest: digest(xs), LastTid: tids[len(tids)-1]}, nil
}

// CheckSerialRange computes the replica-check digests of at most length
// records of partition from (minTid, minOid) up to maxTid.
func CheckSerialRange(ctx context.Context, b Backend, partition uint32, length int, minTid, maxTid proto.Tid, minOid proto.Oid) (SerialRangeCheck, error) {
	keys, err := b.ObjectsFrom(ctx, partition, minTid, maxTid, minOid, length)
	if err != nil || len(keys) == 0 {
		return SerialRangeCheck{}, err
	}
	tids := make([]uint64, len(keys))
	oids := make([]uint64, len(keys))
	for i, k := range keys {
		tids[i], oids[i] = uint64(k.Tid), uint64(k.Oid)
	}
	last := keys[len(keys)-1]
	return SerialRangeCheck{Count: len(keys), TidDigest: digest(tids), LastTid: last.Tid,
		OidDigest: digest(oids), LastOid: last.Oid}, nil
}
