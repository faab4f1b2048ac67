package storage

import (
	"log/slog"
	"testing"

	"github.com/neogo/neo/proto"
)

// Replicate orders: a nil address advances a cell that has nothing in
// progress; a source replaces the order of the partition; STOPPING_BACKUP
// drops the orders from upstream and refuses new ones.
func TestBackupOrders(t *testing.T) {
	r := &replicator{n: &Node{}, wake: make(chan struct{}, 1)}
	r.n.log = slog.New(slog.DiscardHandler)
	r.mu.bk = &backupReplica{done: map[uint32]proto.Tid{0: 10, 1: 10, 2: 10}, orders: map[uint32]backupOrder{}}
	bk := r.mu.bk
	up := proto.Addr{Host: "127.0.0.2", Port: 1}
	r.order(&proto.Replicate{Tid: 20, UpstreamName: "up", SourceDict: []proto.ReplicateSource{{Partition: 0, Addr: up}}})
	r.order(&proto.Replicate{Tid: 21, SourceDict: []proto.ReplicateSource{{Partition: 0}, {Partition: 1}, {Partition: 7}}})
	if bk.done[0] != 10 || bk.done[1] != 21 {
		t.Fatalf("done %v: partition 0 replicating must not advance, 1 must", bk.done)
	}
	if _, ok := bk.done[7]; ok {
		t.Fatal("a partition not readable here was advanced")
	}
	if o := bk.orders[0]; o.upTo != 20 || o.upstream != "up" || o.addr != up {
		t.Fatalf("order %+v", o)
	}
	r.order(&proto.Replicate{Tid: 22, UpstreamName: "", SourceDict: []proto.ReplicateSource{{Partition: 2, Addr: up}}})
	r.stoppingBackup(true)
	if _, ok := bk.orders[0]; ok {
		t.Fatal("order from upstream kept in STOPPING_BACKUP")
	}
	if _, ok := bk.orders[2]; !ok {
		t.Fatal("internal order dropped in STOPPING_BACKUP")
	}
	r.order(&proto.Replicate{Tid: 30, UpstreamName: "up", SourceDict: []proto.ReplicateSource{{Partition: 1, Addr: up}}})
	if _, ok := bk.orders[1]; ok {
		t.Fatal("order from upstream accepted in STOPPING_BACKUP")
	}
}

// A cell advanced by an order without data (nothing new in its
// partition, e.g. after a pack transaction stored elsewhere) kicks the
// packer: a pack order waiting for that cell (backupPast) would
// otherwise wait for the next fetch, which may never come.
func TestBackupNoDataOrderKicksPacker(t *testing.T) {
	kicks := 0
	r := &replicator{n: &Node{}, wake: make(chan struct{}, 1), packKick: func() { kicks++ }}
	r.n.log = slog.New(slog.DiscardHandler)
	r.mu.bk = &backupReplica{done: map[uint32]proto.Tid{0: 10, 1: 10}, orders: map[uint32]backupOrder{}}
	r.n.mu.replicator = r
	if r.n.backupPast(0, 20) {
		t.Fatal("cell at 10 past pack order 20")
	}
	r.order(&proto.Replicate{Tid: 20, SourceDict: []proto.ReplicateSource{{Partition: 0}}})
	if !r.n.backupPast(0, 20) || kicks != 1 {
		t.Fatalf("after a no-data order to 20: past=%v, packer kicked %d times, want once", r.n.backupPast(0, 20), kicks)
	}
	r.order(&proto.Replicate{Tid: 20, SourceDict: []proto.ReplicateSource{{Partition: 0}}})
	if kicks != 1 {
		t.Fatalf("an order that advances nothing kicked the packer (%d kicks)", kicks)
	}
}
