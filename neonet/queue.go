package neonet

import (
	"fmt"
	"time"

	"github.com/neogo/neo/proto"
)

// Requests sent by StartQueued wait in the link's write buffer, unwritten,
// for the next packet sent, a Flush, a full buffer or the flush timer:
// many asynchronous requests (a transaction's stores) then cost one
// system call instead of one each. While packets wait so, wbuf is not
// empty and writing is false; any other send takes over and writes them
// with its own packet.
const (
	// maxUnflushed is how many bytes queued requests may hold before
	// the one that passes it is written with them.
	maxUnflushed = 64 << 10
)

// queueDelay bounds how long a queued request may wait unwritten; a
// variable for the tests.
var queueDelay = time.Millisecond

// StartQueued is [Link.Start] for a request that may wait in the link's
// buffer to be written with others: with the next packet sent on the
// link, at [Link.Flush], once 64 KiB are waiting, or at the latest after
// a millisecond. Call Flush before waiting for its answer.
func (l *Link) StartQueued(req, resp proto.Msg) (*Call, error) {
	return l.startCall(req, &Call{resp: resp, queue: true}, false)
}

// Flush writes the requests queued by [Link.StartQueued], on the
// caller's goroutine like a lone send (a handoff to the writer goroutine
// would cost a wakeup), unless a write is in progress, which takes them.
// It does nothing if none waits, or on a closed link; a write error
// closes the link.
func (l *Link) Flush() {
	l.wmu.Lock()
	if l.closing.Load() || l.writing || len(l.wbuf) == 0 {
		l.wmu.Unlock()
		return
	}
	l.writing = true
	if l.qtimer != nil {
		l.qtimer.Stop() // its work is done
	}
	buf := l.takeBuf()
	l.wmu.Unlock()
	_, err := l.conn.Write(buf)
	l.wmu.Lock()
	l.endWrite(buf, err)
	if err != nil {
		l.shutdown(fmt.Errorf("write queued requests: %w", err), false)
	}
}

// kickLocked hands the packets waiting unwritten, if any, to the writer
// goroutine; l.wmu must be held.
func (l *Link) kickLocked() {
	if l.writing || len(l.wbuf) == 0 {
		return
	}
	l.writing = true
	l.wkick <- struct{}{}
}

// armFlushLocked starts the flush timer of the first request queued into
// an empty buffer; l.wmu must be held.
func (l *Link) armFlushLocked() {
	if l.qtimer == nil {
		l.qtimer = time.AfterFunc(queueDelay, l.Flush)
		return
	}
	l.qtimer.Reset(queueDelay)
}
