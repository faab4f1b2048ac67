package master

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
)

// A backup master (--backup) finds the upstream primary master, follows
// it and orders its storage to replicate from the upstream storage.
func TestServerBackupOverSockets(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	run := func(cfg Config) proto.Addr {
		srv, err := NewServer(cfg)
		if err != nil {
			t.Fatal(err)
		}
		go srv.Run(ctx)
		addr, err := srv.Addr(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return addr
	}
	upAddr := run(Config{Cluster: "up", Bind: proto.Addr{Host: "127.0.0.1"}, Partitions: 2, Autostart: 1})
	go fakeStorageOf(ctx, t, "up", upAddr, 7, nil)
	bkAddr := run(Config{Cluster: "srv", Bind: proto.Addr{Host: "127.0.0.1"}, Partitions: 2, Autostart: 1,
		Backup: true, UpstreamCluster: "up", UpstreamMasters: []proto.Addr{upAddr}})
	replicate := make(chan *proto.Replicate, 10)
	states := make(chan proto.ClusterState, 10)
	go fakeStorageOf(ctx, t, "srv", bkAddr, 8, func(m proto.Msg) {
		switch m := m.(type) {
		case *proto.Replicate:
			replicate <- m
		case *proto.NotifyClusterInformation:
			states <- m.State
		}
	})
	// A commit upstream, once the backup follows it (it reached
	// BACKINGUP: its storage is told so).
	for {
		if m := <-states; m == proto.BACKINGUP {
			break
		}
	}
	tid := commitOne(ctx, t, "up", upAddr)
	for {
		select {
		case r := <-replicate:
			if r.UpstreamName == "" {
				continue // no new data for the partitions not touched
			}
			if r.UpstreamName != "up" || r.Tid != tid || len(r.SourceDict) == 0 ||
				r.SourceDict[0].Addr != (proto.Addr{Host: "127.0.0.1", Port: 7}) {
				t.Fatalf("replicate %+v, want from up to %v", r, tid)
			}
			return
		case <-ctx.Done():
			t.Fatal("no Replicate order from the backup master")
		}
	}
}

// commitOne commits a transaction storing oid 1 on the cluster whose
// master is at addr, once it is RUNNING.
func commitOne(ctx context.Context, t *testing.T, cluster string, addr proto.Addr) proto.Tid {
	t.Helper()
	var link *neonet.Link
	for link == nil {
		l, err := neonet.Dial(ctx, "tcp", addr.String(), neonet.Config{})
		if err != nil {
			t.Fatal(err)
		}
		var acc proto.AcceptIdentification
		if err := l.Ask(ctx, &proto.RequestIdentification{NodeType: proto.CLIENT, ClusterName: cluster}, &acc); err != nil {
			l.Close()
			if !errors.Is(err, proto.ErrNotReady) {
				t.Fatalf("client identification: %v", err)
			}
			time.Sleep(20 * time.Millisecond)
			continue
		}
		link = l
	}
	defer link.Close()
	var begin proto.AnswerBeginTransaction
	if err := link.Ask(ctx, &proto.AskBeginTransaction{Tid: proto.InvalidTid}, &begin); err != nil {
		t.Fatal(err)
	}
	var fin proto.AnswerTransactionFinished
	if err := link.Ask(ctx, &proto.AskFinishTransaction{TTid: begin.TTid, OidList: []proto.Oid{1}}, &fin); err != nil {
		t.Fatal(err)
	}
	return fin.Tid
}
