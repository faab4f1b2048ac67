package client

import (
	"context"
	"crypto/sha1"
	"errors"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
)

// fakeCluster is a master and a storage speaking just enough of the
// protocol for a client to connect and commit one transaction; the
// master drops the link at AskFinishTransaction without answering, and
// both answer AskFinalTID as the test says. It reaches the corners of
// the finish recovery (cluster.md §6.9) that a real cluster gives only
// by chance. It is a scripted fake peer, not a cluster: tests that need
// real nodes start them with internal/neotest.
type fakeCluster struct {
	t       *testing.T
	master  *neonet.Listener
	storage *neonet.Listener
	ttid    proto.Tid
	// Answers to AskFinalTID.
	masterFinal, storageFinal proto.Tid

	// loadErrs are the errors the storage answers to AskObject, in
	// turn; then it answers with object.
	loadErrs []proto.ErrorCode
	object   []byte

	mu     sync.Mutex
	ts     float64  // node notification timestamp
	finals []string // "master"/"storage" per AskFinalTID received
	loads  int      // AskObject received
}

var (
	fakeMasterNID  = proto.NewNodeID(proto.MASTER, 1)
	fakeStorageNID = proto.NewNodeID(proto.STORAGE, 1)
	fakeClientNID  = proto.NewNodeID(proto.CLIENT, 1)
)

func startFakeCluster(t *testing.T, masterFinal, storageFinal proto.Tid) *fakeCluster {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &fakeCluster{t: t, ttid: proto.Tid(0x1000), masterFinal: masterFinal, storageFinal: storageFinal}
	var wg sync.WaitGroup
	for _, ln := range []**neonet.Listener{&f.master, &f.storage} {
		l, err := neonet.Listen(ctx, "tcp", "127.0.0.1:0", neonet.Config{})
		if err != nil {
			t.Fatal(err)
		}
		*ln = l
	}
	for _, srv := range []struct {
		ln     *neonet.Listener
		handle func(*neonet.Request)
	}{{f.master, f.handleMaster}, {f.storage, f.handleStorage}} {
		wg.Go(func() {
			var links []*neonet.Link
			defer func() {
				for _, l := range links {
					l.Close()
				}
			}()
			for {
				link, err := srv.ln.Accept(ctx)
				if err != nil {
					return
				}
				links = append(links, link)
				link.SetHandler(srv.handle)
			}
		})
	}
	t.Cleanup(func() {
		cancel()
		f.master.Close()
		f.storage.Close()
		wg.Wait()
	})
	return f
}

func addrOf(t *testing.T, ln *neonet.Listener) proto.Addr {
	host, port, err := net.SplitHostPort(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		t.Fatal(err)
	}
	return proto.Addr{Host: host, Port: uint16(p)}
}

// handleMaster plays a primary master of an operational cluster with
// one storage holding the single partition.
func (f *fakeCluster) handleMaster(r *neonet.Request) {
	switch m := r.Msg.(type) {
	case *proto.RequestIdentification:
		r.Reply(&proto.AcceptIdentification{NodeType: proto.MASTER, MyNID: fakeMasterNID, YourNID: fakeClientNID})
		f.mu.Lock()
		f.ts++
		ts := f.ts
		f.mu.Unlock()
		r.Link.Send(&proto.NotifyNodeInformation{Timestamp: ts, NodeList: []proto.NodeInfo{
			{Type: proto.CLIENT, NID: fakeClientNID, State: proto.NODE_RUNNING, IDTimestamp: proto.Some(ts)},
			{Type: proto.MASTER, Addr: addrOf(f.t, f.master), NID: fakeMasterNID, State: proto.NODE_RUNNING, IDTimestamp: proto.Some(0.5)},
			{Type: proto.STORAGE, Addr: addrOf(f.t, f.storage), NID: fakeStorageNID, State: proto.NODE_RUNNING, IDTimestamp: proto.Some(0.5)},
		}})
		r.Link.Send(&proto.SendPartitionTable{PTid: 1, NumReplicas: 0,
			Rows: [][]proto.CellInfo{{{NID: fakeStorageNID, State: proto.UP_TO_DATE}}}})
	case *proto.AskLastTransaction:
		r.Reply(&proto.AnswerLastTransaction{Tid: f.ttid - 1})
	case *proto.AskBeginTransaction:
		r.Reply(&proto.AnswerBeginTransaction{TTid: f.ttid})
	case *proto.AskFinishTransaction:
		// The link is lost before the answer.
		r.Link.Abort()
	case *proto.AskFinalTID:
		f.asked("master")
		r.Reply(&proto.AnswerFinalTID{Tid: f.masterFinal})
	case *proto.AbortTransaction:
	default:
		f.t.Errorf("fake master: unexpected %T", m)
	}
}

// handleStorage plays the storage of the single partition.
func (f *fakeCluster) handleStorage(r *neonet.Request) {
	switch m := r.Msg.(type) {
	case *proto.RequestIdentification:
		r.Reply(&proto.AcceptIdentification{NodeType: proto.STORAGE, MyNID: fakeStorageNID, YourNID: m.NID})
	case *proto.AskStoreObject:
		r.Reply(&proto.AnswerStoreObject{Conflict: proto.InvalidTid})
	case *proto.AskStoreTransaction:
		r.Reply(&proto.AnswerStoreTransaction{})
	case *proto.AskObject:
		f.mu.Lock()
		i := f.loads
		f.loads++
		f.mu.Unlock()
		if i < len(f.loadErrs) {
			r.Reply(&proto.Error{Code: f.loadErrs[i], Message: "fake"})
			return
		}
		sum := sha1.Sum(f.object)
		r.Reply(&proto.AnswerObject{Oid: m.Oid, Serial: f.ttid - 1, NextSerial: proto.InvalidTid,
			Compression: proto.Some[uint8](0), Checksum: sum[:], Data: f.object, DataSerial: proto.InvalidTid})
	case *proto.AskFinalTID:
		f.asked("storage")
		r.Reply(&proto.AnswerFinalTID{Tid: f.storageFinal})
	case *proto.AbortTransaction:
	default:
		f.t.Errorf("fake storage: unexpected %T", m)
	}
}

func (f *fakeCluster) asked(node string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.finals = append(f.finals, node)
}

// Finish whose master link breaks: each answer of the master and the
// storages to AskFinalTID (cluster.md §6.9) gives its outcome.
func TestFinishOutcome(t *testing.T) {
	const committed = proto.Tid(0x1234)
	tests := []struct {
		name                      string
		masterFinal, storageFinal proto.Tid
		wantTid                   proto.Tid // 0: ErrMasterLost
		wantAsked                 []string
	}{
		{"committed, tid from the master", committed, proto.InvalidTid, committed, []string{"master"}},
		{"committed, tid from the storage", proto.MaxTid, committed, committed, []string{"master", "storage"}},
		{"not committed, says the master", proto.InvalidTid, committed, 0, []string{"master"}},
		{"not committed, says the storage", proto.MaxTid, proto.InvalidTid, 0, []string{"master", "storage"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := startFakeCluster(t, tt.masterFinal, tt.storageFinal)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			c, err := Open(ctx, Config{Masters: []string{f.master.Addr().String()}, Cluster: "fake"})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			txn, err := c.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := txn.Store(ctx, 1, proto.ZeroTid, []byte("data")); err != nil {
				t.Fatal(err)
			}
			if err := txn.Vote(ctx); err != nil {
				t.Fatal(err)
			}
			tid, err := txn.Finish(ctx)
			switch {
			case ctx.Err() != nil:
				t.Fatalf("Finish did not end within its context: %v", err)
			case tt.wantTid == 0 && !errors.Is(err, ErrMasterLost):
				t.Errorf("Finish = %v, %v; want ErrMasterLost", tid, err)
			case tt.wantTid != 0 && (err != nil || tid != tt.wantTid):
				t.Errorf("Finish = %v, %v; want %v", tid, err, tt.wantTid)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if !slices.Equal(f.finals, tt.wantAsked) {
				t.Errorf("AskFinalTID asked of %v; want %v", f.finals, tt.wantAsked)
			}
		})
	}
}

// How Load counts a storage's errors (cluster.md §7.2): NON_READABLE_CELL
// is a table race, retried without counting; any other failure counts,
// and a second failure of the single cell gives up.
func TestLoadFailureCount(t *testing.T) {
	nr, notReady := proto.NON_READABLE_CELL, proto.NOT_READY
	tests := []struct {
		name      string
		errs      []proto.ErrorCode
		wantErr   error // nil: the object is read
		wantLoads int
	}{
		{"non-readable cells are retried", []proto.ErrorCode{nr, nr, nr, nr}, nil, 5},
		{"one failure is retried after a sync", []proto.ErrorCode{notReady}, nil, 2},
		{"two failures of the only cell", []proto.ErrorCode{notReady, nr, notReady}, ErrNoStorage, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := startFakeCluster(t, proto.InvalidTid, proto.InvalidTid)
			f.loadErrs, f.object = tt.errs, []byte("fake object")
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			c, err := Open(ctx, Config{Masters: []string{f.master.Addr().String()}, Cluster: "fake"})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			obj, err := c.Load(ctx, 1, proto.InvalidTid)
			switch {
			case ctx.Err() != nil:
				t.Fatalf("Load did not end within its context: %v", err)
			case tt.wantErr == nil && (err != nil || string(obj.Data) != "fake object"):
				t.Errorf("Load = %q, %v; want the object", obj.Data, err)
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Errorf("Load = %q, %v; want %v", obj.Data, err, tt.wantErr)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.loads != tt.wantLoads {
				t.Errorf("storage asked %d times; want %d", f.loads, tt.wantLoads)
			}
		})
	}
}
