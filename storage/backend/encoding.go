package backend

import (
	"encoding/binary"
	"fmt"
	"strconv"

	"github.com/neogo/neo/proto"
)

// How the logical schema (cluster.md §8.2) encodes values in its columns,
// the same in every SQL backend: one home for each rule.

// PackOids encodes an oid list as the oids columns store it (trans.oids,
// pack.oids): 8-byte big-endian oids, concatenated.
func PackOids(oids []proto.Oid) []byte {
	b := make([]byte, 8*len(oids))
	for i, o := range oids {
		binary.BigEndian.PutUint64(b[8*i:], uint64(o))
	}
	return b
}

// UnpackOids decodes [PackOids].
func UnpackOids(b []byte) ([]proto.Oid, error) {
	if len(b)%8 != 0 {
		return nil, fmt.Errorf("oid list of %d bytes is not a multiple of 8", len(b))
	}
	oids := make([]proto.Oid, len(b)/8)
	for i := range oids {
		oids[i] = proto.Oid(binary.BigEndian.Uint64(b[8*i:]))
	}
	return oids, nil
}

// ConfigValue is one row of the config table that SetMeta writes; a nil
// Value deletes the row.
type ConfigValue struct {
	Key   string
	Value *string
}

// ConfigValues returns the config rows that save m's fields Name, NID,
// BackupTid and TruncateTid (unset fields delete their row).
func (m Meta) ConfigValues() []ConfigValue {
	str := func(s string) *string { return &s }
	hex := func(t proto.Tid) *string {
		if t == proto.InvalidTid {
			return nil
		}
		return str(t.String()) // 16 lowercase hex digits
	}
	vs := []ConfigValue{{Key: "name"}, {Key: "nid"}, {"backup_tid", hex(m.BackupTid)}, {"truncate_tid", hex(m.TruncateTid)}}
	if m.Name != "" {
		vs[0].Value = str(m.Name)
	}
	if m.NID != 0 {
		vs[1].Value = str(strconv.FormatInt(int64(m.NID), 10))
	}
	return vs
}

// SetConfig sets the field of m that config row key holds; other keys are
// ignored.
func (m *Meta) SetConfig(key, value string) error {
	var err error
	switch key {
	case "name":
		m.Name = value
	case "nid":
		var x int64
		x, err = strconv.ParseInt(value, 10, 32)
		m.NID = proto.NodeID(x)
	case "ptid":
		var x uint64
		x, err = strconv.ParseUint(value, 10, 64)
		m.PTID = proto.PTid(x)
	case "replicas":
		m.NumReplicas, err = strconv.Atoi(value)
	case "backup_tid":
		m.BackupTid, err = ParseHexTid(value)
	case "truncate_tid":
		m.TruncateTid, err = ParseHexTid(value)
	}
	if err != nil {
		return fmt.Errorf("config %s=%q: %w", key, value, err)
	}
	return nil
}

// ParseHexTid parses the config form of a tid (16 hex digits).
func ParseHexTid(s string) (proto.Tid, error) {
	x, err := strconv.ParseUint(s, 16, 64)
	return proto.Tid(x), err
}

// PTRow is a pt row's values: Tid in the signed encoding of cluster.md
// §8.2, Pack InvalidTid for NULL.
type PTRow struct {
	Tid  int64
	Pack proto.Tid
}

// Cell decodes a pt row of partition and nid.
func (r PTRow) Cell(partition uint32, nid proto.NodeID) Cell {
	c := Cell{Partition: partition, NID: nid, Pack: r.Pack}
	if r.Tid < 0 {
		c.State = proto.CellState(-r.Tid)
	} else {
		c.State, c.Tid = proto.OUT_OF_DATE, proto.Tid(r.Tid)
	}
	return c
}

// CellKey names a pt row.
type CellKey struct {
	Partition uint32
	NID       proto.NodeID
}

// PTUpdate is what ApplyCellChanges needs to know and do, in the
// backend's write transaction.
type PTUpdate struct {
	Me  proto.NodeID      // own nid
	Old map[CellKey]PTRow // the saved rows before the change
	// BackupTid is the config's backup_tid, InvalidTid if unset.
	BackupTid proto.Tid
	// MaxApproved is the greatest approved pack order id, 0 if none.
	MaxApproved proto.Tid
	// LastTid returns the greatest tid of partition in trans or obj, -1
	// if none.
	LastTid func(partition uint32) (int64, error)
	// Put writes a row, or deletes it if r is nil.
	Put func(k CellKey, r *PTRow) error
}

// ApplyCellChanges writes the pt rows of cell changes as cluster.md §8.2
// says: states in the signed tid encoding; for the node's own
// out-of-date cells the tid up to which they are complete (kept while
// out of date; the backup tid or the partition's last tid when a readable
// cell becomes out of date; 0 for a new cell); pack ids written only at
// row creation (0 for an own readable cell, the greatest approved pack
// order for an own out-of-date one, NULL for other nodes' cells).
func ApplyCellChanges(changes []CellChange, u PTUpdate) error {
	for _, c := range changes {
		k := CellKey{c.Partition, c.NID}
		if c.State == proto.DISCARDED {
			if err := u.Put(k, nil); err != nil {
				return fmt.Errorf("discard cell %d/%s: %w", c.Partition, c.NID, err)
			}
			continue
		}
		if !c.State.Valid() {
			return fmt.Errorf("cell %d/%s: invalid state %d", c.Partition, c.NID, c.State)
		}
		prev, existed := u.Old[k]
		r := PTRow{Pack: proto.InvalidTid}
		if existed {
			r.Pack = prev.Pack // state changes keep it
		}
		switch {
		case c.State != proto.OUT_OF_DATE:
			r.Tid = -int64(c.State)
			if !existed && c.NID == u.Me {
				r.Pack = 0
			}
		case c.NID != u.Me:
			r.Tid = 0
		case existed && prev.Tid >= 0:
			r.Tid = prev.Tid // stays out of date: keep the resume point
		case existed:
			// A readable cell becomes out of date: replication only needs
			// what comes after what is already here.
			if u.BackupTid != proto.InvalidTid {
				r.Tid = int64(u.BackupTid)
			} else {
				t, err := u.LastTid(c.Partition)
				if err != nil {
					return fmt.Errorf("cell %d/%s: %w", c.Partition, c.NID, err)
				}
				r.Tid = max(t, 0)
			}
		default:
			r.Pack = u.MaxApproved // what it will replicate is already packed
		}
		if err := u.Put(k, &r); err != nil {
			return fmt.Errorf("set cell %d/%s %s: %w", c.Partition, c.NID, c.State, err)
		}
	}
	return nil
}
