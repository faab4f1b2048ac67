package admin

// Monitoring backup clusters (protocol.md §5.17), on the upstream side:
// the admin of each backup cluster named in --monitor-backup identifies
// on our neoctl listener and reports its health; "print summary" asks it
// its tids.
//
//	Ab ──RequestIdentification(ADMIN, nil, nil, backup name)──▶ A   (one link per backup)
//	Ab ──NotifyMonitorInformation({cluster_state, down, pt_summary})──▶ A
//	A ──AskRecovery (if BACKINGUP) / AskLastTransaction──▶ Ab

import (
	"context"
	"fmt"

	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
)

// backupConn is a monitored backup cluster and the link of its admin,
// guarded by Node.mu.
type backupConn struct {
	mon  backupMon
	link *neonet.Link // nil while its admin is not connected
}

// backupLocked returns the backup whose admin is on link, or nil. n.mu is
// held.
func (n *Node) backupLocked(link *neonet.Link) *backupConn {
	for _, b := range n.mu.backups {
		if b.link == link {
			return b
		}
	}
	return nil
}

// identifyBackupLocked answers the identification of a backup cluster's admin.
// n.mu is held; it is released.
func (n *Node) identifyBackupLocked(req *neonet.Request, m *proto.RequestIdentification) {
	msg := "reject non-admin node"
	if m.NodeType == proto.ADMIN {
		msg = fmt.Sprintf("unknown backup cluster %q", m.ClusterName)
		for _, b := range n.mu.backups {
			if b.mon.Name != m.ClusterName {
				continue
			}
			if b.link != nil {
				msg = "already connected"
				break
			}
			link := req.Link
			b.link = link
			n.wg.Go(func() {
				<-link.Done()
				n.mu.Lock()
				defer n.mu.Unlock()
				if b.link == link {
					// What it reported is unknown from now on.
					b.link, b.mon = nil, backupMon{Name: b.mon.Name}
					n.mu.mailer.changed()
				}
			})
			n.mu.Unlock()
			n.log.Info("backup cluster's admin connected", "backup", m.ClusterName, "addr", link.RemoteAddr())
			if err := req.Reply(&proto.AcceptIdentification{NodeType: proto.ADMIN}); err != nil {
				n.log.Debug("accept backup admin", "err", err)
			}
			return
		}
	}
	n.mu.Unlock()
	n.replyAbort(req, &proto.Error{Code: proto.PROTOCOL_ERROR, Message: msg})
}

// serveBackupLocked handles a packet of the admin of backup b: its health
// is merged, the rest ignored. n.mu is held; it is released.
func (n *Node) serveBackupLocked(b *backupConn, req *neonet.Request) {
	m, ok := req.Msg.(*proto.NotifyMonitorInformation)
	if !ok {
		n.mu.Unlock()
		n.log.Debug("ignored packet from a backup admin", "backup", b.mon.Name, "msg", proto.MsgName(req.Msg.NEOMsgCode()))
		return
	}
	changed, err := b.mon.mergeInfo(m.Info)
	if changed {
		n.mu.mailer.changed()
	}
	n.mu.Unlock()
	if err != nil {
		n.log.Error("bad monitor information from a backup admin: dropping it", "backup", b.mon.Name, "err", err)
		req.Link.Close()
	}
}

// askBackupTids asks the admins of the operational backups their tids
// (the backup tid when BACKINGUP, and the last tid), for the summary; a
// backup admin that does not answer before ctx ends is dropped (after
// monitorTimeout: neoppod's MONITOR_TIMEOUT).
func (n *Node) askBackupTids(ctx context.Context) {
	type query struct {
		b     *backupConn
		link  *neonet.Link
		state proto.Opt[proto.ClusterState]
	}
	var qs []query
	n.mu.Lock()
	for _, b := range n.mu.backups {
		if b.link != nil && b.mon.Operational() {
			qs = append(qs, query{b, b.link, b.mon.ClusterState})
		}
	}
	n.mu.Unlock()
	for _, q := range qs {
		var backupTid, lastTid proto.Opt[proto.Tid]
		var err error
		if s, _ := q.state.Get(); s == proto.BACKINGUP {
			var rec proto.AnswerRecovery
			if err = q.link.Ask(ctx, &proto.AskRecovery{}, &rec); err == nil && rec.BackupTid != proto.InvalidTid {
				backupTid = proto.Some(rec.BackupTid)
			}
		}
		if err == nil {
			var last proto.AnswerLastTransaction
			if err = q.link.Ask(ctx, &proto.AskLastTransaction{}, &last); err == nil {
				lastTid = proto.Some(last.Tid)
			}
		}
		if err != nil {
			// An error answer (its master lost) makes the tids unknown
			// rather than stale; an admin that does not answer is of no
			// use.
			if ctx.Err() != nil {
				n.log.Warn("backup admin did not answer monitoring questions: dropping it", "backup", q.b.mon.Name, "err", err)
				q.link.Close()
				continue
			}
			n.log.Debug("monitoring questions to a backup admin", "backup", q.b.mon.Name, "err", err)
		}
		n.mu.Lock()
		if q.b.link == q.link && q.b.mon.ClusterState == q.state {
			q.b.mon.LastTid, q.b.mon.BackupTid = lastTid, backupTid
		}
		n.mu.Unlock()
	}
}

// mailHealth evaluates the health of this cluster and of the monitored
// backups for the e-mail notifications: what print summary shows, once
// the tids it shows were asked. A tid that cannot be asked is not shown.
// Not connected to a primary master, only this cluster is a problem.
func (n *Node) mailHealth(ctx context.Context) health {
	n.mu.Lock()
	master, mon := n.mu.master, n.mu.v.monitor()
	n.mu.Unlock()
	if master == nil {
		return notConnectedHealth()
	}
	mon, _ = n.askMasterTids(ctx, master, mon)
	qctx, cancel := context.WithTimeout(ctx, monitorTimeout)
	n.askBackupTids(qctx)
	cancel()
	n.mu.Lock()
	defer n.mu.Unlock()
	return healthOf(mon, n.backupMonsLocked(), n.cfg.Monitor.MaxLag)
}
