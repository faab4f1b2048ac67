package neonet

import (
	"sync"
	"testing"

	"github.com/neogo/neo/proto"
)

// trackingObserver is a countingObserver that keeps the links it is told
// of, as the node's log does for its state dump.
type trackingObserver struct {
	*countingObserver
	mu    sync.Mutex
	links map[*Link]bool
}

func (o *trackingObserver) LinkStarted(l *Link) {
	o.mu.Lock()
	o.links[l] = true
	o.mu.Unlock()
}

func (o *trackingObserver) LinkEnded(l *Link) {
	o.mu.Lock()
	delete(o.links, l)
	o.mu.Unlock()
}

func (o *trackingObserver) has(l *Link) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.links[l]
}

// TestLinkInfo: a tracker knows every link from its start to its close,
// and Info tells, on each side, the requests in flight: ours waiting
// for an answer, the peer's not answered yet, and the peer's type once
// identified.
func TestLinkInfo(t *testing.T) {
	tr := &trackingObserver{countingObserver: newCountingObserver(), links: map[*Link]bool{}}
	// Trackers combined with other observers are told too.
	obs := Observers(newCountingObserver(), tr)
	cli, srv := pair(t, "tcp", Config{Observer: obs}, Config{Observer: obs})
	if !tr.has(cli) || !tr.has(srv) {
		t.Fatal("a started link is not tracked")
	}
	ctx := testCtx(t)
	// The client identifies as a storage; the server's answer waits.
	id, err := cli.Start(&proto.RequestIdentification{NodeType: proto.STORAGE, ClusterName: "c"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	req, err := srv.Recv(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ci, si := cli.Info(), srv.Info()
	codeID := (&proto.RequestIdentification{}).NEOMsgCode()
	if len(ci.Pending) != 1 || ci.Pending[0].Code != codeID || ci.Pending[0].ID != id.ID() || ci.Pending[0].Since.IsZero() {
		t.Errorf("client's pending requests %+v", ci.Pending)
	}
	if len(si.Serving) != 1 || si.Serving[0].Code != codeID || si.Serving[0].ID != req.ID {
		t.Errorf("server's requests being served %+v", si.Serving)
	}
	if pt, ok := si.PeerType.Get(); !ok || pt != proto.STORAGE {
		t.Errorf("server's peer type %v", si.PeerType)
	}
	if si.Err != nil || si.Remote.String() != ci.Local.String() {
		t.Errorf("server's link %+v", si)
	}
	if err := req.Reply(&proto.AcceptIdentification{NodeType: proto.MASTER}); err != nil {
		t.Fatal(err)
	}
	if err := id.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	ci, si = cli.Info(), srv.Info()
	if len(ci.Pending) != 0 || len(si.Serving) != 0 {
		t.Errorf("requests in flight after the answer: %+v, %+v", ci.Pending, si.Serving)
	}
	if pt, ok := ci.PeerType.Get(); !ok || pt != proto.MASTER {
		t.Errorf("client's peer type %v", ci.PeerType)
	}
	cli.Close()
	<-srv.Done()
	if tr.has(cli) || tr.has(srv) {
		t.Error("a closed link is still tracked")
	}
	if srv.Info().Err == nil {
		t.Error("a closed link's info has no error")
	}
}
