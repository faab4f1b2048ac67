package client_test

import (
	"bytes"
	"sync"
	"testing"

	"github.com/neogo/neo/client"
	"github.com/neogo/neo/internal/neotest"
	"github.com/neogo/neo/proto"
)

// The master link breaks right after the finish request went out; the
// master commits the transaction anyway (it was being finished) and has
// forgotten it by the time the client is back: it answers AskFinalTID
// with MAX_TID, and the storages give the tid (cluster.md §6.9). Finish
// returns the tid the other clients were told of.
func TestFinishOutcomeFromStorages(t *testing.T) {
	c := neotest.Start(t, neotest.Options{Storages: 2, Replicas: 1, Partitions: 4})
	cl, other := c.Open(t, client.Config{}), c.Open(t, client.Config{})
	ctx := opContext(t)
	events := other.Watch(ctx)
	oid, _ := cl.NewOID(ctx)
	txn, err := cl.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := txn.Store(ctx, oid, proto.ZeroTid, []byte("committed blind")); err != nil {
		t.Fatal(err)
	}
	if err := txn.Vote(ctx); err != nil {
		t.Fatal(err)
	}

	// The client reconnects only once the commit is complete: the
	// master has then forgotten the transaction.
	hold := make(chan struct{})
	var mu sync.Mutex
	var answers []string
	cl.AbortMasterAfterFinishForTest(hold, func(node string, tid proto.Tid) {
		mu.Lock()
		defer mu.Unlock()
		answers = append(answers, node+" "+tid.String())
	})
	seen := make(chan proto.Tid, 1)
	go func() {
		defer close(hold)
		for {
			select {
			case inv := <-events:
				if len(inv.Oids) == 1 && inv.Oids[0] == oid {
					seen <- inv.Tid
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()

	tid, err := txn.Finish(ctx)
	if err != nil {
		t.Fatalf("Finish with the master link lost: %v", err)
	}
	var want proto.Tid
	select {
	case want = <-seen:
	default:
		t.Fatal("Finish returned before the commit was seen by the other client")
	}
	if tid != want {
		t.Errorf("Finish = %v; the other client was told of %v", tid, want)
	}
	mu.Lock()
	got := answers
	mu.Unlock()
	if len(got) != 1 || got[0] != "storage "+want.String() {
		t.Errorf("AskFinalTID answers (not MAX_TID) = %v; want one, the storage's %v", got, want)
	}
	obj, err := cl.Load(ctx, oid, proto.InvalidTid)
	if err != nil || !bytes.Equal(obj.Data, []byte("committed blind")) || obj.Serial != tid {
		t.Errorf("Load = %q at %v, %v; want the committed data at %v", obj.Data, obj.Serial, err, tid)
	}
	// The client works on as usual.
	if _, err := neotest.Commit(ctx, cl, oid, tid, []byte("next")); err != nil {
		t.Errorf("commit after the recovered finish: %v", err)
	}
}
