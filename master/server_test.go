package master

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/neogo/neo/internal/freeport"
	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
)

// fakeStorage identifies to the master and answers its requests like an
// empty storage, until ctx ends.
func fakeStorage(ctx context.Context, t *testing.T, addr proto.Addr, port uint16) {
	fakeStorageOf(ctx, t, "srv", addr, port, nil)
}

// fakeStorageOf is fakeStorage for a cluster of the given name; seen, if
// set, is given every packet of the master.
func fakeStorageOf(ctx context.Context, t *testing.T, cluster string, addr proto.Addr, port uint16, seen func(proto.Msg)) {
	link, err := neonet.Dial(ctx, "tcp", addr.String(), neonet.Config{})
	if err != nil {
		t.Errorf("dial: %v", err)
		return
	}
	defer link.Close()
	var acc proto.AcceptIdentification
	if err := link.Ask(ctx, &proto.RequestIdentification{NodeType: proto.STORAGE, Addr: proto.Addr{Host: "127.0.0.1", Port: port},
		ClusterName: cluster, Extra: proto.Dict{{Key: "devpath", Value: []proto.Value{}}, {Key: "new_nid", Value: []proto.Value{}}}}, &acc); err != nil {
		t.Errorf("identify: %v", err)
		return
	}
	for {
		r, err := link.Recv(ctx)
		if err != nil {
			return
		}
		if seen != nil {
			seen(r.Msg)
		}
		var a proto.Msg
		switch r.Msg.(type) {
		case *proto.AskRecovery:
			a = &proto.AnswerRecovery{BackupTid: proto.InvalidTid, TruncateTid: proto.InvalidTid}
		case *proto.AskLockedTransactions:
			a = &proto.AnswerLockedTransactions{}
		case *proto.AskLastIDs:
			a = &proto.AnswerLastIDs{LastTid: proto.InvalidTid, LastOid: proto.InvalidOid, FirstTid: proto.MaxTid}
		case *proto.AskPackOrders:
			a = &proto.AnswerPackOrders{}
		case *proto.StartOperation:
			link.Send(&proto.NotifyReady{})
		case *proto.AskLockInformation:
			a = &proto.AnswerInformationLocked{TTid: r.Msg.(*proto.AskLockInformation).TTid}
		}
		if a != nil {
			r.Reply(a)
		}
	}
}

func TestServerCommitOverSockets(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	srv, err := NewServer(Config{Cluster: "srv", Bind: proto.Addr{Host: "127.0.0.1"}, Partitions: 3, Autostart: 1})
	if err != nil {
		t.Fatal(err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- srv.Run(ctx) }()
	addr, err := srv.Addr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	go fakeStorage(ctx, t, addr, 1)

	// A client retries until the cluster is RUNNING (NOT_READY before).
	var link *neonet.Link
	for {
		l, err := neonet.Dial(ctx, "tcp", addr.String(), neonet.Config{})
		if err != nil {
			t.Fatal(err)
		}
		var acc proto.AcceptIdentification
		err = l.Ask(ctx, &proto.RequestIdentification{NodeType: proto.CLIENT, ClusterName: "srv"}, &acc)
		if err == nil {
			link = l
			break
		}
		l.Close()
		if !errors.Is(err, proto.ErrNotReady) {
			t.Fatalf("client identification: %v", err)
		}
		select {
		case <-ctx.Done():
			t.Fatal("cluster never RUNNING")
		case <-time.After(20 * time.Millisecond):
		}
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
	if fin.TTid != begin.TTid || fin.Tid < begin.TTid || uint64(fin.Tid)%3 != uint64(begin.TTid)%3 {
		t.Fatalf("finish %+v for ttid %v", fin, begin.TTid)
	}
	var last proto.AnswerLastTransaction
	if err := link.Ask(ctx, &proto.AskLastTransaction{}, &last); err != nil || last.Tid != fin.Tid {
		t.Fatalf("last transaction %v, %v", last.Tid, err)
	}
	srv.Shutdown(ctx)
	if err := <-runErr; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Run: %v", err)
	}
}

// probe identifies as an admin to the master at addr: it returns "primary"
// when accepted, the address of the designated primary (or "?") when told
// NotPrimaryMaster, or the error.
func probe(ctx context.Context, addr proto.Addr) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	link, err := neonet.Dial(ctx, "tcp", addr.String(), neonet.Config{})
	if err != nil {
		return "", err
	}
	defer link.Close()
	if _, err := link.Start(&proto.RequestIdentification{NodeType: proto.ADMIN, Addr: proto.Addr{Host: "127.0.0.1", Port: 9},
		ClusterName: "srv", Extra: proto.Dict{}}, nil); err != nil {
		return "", err
	}
	r, err := link.Recv(ctx)
	if err != nil {
		return "", err
	}
	switch m := r.Msg.(type) {
	case *proto.NotPrimaryMaster:
		if !m.Primary.Valid {
			return "?", nil
		}
		return m.KnownMasters[m.Primary.V].String(), nil
	case *proto.NotifyNodeInformation:
		return "primary", nil
	}
	return "", fmt.Errorf("unexpected %T", r.Msg)
}

// waitRoles polls until probing each master gives want[i].
func waitRoles(ctx context.Context, t *testing.T, addrs []proto.Addr, want ...string) {
	t.Helper()
	var got []string
	for {
		got = got[:0]
		for _, a := range addrs {
			r, err := probe(ctx, a)
			if err != nil {
				r = err.Error()
			}
			got = append(got, r)
		}
		if slices.Equal(got, want) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("roles %q, want %q", got, want)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func TestServerElectionOverSockets(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	ports := freeport.Ports(t, 2)
	addrs := []proto.Addr{{Host: "127.0.0.1", Port: uint16(ports[0])}, {Host: "127.0.0.1", Port: uint16(ports[1])}}
	start := func(i int) (*Server, chan error) {
		srv, err := NewServer(Config{Cluster: "srv", Bind: addrs[i], Masters: addrs, Partitions: 3})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- srv.Run(ctx) }()
		if _, err := srv.Addr(ctx); err != nil {
			t.Fatal(err)
		}
		return srv, done
	}
	// The second master started is the primary; the first one follows.
	b, bDone := start(1)
	a, aDone := start(0)
	defer a.Shutdown(ctx)
	waitRoles(ctx, t, addrs, addrs[1].String(), "primary")

	// The primary goes away: the secondary takes over.
	t0 := time.Now()
	b.Shutdown(ctx)
	if err := <-bDone; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Run: %v", err)
	}
	waitRoles(ctx, t, addrs[:1], "primary")
	t.Logf("failover in %v", time.Since(t0))

	// It comes back as a secondary.
	b, bDone = start(1)
	waitRoles(ctx, t, addrs, "primary", addrs[0].String())
	b.Shutdown(ctx)
	<-bDone
	a.Shutdown(ctx)
	if err := <-aDone; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Run: %v", err)
	}
}

func TestServerDynamicMasterList(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	ports := freeport.Ports(t, 2)
	addrs := []proto.Addr{{Host: "127.0.0.1", Port: uint16(ports[0])}, {Host: "127.0.0.1", Port: uint16(ports[1])}}
	path := filepath.Join(t.TempDir(), "masters.json")
	if err := saveMasterList(path, addrs[:1]); err != nil {
		t.Fatal(err)
	}
	var dones []chan error
	var srvs []*Server
	for i, cfg := range []Config{
		{Cluster: "srv", Bind: addrs[0], Partitions: 3},
		// Knows the first master only through the file.
		{Cluster: "srv", Bind: addrs[1], Partitions: 3, DynamicMasterList: path},
	} {
		srv, err := NewServer(cfg)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- srv.Run(ctx) }()
		if _, err := srv.Addr(ctx); err != nil {
			t.Fatal(i, err)
		}
		srvs, dones = append(srvs, srv), append(dones, done)
	}
	waitRoles(ctx, t, addrs, "primary", addrs[0].String())
	l, err := loadMasterList(path)
	if err != nil || len(l) != 2 {
		t.Fatalf("master list %v, %v", l, err)
	}
	for i, srv := range srvs {
		srv.Shutdown(ctx)
		<-dones[i]
	}
}
