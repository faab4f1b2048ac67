package client

import (
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/klauspost/compress/zlib"
	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
)

// ConflictError reports a write conflict: the object was modified by
// another transaction since the revision the store was based on. The
// client does not resolve conflicts: abort and retry.
type ConflictError struct {
	Oid proto.Oid
	// Serial is the revision committed meanwhile.
	Serial proto.Tid
	// Tried is the serial the store was based on.
	Tried proto.Tid
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("client: conflict on oid %v: stored on serial %v, current is %v", e.Oid, e.Tried, e.Serial)
}

// storeReq is a store request with room for its checksum, pooled.
type storeReq struct {
	req proto.AskStoreObject
	sum [sha1.Size]byte
}

var storeReqs = sync.Pool{New: func() any { return new(storeReq) }}

// release returns sr to its pool, without keeping the caller's data.
func (sr *storeReq) release() {
	sr.req = proto.AskStoreObject{}
	storeReqs.Put(sr)
}

// txnState is where a transaction is in the two-phase commit.
type txnState int

const (
	txnOpen      txnState = iota // storing
	txnVoting                    // Vote in progress
	txnVoted                     // Vote succeeded
	txnFinishing                 // Finish in progress or done
	txnAborted
)

// Txn is one transaction of a [Client] (cluster.md §6.3): [Client.Begin],
// then Store any number of times, Vote, Finish; or Abort at any point
// before Finish. Its methods are safe for concurrent use but the
// protocol is sequential: Store calls may overlap each other, nothing
// else. State is guarded by mu.
type Txn struct {
	c    *Client
	mc   *masterConn // the master connection the transaction began on
	ttid proto.Tid

	// Metadata sent with the vote (AskStoreTransaction).
	User, Description, Extension []byte
	// Pack, if valid, makes the commit a pack order (neoppod's
	// Storage.pack): history before PackTid is packed away, of the Oids
	// only if listed. It must be set before Vote.
	Pack proto.Opt[proto.PackRequest]

	mu struct {
		sync.Mutex
		state      txnState
		err        error                         // sticky: the transaction must be aborted
		links      map[proto.NodeID]*neonet.Link // storages written to
		failed     map[proto.NodeID]bool         // storages whose link failed (§6.7)
		pending    []pendingOp                   // stores and relocks not answered yet
		storesDone bool                          // every store answered: relocks are ignored
		oids       []proto.Oid                   // stored, in first-store order
		stored     map[proto.Oid]bool
		written    map[uint32]map[proto.NodeID]bool // partition → nodes that answered a store
		lockless   map[uint32]map[proto.NodeID]bool // partition → nodes that answered ZERO_TID
		deleted    map[proto.Oid]uint32             // deleted oid → its partition
	}
}

// pendingOp is a store (or relock) waiting for its answer.
type pendingOp struct {
	oid    proto.Oid
	serial proto.Tid
	part   uint32
	nid    proto.NodeID
	call   *neonet.Call
	relock bool
}

// TTID returns the transaction's temporary id, given by the master at
// Begin; it orders transactions for the storages' deadlock avoidance.
func (t *Txn) TTID() proto.Tid { return t.ttid }

// Begin starts a transaction. It waits for a master connection while the
// client reconnects, within ctx.
func (c *Client) Begin(ctx context.Context) (*Txn, error) {
	return c.begin(ctx, proto.InvalidTid)
}

// BeginAt starts a transaction that commits with tid exactly, as when
// copying a database (protocol.md AskBeginTransaction): tid must be
// greater than the last committed tid and no other transaction may be in
// progress, else the master refuses.
func (c *Client) BeginAt(ctx context.Context, tid proto.Tid) (*Txn, error) {
	return c.begin(ctx, tid)
}

func (c *Client) begin(ctx context.Context, tid proto.Tid) (*Txn, error) {
	if c.cfg.ReadOnly {
		return nil, ErrReadOnly
	}
	for {
		mc, err := c.waitMaster(ctx)
		if err != nil {
			return nil, fmt.Errorf("client: begin: %w", err)
		}
		var ans proto.AnswerBeginTransaction
		err = mc.link.Ask(ctx, &proto.AskBeginTransaction{Tid: tid}, &ans)
		if err != nil {
			if ctx.Err() == nil && errors.Is(err, neonet.ErrClosed) {
				continue // the master was lost: wait for the next one
			}
			return nil, fmt.Errorf("client: begin: %w", err)
		}
		t := &Txn{c: c, mc: mc, ttid: ans.TTid}
		t.mu.links = map[proto.NodeID]*neonet.Link{}
		t.mu.failed = map[proto.NodeID]bool{}
		t.mu.stored = map[proto.Oid]bool{}
		t.mu.written = map[uint32]map[proto.NodeID]bool{}
		t.mu.lockless = map[uint32]map[proto.NodeID]bool{}
		c.mu.Lock()
		c.mu.txns[t.ttid] = t
		c.mu.Unlock()
		return t, nil
	}
}

// masterLostErr returns an error matching ErrMasterLost if the master
// connection of the transaction is gone.
func (t *Txn) masterLostErr(op string) error {
	if t.mc.lost() {
		return fmt.Errorf("client: %s transaction %v: %w", op, t.ttid, ErrMasterLost)
	}
	return nil
}

// checkState fails unless the transaction is in state want and usable;
// callers hold t.mu.
func (t *Txn) checkStateLocked(op string, want txnState) error {
	if t.mu.err != nil {
		return t.mu.err
	}
	if t.mu.state != want {
		return fmt.Errorf("client: %s transaction %v: %w", op, t.ttid, ErrTxnDone)
	}
	return t.masterLostErr(op)
}

// Store stores data as the new revision of oid, based on revision serial
// (proto.ZeroTid for a new object), on every cell of oid's partition
// (cluster.md §6.3). Data is compressed when that makes it smaller and
// sent with its SHA-1. Store does not wait for the storages' answers: a
// conflict ([*ConflictError]) is reported by Vote. Nor does it always
// write the store at once: stores are written together, by 64 KiB, at
// Vote, or within a millisecond (neonet's StartQueued). data may be
// reused when Store returns.
func (t *Txn) Store(ctx context.Context, oid proto.Oid, serial proto.Tid, data []byte) error {
	return t.store(ctx, oid, serial, data, false)
}

// Delete stores a deletion of oid ("creation undone"), based on revision
// serial: a record without data, whose partition the master is told at
// Finish; other clients are not invalidated for it (cluster.md §6.3).
func (t *Txn) Delete(ctx context.Context, oid proto.Oid, serial proto.Tid) error {
	return t.store(ctx, oid, serial, nil, true)
}

func (t *Txn) store(ctx context.Context, oid proto.Oid, serial proto.Tid, data []byte, del bool) error {
	// The request and the compressed data are pooled: neonet encodes
	// them before StartQueued returns.
	sr := storeReqs.Get().(*storeReq)
	defer sr.release()
	var comp uint8
	payload := []byte{}
	sr.sum = zeroHash // "no data"
	if !del {
		var buf *bytes.Buffer
		comp, payload, buf = compress(data)
		defer releaseCompressed(buf)
		sr.sum = sha1.Sum(payload)
	}
	sr.req = proto.AskStoreObject{Oid: oid, Serial: serial, Compression: comp, Checksum: sr.sum[:],
		Data: payload, DataSerial: proto.InvalidTid, TTid: t.ttid}
	req := &sr.req

	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.checkStateLocked("store in", txnOpen); err != nil {
		return err
	}
	c := t.c
	c.mu.Lock()
	if c.mu.master != t.mc || t.mc.pt == nil {
		c.mu.Unlock()
		return fmt.Errorf("client: store in transaction %v: %w", t.ttid, ErrMasterLost)
	}
	part := t.mc.pt.OidPartition(oid)
	row := t.mc.pt.Row(part)
	c.mu.Unlock()

	sent := 0
	for _, cell := range row {
		link, err := t.linkLocked(ctx, cell.NID)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("client: store oid %v: %w", oid, err)
			}
			continue
		}
		// Stores wait for their answers at Vote: they may go out together
		// (one write instead of one each), flushed before any wait.
		call, err := link.StartQueued(req, &proto.AnswerStoreObject{})
		if err != nil {
			t.failLocked(cell.NID, link, err)
			continue
		}
		t.mu.pending = append(t.mu.pending, pendingOp{oid: oid, serial: serial, part: part, nid: cell.NID, call: call})
		sent++
	}
	if sent == 0 {
		err := fmt.Errorf("client: store oid %v in transaction %v: no storage of partition %d reachable: %w", oid, t.ttid, part, ErrNoStorage)
		t.mu.err = err
		return err
	}
	if !t.mu.stored[oid] {
		t.mu.stored[oid] = true
		t.mu.oids = append(t.mu.oids, oid)
	}
	if del {
		if t.mu.deleted == nil {
			t.mu.deleted = map[proto.Oid]uint32{}
		}
		t.mu.deleted[oid] = part
	} else {
		delete(t.mu.deleted, oid)
	}
	return nil
}

// linkLocked returns the link to storage nid used by this transaction,
// opening it on first use; a failure marks the node failed for the
// transaction. Callers hold t.mu.
func (t *Txn) linkLocked(ctx context.Context, nid proto.NodeID) (*neonet.Link, error) {
	if t.mu.failed[nid] {
		return nil, fmt.Errorf("storage %v failed during the transaction", nid)
	}
	if l := t.mu.links[nid]; l != nil {
		if linkClosed(l) {
			t.failLocked(nid, l, l.Err())
			return nil, l.Err()
		}
		return l, nil
	}
	t.flushLocked() // dialing may take a while
	l, err := t.c.storage(ctx, nid)
	if err != nil {
		if ctx.Err() == nil {
			t.failLocked(nid, nil, err)
		}
		return nil, err
	}
	t.mu.links[nid] = l
	return l, nil
}

// failLocked records that storage nid failed for this transaction.
func (t *Txn) failLocked(nid proto.NodeID, link *neonet.Link, err error) {
	if !t.mu.failed[nid] && !errors.Is(err, errNotRunning) {
		t.c.log.Info("storage failed during a transaction", "nid", nid, "ttid", t.ttid, "err", err)
	}
	t.mu.failed[nid] = true
	if link != nil {
		t.c.storageFailed(nid, link)
	}
}

// relock answers NotifyDeadlock (cluster.md §6.6): unless every store was
// answered, ask the storage to release and retake the lock of oid.
func (t *Txn) relock(link *neonet.Link, oid proto.Oid) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.storesDone || t.mu.err != nil || (t.mu.state != txnOpen && t.mu.state != txnVoting) {
		return
	}
	for nid, l := range t.mu.links {
		if l != link {
			continue
		}
		call, err := link.Start(&proto.AskRelockObject{TTid: t.ttid, Oid: oid}, &proto.AnswerRelockObject{})
		if err != nil {
			t.failLocked(nid, link, err)
			return
		}
		t.mu.pending = append(t.mu.pending, pendingOp{oid: oid, nid: nid, call: call, relock: true, part: t.partOf(oid)})
		return
	}
}

// partOf returns the partition of oid in the transaction's table.
func (t *Txn) partOf(oid proto.Oid) uint32 {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.mc.pt == nil {
		return 0
	}
	return t.mc.pt.OidPartition(oid)
}

// Vote waits for every store to be answered, then asks the storages to
// vote (cluster.md §6.3): the cells of the transaction's partition store
// its metadata, the other storages written to just vote. Storages whose
// link failed are reported to the master (FailedVote, §6.7), which
// accepts to go on without them only if the cluster stays operational.
// After a successful Vote, Finish practically always commits.
func (t *Txn) Vote(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.checkStateLocked("vote", txnOpen); err != nil {
		return err
	}
	t.mu.state = txnVoting
	if err := t.vote(ctx); err != nil {
		if t.mc.lost() && !errors.Is(err, ErrMasterLost) {
			// The storages drop our links when the master goes: say
			// what the failure really is.
			err = fmt.Errorf("%w: %w", ErrMasterLost, err)
		}
		if t.mu.err == nil {
			t.mu.err = err
		}
		return err
	}
	t.mu.state = txnVoted
	return nil
}

// flushLocked writes the stores queued on the transaction's links.
// Callers hold t.mu.
func (t *Txn) flushLocked() {
	for _, l := range t.mu.links {
		l.Flush()
	}
}

func (t *Txn) vote(ctx context.Context) error {
	// 1. Store answers. Relocks may be added meanwhile (t.mu is
	// released while waiting).
	t.flushLocked()
	for len(t.mu.pending) > 0 {
		p := t.mu.pending[0]
		t.mu.pending = t.mu.pending[1:]
		t.mu.Unlock()
		err := p.call.Wait(ctx)
		t.mu.Lock()
		if err := t.storeAnswer(ctx, &p, err); err != nil {
			return err
		}
	}
	t.mu.storesDone = true
	if err := t.masterLostErr("vote"); err != nil {
		return err
	}

	// 2. Vote on every storage involved.
	c := t.c
	c.mu.Lock()
	if c.mu.master != t.mc || t.mc.pt == nil {
		c.mu.Unlock()
		return fmt.Errorf("client: vote transaction %v: %w", t.ttid, ErrMasterLost)
	}
	pt := t.mc.pt.Clone()
	c.mu.Unlock()
	metaPart := pt.TidPartition(t.ttid)
	type voteCall struct {
		nid  proto.NodeID
		link *neonet.Link
		call *neonet.Call
	}
	var calls []voteCall
	meta := map[proto.NodeID]bool{}
	for _, cell := range pt.Row(metaPart) {
		meta[cell.NID] = true
		link, err := t.linkLocked(ctx, cell.NID)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("client: vote transaction %v: %w", t.ttid, err)
			}
			continue
		}
		call, err := link.Start(&proto.AskStoreTransaction{TTid: t.ttid, User: nonNil(t.User),
			Description: nonNil(t.Description), Extension: nonNil(t.Extension), OidList: t.mu.oids, Pack: t.Pack}, &proto.AnswerStoreTransaction{})
		if err != nil {
			t.failLocked(cell.NID, link, err)
			continue
		}
		calls = append(calls, voteCall{cell.NID, link, call})
	}
	for _, nid := range sortedNIDs(t.mu.links) {
		if meta[nid] || t.mu.failed[nid] {
			continue
		}
		link := t.mu.links[nid]
		call, err := link.Start(&proto.AskVoteTransaction{TTid: t.ttid}, &proto.AnswerVoteTransaction{})
		if err != nil {
			t.failLocked(nid, link, err)
			continue
		}
		calls = append(calls, voteCall{nid, link, call})
	}
	metaOK := 0
	for _, vc := range calls {
		t.mu.Unlock()
		err := vc.call.Wait(ctx)
		t.mu.Lock()
		switch {
		case err == nil:
			if meta[vc.nid] {
				metaOK++
			}
		case ctx.Err() != nil:
			return fmt.Errorf("client: vote transaction %v: %w", t.ttid, err)
		case errors.Is(err, neonet.ErrClosed):
			t.failLocked(vc.nid, vc.link, err)
		default:
			return fmt.Errorf("client: vote transaction %v on storage %v: %w", t.ttid, vc.nid, err)
		}
	}
	if metaOK == 0 {
		return fmt.Errorf("client: vote transaction %v: no storage of partition %d stored its metadata: %w", t.ttid, metaPart, ErrNoStorage)
	}

	// 3. Failed storages (§6.7).
	if len(t.mu.failed) == 0 {
		return nil
	}
	for part, nodes := range t.mu.written {
		ok, lockedOK := false, false
		for nid := range nodes {
			if !t.mu.failed[nid] {
				ok = true
				if !t.mu.lockless[part][nid] {
					lockedOK = true
				}
			}
		}
		if !ok {
			return fmt.Errorf("client: vote transaction %v: every storage written in partition %d failed: %w", t.ttid, part, ErrNoStorage)
		}
		if len(t.mu.lockless[part]) > 0 && !lockedOK {
			return fmt.Errorf("client: vote transaction %v: partition %d not fully write-locked", t.ttid, part)
		}
	}
	var report []proto.NodeID
	c.mu.Lock()
	for nid := range t.mu.failed {
		if n := t.mc.nodes.ByNID(nid); n != nil && n.State == proto.NODE_RUNNING {
			report = append(report, nid)
		}
	}
	c.mu.Unlock()
	if len(report) == 0 {
		return nil
	}
	slices.Sort(report)
	c.log.Info("reporting failed storages to the master", "ttid", t.ttid, "nids", report)
	t.mu.Unlock()
	err := t.mc.link.Ask(ctx, &proto.FailedVote{TTid: t.ttid, NIDList: report}, &proto.Error{})
	t.mu.Lock()
	switch {
	case err == nil:
		return nil
	case ctx.Err() == nil && errors.Is(err, neonet.ErrClosed):
		return fmt.Errorf("client: vote transaction %v: %w", t.ttid, ErrMasterLost)
	default:
		return fmt.Errorf("client: vote transaction %v: failed storages %v: %w", t.ttid, report, err)
	}
}

// storeAnswer handles the answer (or failure) of a store or relock.
func (t *Txn) storeAnswer(ctx context.Context, p *pendingOp, err error) error {
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return fmt.Errorf("client: store oid %v in transaction %v: %w", p.oid, t.ttid, err)
	case errors.Is(err, neonet.ErrClosed):
		// A broken link counts as answered: the node failed (§6.7).
		t.failLocked(p.nid, t.mu.links[p.nid], err)
		return nil
	default: // an Error answer (a *proto.Error) or a protocol error
		return fmt.Errorf("client: store oid %v in transaction %v on storage %v: %w", p.oid, t.ttid, p.nid, err)
	}
	if p.relock {
		ans := p.call.Answer().(*proto.AnswerRelockObject)
		if rc, ok := ans.Conflict.Get(); ok {
			return &ConflictError{Oid: p.oid, Serial: rc.ConflictSerial, Tried: rc.Serial}
		}
		return nil
	}
	ans := p.call.Answer().(*proto.AnswerStoreObject)
	switch ans.Conflict {
	case proto.InvalidTid: // stored and locked
	case proto.ZeroTid: // stored without lock
		addNID(t.mu.lockless, p.part, p.nid)
	default:
		return &ConflictError{Oid: p.oid, Serial: ans.Conflict, Tried: p.serial}
	}
	addNID(t.mu.written, p.part, p.nid)
	return nil
}

func addNID(m map[uint32]map[proto.NodeID]bool, part uint32, nid proto.NodeID) {
	if m[part] == nil {
		m[part] = map[proto.NodeID]bool{}
	}
	m[part][nid] = true
}

// Finish commits the voted transaction and returns its tid. If the
// master connection breaks meanwhile, the client reconnects and asks the
// new primary (then the storages) whether the transaction committed
// (AskFinalTID, cluster.md §6.9): Finish fails, with an error matching
// [ErrMasterLost], only if it did not. After Finish, successful or not,
// the transaction is over (no Abort needed).
func (t *Txn) Finish(ctx context.Context) (proto.Tid, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.checkStateLocked("finish", txnVoted); err != nil {
		return 0, err
	}
	t.mu.state = txnFinishing
	c := t.c
	c.mu.Lock()
	delete(c.mu.txns, t.ttid)
	if c.mu.master != t.mc {
		c.mu.Unlock()
		return 0, fmt.Errorf("client: finish transaction %v: %w", t.ttid, ErrMasterLost)
	}
	c.mu.finishing++
	c.mu.Unlock()

	// Deleted oids are not invalidated: only their partitions are told.
	oids, deleted := t.mu.oids, []uint32{}
	if len(t.mu.deleted) > 0 {
		oids = nil
		for _, oid := range t.mu.oids {
			if part, ok := t.mu.deleted[oid]; ok {
				deleted = append(deleted, part)
			} else {
				oids = append(oids, oid)
			}
		}
		oids = nonNilOids(oids)
	}
	var ans proto.AnswerTransactionFinished
	call, err := t.mc.link.Start(&proto.AskFinishTransaction{TTid: t.ttid, OidList: oids,
		Deleted: deleted, Checked: []uint32{}, Pack: t.Pack}, &ans)
	if err == nil {
		if h := c.hooks().finishSent; h != nil {
			h(t.mc.link)
		}
		err = call.Wait(ctx)
	}
	tid := ans.Tid
	if err != nil && ctx.Err() == nil && errors.Is(err, neonet.ErrClosed) {
		c.log.Warn("master lost while finishing a transaction; asking for its outcome", "ttid", t.ttid)
		tid, err = c.finalTID(ctx, t.ttid, err)
	}

	c.mu.Lock()
	c.mu.finishing--
	if err == nil {
		c.emitLocked(Invalidation{Tid: tid, Oids: slices.Clone(oids)})
	}
	if c.mu.finishing == 0 {
		c.flushHeldLocked()
	}
	c.mu.Unlock()
	if err != nil {
		t.mu.err = err
		return 0, fmt.Errorf("client: finish transaction %v: %w", t.ttid, err)
	}
	return tid, nil
}

// finalTID finds out whether transaction ttid committed after the master
// link broke during its finish (cluster.md §6.9). cause is the link error.
func (c *Client) finalTID(ctx context.Context, ttid proto.Tid, cause error) (proto.Tid, error) {
	for round := 0; ; round++ {
		mc, err := c.waitMaster(ctx)
		if err != nil {
			return 0, fmt.Errorf("outcome unknown: %w (after %v)", err, cause)
		}
		var ans proto.AnswerFinalTID
		err = mc.link.Ask(ctx, &proto.AskFinalTID{TTid: ttid}, &ans)
		switch {
		case err == nil:
		case ctx.Err() == nil && errors.Is(err, neonet.ErrClosed):
			continue
		default:
			return 0, fmt.Errorf("outcome unknown: ask the master: %w (after %v)", err, cause)
		}
		switch ans.Tid {
		case proto.InvalidTid:
			c.finalFrom("master", ans.Tid)
			return 0, fmt.Errorf("%w: not committed (%v)", ErrMasterLost, cause)
		case proto.MaxTid:
			// No longer pending on the master: the storages know.
		default:
			c.finalFrom("master", ans.Tid)
			c.log.Info("transaction committed despite the master loss", "ttid", ttid, "tid", ans.Tid)
			return ans.Tid, nil
		}
		c.mu.Lock()
		var cand []proto.NodeID
		if pt, _ := c.stateLocked(); pt != nil {
			cand = c.readCandidatesLocked(nil, pt, pt.TidPartition(ttid), time.Now())
		}
		c.mu.Unlock()
		for _, nid := range cand {
			link, err := c.storage(ctx, nid)
			if err != nil {
				continue
			}
			var sa proto.AnswerFinalTID
			if err := link.Ask(ctx, &proto.AskFinalTID{TTid: ttid}, &sa); err != nil {
				if errors.Is(err, neonet.ErrClosed) {
					c.storageFailed(nid, link)
				}
				continue
			}
			c.finalFrom("storage", sa.Tid)
			if sa.Tid == proto.InvalidTid {
				return 0, fmt.Errorf("%w: not committed (%v)", ErrMasterLost, cause)
			}
			c.log.Info("transaction committed despite the master loss", "ttid", ttid, "tid", sa.Tid)
			return sa.Tid, nil
		}
		tm := time.NewTimer(min(time.Duration(round+1)*50*time.Millisecond, retryDelay))
		select {
		case <-tm.C:
		case <-ctx.Done():
			tm.Stop()
			return 0, fmt.Errorf("outcome unknown: %w (after %v)", context.Cause(ctx), cause)
		}
	}
}

// finalFrom tells the test hook where the outcome of a finish came from.
func (c *Client) finalFrom(node string, tid proto.Tid) {
	if h := c.hooks().finalTID; h != nil {
		h(node, tid)
	}
}

// Abort aborts the transaction: the storages written to and the master
// forget it. It does nothing after Finish or a previous Abort. Abort
// sends notifications only and does not wait; ctx is for symmetry.
func (t *Txn) Abort(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.state == txnFinishing || t.mu.state == txnAborted {
		return nil
	}
	t.mu.state = txnAborted
	c := t.c
	c.mu.Lock()
	delete(c.mu.txns, t.ttid)
	current := c.mu.master == t.mc
	c.mu.Unlock()
	nids := sortedNIDs(t.mu.links)
	for _, nid := range nids {
		if l := t.mu.links[nid]; !linkClosed(l) {
			l.Send(&proto.AbortTransaction{TTid: t.ttid, NIDList: []proto.NodeID{}})
		}
	}
	// A transaction begun on a previous primary is unknown to the
	// current one, and the master already aborted it when we left.
	if current && !t.mc.lost() {
		if err := t.mc.link.Send(&proto.AbortTransaction{TTid: t.ttid, NIDList: nids}); err != nil && !errors.Is(err, neonet.ErrClosed) {
			return fmt.Errorf("client: abort transaction %v: %w", t.ttid, err)
		}
	}
	return nil
}

// compress returns data zlib-compressed if that is strictly smaller
// (protocol.md §4.3), else data itself. The compressed bytes live in buf,
// from a pool: pass buf to releaseCompressed once they are encoded.
func compress(data []byte) (comp uint8, payload []byte, buf *bytes.Buffer) {
	if len(data) < 32 {
		return 0, data, nil
	}
	buf = compBufs.Get().(*bytes.Buffer)
	buf.Reset()
	w := zlibWriters.Get().(*zlib.Writer)
	w.Reset(buf)
	w.Write(data)
	w.Close()
	zlibWriters.Put(w)
	if buf.Len() < len(data) {
		return 1, buf.Bytes(), buf
	}
	releaseCompressed(buf)
	return 0, data, nil
}

// releaseCompressed returns a buffer of compress to its pool; nil is
// ignored.
func releaseCompressed(buf *bytes.Buffer) {
	// Big buffers are dropped so that one big object does not pin its
	// memory.
	if buf != nil && buf.Cap() <= maxPooledCompBuf {
		compBufs.Put(buf)
	}
}

const maxPooledCompBuf = 256 << 10

var compBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// zlibWriters compress at level 1 with klauspost/compress, whose output is
// standard zlib (any level decodes the same): the standard library's
// BestSpeed still cost ~40 µs per incompressible 1 KiB object, mostly
// building Huffman tables for output then thrown away; klauspost's level
// 1 gives up on such input in ~1 µs (BenchmarkCompress). The price: data
// whose only redundancy is skewed byte frequencies, without repeats, is
// kept uncompressed.
var zlibWriters = sync.Pool{New: func() any {
	w, _ := zlib.NewWriterLevel(nil, zlib.BestSpeed)
	return w
}}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func nonNilOids(o []proto.Oid) []proto.Oid {
	if o == nil {
		return []proto.Oid{}
	}
	return o
}

func sortedNIDs[V any](m map[proto.NodeID]V) []proto.NodeID {
	nids := make([]proto.NodeID, 0, len(m))
	for nid := range m {
		nids = append(nids, nid)
	}
	slices.Sort(nids)
	return nids
}
