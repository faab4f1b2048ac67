package storage

import "time"

// Reconnecting to the master after a link that ended at once.
//
// A link can end right after the identification for a reason of our own
// (the database server is down: the recovery's first read fails). Dialing
// again at once would identify and fail about once a millisecond for as
// long as the outage lasts, flooding both nodes' logs and keeping the
// master busy. A link that lasted relinkHealthy resets the pause, so that
// the loss of a primary that served us is followed by an immediate
// reconnection (the failover case).

const (
	relinkHealthy = time.Second
	relinkFirst   = 20 * time.Millisecond
	relinkMax     = 250 * time.Millisecond
)

// relinkPause is the pause before reconnecting to the master, doubling
// while links keep ending within relinkHealthy. The zero value is ready.
type relinkPause struct{ next time.Duration }

// after returns the pause to take after a link that lasted d.
func (p *relinkPause) after(d time.Duration) time.Duration {
	if d >= relinkHealthy {
		p.next = 0
		return 0
	}
	if p.next == 0 {
		p.next = relinkFirst
	} else {
		p.next = min(2*p.next, relinkMax)
	}
	return p.next
}
