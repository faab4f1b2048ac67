package neonet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/neogo/neo/proto"
)

// setQueueDelay sets the flush timer of queued requests for one test.
func setQueueDelay(t *testing.T, d time.Duration) {
	old := queueDelay
	queueDelay = d
	t.Cleanup(func() { queueDelay = old })
}

// unwritten returns how many bytes wait in l's buffer with nobody writing
// them.
func unwritten(l *Link) int {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.wmu.writing {
		return 0
	}
	return len(l.wmu.buf)
}

func storeReq(oid int, size int) *proto.AskStoreObject {
	return &proto.AskStoreObject{Oid: proto.Oid(oid), Serial: proto.ZeroTid, Checksum: make([]byte, 20),
		Data: bytes.Repeat([]byte{byte(oid)}, size), DataSerial: proto.InvalidTid, TTid: 1}
}

// expectStores reads stores of the given oids, answers them and checks
// that their calls get the answers.
func expectStores(t *testing.T, p *rawPeer, calls []*Call, oids ...int) {
	t.Helper()
	for i, oid := range oids {
		id, m := p.recv()
		req, ok := m.(*proto.AskStoreObject)
		if !ok || req.Oid != proto.Oid(oid) || id != calls[i].ID() {
			t.Fatalf("peer got %T %+v id %d; want the store of oid %d, id %d", m, m, id, oid, calls[i].ID())
		}
		p.send(id, &proto.AnswerStoreObject{Conflict: proto.Tid(oid)})
	}
	for i, c := range calls {
		if err := c.Wait(testCtx(t)); err != nil {
			t.Fatalf("store %d: %v", oids[i], err)
		}
		if got := c.Answer().(*proto.AnswerStoreObject).Conflict; got != proto.Tid(oids[i]) {
			t.Fatalf("store %d: answer %v", oids[i], got)
		}
	}
}

func queue(t *testing.T, l *Link, oid, size int) *Call {
	t.Helper()
	c, err := l.StartQueued(storeReq(oid, size), &proto.AnswerStoreObject{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Queued requests stay in the buffer until Flush, which writes them in
// order.
func TestStartQueuedFlush(t *testing.T) {
	setQueueDelay(t, time.Hour)
	p, l := dialRaw(t, listen(t, "tcp4", Config{}))
	calls := []*Call{queue(t, l, 1, 10), queue(t, l, 2, 10), queue(t, l, 3, 10)}
	if n := unwritten(l); n == 0 {
		t.Fatal("queued requests were written before Flush")
	}
	l.Flush()
	expectStores(t, p, calls, 1, 2, 3)
	if n := unwritten(l); n != 0 {
		t.Fatalf("%d bytes left after Flush", n)
	}
	l.Flush() // nothing to do
}

// Any other packet sent takes the queued requests along, before it.
func TestStartQueuedThenSend(t *testing.T) {
	setQueueDelay(t, time.Hour)
	p, l := dialRaw(t, listen(t, "tcp4", Config{}))
	calls := []*Call{queue(t, l, 1, 10), queue(t, l, 2, 10)}
	if err := l.Send(&proto.AbortTransaction{TTid: 1, NIDList: []proto.NodeID{}}); err != nil {
		t.Fatal(err)
	}
	ask, err := l.Start(storeReq(3, 10), &proto.AnswerStoreObject{})
	if err != nil {
		t.Fatal(err)
	}
	expectStores(t, p, calls, 1, 2)
	if _, m := p.recv(); m.NEOMsgCode() != (&proto.AbortTransaction{}).NEOMsgCode() {
		t.Fatalf("peer got %T after the queued stores; want AbortTransaction", m)
	}
	expectStores(t, p, []*Call{ask}, 3)
}

// A queued request is written by the timer if nothing else comes.
func TestStartQueuedTimer(t *testing.T) {
	setQueueDelay(t, time.Millisecond)
	p, l := dialRaw(t, listen(t, "tcp4", Config{}))
	expectStores(t, p, []*Call{queue(t, l, 7, 10)}, 7)
}

// The request that fills the buffer past maxUnflushed is written at once
// with those before it.
func TestStartQueuedLimit(t *testing.T) {
	setQueueDelay(t, time.Hour)
	p, l := dialRaw(t, listen(t, "tcp4", Config{}))
	const size = 3 << 10 // within the raw peer's read buffer
	var calls []*Call
	var oids []int
	for i := 1; ; i++ {
		if i > 2*maxUnflushed/size {
			t.Fatalf("%d bytes queued and not written", unwritten(l))
		}
		before := unwritten(l)
		calls = append(calls, queue(t, l, i, size))
		oids = append(oids, i)
		if unwritten(l) == 0 {
			if before+size < maxUnflushed {
				t.Fatalf("written at %d bytes queued", before+size)
			}
			break
		}
	}
	last := len(oids)
	expectStores(t, p, calls, oids...)
	c := queue(t, l, last+1, 10)
	if unwritten(l) == 0 {
		t.Fatal("a request queued after the flush of a full buffer was written")
	}
	l.Flush()
	expectStores(t, p, []*Call{c}, last+1)
}

// Close fails queued calls; Abort writes them first.
func TestStartQueuedClose(t *testing.T) {
	setQueueDelay(t, time.Hour)
	t.Run("close", func(t *testing.T) {
		p, l := dialRaw(t, listen(t, "tcp4", Config{}))
		c := queue(t, l, 1, 10)
		l.Close()
		if err := c.Wait(testCtx(t)); !errors.Is(err, ErrClosed) {
			t.Fatalf("queued call after Close: %v; want ErrClosed", err)
		}
		p.expectEOF()
		if _, err := l.StartQueued(storeReq(2, 10), nil); !errors.Is(err, ErrClosed) {
			t.Fatalf("StartQueued after Close: %v; want ErrClosed", err)
		}
		l.Flush() // nothing to do
	})
	t.Run("abort", func(t *testing.T) {
		p, l := dialRaw(t, listen(t, "tcp4", Config{}))
		queue(t, l, 1, 10)
		l.Abort()
		if _, m := p.recv(); m.(*proto.AskStoreObject).Oid != 1 {
			t.Fatalf("peer got %+v; want the queued store", m)
		}
		p.expectEOF()
	})
}

// storeHandler answers AskStoreObject at once, on the reader goroutine.
func storeHandler(r *Request) {
	if _, ok := r.Msg.(*proto.AskStoreObject); ok {
		r.Reply(&proto.AnswerStoreObject{Conflict: proto.InvalidTid})
	}
}

// cpuTime returns the CPU time of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkStores sends n stores of 1 KiB and waits for their answers, as
// a client's transaction does between its first store and its vote: each
// with Start, or with StartQueued and a Flush before the waits. cpu-ns/op
// is the CPU time of the whole process (both ends of the link).
func BenchmarkStores(b *testing.B) {
	for _, n := range []int{1, 100} {
		for _, queued := range []bool{false, true} {
			name := fmt.Sprintf("n=%d/start", n)
			if queued {
				name = fmt.Sprintf("n=%d/queued", n)
			}
			b.Run(name, func(b *testing.B) {
				cli := benchPair(b, Config{Handler: storeHandler})
				ctx := context.Background()
				calls := make([]*Call, n)
				b.ReportAllocs()
				b.SetBytes(int64(n) << 10)
				cpu0 := cpuTime()
				for b.Loop() {
					for i := range calls {
						var err error
						if queued {
							calls[i], err = cli.StartQueued(storeReq(i, 1<<10), &proto.AnswerStoreObject{})
						} else {
							calls[i], err = cli.Start(storeReq(i, 1<<10), &proto.AnswerStoreObject{})
						}
						if err != nil {
							b.Fatal(err)
						}
					}
					cli.Flush()
					for _, c := range calls {
						if err := c.Wait(ctx); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}
