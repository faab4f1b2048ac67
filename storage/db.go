package storage

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

// txnStore adapts a [backend.Backend] to the transaction manager's txnDB.
//
// The backend writes object data at vote time (StoreTransaction), so data
// received with AskStoreObject is held in memory here until the vote:
// holdData only numbers it. Writes to the backend are serialised by wmu,
// shared with every other writer of the node.
type txnStore struct {
	ctx context.Context // the node's run context
	b   backend.Backend
	wmu *sync.Mutex

	next dataID
	held map[dataID]backend.Record
}

func newTxnStore(ctx context.Context, b backend.Backend, wmu *sync.Mutex) *txnStore {
	return &txnStore{ctx: ctx, b: b, wmu: wmu, held: make(map[dataID]backend.Record)}
}

func (s *txnStore) lastObjectTID(oid proto.Oid) (proto.Tid, bool, error) {
	tid, err := s.b.LastObjectTid(s.ctx, oid)
	if err != nil {
		return 0, false, err
	}
	return tid, tid != proto.InvalidTid, nil
}

func (s *txnStore) holdData(oid proto.Oid, d objectData, empty bool, dataSerial proto.Tid) (dataID, error) {
	if empty && dataSerial != proto.InvalidTid {
		// An undo store without data needs the target revision's data.
		switch _, err := s.b.Load(s.ctx, oid, dataSerial, proto.InvalidTid); {
		case errors.Is(err, backend.ErrOidNotFound), errors.Is(err, backend.ErrOidDoesNotExist):
			return 0, fmt.Errorf("%w: Could not undo for oid %v", proto.ErrUndoPack, oid)
		case err != nil:
			return 0, err
		}
	}
	r := backend.Record{Oid: oid, DataSerial: dataSerial}
	if !empty {
		r.Compression, r.Checksum, r.Data = d.Compression, d.Checksum, d.Data
	}
	id := s.next
	s.next++
	s.held[id] = r
	return id, nil
}

func (s *txnStore) loadData(id dataID) (objectData, error) {
	r, ok := s.held[id]
	if !ok {
		return objectData{}, fmt.Errorf("storage: data %d not held", id)
	}
	return objectData{Compression: r.Compression, Checksum: r.Checksum, Data: r.Data}, nil
}

func (s *txnStore) releaseData(ids []dataID) error {
	for _, id := range ids {
		delete(s.held, id)
	}
	return nil
}

func (s *txnStore) storeTransaction(ttid proto.Tid, objs []tempObject, meta *txnMeta) error {
	recs := make([]backend.Record, 0, len(objs))
	for _, o := range objs {
		r, ok := s.held[o.Data]
		if !ok {
			return fmt.Errorf("storage: data of oid %v not held", o.Oid)
		}
		recs = append(recs, r)
	}
	var m *backend.TxnMeta
	if meta != nil {
		m = &backend.TxnMeta{TTid: ttid, User: meta.User, Description: meta.Description,
			Ext: meta.Extension, Oids: meta.Oids}
		if p := meta.Pack; p != nil {
			m.Pack = &backend.PackOrder{Partial: p.Partial, Oids: p.Oids, PackTid: p.PackTid}
		}
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.b.StoreTransaction(s.ctx, ttid, recs, m); err != nil {
		if errors.Is(err, backend.ErrUndoPacked) {
			return fmt.Errorf("%w: %w", proto.ErrUndoPack, err)
		}
		return err
	}
	// The rows are durable: the data need not stay in memory (a voted
	// transaction is never asked to relock).
	for _, o := range objs {
		delete(s.held, o.Data)
	}
	return nil
}

func (s *txnStore) lockTransaction(tid, ttid proto.Tid, approvePack bool) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.b.LockTransaction(s.ctx, ttid, tid, approvePack)
}

func (s *txnStore) unlockTransaction(tid, ttid proto.Tid, metadata bool, oids []proto.Oid, pack bool) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.b.UnlockTransaction(s.ctx, ttid, tid)
}

func (s *txnStore) abortTransaction(ttid proto.Tid) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.b.AbortTransaction(s.ctx, ttid)
}

// dropPartitionsTemporary: the backend has no per-partition deletion of
// temporary rows (see /work/notes/backend-requests.md); what pending
// transactions hold in memory is dropped by the manager and leftover rows
// go with DropUnfinishedData at the next operation start.
func (s *txnStore) dropPartitionsTemporary([]uint32) error { return nil }

// commit and deferCommit: the backend commits in each call.
func (s *txnStore) commit() error { return nil }
func (s *txnStore) deferCommit()  {}

func (s *txnStore) finalTID(ttid proto.Tid) (proto.Tid, bool, error) {
	tid, err := s.b.FinalTid(s.ctx, ttid)
	if err != nil {
		return 0, false, err
	}
	return tid, tid != proto.InvalidTid, nil
}
