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

	mu struct { // the data held; never held across backend calls
		sync.Mutex
		next dataID
		held map[dataID]backend.Record
	}

	// locks wait here for wmu; the first to get it writes all of them
	// in one durable write (group commit: concurrent locks share a sync).
	locks struct {
		sync.Mutex
		queue []*queuedLock
	}
}

// queuedLock is a lock waiting for wmu; done gets its result.
type queuedLock struct {
	backend.Lock
	done chan error
}

func newTxnStore(ctx context.Context, b backend.Backend, wmu *sync.Mutex) *txnStore {
	s := &txnStore{ctx: ctx, b: b, wmu: wmu}
	s.mu.held = make(map[dataID]backend.Record)
	return s
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
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.mu.next
	s.mu.next++
	s.mu.held[id] = r
	return id, nil
}

func (s *txnStore) loadData(id dataID) (objectData, error) {
	s.mu.Lock()
	r, ok := s.mu.held[id]
	s.mu.Unlock()
	if !ok {
		return objectData{}, fmt.Errorf("storage: data %d not held", id)
	}
	return objectData{Compression: r.Compression, Checksum: r.Checksum, Data: r.Data}, nil
}

func (s *txnStore) releaseData(ids []dataID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		delete(s.mu.held, id)
	}
	return nil
}

func (s *txnStore) storeTransaction(ttid proto.Tid, objs []tempObject, meta *txnMeta) error {
	recs := make([]backend.Record, 0, len(objs))
	s.mu.Lock()
	for _, o := range objs {
		r, ok := s.mu.held[o.Data]
		if !ok {
			s.mu.Unlock()
			return fmt.Errorf("storage: vote %v: data of oid %v not held", ttid, o.Oid)
		}
		recs = append(recs, r)
	}
	s.mu.Unlock()
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
	s.mu.Lock()
	for _, o := range objs {
		delete(s.mu.held, o.Data)
	}
	s.mu.Unlock()
	return nil
}

// lockTransaction locks ttid durably, with the locks that wait for wmu at
// the same time: each of them gets the error of the write.
func (s *txnStore) lockTransaction(tid, ttid proto.Tid, approvePack bool) error {
	me := &queuedLock{backend.Lock{TTid: ttid, Tid: tid, ApprovePack: approvePack}, make(chan error, 1)}
	s.locks.Lock()
	s.locks.queue = append(s.locks.queue, me)
	s.locks.Unlock()
	s.wmu.Lock()
	s.locks.Lock()
	batch := s.locks.queue
	s.locks.queue = nil
	s.locks.Unlock()
	if len(batch) > 0 { // else an earlier holder of wmu wrote ours
		locks := make([]backend.Lock, len(batch))
		for i, q := range batch {
			locks[i] = q.Lock
		}
		err := backend.LockTransactions(s.ctx, s.b, locks)
		for _, q := range batch {
			q.done <- err
		}
	}
	s.wmu.Unlock()
	return <-me.done
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

func (s *txnStore) finalTID(ttid proto.Tid) (proto.Tid, bool, error) {
	tid, err := s.b.FinalTid(s.ctx, ttid)
	if err != nil {
		return 0, false, err
	}
	return tid, tid != proto.InvalidTid, nil
}
