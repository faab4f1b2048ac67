package storage

// Replica checking, checking side (cluster.md §8.6, experimental in
// neoppod): for a CheckPartition order from the master, this node compares
// its cell of the partition with the other readable cells, chunk by chunk,
// first the transaction ids then the object records, and reports the
// cells whose digests differ from the reference (the source if one is
// given, else every cell as soon as answers differ) with
// NotifyPartitionCorrupted.

import (
	"context"
	"fmt"

	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

// checkCount is the chunk size of replica checks (neoppod: 40000).
const checkCount = 40000

// checkPeer is one participant of a check; link is nil for this node.
type checkPeer struct {
	nid  proto.NodeID
	link *neonet.Link
}

// check runs one CheckPartition order. Errors are logged, not returned:
// a failed check only means nothing is reported.
func (n *Node) check(ctx context.Context, master *neonet.Link, tm *txnManager, m *proto.CheckPartition) {
	p := m.Partition
	log := n.log.With("partition", p)
	n.mu.Lock()
	self := n.mu.nid
	var s proto.CellState
	owned := false
	var others []proto.NodeID
	addrs := map[proto.NodeID]proto.Addr{}
	if pt := n.mu.pt; pt != nil && p < pt.np() {
		s, owned = pt.state(p, self)
		for _, c := range pt.row(p) {
			if c.NID == self || !c.State.Readable() {
				continue
			}
			if peer := n.mu.nodes.ByNID(c.NID); peer != nil && peer.State == proto.NODE_RUNNING {
				others = append(others, c.NID)
				addrs[c.NID] = peer.Addr
			}
		}
	}
	n.mu.Unlock()
	if !owned || s == proto.OUT_OF_DATE {
		log.Error("failed to start checking partition (discarded or out-of-date)")
		return
	}
	peers := []*checkPeer{{nid: self}}
	for _, nid := range others {
		l, err := n.dialStorage(ctx, nid, addrs[nid].String())
		if err != nil {
			log.Warn("check: cannot reach replica", "nid", nid, "err", err)
			continue
		}
		// The link is shared (dialStorage): it stays.
		peers = append(peers, &checkPeer{nid: nid, link: l.Link})
	}
	var source *checkPeer
	if m.Source.UpstreamName != "" {
		// Backup cluster: the upstream's cell is the reference.
		sl, err := n.dialUpstreamStorage(ctx, m.Source.UpstreamName, m.Source.Addr)
		if err != nil {
			log.Error("failed to start checking partition (unavailable upstream source)", "err", err)
			return
		}
		defer sl.Close()
		source = &checkPeer{link: sl.Link}
		peers = append(peers, source)
	} else if !m.Source.Addr.IsZero() {
		if m.Source.Addr == n.addr {
			source = peers[0]
		}
		for _, pr := range peers[1:] {
			if addrs[pr.nid] == m.Source.Addr {
				source = pr
			}
		}
		if source == nil {
			log.Error("failed to start checking partition (unavailable source)")
			return
		}
	}
	if len(peers) < 2 {
		log.Error("failed to start checking partition (no replica)")
		return
	}
	ready := make(chan struct{})
	tm.whenTidUnlocked(m.MaxTid, nil, func() { close(ready) })
	select {
	case <-ready:
	case <-ctx.Done():
		return
	}

	// Progress: through the partition's own tids from the first one.
	prog := Progress{Partition: p, To: m.MaxTid, Passes: 2}
	if first, err := n.db.TIDsFrom(ctx, p, m.MinTid, m.MaxTid, 1); err == nil && len(first) > 0 {
		prog.From = first[0]
	}
	n.work.checking(prog)
	outcome := checkAborted
	defer func() { n.work.checkEnded(p, outcome) }()

	nextTid, nextOid, serials := m.MinTid, proto.ZeroOid, false
	for {
		answers := make(map[*checkPeer]string, len(peers))
		var count uint64
		var lastTid proto.Tid
		var lastOid proto.Oid
		for _, pr := range peers {
			a, c, lt, lo, err := n.checkRange(ctx, pr, p, nextTid, m.MaxTid, nextOid, serials)
			if err != nil {
				log.Warn("check: replica lost", "nid", pr.nid, "err", err)
				if pr == source || len(peers) <= 2 {
					log.Warn("check of partition aborted")
					return
				}
				continue
			}
			answers[pr] = a
			if pr.link == nil {
				count, lastTid, lastOid = c, lt, lo
			}
		}
		// Compare.
		distinct := map[string]bool{}
		for _, a := range answers {
			distinct[a] = true
		}
		alive := make([]*checkPeer, 0, len(answers))
		for _, pr := range peers {
			if _, ok := answers[pr]; ok {
				alive = append(alive, pr)
			}
		}
		peers = alive
		if len(distinct) > 1 {
			ref := ""
			if source != nil {
				ref = answers[source]
			}
			var bad []proto.NodeID
			keep := peers[:0]
			for _, pr := range peers {
				if answers[pr] != ref {
					bad = append(bad, pr.nid)
				} else {
					keep = append(keep, pr)
				}
			}
			peers = keep
			outcome = checkCorrupted // whatever happens next
			log.Warn("partition corrupted", "nids", bad)
			if err := master.Send(&proto.NotifyPartitionCorrupted{Partition: p, NIDList: bad}); err != nil {
				return
			}
			if len(peers) <= 1 {
				log.Warn("check of partition aborted")
				return
			}
			if peers[0].link != nil {
				// Our own cell was reported: the local answer no longer
				// drives the iteration; stop here.
				return
			}
		}
		if !serials {
			if count < checkCount {
				nextTid, nextOid, serials = m.MinTid, proto.ZeroOid, true
				prog.Pass, prog.Pos = 1, 0
			} else {
				nextTid = lastTid + 1
				prog.Pos = lastTid
			}
			n.work.checking(prog)
			continue
		}
		if count < checkCount {
			log.Info("partition checked", "min_tid", m.MinTid, "max_tid", m.MaxTid)
			if outcome != checkCorrupted {
				outcome = checkOK
			}
			return
		}
		nextTid, nextOid = lastTid, lastOid+1
		prog.Pos = lastTid
		n.work.checking(prog)
	}
}

// checkRange asks one participant for the digest of a chunk and returns it
// as a comparable string, with the count and the last tid/oid.
func (n *Node) checkRange(ctx context.Context, pr *checkPeer, p uint32, minTid, maxTid proto.Tid, minOid proto.Oid, serials bool) (string, uint64, proto.Tid, proto.Oid, error) {
	if pr.link == nil {
		// Our own digest competes with our clients like a peer's does
		// with its clients (feed.go).
		n.prio.yield(ctx)
	}
	if !serials {
		var a proto.AnswerCheckTIDRange
		if pr.link == nil {
			r, err := backend.CheckTIDRange(ctx, n.db, p, checkCount, minTid, maxTid)
			if err != nil {
				return "", 0, 0, 0, err
			}
			a = proto.AnswerCheckTIDRange{Count: uint64(r.Count), Checksum: r.Digest[:], MaxTid: r.LastTid}
		} else if err := pr.link.Ask(ctx, &proto.AskCheckTIDRange{Partition: p, Length: checkCount, MinTid: minTid, MaxTid: maxTid}, &a); err != nil {
			return "", 0, 0, 0, err
		}
		return fmt.Sprintf("%d/%x/%v", a.Count, a.Checksum, a.MaxTid), a.Count, a.MaxTid, 0, nil
	}
	var a proto.AnswerCheckSerialRange
	if pr.link == nil {
		r, err := backend.CheckSerialRange(ctx, n.db, p, checkCount, minTid, maxTid, minOid)
		if err != nil {
			return "", 0, 0, 0, err
		}
		a = proto.AnswerCheckSerialRange{Count: uint64(r.Count), TidChecksum: r.TidDigest[:], MaxTid: r.LastTid,
			OidChecksum: r.OidDigest[:], MaxOid: r.LastOid}
	} else if err := pr.link.Ask(ctx, &proto.AskCheckSerialRange{Partition: p, Length: checkCount, MinTid: minTid, MaxTid: maxTid, MinOid: minOid}, &a); err != nil {
		return "", 0, 0, 0, err
	}
	return fmt.Sprintf("%d/%x/%v/%x/%v", a.Count, a.TidChecksum, a.MaxTid, a.OidChecksum, a.MaxOid), a.Count, a.MaxTid, a.MaxOid, nil
}
