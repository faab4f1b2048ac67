package storage

import (
	"cmp"
	"slices"

	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

// Conversions between wire structures and the node's or the backend's.

func lockedToProto(m map[proto.Tid]proto.Tid) []proto.LockedTxn {
	r := make([]proto.LockedTxn, 0, len(m))
	for ttid, tid := range m {
		r = append(r, proto.LockedTxn{TTid: ttid, Tid: tid})
	}
	slices.SortFunc(r, func(a, b proto.LockedTxn) int { return cmp.Compare(a.TTid, b.TTid) })
	return r
}

func packOrdersToProto(orders []backend.PackOrder) []proto.PackOrder {
	r := make([]proto.PackOrder, len(orders))
	for i, o := range orders {
		p := proto.PackOrder{ID: o.ID, Partial: o.Partial, PackTid: o.PackTid}
		switch o.State {
		case backend.PackApproved:
			p.Approved = proto.Some(true)
		case backend.PackRejected:
			p.Approved = proto.Some(false)
		}
		if o.Partial {
			p.Oids = proto.Some(o.Oids)
		}
		r[i] = p
	}
	return r
}

func relockedToProto(rl *Relocked) proto.Opt[proto.RelockConflict] {
	c := proto.RelockConflict{Serial: rl.Serial, ConflictSerial: rl.Conflict}
	if d := rl.Data; d != nil {
		c.Data = proto.Some(proto.ObjectData{Compression: d.Compression, Checksum: d.Checksum[:], Data: d.Data})
	}
	return proto.Some(c)
}

func historyToProto(h []backend.HistoryEntry) []proto.HistoryEntry {
	r := make([]proto.HistoryEntry, len(h))
	for i, e := range h {
		r[i] = proto.HistoryEntry{Serial: e.Serial, Size: uint64(e.Size)}
	}
	return r
}

func undoToProto(m map[proto.Oid]backend.UndoResult) []proto.UndoSerial {
	r := make([]proto.UndoSerial, 0, len(m))
	for oid, u := range m {
		r = append(r, proto.UndoSerial{Oid: oid, CurrentSerial: u.Current, UndoSerial: u.UndoTo, IsCurrent: u.IsCurrent})
	}
	slices.SortFunc(r, func(a, b proto.UndoSerial) int { return cmp.Compare(a.Oid, b.Oid) })
	return r
}
