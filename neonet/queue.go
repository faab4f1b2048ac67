package neonet

import (
	"fmt"
	"time"

	"github.com/neogo/neo/proto"
)

// Requests sent by StartQueued wait in the link's write buffer, unwritten,
// for the next packet sent, a Flush, a full buffer or the flush timer:
// many asynchronous requests (a transaction's stores) then cost one
// system call instead of one each. While packets wait so, wmu.buf is not
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
	c := &Call{resp: resp}
	if err := l.lockCall(req, c); err != nil {
		return nil, err
	}
	return started(c, l.queueLocked(c.id, req))
}

// queueLocked appends the request req with id to the buffer and leaves it
// there unwritten, unless a write is in progress or the buffer is full:
// then it goes as with sendLocked. wmu must be held; queueLocked
// releases it.
func (l *Link) queueLocked(id uint32, req proto.Msg) error {
	timerOn := len(l.wmu.buf) > 0 && !l.wmu.writing // requests queued before ours
	l.appendLocked(id, req)
	if l.wmu.writing || len(l.wmu.buf) >= maxUnflushed {
		return l.writeLocked(id, req)
	}
	if !timerOn {
		l.armFlushLocked()
	}
	l.wmu.Unlock()
	return nil
}

// Flush writes the requests queued by [Link.StartQueued], on the
// caller's goroutine like a lone send (a handoff to the writer goroutine
// would cost a wakeup), unless a write is in progress, which takes them.
// It does nothing if none waits, or on a closed link; a write error
// closes the link.
func (l *Link) Flush() {
	l.wmu.Lock()
	if l.closing.Load() || l.wmu.writing || len(l.wmu.buf) == 0 {
		l.wmu.Unlock()
		return
	}
	l.wmu.writing = true
	if l.wmu.qtimer != nil {
		l.wmu.qtimer.Stop() // its work is done
	}
	buf := l.takeBuf()
	l.wmu.Unlock()
	_, err := l.writeSock(buf)
	l.endWrite(buf, err)
	if err != nil {
		l.shutdown(fmt.Errorf("write queued requests: %w", err), false)
	}
}

// armFlushLocked starts the flush timer of the first request queued into
// an empty buffer; wmu must be held.
func (l *Link) armFlushLocked() {
	if l.wmu.qtimer == nil {
		l.wmu.qtimer = time.AfterFunc(queueDelay, l.Flush)
		return
	}
	l.wmu.qtimer.Reset(queueDelay)
}
