package storage

import (
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"time"

	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/parttab"
	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

// acceptLoop accepts links from clients and storages; each is served by
// its own goroutine.
func (n *Node) acceptLoop(ctx context.Context) {
	for {
		link, err := n.ln.Accept(ctx)
		if err != nil {
			if ctx.Err() == nil {
				n.log.Warn("accept", "err", err)
			}
			return
		}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			defer link.Close()
			n.serveIncoming(ctx, link)
		}()
	}
}

// identifyTimeout bounds the wait for the first packet of a new link.
const identifyTimeout = 30 * time.Second

// serveIncoming identifies the peer (§5.6) then serves its requests.
func (n *Node) serveIncoming(ctx context.Context, link *neonet.Link) {
	ictx, cancel := context.WithTimeout(ctx, identifyTimeout)
	r, err := link.Recv(ictx)
	cancel()
	if err != nil {
		return
	}
	req, ok := r.Msg.(*proto.RequestIdentification)
	if !ok {
		r.Reply(&proto.Error{Code: proto.PROTOCOL_ERROR, Message: "expected RequestIdentification, got " + proto.MsgName(r.Msg.NEOMsgCode())})
		link.Abort()
		return
	}
	if req.NodeType == proto.ADMIN {
		n.serveAdmin(ctx, link, r)
		return
	}
	nid, tm, err := n.identify(ctx, link, req)
	if err != nil {
		n.log.Info("identification refused", "peer", link.RemoteAddr(), "nid", req.NID, "err", err)
		r.Reply(protoError(err))
		link.Abort()
		return
	}
	n.mu.Lock()
	self := n.mu.nid
	n.mu.Unlock()
	your := req.NID
	my := self
	if your == 0 {
		my = 0
	}
	if err := r.Reply(&proto.AcceptIdentification{NodeType: proto.STORAGE, MyNID: my, YourNID: your}); err != nil {
		n.dropLink(link)
		return
	}
	n.log.Debug("peer identified", "nid", nid, "type", req.NodeType)
	defer func() {
		n.dropLink(link)
		// A client whose link closes loses its non-voted transactions
		// (it may still be involved in the second phase of voted ones).
		if req.NodeType == proto.CLIENT {
			if err := tm.abortFor(nid, false); err != nil {
				n.log.Error("abort transactions of disconnected client", "nid", nid, "err", err)
			}
		}
	}()
	c := &clientConn{n: n, link: link, nid: nid, tm: tm, loads: make(chan struct{}, maxLinkLoads)}
	if req.NodeType == proto.STORAGE {
		// Our replicator and checker may use it too (ha_dial.go).
		n.serveAcceptedStorage(ctx, c)
		return
	}
	if req.NodeType == proto.CLIENT {
		if meta, err := n.db.Meta(ctx); err == nil && meta.BackupTid != proto.InvalidTid {
			c.backup = true
		}
		// A client's requests are served on the link's reader goroutine:
		// no hand-off per request. Handling stays sequential, as with
		// Recv: a vote blocks the link for its commit, as before.
		link.SetHandler(func(r *neonet.Request) {
			if !c.aborted {
				c.aborted = !c.serve(ctx, r)
			}
		})
		select {
		case <-link.Done():
		case <-ctx.Done():
			// The handler may still run: let it end before the
			// transactions of the client are dropped.
			link.Close()
			<-link.Done()
		}
		return
	}
	// Storages (replication, checks) keep the Recv loop: feeding may
	// write a lot and wait for client requests to yield (priority.go),
	// which must not stop the reader.
	for {
		r, err := link.Recv(ctx)
		if err != nil {
			return
		}
		if !c.serve(ctx, r) {
			return
		}
	}
}

// serve handles one request and answers its failure; it returns false
// when the failure aborted the link.
func (c *clientConn) serve(ctx context.Context, r *neonet.Request) bool {
	err := c.handle(ctx, r)
	if err == nil {
		return true
	}
	var perr *proto.Error
	if errors.As(err, &perr) && perr.Code != proto.PROTOCOL_ERROR && perr.Code != proto.NOT_READY {
		r.Reply(&proto.Error{Code: perr.Code, Message: perr.Message})
		return true
	}
	if perr == nil {
		// Our failure, not the peer's (e.g. the disk is full):
		// the operator must see it.
		c.n.log.Error("request failed, aborting link", "nid", c.nid, "msg", proto.MsgName(r.Msg.NEOMsgCode()), "err", err)
	} else {
		c.n.log.Warn("aborting link", "nid", c.nid, "msg", proto.MsgName(r.Msg.NEOMsgCode()), "err", err)
	}
	r.Reply(protoError(err))
	c.link.Abort()
	return false
}

func (n *Node) dropLink(link *neonet.Link) {
	n.mu.Lock()
	delete(n.mu.links, link)
	n.mu.Unlock()
}

// identify applies the storage-side rules of §5.6 and §4.10, waiting for
// the master's next node notification when the peer's id_timestamp is
// newer than what we know, and for StartOperation when the master already
// announced us RUNNING. It registers the link.
func (n *Node) identify(ctx context.Context, link *neonet.Link, req *proto.RequestIdentification) (proto.NodeID, *txnManager, error) {
	if req.ClusterName != n.cfg.Cluster {
		return 0, nil, fmt.Errorf("%w: invalid cluster name", proto.ErrProtocol)
	}
	opDeadline := time.Now().Add(operationalWait)
	for {
		n.mu.Lock()
		if !n.mu.operational {
			// StartOperation may be near: wait for it (ha_identify.go).
			ch, soon := n.mu.notifyCh, n.operationSoon()
			n.mu.Unlock()
			if err := waitOperational(ctx, link, ch, soon, opDeadline); err != nil {
				return 0, nil, err
			}
			continue
		}
		tm := n.mu.tm
		if req.NID == 0 {
			if req.NodeType != proto.STORAGE {
				n.mu.Unlock()
				return 0, nil, fmt.Errorf("%w: reject anonymous non-storage node", proto.ErrProtocol)
			}
			n.mu.links[link] = 0
			n.mu.Unlock()
			return 0, tm, nil
		}
		if req.NID == n.mu.nid {
			n.mu.Unlock()
			return 0, nil, fmt.Errorf("%w: uuid conflict or loopback connection", proto.ErrProtocol)
		}
		if req.NodeType != proto.CLIENT && req.NodeType != proto.STORAGE {
			n.mu.Unlock()
			return 0, nil, fmt.Errorf("%w: reject non-client-or-storage node", proto.ErrProtocol)
		}
		p := n.mu.nodes.ByNID(req.NID)
		ts, hasTS := req.IDTimestamp.Get()
		pts, phasTS := proto.Opt[float64]{}.Get()
		if p != nil {
			pts, phasTS = p.IDTimestamp.Get()
		}
		if p != nil && hasTS == phasTS && pts == ts {
			if err := n.identifyStorage(n.mu.nid, req); err != nil {
				n.mu.Unlock()
				return 0, nil, err
			}
			n.mu.links[link] = req.NID
			n.mu.Unlock()
			return req.NID, tm, nil
		}
		if !hasTS || n.mu.nodes.Timestamp() >= ts {
			n.mu.Unlock()
			return 0, nil, &proto.Error{Code: proto.NOT_READY, Message: "unknown by master"}
		}
		// The master has not told us about this node yet: wait for its
		// next notification.
		ch := n.mu.notifyCh
		n.mu.Unlock()
		select {
		case <-ch:
		case <-link.Done():
			return 0, nil, neonet.ErrClosed
		case <-ctx.Done():
			return 0, nil, ctx.Err()
		}
	}
}

// clientConn serves one identified client or storage link.
type clientConn struct {
	n    *Node
	link *neonet.Link
	nid  proto.NodeID
	tm   *txnManager
	// loads bounds the object loads of this link running at once: a
	// multi-threaded client sends many on one link.
	loads chan struct{}
	// backup: the database is a backup (backup_tid set) when the client
	// identified: it is served read-only, up to the backup tid.
	backup bool
	// aborted: a request failure aborted the link; the requests still
	// handed to the handler are dropped. Only the handler uses it.
	aborted bool
}

// backupTid returns the backup tid for a read-only link, else InvalidTid.
func (c *clientConn) backupTid(ctx context.Context) proto.Tid {
	if !c.backup {
		return proto.InvalidTid
	}
	meta, err := c.n.db.Meta(ctx)
	if err != nil {
		return proto.InvalidTid
	}
	return meta.BackupTid
}

// readOnly applies the backup-cluster rules to a client request: writes
// are refused, reads are cut at the backup tid. It returns done=true when
// the request was answered.
func (c *clientConn) readOnly(ctx context.Context, r *neonet.Request) (bool, error) {
	switch r.Msg.(type) {
	case *proto.AskStoreTransaction, *proto.AskVoteTransaction, *proto.AskStoreObject,
		*proto.AskFinalTID, *proto.AskRelockObject, *proto.AskCheckCurrentSerial:
		return true, &proto.Error{Code: proto.READ_ONLY_ACCESS, Message: "read-only access because cluster is in backuping mode"}
	}
	meta, err := c.n.db.Meta(ctx)
	if err != nil {
		return true, err
	}
	if meta.BackupTid == proto.InvalidTid {
		return false, nil
	}
	// Each partition is cut where its cell has all data: the node's
	// backup tid is only the smallest of these.
	cut := func(x uint64) proto.Tid { return c.n.backupCut(x, meta.BackupTid) }
	switch m := r.Msg.(type) {
	case *proto.AskTransactionInformation:
		if b := cut(uint64(m.Tid)); m.Tid > b {
			return true, &proto.Error{Code: proto.TID_NOT_FOUND, Message: "tids > " + b.String() + " are not fully fetched yet"}
		}
	case *proto.AskObject:
		b := cut(uint64(m.Oid))
		switch {
		case m.At != proto.InvalidTid:
			if m.At > b {
				m.At = proto.ZeroTid // finds nothing, with the right error
			}
		case m.Before != proto.InvalidTid:
			m.Before = min(m.Before, b+1)
		default:
			m.Before = b + 1
		}
	case *proto.AskTIDsFrom:
		m.MaxTid = min(m.MaxTid, c.n.backupCutPartition(m.Partition, meta.BackupTid))
	}
	return false, nil
}

// maxLinkLoads is the number of concurrent loads per link.
const maxLinkLoads = 8

// async runs f in a goroutine of its own (of n.pool) once fewer than maxLinkLoads run for
// this link, blocking the caller meanwhile (back pressure on the link).
func (c *clientConn) async(f func()) {
	c.loads <- struct{}{}
	c.n.pool.run(func() {
		defer func() { <-c.loads }()
		f()
	})
}

// inline runs f in the caller's goroutine once fewer than maxLinkLoads
// run for this link.
func (c *clientConn) inline(f func()) {
	c.loads <- struct{}{}
	defer func() { <-c.loads }()
	f()
}

// closed tells the transaction manager to drop delayed requests whose link
// is gone.
func (c *clientConn) closed() bool {
	select {
	case <-c.link.Done():
		return true
	default:
		return false
	}
}

// reply sends an answer, or the Error for err.
func (c *clientConn) reply(r *neonet.Request, m proto.Msg, err error) { c.respond(r, m, err, false) }

// post is reply for the transaction manager's callbacks, which must not
// block (txn.go): the answer is queued on the link without waiting for
// room, and a link to abort is aborted by another goroutine.
func (c *clientConn) post(r *neonet.Request, m proto.Msg, err error) { c.respond(r, m, err, true) }

// respond sends m, or the Error for err and, for an error of ours or a
// protocol error, aborts the link.
func (c *clientConn) respond(r *neonet.Request, m proto.Msg, err error, nowait bool) {
	abort := false
	if err != nil {
		var perr *proto.Error
		if !errors.As(err, &perr) {
			c.n.log.Error("request failed", "msg", proto.MsgName(r.Msg.NEOMsgCode()), "err", err)
		}
		m = protoError(err)
		abort = perr == nil || perr.Code == proto.PROTOCOL_ERROR || perr.Code == proto.NOT_READY
	}
	if nowait {
		r.Link.PostWithID(r.ID, m)
		if abort {
			go c.link.Abort()
		}
		return
	}
	r.Reply(m)
	if abort {
		c.link.Abort()
	}
}

// vote votes ttid and answers once its rows are written, in a goroutine
// of its own (of n.pool): the other threads of the client, which share this link,
// need not wait for the disk.
func (c *clientConn) vote(r *neonet.Request, ttid proto.Tid, meta *txnMeta, answer proto.Msg) error {
	write, err := c.tm.startVote(c.nid, ttid, meta)
	if err != nil {
		return err
	}
	c.n.pool.run(func() { c.reply(r, answer, write()) })
	return nil
}

// readablePartition returns proto.ErrNonReadableCell unless this node has
// a readable cell of the partition of x.
func (c *clientConn) readablePartition(x uint64) error {
	n := c.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.pt == nil || !n.mu.pt.readable(n.mu.pt.partition(x), n.mu.nid) {
		return proto.ErrNonReadableCell
	}
	return nil
}

func (c *clientConn) handle(ctx context.Context, r *neonet.Request) error {
	n, tm := c.n, c.tm
	if !isFeedRequest(r.Msg) {
		// Replication yields while this runs (priority.go).
		n.prio.begin()
		defer n.prio.end()
	}
	if c.backup {
		if done, err := c.readOnly(ctx, r); done || err != nil {
			return err
		}
	}
	switch m := r.Msg.(type) {
	case *proto.AskObject:
		if err := c.readablePartition(uint64(m.Oid)); err != nil {
			return err
		}
		tm.whenReadable(m.Oid, c.closed, func() {
			answer := func(o *backend.Object) {
				a := &proto.AnswerObject{Oid: m.Oid, Serial: o.Serial, NextSerial: o.NextSerial,
					Compression: proto.Some(o.Compression), Checksum: o.Checksum[:], Data: o.Data, DataSerial: o.DataSerial}
				if !o.HasData() {
					a.Compression, a.Checksum, a.Data = proto.Some(uint8(0)), ZeroHash[:], []byte{}
				}
				c.reply(r, a, nil)
			}
			// A hit of the object cache is answered here, even with
			// loads queued behind: a goroutine would cost more than
			// the hit, and answers written in a burst go out together.
			if n.cached != nil {
				if o, ok := n.cached.LoadCached(m.Oid, m.At, m.Before); ok {
					answer(o)
					return
				}
			}
			n.prio.begin() // the load may outlive handle
			load := func() {
				defer n.prio.end()
				o, err := n.db.Load(ctx, m.Oid, m.At, m.Before)
				if err != nil {
					c.reply(r, nil, loadError(err, m.Oid))
					return
				}
				answer(o)
			}
			// A lone load runs here: waking another goroutine would
			// cost more than the load. Loads that pile up run in
			// parallel.
			if r.More() {
				c.async(load)
			} else {
				c.inline(load)
			}
		})
		return nil

	case *proto.AskStoreObject:
		if m.Compression > 1 {
			return fmt.Errorf("%w: invalid compression value", proto.ErrProtocol)
		}
		var sum Hash
		if len(m.Checksum) != len(sum) {
			return fmt.Errorf("%w: invalid checksum", proto.ErrProtocol)
		}
		copy(sum[:], m.Checksum)
		empty := len(m.Data) == 0 && sum == ZeroHash
		if !empty && sha1.Sum(m.Data) != sum {
			return fmt.Errorf("%w: invalid checksum", proto.ErrProtocol)
		}
		tm.storeObject(storeReq{
			Client: c.nid, TTID: m.TTid, Oid: m.Oid, Serial: m.Serial,
			Data:  objectData{Compression: m.Compression, Checksum: sum, Data: m.Data},
			Empty: empty, DataSerial: m.DataSerial,
		}, c.closed, func(res proto.Tid, err error) {
			c.post(r, &proto.AnswerStoreObject{Conflict: res}, err)
		})
		return nil

	case *proto.AskCheckCurrentSerial:
		tm.checkCurrentSerial(c.nid, m.TTid, m.Oid, m.Serial, c.closed, func(res proto.Tid, err error) {
			c.post(r, &proto.AnswerCheckCurrentSerial{Conflict: res}, err)
		})
		return nil

	case *proto.AskRelockObject:
		tm.relockObject(m.TTid, m.Oid, c.closed, func(rl *Relocked, err error) {
			a := &proto.AnswerRelockObject{}
			if rl != nil {
				a.Conflict = relockedToProto(rl)
			}
			c.post(r, a, err)
		})
		return nil

	case *proto.AskStoreTransaction:
		meta := &txnMeta{User: m.User, Description: m.Description, Extension: m.Extension, Oids: m.OidList}
		if p, ok := m.Pack.Get(); ok {
			oids, _ := p.Oids.Get()
			meta.Pack = &packOrder{Oids: oids, Partial: len(oids) > 0, PackTid: p.PackTid}
		}
		return c.vote(r, m.TTid, meta, &proto.AnswerStoreTransaction{})

	case *proto.AskVoteTransaction:
		return c.vote(r, m.TTid, nil, &proto.AnswerVoteTransaction{})

	case *proto.AbortTransaction:
		return tm.abort(m.TTid)

	case *proto.AskFinalTID:
		tid, err := tm.finalTID(m.TTid)
		if err != nil {
			return err
		}
		return r.Reply(&proto.AnswerFinalTID{Tid: tid})

	case *proto.AskTIDs:
		if m.First >= m.Last {
			return fmt.Errorf("%w: invalid offsets", proto.ErrProtocol)
		}
		var parts []uint32
		if m.Partition == invalidPartition {
			parts = n.ownOffsets((*parttab.Table).ReadableOffsets)
		} else {
			if err := c.readablePartitionNumber(m.Partition); err != nil {
				return err
			}
			parts = []uint32{m.Partition}
		}
		// Wait for locked transactions to be unlocked, like AskTIDsFrom:
		// a client that was told about a commit must find it here.
		tm.whenTidUnlocked(tm.maxLockedTid(), c.closed, func() {
			tids, err := n.db.TIDs(ctx, int(m.First), int(m.Last-m.First), parts)
			if cut := c.backupTid(ctx); cut != proto.InvalidTid {
				kept := tids[:0]
				for _, t := range tids {
					if t <= cut {
						kept = append(kept, t)
					}
				}
				tids = kept
			}
			c.reply(r, &proto.AnswerTIDs{TidList: tids}, err)
		})
		return nil

	case *proto.AskTIDsFrom:
		if err := c.readablePartitionNumber(m.Partition); err != nil {
			return err
		}
		tm.whenTidUnlocked(m.MaxTid, c.closed, func() {
			tids, err := n.db.TIDsFrom(ctx, m.Partition, m.MinTid, m.MaxTid, int(m.Length))
			c.reply(r, &proto.AnswerTIDsFrom{TidList: tids}, err)
		})
		return nil

	case *proto.AskOIDsFrom:
		if err := c.readablePartitionNumber(m.Partition); err != nil {
			return err
		}
		tm.whenTidUnlocked(m.Tid, c.closed, func() {
			next, oids, err := n.db.OIDsFrom(ctx, m.Partition, m.MinOid, m.Tid, int(m.Length))
			c.reply(r, &proto.AnswerOIDsFrom{NextOid: next, OidList: oids}, err)
		})
		return nil

	case *proto.AskTransactionInformation:
		tm.whenTidUnlocked(m.Tid, c.closed, func() {
			t, err := n.db.Transaction(ctx, m.Tid)
			if errors.Is(err, backend.ErrTidNotFound) {
				c.reply(r, nil, &proto.Error{Code: proto.TID_NOT_FOUND, Message: m.Tid.String() + " does not exist"})
				return
			}
			if err != nil {
				c.reply(r, nil, err)
				return
			}
			c.reply(r, &proto.AnswerTransactionInformation{Tid: m.Tid, User: t.User,
				Description: t.Description, Extension: t.Ext, Packed: t.Packed, OidList: t.Oids}, nil)
		})
		return nil

	case *proto.AskObjectHistory:
		if m.First >= m.Last {
			return fmt.Errorf("%w: invalid offsets", proto.ErrProtocol)
		}
		if err := c.readablePartition(uint64(m.Oid)); err != nil {
			return err
		}
		tm.whenReadable(m.Oid, c.closed, func() {
			h, err := n.db.History(ctx, m.Oid, int(m.First), int(m.Last-m.First))
			if errors.Is(err, backend.ErrOidNotFound) || errors.Is(err, backend.ErrOidDoesNotExist) {
				c.reply(r, nil, &proto.Error{Code: proto.OID_NOT_FOUND, Message: m.Oid.String()})
				return
			}
			c.reply(r, &proto.AnswerObjectHistory{Oid: m.Oid, HistoryList: historyToProto(h)}, err)
		})
		return nil

	case *proto.AskObjectUndoSerial:
		return c.askObjectUndoSerial(ctx, r, m)

	case *proto.CloseClient:
		return nil

	}
	if ok, err := c.handleFeed(ctx, r); ok {
		return err
	}
	return fmt.Errorf("%w: unexpected packet %s", proto.ErrProtocol, proto.MsgName(r.Msg.NEOMsgCode()))
}

// invalidPartition in AskTIDs means "every partition readable here".
const invalidPartition = 0xffffffff

func (c *clientConn) readablePartitionNumber(p uint32) error {
	n := c.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.pt == nil || !n.mu.pt.readable(p, n.mu.nid) {
		return proto.ErrNonReadableCell
	}
	return nil
}

// loadError maps backend load errors to wire errors.
func loadError(err error, oid proto.Oid) error {
	switch {
	case errors.Is(err, backend.ErrOidDoesNotExist):
		return &proto.Error{Code: proto.OID_DOES_NOT_EXIST, Message: oid.String()}
	case errors.Is(err, backend.ErrOidNotFound):
		return &proto.Error{Code: proto.OID_NOT_FOUND, Message: oid.String()}
	}
	return err
}

// askObjectUndoSerial resolves, per oid, what undoing a transaction means
// (cluster.md §8.4).
func (c *clientConn) askObjectUndoSerial(ctx context.Context, r *neonet.Request, m *proto.AskObjectUndoSerial) error {
	stored := c.tm.storedInTxn(m.TTid)
	res := make(map[proto.Oid]backend.UndoResult, len(m.OidList))
	for _, oid := range m.OidList {
		h, ok, err := c.n.db.UndoHistory(ctx, oid, m.UndoneTid)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		cur := proto.InvalidTid
		if ds, ok := stored[oid]; ok {
			cur = ds
		}
		u, ok := backend.FindUndoTid(h, m.LTid, m.UndoneTid, cur)
		if !ok {
			return &proto.Error{Code: proto.OID_NOT_FOUND, Message: oid.String()}
		}
		res[oid] = u
	}
	return r.Reply(&proto.AnswerObjectUndoSerial{ObjectTidDict: undoToProto(res)})
}
