package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/neogo/neo/parttab"
	"github.com/neogo/neo/proto"
)

// TxnInfo is a committed transaction as [TxnIter] returns it.
type TxnInfo struct {
	Tid         proto.Tid
	User        []byte
	Description []byte
	Extension   []byte
	Packed      bool // status 'p'
	Records     []Record
}

// Record is one object record of a committed transaction.
type Record struct {
	Oid proto.Oid
	// Data is the revision's data, undo back-pointers followed; nil for
	// a deletion (creation undone).
	Data []byte
	// DataSerial is the revision whose data an undo record shares,
	// proto.InvalidTid otherwise.
	DataSerial proto.Tid
}

// Deleted tells whether the record is a deletion (creation undone).
func (r *Record) Deleted() bool { return r.Data == nil }

// TxnIter iterates over the committed transactions of a cluster in tid
// order (cluster.md §7.4 iterator): tids come from every partition
// (AskTIDsFrom), metadata from AskTransactionInformation, and each
// listed oid's record from AskObject at the transaction's tid. Oids
// listed without a record at that tid (pack, readCurrent) are skipped.
// The next transactions are read ahead, in parallel: a copy is bound by
// round trips, not by the bytes. Close ends the reads ahead of an
// iteration not followed to its end. Not safe for concurrent use.
type TxnIter struct {
	c           *Client
	start, stop proto.Tid
	parts       []partTids      // by partition; nil until the first Next
	ahead       []*txnRead      // transactions being read, in tid order
	ctx         context.Context // of the reads ahead
	cancel      context.CancelFunc
	eof         bool // no tid left
	err         error
}

// txnRead is a transaction read ahead: txn and err are set when done
// is closed.
type txnRead struct {
	done chan struct{}
	txn  *TxnInfo
	err  error
}

// partTids is the window of tids fetched from one partition.
type partTids struct {
	tids []proto.Tid // not returned yet, ascending
	next proto.Tid   // where the next fetch starts
	done bool        // no tid left up to stop
}

// iterChunk is how many tids are asked of a partition at once.
var iterChunk = 1000

// iterLoads bounds the object loads of one transaction in flight.
const iterLoads = 16

// iterAhead is how many transactions are read ahead.
const iterAhead = 16

// Iterate returns an iterator over the transactions with start ≤ tid ≤
// stop; stop = proto.InvalidTid means the last tid at the first Next.
func (c *Client) Iterate(start, stop proto.Tid) *TxnIter {
	return &TxnIter{c: c, start: start, stop: stop}
}

// Next returns the next transaction with its records, or io.EOF after
// the last one. An error other than io.EOF ends the iteration.
func (it *TxnIter) Next(ctx context.Context) (*TxnInfo, error) {
	if it.err != nil {
		return nil, it.err
	}
	txn, err := it.next(ctx)
	if err != nil {
		it.err = err
		it.Close()
	}
	return txn, err
}

// Close stops the reads ahead; Next then fails.
func (it *TxnIter) Close() {
	if it.cancel != nil {
		it.cancel()
	}
	if it.err == nil {
		it.err = errors.New("client: iterate: iterator closed")
	}
}

func (it *TxnIter) next(ctx context.Context) (*TxnInfo, error) {
	if it.ctx == nil {
		// The reads ahead outlive one Next: they end with Close.
		it.ctx, it.cancel = context.WithCancel(context.WithoutCancel(ctx))
	}
	for len(it.ahead) < iterAhead && !it.eof {
		part, tid, err := it.nextTid(ctx)
		if err == io.EOF {
			it.eof = true
			break
		}
		if err != nil {
			return nil, err
		}
		r := &txnRead{done: make(chan struct{})}
		it.ahead = append(it.ahead, r)
		go func() {
			defer close(r.done)
			r.txn, r.err = it.c.readTxn(it.ctx, part, tid)
		}()
	}
	if len(it.ahead) == 0 {
		return nil, io.EOF
	}
	r := it.ahead[0]
	select {
	case <-r.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("client: iterate: %w", context.Cause(ctx))
	}
	it.ahead = it.ahead[1:]
	return r.txn, r.err
}

// nextTid returns the next tid to read and its partition, or io.EOF.
func (it *TxnIter) nextTid(ctx context.Context) (uint32, proto.Tid, error) {
	if it.parts == nil {
		if it.stop == proto.InvalidTid {
			last, err := it.c.LastTid(ctx)
			if err != nil {
				return 0, 0, fmt.Errorf("client: iterate: %w", err)
			}
			it.stop = last
		}
		pt, err := it.c.partTable(ctx)
		if err != nil {
			return 0, 0, fmt.Errorf("client: iterate: %w", err)
		}
		it.parts = make([]partTids, pt.NumPartitions())
		for i := range it.parts {
			it.parts[i] = partTids{next: it.start, done: it.start > it.stop}
		}
	}
	// The smallest tid at the head of a partition's window.
	best := -1
	for i := range it.parts {
		p := &it.parts[i]
		if len(p.tids) == 0 && !p.done {
			if err := it.fetch(ctx, uint32(i)); err != nil {
				return 0, 0, err
			}
		}
		if len(p.tids) > 0 && (best < 0 || p.tids[0] < it.parts[best].tids[0]) {
			best = i
		}
	}
	if best < 0 {
		return 0, 0, io.EOF
	}
	tid := it.parts[best].tids[0]
	it.parts[best].tids = it.parts[best].tids[1:]
	return uint32(best), tid, nil
}

// fetch refills the window of partition part.
func (it *TxnIter) fetch(ctx context.Context, part uint32) error {
	p := &it.parts[part]
	var ans proto.AnswerTIDsFrom
	req := &proto.AskTIDsFrom{MinTid: p.next, MaxTid: it.stop, Length: uint32(iterChunk), Partition: part}
	if err := it.c.askPartition(ctx, part, req, &ans); err != nil {
		return fmt.Errorf("client: iterate: tids of partition %d from %v: %w", part, p.next, err)
	}
	p.tids = ans.TidList
	if len(p.tids) < iterChunk {
		p.done = true
	}
	if n := len(p.tids); n > 0 {
		if p.tids[n-1] >= it.stop {
			p.done = true
		}
		p.next = p.tids[n-1] + 1
	}
	return nil
}

// readTxn reads the metadata and records of transaction tid.
func (c *Client) readTxn(ctx context.Context, part uint32, tid proto.Tid) (*TxnInfo, error) {
	var ans proto.AnswerTransactionInformation
	if err := c.askPartition(ctx, part, &proto.AskTransactionInformation{Tid: tid}, &ans); err != nil {
		return nil, fmt.Errorf("client: iterate: transaction %v: %w", tid, err)
	}
	txn := &TxnInfo{Tid: tid, User: ans.User, Description: ans.Description, Extension: ans.Extension,
		Packed: ans.Packed, Records: make([]Record, len(ans.OidList))}
	found := make([]bool, len(ans.OidList))
	// Loads go in parallel: one round trip per object is the iterator's
	// cost.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	sem := make(chan struct{}, iterLoads)
	for i, oid := range ans.OidList {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			obj, err := c.LoadSerial(ctx, oid, tid)
			switch {
			case err == nil:
				txn.Records[i] = Record{Oid: oid, Data: obj.Data, DataSerial: obj.DataSerial}
				if obj.Data == nil {
					txn.Records[i].Data = []byte{}
				}
				found[i] = true
			case errors.Is(err, errDeleted):
				txn.Records[i] = Record{Oid: oid, DataSerial: proto.InvalidTid}
				found[i] = true
			case errors.Is(err, proto.ErrOidNotFound), errors.Is(err, proto.ErrOidDoesNotExist):
				// Packed away, or only checked (readCurrent).
			default:
				mu.Lock()
				if firstErr == nil {
					firstErr = err
					cancel()
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, fmt.Errorf("client: iterate: transaction %v: %w", tid, firstErr)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("client: iterate: transaction %v: %w", tid, context.Cause(ctx))
	}
	recs := txn.Records[:0]
	for i, r := range txn.Records {
		if found[i] {
			recs = append(recs, r)
		}
	}
	txn.Records = recs
	return txn, nil
}

// partTable returns the current partition table, waiting for the master.
func (c *Client) partTable(ctx context.Context) (*parttab.Table, error) {
	mc, err := c.waitMasterForRead(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.master != mc || mc.pt == nil {
		return nil, fmt.Errorf("partition table lost: %w", ErrMasterLost)
	}
	return mc.pt.Clone(), nil
}

// askPartition asks req of a readable cell of partition part, trying the
// others in turn, and syncing with the master between rounds; it gives
// up after a few rounds without an answer.
func (c *Client) askPartition(ctx context.Context, part uint32, req, ans proto.Msg) error {
	var lastErr error
	for round := 0; round < 5; round++ {
		mc, err := c.waitMasterForRead(ctx)
		if err != nil {
			return err
		}
		c.mu.Lock()
		var cand []proto.NodeID
		if c.mu.master == mc && mc.pt != nil {
			cand = c.readCandidatesLocked(nil, mc.pt, part, time.Now())
		}
		c.mu.Unlock()
		for _, nid := range cand {
			link, err := c.storage(ctx, nid)
			if err != nil {
				lastErr = err
				continue
			}
			err = link.Ask(ctx, req, ans)
			var perr *proto.Error
			switch {
			case err == nil:
				return nil
			case ctx.Err() != nil:
				return context.Cause(ctx)
			case errors.As(err, &perr) && perr.Code == proto.NON_READABLE_CELL:
			case errors.As(err, &perr):
				return fmt.Errorf("storage %v: %w", nid, err)
			default:
				c.storageFailed(nid, link)
			}
			lastErr = fmt.Errorf("storage %v: %w", nid, err)
		}
		tm := time.NewTimer(time.Duration(round+1) * 50 * time.Millisecond)
		select {
		case <-tm.C:
		case <-ctx.Done():
			tm.Stop()
			return context.Cause(ctx)
		}
		if err := mc.barrier(ctx); err != nil && ctx.Err() != nil {
			return context.Cause(ctx)
		}
	}
	if lastErr == nil {
		lastErr = errors.New("no readable cell")
	}
	return &NoStorageError{Partition: part, Err: lastErr}
}
