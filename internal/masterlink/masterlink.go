// Package masterlink finds the primary master of a NEO cluster and
// identifies to it: the bootstrap of every node that is not a master, at
// start and again whenever it loses the primary (cluster.md §1.3.2
// BootstrapManager, protocol.md §5.1). Storage, admin and client nodes
// use it; each gives its own RequestIdentification and does what follows
// the identification (mirroring the tables, serving) itself.
//
// A [Dialer] tries the masters in turn until one accepts:
//
//	node ──RequestIdentification──▶ M1          a secondary master
//	node ◀── NotPrimaryMaster(primary: 2, known: [M1 M2 M3]) + close
//	node ──RequestIdentification──▶ M3          the primary it named, tried next
//	node ◀── AcceptIdentification(MASTER, ...)  the link is returned
//
// What makes an attempt fail, and what follows:
//
//   - NotPrimaryMaster (a secondary master): the masters it knows join the
//     list for this search, and are handed to [Dialer.Learned]; the primary
//     it names is tried next. With no primary (an election is going on),
//     the next master is.
//   - an Error answer (NOT_READY from a master that does not accept this
//     node yet, PROTOCOL_ERROR for another cluster name), a refused dial, a
//     link lost before the answer (a master that dies), a peer that is not
//     a master, or an error of [Dialer.Ready]: the next master is tried.
//
// Two attempts on one address are at least [Dialer.Delay] apart (the
// pause may grow up to [Dialer.MaxDelay]); other addresses are tried
// meanwhile. Failures are logged the same way for every node: what only
// the operator can fix (another cluster name, another protocol version)
// at ERROR at every attempt, other failures at INFO once per master until
// they change, then at DEBUG.
package masterlink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
)

// DefaultDelay is the least time between two attempts on one master when
// [Dialer.Delay] is zero. neoppod waits 1 s (CONNECT_LIMIT), so that a
// node that asked a secondary during an election (which takes tens of
// milliseconds) came back a second late; a refused dial costs nothing.
const DefaultDelay = 100 * time.Millisecond

// Errors of [Dialer.Dial], besides the context's.
var (
	// ErrNoMaster: [Dialer.Masters] returned no address, and no master
	// told of another.
	ErrNoMaster = errors.New("masterlink: no master address")
	// ErrHandler: [Dialer.Net] has a Handler.
	ErrHandler = errors.New("masterlink: Net.Handler must be nil")
)

// Dialer finds the primary master and identifies to it. Its fields are
// read by [Dialer.Dial] and must not change during a call; one Dialer may
// serve successive calls (a node's reconnections), not concurrent ones
// if its callbacks are not safe for that.
type Dialer struct {
	// Masters returns the master addresses ("host:port") to try, in
	// order. It is called before every attempt, so the list may change
	// during a search (a dynamic master list, masters learnt from the
	// primary). Required.
	Masters func() []string
	// Net configures the links: logger, TLS, timeouts. Its Handler must
	// be nil: the returned link queues what the master sends after
	// AcceptIdentification (NotifyNodeInformation, SendPartitionTable...)
	// for [neonet.Link.Recv] or [neonet.Link.SetHandler].
	Net neonet.Config
	// Delay is the least time between two attempts on one address.
	// Zero means [DefaultDelay].
	Delay time.Duration
	// MaxDelay, if more than Delay, makes the pause before the next
	// attempt on an address grow by half after each attempt on it, up
	// to MaxDelay. Otherwise it stays Delay.
	MaxDelay time.Duration
	// Learned, if set, receives the masters a NotPrimaryMaster lists, on
	// the goroutine of Dial (a node with a dynamic master list saves
	// them).
	Learned func(known []proto.Addr)
	// Ready, if set, is called on the goroutine of Dial once a master
	// accepted the identification, with the link (its Handler still nil)
	// and the answer. An error closes the link and counts as a failed
	// attempt on that master; nil lets Dial return the link. A client
	// checks there that the cluster is operational, a storage saves the
	// node id the master gave.
	Ready func(ctx context.Context, link *neonet.Link, acc *proto.AcceptIdentification) error
	// Fatal, if set, tells the failures of an attempt that end the
	// search: Dial returns them (a read-write client that a backup
	// cluster refuses with READ_ONLY_ACCESS). Others are retried.
	Fatal func(err error) bool
	// Logger receives failures and redirections; nil discards them.
	Logger *slog.Logger

	// attempted, if set, is called before each attempt (tests).
	attempted func(addr string)
}

// backoff is what a search remembers of one address.
type backoff struct {
	last  time.Time     // start of the last attempt
	pause time.Duration // least time from last to the next attempt
}

// Dial looks for the primary master and identifies to it with req (the
// same request at every attempt). It returns the link and the master's
// AcceptIdentification, and tries until it gets them or ctx ends, then
// returns ctx's error. The caller owns the link.
func (d *Dialer) Dial(ctx context.Context, req *proto.RequestIdentification) (*neonet.Link, *proto.AcceptIdentification, error) {
	if d.Net.Handler != nil {
		return nil, nil, ErrHandler
	}
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	delay := d.Delay
	if delay <= 0 {
		delay = DefaultDelay
	}
	failures := newFailures(log)
	tried := map[string]*backoff{}
	var learnt []string // masters that NotPrimaryMaster told of
	next, redirect := 0, ""
	for {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		masters := d.masters(learnt)
		addr, redirected := redirect, redirect != ""
		redirect = ""
		if !redirected {
			if len(masters) == 0 {
				return nil, nil, ErrNoMaster
			}
			addr = masters[next%len(masters)]
			next = next%len(masters) + 1
		}
		b := tried[addr]
		if b == nil {
			b = &backoff{pause: delay}
			tried[addr] = b
		} else {
			if wait := b.pause - time.Since(b.last); wait > 0 {
				if err := sleep(ctx, wait); err != nil {
					return nil, nil, err
				}
				if !redirected && !slices.Contains(d.masters(learnt), addr) {
					continue // gone from the list meanwhile
				}
			}
			if d.MaxDelay > delay {
				b.pause = min(b.pause+b.pause/2, d.MaxDelay)
			}
		}
		b.last = time.Now()
		if d.attempted != nil {
			d.attempted(addr)
		}
		link, acc, err := d.identify(ctx, addr, req)
		if err == nil {
			return link, acc, nil
		}
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		if d.Fatal != nil && d.Fatal(err) {
			log.Error("the master refused our identification for good", "master", addr, "err", err)
			return nil, nil, err
		}
		var npm *notPrimaryError
		if errors.As(err, &npm) {
			if d.Learned != nil {
				d.Learned(npm.known)
			}
			for _, k := range npm.known {
				if s := k.String(); !k.IsZero() && !slices.Contains(learnt, s) {
					learnt = append(learnt, s)
				}
			}
			if npm.primary != "" {
				log.Info("redirected to the primary master", "from", addr, "primary", npm.primary)
				redirect = npm.primary
				if i := slices.Index(d.masters(learnt), redirect); i >= 0 {
					next = i + 1 // then go on after it
				}
				continue
			}
		}
		failures.report(addr, err)
	}
}

// masters returns the masters to try: d.Masters and those learnt.
func (d *Dialer) masters(learnt []string) []string {
	masters := d.Masters()
	for _, a := range learnt {
		if !slices.Contains(masters, a) {
			masters = append(masters, a)
		}
	}
	return masters
}

// sleep waits for d or the end of ctx.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// notPrimaryError is the failure of an identification to a secondary
// master, with what its NotPrimaryMaster said.
type notPrimaryError struct {
	addr    string
	primary string // "" if it named none
	known   []proto.Addr
	err     error // how the link ended
}

func (e *notPrimaryError) Error() string {
	if e.primary == "" {
		return fmt.Sprintf("%s is not the primary master and knows none", e.addr)
	}
	return fmt.Sprintf("%s is not the primary master, %s is", e.addr, e.primary)
}

func (e *notPrimaryError) Unwrap() error { return e.err }

// identify makes one attempt on addr.
func (d *Dialer) identify(ctx context.Context, addr string, req *proto.RequestIdentification) (*neonet.Link, *proto.AcceptIdentification, error) {
	link, err := neonet.Dial(ctx, "tcp", addr, d.Net)
	if err != nil {
		return nil, nil, err
	}
	var acc proto.AcceptIdentification
	if err := link.Ask(ctx, req, &acc); err != nil {
		link.Close()
		if npm := notPrimary(ctx, link, err); npm != nil {
			npm.addr = addr
			return nil, nil, npm
		}
		return nil, nil, fmt.Errorf("identify to %s: %w", addr, err)
	}
	if acc.NodeType != proto.MASTER {
		link.Close()
		return nil, nil, fmt.Errorf("identify to %s: the peer is a %v, not a master", addr, acc.NodeType)
	}
	if d.Ready != nil {
		if err := d.Ready(ctx, link, &acc); err != nil {
			link.Close()
			return nil, nil, err
		}
	}
	return link, &acc, nil
}

// notPrimary returns what a secondary master said, if it did: it sends
// NotPrimaryMaster then closes, so that the identification failed with
// the link closed and the notification is queued before the close.
func notPrimary(ctx context.Context, link *neonet.Link, err error) *notPrimaryError {
	if !errors.Is(err, neonet.ErrClosed) {
		return nil
	}
	var npe *notPrimaryError
	for {
		r, rerr := link.Recv(ctx) // the link is closed: returns at once
		if rerr != nil {
			return npe
		}
		if m, ok := r.Msg.(*proto.NotPrimaryMaster); ok {
			npe = &notPrimaryError{known: m.KnownMasters, err: err}
			if i, ok := m.Primary.Get(); ok && int(i) < len(m.KnownMasters) {
				npe.primary = m.KnownMasters[i].String()
			}
		}
	}
}
