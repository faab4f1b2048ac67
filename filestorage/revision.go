package filestorage

import (
	"fmt"

	"github.com/neogo/neo/proto"
)

// Revision is an object revision as LoadRevision returns it.
type Revision struct {
	// Data is the revision's data, back-pointers followed; nil for a
	// deletion or "creation undone" record.
	Data   []byte
	Serial proto.Tid
	// Next is the serial of the following revision, 0 if it is the latest.
	Next proto.Tid
	// DataTid is the tid of the record a back-pointer of this revision
	// points to (ZODB's data_txn), 0 when it holds its data or has none.
	DataTid proto.Tid
}

// LoadRevision is LoadBefore for a reader that must answer deletions and
// undo records as they are stored (the Importer backend): a deletion is a
// Revision with nil Data, not an error, and DataTid is set. Errors:
// ErrNotFound (unknown oid), ErrNoRevision, a *CorruptError, an I/O error.
func (s *Storage) LoadRevision(oid proto.Oid, before proto.Tid) (Revision, error) {
	pos, end, err := s.lookup(oid)
	if err != nil {
		return Revision{}, err
	}
	var next proto.Tid
	for {
		h, err := s.readDataHeader(pos, end, oid)
		if err != nil {
			return Revision{}, err
		}
		if h.Tid < before {
			data, dataTid, _, err := s.readData(&h, end, nil)
			if err != nil {
				return Revision{}, err
			}
			return Revision{Data: data, Serial: h.Tid, Next: next, DataTid: dataTid}, nil
		}
		if h.Prev == 0 {
			return Revision{}, fmt.Errorf("oid %s before %s: %w", oid, before, ErrNoRevision)
		}
		next, pos = h.Tid, h.Prev
	}
}
