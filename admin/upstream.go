package admin

// Reporting to the admin of the upstream cluster (protocol.md §5.17), for
// the admin of a backup cluster: its master tells it (NotifyUpstreamAdmin)
// where the upstream admin that monitors this cluster listens.
//
//	A ──RequestIdentification(ADMIN, nil, nil, our cluster name)──▶ Au
//	A ──NotifyMonitorInformation({cluster_state, down, pt_summary})──▶ Au   then the changed keys only
//	Au ──AskRecovery / AskLastTransaction──▶ A ──same──▶ our master         answers relayed back
//
// A lost link is dialed again, at most once per reportRetry.

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
)

// reportRetry is the pause before dialing the upstream admin again.
const reportRetry = time.Second

// reporter reports this cluster's health to one upstream admin, until
// stopped.
type reporter struct {
	n      *Node
	addr   proto.Addr
	cancel context.CancelFunc
	done   chan struct{}
	kick   chan struct{} // cap 1: the view changed
}

// setUpstreamAdminLocked starts reporting to the admin at addr, instead of the
// one reported to so far, if any. n.mu is held.
func (n *Node) setUpstreamAdminLocked(addr proto.Addr) {
	if r := n.mu.reporter; r != nil {
		if r.addr == addr {
			return
		}
		r.cancel() // its goroutine ends by itself
	}
	ctx, cancel := context.WithCancel(n.mu.ctx)
	r := &reporter{n: n, addr: addr, cancel: cancel, done: make(chan struct{}), kick: make(chan struct{}, 1)}
	n.mu.reporter = r
	n.log.Info("reporting to the upstream admin", "addr", addr)
	n.wg.Go(func() {
		defer close(r.done)
		r.run(ctx)
	})
}

// changed tells the reporter that the view changed; nil-safe.
func (r *reporter) changed() {
	if r == nil {
		return
	}
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

func (r *reporter) run(ctx context.Context) {
	said := ""
	for ctx.Err() == nil {
		err := r.session(ctx)
		if ctx.Err() != nil {
			return
		}
		if msg := err.Error(); msg != said {
			said = msg
			r.n.log.Warn("reporting to the upstream admin", "addr", r.addr, "err", err)
		}
		t := time.NewTimer(reportRetry)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
}

// session connects to the upstream admin and reports until the link or
// ctx ends.
func (r *reporter) session(ctx context.Context) error {
	n := r.n
	link, err := neonet.Dial(ctx, "tcp", r.addr.String(), neonet.Config{Logger: n.log, TLS: n.cfg.TLS, Handler: n.serveUpstream})
	if err != nil {
		return err
	}
	defer link.Close()
	var acc proto.AcceptIdentification
	if err := link.Ask(ctx, &proto.RequestIdentification{NodeType: proto.ADMIN, ClusterName: n.cfg.Cluster, Extra: proto.Dict{}}, &acc); err != nil {
		return fmt.Errorf("identify to %s: %w", r.addr, err)
	}
	if acc.NodeType != proto.ADMIN {
		return fmt.Errorf("%s is a %v, not an admin", r.addr, acc.NodeType)
	}
	var sent proto.Dict
	for {
		n.mu.Lock()
		info := monitorInfo(n.mu.v.monitor())
		n.mu.Unlock()
		if d := infoChanges(sent, info); len(d) > 0 {
			if err := link.Send(&proto.NotifyMonitorInformation{Info: d}); err != nil {
				return err
			}
			sent = info
		}
		select {
		case <-r.kick:
		case <-link.Done():
			return fmt.Errorf("link to %s: %w", r.addr, link.Err())
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// monitorInfo is what NotifyMonitorInformation reports of m.
func monitorInfo(m Monitor) proto.Dict {
	var state proto.Value
	if s, ok := m.ClusterState.Get(); ok {
		state = s
	}
	pt := proto.Map{}
	for _, s := range slices.Sorted(maps.Keys(m.PTSummary)) {
		pt = append(pt, proto.MapItem{Key: s, Value: int64(m.PTSummary[s])})
	}
	return proto.Dict{{Key: "cluster_state", Value: state}, {Key: "down", Value: int64(m.Down)}, {Key: "pt_summary", Value: pt}}
}

// infoChanges returns the entries of info that differ from sent (all of
// them when nothing was sent).
func infoChanges(sent, info proto.Dict) proto.Dict {
	var d proto.Dict
	for _, it := range info {
		old, ok := sent.Get(it.Key)
		if !ok || fmt.Sprint(old) != fmt.Sprint(it.Value) {
			d = append(d, it)
		}
	}
	return d
}

// serveUpstream answers the upstream admin's questions by asking our
// master (it runs on the link's reader: the answer is relayed from a
// goroutine of its own).
func (n *Node) serveUpstream(req *neonet.Request) {
	switch req.Msg.(type) {
	case *proto.AskRecovery, *proto.AskLastTransaction:
	default:
		n.log.Debug("ignored packet from the upstream admin", "msg", proto.MsgName(req.Msg.NEOMsgCode()))
		return
	}
	n.mu.Lock()
	master, ctx, done := n.mu.master, n.mu.ctx, n.mu.done
	n.mu.Unlock()
	if master == nil || done {
		req.Reply(&proto.Error{Code: proto.NOT_READY, Message: notConnected})
		return
	}
	call, err := master.Start(req.Msg, nil)
	if err != nil {
		req.Reply(&proto.Error{Code: proto.NOT_READY, Message: notConnected})
		return
	}
	go func() { // bounded by monitorTimeout and the end of Run
		qctx, cancel := context.WithTimeout(ctx, monitorTimeout)
		defer cancel()
		if err := call.Wait(qctx); err != nil {
			req.Reply(&proto.Error{Code: proto.NOT_READY, Message: notConnected})
			return
		}
		req.Reply(call.Answer())
	}()
}
