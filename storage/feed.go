package storage

// The feeding side of replication and replica checks (cluster.md §8.5,
// §8.6, protocol.md §5.12, §5.13): another storage, or a storage of a
// backup cluster, fetches what it lacks of a partition we hold readable.
// Transactions and objects it lacks are pushed as AddTransaction/AddObject
// notifications carrying the id of its AskFetch* request, then the answer
// tells where to continue and what it has that we do not.

import (
	"context"
	"errors"
	"fmt"

	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

// feedable returns a REPLICATION_ERROR (or CHECKING_ERROR when check) if
// this node cannot feed the partition.
func (c *clientConn) feedable(p uint32, check bool) error {
	n := c.n
	n.mu.Lock()
	defer n.mu.Unlock()
	var s proto.CellState
	ok := false
	if n.mu.pt != nil {
		s, ok = n.mu.pt.state(p, n.mu.nid)
	}
	switch {
	case check && (!ok || s == proto.OUT_OF_DATE):
		return &proto.Error{Code: proto.CHECKING_ERROR, Message: fmt.Sprintf("partition %d not readable", p)}
	case !check && (!ok || !s.Readable()):
		return &proto.Error{Code: proto.REPLICATION_ERROR, Message: fmt.Sprintf("partition %d not readable", p)}
	}
	return nil
}

// isFeedRequest tells the requests of replication and replica checks
// from client requests, which go first.
func isFeedRequest(m proto.Msg) bool {
	switch m.(type) {
	case *proto.AskFetchTransactions, *proto.AskFetchObjects, *proto.AskCheckTIDRange, *proto.AskCheckSerialRange:
		return true
	}
	return false
}

func (c *clientConn) handleFeed(ctx context.Context, r *neonet.Request) (bool, error) {
	n, tm := c.n, c.tm
	switch m := r.Msg.(type) {
	case *proto.AskFetchTransactions:
		if err := c.feedable(m.Partition, false); err != nil {
			return true, err
		}
		tm.whenTidUnlocked(m.MaxTid, c.closed, func() {
			if err := c.feedTransactions(ctx, r, m); err != nil {
				c.reply(r, nil, err)
			}
		})
		return true, nil

	case *proto.AskFetchObjects:
		if err := c.feedable(m.Partition, false); err != nil {
			return true, err
		}
		if tm.isLockedTidNow(m.MaxTid) {
			return true, fmt.Errorf("%w: transactions must be fetched before objects", proto.ErrProtocol)
		}
		go func() {
			if err := c.feedObjects(ctx, r, m); err != nil {
				c.reply(r, nil, err)
			}
		}()
		return true, nil

	case *proto.AskCheckTIDRange:
		if err := c.feedable(m.Partition, true); err != nil {
			return true, err
		}
		tm.whenTidUnlocked(m.MaxTid, c.closed, func() {
			n.prio.yield(ctx) // client requests go first (priority.go)
			res, err := backend.CheckTIDRange(ctx, n.db, m.Partition, int(m.Length), m.MinTid, m.MaxTid)
			if err != nil {
				c.reply(r, nil, err)
				return
			}
			c.reply(r, &proto.AnswerCheckTIDRange{Count: uint64(res.Count), Checksum: res.Digest[:], MaxTid: res.LastTid}, nil)
		})
		return true, nil

	case *proto.AskCheckSerialRange:
		if err := c.feedable(m.Partition, true); err != nil {
			return true, err
		}
		if tm.isLockedTidNow(m.MaxTid) {
			return true, fmt.Errorf("%w: transactions must be checked before objects", proto.ErrProtocol)
		}
		go func() {
			n.prio.yield(ctx)
			res, err := backend.CheckSerialRange(ctx, n.db, m.Partition, int(m.Length), m.MinTid, m.MaxTid, m.MinOid)
			if err != nil {
				c.reply(r, nil, err)
				return
			}
			c.reply(r, &proto.AnswerCheckSerialRange{Count: uint64(res.Count), TidChecksum: res.TidDigest[:],
				MaxTid: res.LastTid, OidChecksum: res.OidDigest[:], MaxOid: res.LastOid}, nil)
		}()
		return true, nil
	}
	return false, nil
}

func (c *clientConn) feedTransactions(ctx context.Context, r *neonet.Request, m *proto.AskFetchTransactions) error {
	db := c.n.db
	completed := proto.InvalidTid
	if m.AskPackInfo {
		_, _, cells, err := db.PartitionTable(ctx)
		if err != nil {
			return err
		}
		self := c.n.NID()
		for _, cl := range cells {
			if cl.Partition == m.Partition && cl.NID == self {
				completed = cl.Pack
			}
		}
	}
	tids, err := db.TIDsFrom(ctx, m.Partition, m.MinTid, m.MaxTid, int(m.Length)+1)
	if err != nil {
		return err
	}
	next := proto.InvalidTid
	if len(tids) > int(m.Length) {
		next, tids = tids[len(tids)-1], tids[:len(tids)-1]
	}
	known := make(map[proto.Tid]bool, len(m.TidList))
	for _, t := range m.TidList {
		known[t] = true
	}
	for i, tid := range tids {
		if i > 0 && i%yieldEvery == 0 {
			c.n.prio.yield(ctx)
		}
		if known[tid] {
			delete(known, tid)
			continue
		}
		t, err := db.Transaction(ctx, tid)
		if errors.Is(err, backend.ErrTidNotFound) {
			return &proto.Error{Code: proto.REPLICATION_ERROR, Message: fmt.Sprintf("partition %d dropped", m.Partition)}
		}
		if err != nil {
			return err
		}
		add := &proto.AddTransaction{Tid: tid, User: t.User, Description: t.Description, Extension: t.Ext,
			Packed: t.Packed, TTid: t.TTid, OidList: t.Oids}
		if p := t.Pack; p != nil {
			info := proto.PackInfo{Partial: p.Partial, PackTid: p.PackTid}
			switch p.State {
			case backend.PackApproved:
				info.Approved = proto.Some(true)
			case backend.PackRejected:
				info.Approved = proto.Some(false)
			}
			if p.Partial {
				info.Oids = proto.Some(p.Oids)
			}
			add.Pack = proto.Some(info)
		}
		if err := r.Link.SendWithID(r.ID, add); err != nil {
			return nil // link gone
		}
	}
	del := make([]proto.Tid, 0, len(known))
	for t := range known {
		del = append(del, t)
	}
	r.Reply(&proto.AnswerFetchTransactions{NextTid: next, TidList: del, CompletedPack: completed})
	return nil
}

func (c *clientConn) feedObjects(ctx context.Context, r *neonet.Request, m *proto.AskFetchObjects) error {
	db := c.n.db
	keys, err := db.ObjectsFrom(ctx, m.Partition, m.MinTid, m.MaxTid, m.MinOid, int(m.Length)+1)
	if err != nil {
		return err
	}
	nextTid, nextOid := proto.InvalidTid, proto.InvalidOid
	if len(keys) > int(m.Length) {
		last := keys[len(keys)-1]
		nextTid, nextOid, keys = last.Tid, last.Oid, keys[:len(keys)-1]
	}
	known := make(map[proto.Tid]map[proto.Oid]bool, len(m.ObjectDict))
	for _, so := range m.ObjectDict {
		s := known[so.Serial]
		if s == nil {
			s = make(map[proto.Oid]bool, len(so.Oids))
			known[so.Serial] = s
		}
		for _, oid := range so.Oids {
			s[oid] = true
		}
	}
	for i, k := range keys {
		if i > 0 && i%yieldEvery == 0 {
			c.n.prio.yield(ctx)
		}
		if s := known[k.Tid]; s[k.Oid] {
			delete(s, k.Oid)
			if len(s) == 0 {
				delete(known, k.Tid)
			}
			continue
		}
		o, err := db.Load(ctx, k.Oid, k.Tid, proto.InvalidTid)
		if errors.Is(err, backend.ErrOidNotFound) || errors.Is(err, backend.ErrOidDoesNotExist) {
			return &proto.Error{Code: proto.REPLICATION_ERROR, Message: fmt.Sprintf("partition %d dropped or truncated", m.Partition)}
		}
		if err != nil {
			return err
		}
		add := &proto.AddObject{Oid: k.Oid, Serial: k.Tid, Compression: o.Compression,
			Checksum: o.Checksum[:], Data: o.Data, DataSerial: o.DataSerial}
		if !o.HasData() {
			add.Compression, add.Checksum, add.Data = 0, ZeroHash[:], []byte{}
		}
		if err := r.Link.SendWithID(r.ID, add); err != nil {
			return nil
		}
	}
	del := make([]proto.SerialOids, 0, len(known))
	for serial, s := range known {
		so := proto.SerialOids{Serial: serial}
		for oid := range s {
			so.Oids = append(so.Oids, oid)
		}
		del = append(del, so)
	}
	r.Reply(&proto.AnswerFetchObjects{NextTid: nextTid, NextOid: nextOid, ObjectDict: del})
	return nil
}
