package nodelog

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
)

// linkSet is the links of the node whose packets a Log records, from
// their start to their close: what the state dump lists (SIGRTMIN+2).
type linkSet struct {
	mu    sync.Mutex
	links map[*neonet.Link]time.Time // when each started
}

func (s *linkSet) add(l *neonet.Link) {
	s.mu.Lock()
	if s.links == nil {
		s.links = map[*neonet.Link]time.Time{}
	}
	s.links[l] = time.Now()
	s.mu.Unlock()
}

func (s *linkSet) remove(l *neonet.Link) {
	s.mu.Lock()
	delete(s.links, l)
	s.mu.Unlock()
}

// maxInFlight bounds the requests in flight a link's line of the dump
// names: a client's link may have thousands.
const maxInFlight = 16

// LogLinks logs one record per link of the node (links whose packets l
// records): its peer, addresses, age, state, our requests waiting for
// an answer and the peer's not answered yet (each with its id and age),
// and the bytes not written yet. A nil Log logs nothing: without a log
// file the links are not tracked.
func (l *Log) LogLinks(log *slog.Logger) {
	if l == nil {
		return
	}
	l.links.mu.Lock()
	type started struct {
		link *neonet.Link
		at   time.Time
	}
	links := make([]started, 0, len(l.links.links))
	for k, at := range l.links.links {
		links = append(links, started{k, at})
	}
	l.links.mu.Unlock()
	slices.SortFunc(links, func(a, b started) int { return a.at.Compare(b.at) })
	now := time.Now()
	log.Info("links", "count", len(links))
	for _, s := range links {
		i := s.link.Info()
		typ := "None" // not identified (yet)
		if t, ok := i.PeerType.Get(); ok {
			typ = t.String()
		}
		state := "open"
		if i.Err != nil {
			state = "closing: " + i.Err.Error()
		}
		log.Info("link", "peer", nodeIDString(i.Peer), "type", typ, "local", i.Local.String(), "remote", i.Remote.String(),
			"age", now.Sub(s.at).Round(time.Millisecond).String(), "state", state,
			"pending", inFlight(i.Pending, now), "serving", inFlight(i.Serving, now), "queued_bytes", i.Queued)
	}
}

// inFlight writes requests as "AskObject#7(12ms) ...", at most
// maxInFlight of them then how many more.
func inFlight(rs []neonet.InFlight, now time.Time) string {
	var b strings.Builder
	for n, r := range rs {
		if n == maxInFlight {
			fmt.Fprintf(&b, " and %d more", len(rs)-n)
			break
		}
		if n > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s#%d", proto.MsgName(r.Code), r.ID)
		if !r.Since.IsZero() {
			fmt.Fprintf(&b, "(%s)", now.Sub(r.Since).Round(time.Microsecond))
		}
	}
	return b.String()
}
