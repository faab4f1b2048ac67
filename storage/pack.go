package storage

import (
	"context"
	"fmt"

	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

// Pack (cluster.md §8.7): orders are approved by the master; the node packs
// its UP_TO_DATE partitions one approved order at a time, in id order, in
// a background goroutine, and reports the smallest completed id over its
// cells with NotifyPackCompleted.

// packSlice is the number of oids packed per backend call (one write each).
const packSlice = 1000

// packer runs pack orders for one operation period.
type packer struct {
	n       *Node
	link    *neonet.Link
	trigger chan struct{}
	done    chan struct{}
	cancel  context.CancelFunc
}

func (n *Node) startPacker(ctx context.Context, link *neonet.Link) *packer {
	ctx, cancel := context.WithCancel(ctx)
	p := &packer{n: n, link: link, trigger: make(chan struct{}, 1), done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(p.done)
		p.loop(ctx)
	}()
	return p
}

// kick asks for a pack pass (a new order was approved).
func (p *packer) kick() {
	select {
	case p.trigger <- struct{}{}:
	default:
	}
}

func (p *packer) stop() {
	p.cancel()
	<-p.done
}

func (p *packer) loop(ctx context.Context) {
	for {
		select {
		case <-p.trigger:
		case <-ctx.Done():
			return
		}
		if err := p.pass(ctx); err != nil && ctx.Err() == nil {
			p.n.log.Error("pack", "err", err)
		}
		p.n.work.update(func(w *work) { w.pack = PackProgress{} }) // nothing running
	}
}

// ownCells returns the node's saved cells.
func (p *packer) ownCells(ctx context.Context) ([]backend.Cell, error) {
	_, _, cells, err := p.n.db.PartitionTable(ctx)
	if err != nil {
		return nil, err
	}
	self := p.n.NID()
	var own []backend.Cell
	for _, c := range cells {
		if c.NID == self {
			own = append(own, c)
		}
	}
	return own, nil
}

// pass processes approved orders until none is left to do.
func (p *packer) pass(ctx context.Context) error {
	n := p.n
	for {
		cells, err := p.ownCells(ctx)
		if err != nil {
			return err
		}
		packed, any := proto.Tid(0), false
		for _, c := range cells {
			if c.State == proto.UP_TO_DATE && c.Pack != proto.InvalidTid && (!any || c.Pack < packed) {
				packed, any = c.Pack, true
			}
		}
		n.mu.Lock()
		last := n.mu.lastPackID
		n.mu.Unlock()
		if !any || packed >= last {
			return p.notifyCompleted(cells)
		}
		var orders proto.AnswerPackOrders
		if err := p.link.Ask(ctx, &proto.AskPackOrders{PackID: packed + 1}, &orders); err != nil {
			return fmt.Errorf("ask pack orders from %v: %w", packed+1, err)
		}
		if len(orders.PackOrderList) == 0 {
			return p.notifyCompleted(cells)
		}
		o := orders.PackOrderList[0]
		if approved, ok := o.Approved.Get(); !ok || !approved {
			return p.notifyCompleted(cells)
		}
		oids, _ := o.Oids.Get()
		if !o.Partial {
			oids = nil
		}
		n.log.Info("packing", "id", o.ID, "pack_tid", o.PackTid, "partial", o.Partial)
		prog := PackProgress{ID: o.ID, PackTid: o.PackTid}
		for _, c := range cells {
			if c.State == proto.UP_TO_DATE && c.Pack < o.ID {
				prog.Partitions++
			}
		}
		waiting := false
		for _, c := range cells {
			if c.State != proto.UP_TO_DATE || c.Pack >= o.ID {
				continue
			}
			n.work.update(func(w *work) { w.pack = prog })
			if !n.backupPast(c.Partition, o.ID) {
				// A backup cell packs once replicated past the order
				// (cluster.md §8.9); the replicator kicks us then.
				waiting = true
				continue
			}
			if err := p.packPartition(ctx, c.Partition, o.PackTid, oids); err != nil {
				return err
			}
			n.wmu.Lock()
			err := n.db.SetPartitionPacked(ctx, c.Partition, o.ID, false)
			n.wmu.Unlock()
			if err != nil {
				return fmt.Errorf("record pack %v of partition %d: %w", o.ID, c.Partition, err)
			}
			prog.Done++
			n.work.update(func(w *work) { w.pack = prog; w.stats.PackedPartitions++ })
		}
		if waiting {
			return p.notifyCompleted(cells)
		}
	}
}

func (p *packer) packPartition(ctx context.Context, partition uint32, packTid proto.Tid, oids []proto.Oid) error {
	n := p.n
	next := proto.ZeroOid
	for next != proto.InvalidOid {
		if err := ctx.Err(); err != nil {
			return err
		}
		n.wmu.Lock()
		var err error
		next, err = n.db.Pack(ctx, partition, packTid, oids, next, packSlice)
		n.wmu.Unlock()
		if err != nil {
			return fmt.Errorf("pack partition %d up to %v: %w", partition, packTid, err)
		}
	}
	return nil
}

// notifyCompleted reports the smallest completed pack id over the node's
// cells, if any cell has one.
func (p *packer) notifyCompleted(cells []backend.Cell) error {
	var min proto.Tid
	found := false
	for _, c := range cells {
		if c.Pack != proto.InvalidTid && (!found || c.Pack < min) {
			min, found = c.Pack, true
		}
	}
	if !found {
		return nil
	}
	return p.link.Send(&proto.NotifyPackCompleted{PackID: min})
}
