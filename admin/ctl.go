package admin

import (
	"context"
	"errors"
	"fmt"

	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
)

// serveCtl handles a packet from neoctl (protocol.md §5.14). It runs on
// the neoctl link's reader goroutine, so it only sends: what waits for the
// master runs on a goroutine of its own.
//
// neoctl does not identify. Without a primary master every packet is
// answered NOT_READY and the link aborted. The admin answers from its copy
// of the cluster AskNodeList, AskPartitionList, AskClusterState,
// AskPrimary and AskMonitorInformation; it forwards the commands to the
// master and relays the master's answer under neoctl's message id.
func (n *Node) serveCtl(req *neonet.Request) {
	n.mu.Lock()
	if b := n.backupLocked(req.Link); b != nil {
		n.serveBackupLocked(b, req)
		return
	}
	v, master, ctx := n.mu.v, n.mu.master, n.mu.ctx
	if master == nil || n.mu.done {
		n.mu.Unlock()
		n.log.Debug("neoctl request while not connected", "msg", fmt.Sprintf("%T", req.Msg))
		n.replyAbort(req, &proto.Error{Code: proto.NOT_READY, Message: notConnected})
		return
	}
	var answer proto.Msg
	switch m := req.Msg.(type) {
	case *proto.AskNodeList:
		answer = v.nodeList(m.NodeType)
	case *proto.AskPartitionList:
		a, perr := v.partitionList(m.MinOffset, m.MaxOffset)
		if perr != nil {
			n.mu.Unlock()
			// neoppod sends this error as a new packet, not as the answer,
			// and keeps the link.
			if err := req.Link.Send(perr); err != nil {
				n.log.Debug("send to neoctl", "err", err)
			}
			return
		}
		answer = a
	case *proto.AskClusterState:
		answer = &proto.AnswerClusterState{State: v.clusterState}
	case *proto.AskPrimary:
		answer = &proto.AnswerPrimary{PrimaryNID: v.primary}
	case *proto.AskMonitorInformation:
		mon := v.monitor()
		n.relays.Add(1)
		n.mu.Unlock()
		go func() {
			defer n.relays.Done()
			n.answerMonitor(ctx, req, master, mon)
		}()
		return
	case *proto.FlushLog:
		n.mu.Unlock()
		if n.cfg.FlushLog != nil {
			go n.cfg.FlushLog()
		}
		if err := master.Send(&proto.FlushLog{}); err != nil {
			n.log.Debug("forward FlushLog", "err", err)
		}
		return
	case *proto.AddPendingNodes, *proto.AskLastIDs, *proto.AskLastTransaction,
		*proto.AskRecovery, *proto.CheckReplicas, *proto.Repair,
		*proto.SetClusterState, *proto.SetNodeState, *proto.SetNumReplicas,
		*proto.Truncate, *proto.TweakPartitionTable:
		n.relays.Add(1)
		n.mu.Unlock()
		n.forward(ctx, req, master)
		return
	case *proto.RequestIdentification:
		n.identifyBackupLocked(req, m)
		return
	default:
		n.mu.Unlock()
		n.replyAbort(req, &proto.Error{Code: proto.PROTOCOL_ERROR,
			Message: fmt.Sprintf("unexpected packet %s", proto.MsgName(req.Msg.NEOMsgCode()))})
		return
	}
	n.mu.Unlock()
	if err := req.Reply(answer); err != nil {
		n.log.Debug("reply to neoctl", "err", err)
	}
}

// replyAbort answers an error then aborts the link, as neoppod does after
// a protocol error or a NOT_READY condition.
func (n *Node) replyAbort(req *neonet.Request, e *proto.Error) {
	if err := req.Reply(e); err != nil {
		n.log.Debug("reply to neoctl", "err", err)
	}
	req.Link.Abort()
}

// testRelayHook, if set by a test, runs before a forwarded answer is
// relayed, on the relay's goroutine: a test blocks in it to order the
// relay after other events (a relay goroutine scheduled late).
var testRelayHook func()

// forward sends neoctl's request to the master and, on a goroutine,
// relays the answer to neoctl with neoctl's id. A PROTOCOL_ERROR answer
// aborts the neoctl link after relaying it; so does the loss of the master,
// reported as PROTOCOL_ERROR "connection to master lost".
// The caller has counted the relay in n.relays; forward ends it.
func (n *Node) forward(ctx context.Context, req *neonet.Request, master *neonet.Link) {
	call, err := master.Start(req.Msg, nil)
	if err != nil {
		n.replyAbort(req, &proto.Error{Code: proto.PROTOCOL_ERROR, Message: "connection to master lost"})
		n.relays.Done()
		return
	}
	go func() {
		defer n.relays.Done()
		err := call.Wait(ctx)
		if testRelayHook != nil {
			testRelayHook()
		}
		var perr *proto.Error
		switch {
		case err == nil:
			if err := req.Reply(call.Answer()); err != nil {
				n.log.Debug("relay to neoctl", "err", err)
			}
		case errors.As(err, &perr):
			if perr.Code == proto.PROTOCOL_ERROR {
				n.replyAbort(req, perr)
			} else if err := req.Reply(perr); err != nil {
				n.log.Debug("relay to neoctl", "err", err)
			}
		case ctx.Err() != nil:
			// Shutting down: neoctl's link is being closed.
		default:
			n.log.Debug("forwarded request failed", "msg", fmt.Sprintf("%T", req.Msg), "err", err)
			n.replyAbort(req, &proto.Error{Code: proto.PROTOCOL_ERROR, Message: "connection to master lost"})
		}
	}()
}

// answerMonitor answers AskMonitorInformation: the summary of this
// cluster and the monitored backups, once the tids it shows were asked
// (askMasterTids, askBackupTids); a master that does not answer is
// dropped and neoctl told NOT_READY.
func (n *Node) answerMonitor(ctx context.Context, req *neonet.Request, master *neonet.Link, mon Monitor) {
	mon, err := n.askMasterTids(ctx, master, mon)
	if err != nil {
		if ctx.Err() == nil {
			n.replyAbort(req, &proto.Error{Code: proto.NOT_READY, Message: notConnected})
		}
		return
	}
	qctx, cancel := context.WithTimeout(ctx, monitorTimeout)
	n.askBackupTids(qctx)
	cancel()
	n.mu.Lock()
	a := n.monitorAnswerLocked(mon, n.mu.mailer.failure())
	n.mu.Unlock()
	a.Summary += n.storageReports(ctx)
	if err := req.Reply(a); err != nil {
		n.log.Debug("reply to neoctl", "err", err)
	}
}

// askMasterTids returns mon, this cluster's health, with the tids a
// summary shows asked to the master while the cluster is operational:
// the last tid and, in backup mode, the backup tid. They are kept in the
// view. A master that does not answer within monitorTimeout is dropped.
func (n *Node) askMasterTids(ctx context.Context, master *neonet.Link, mon Monitor) (Monitor, error) {
	if !mon.Operational() {
		return mon, nil
	}
	qctx, cancel := context.WithTimeout(ctx, monitorTimeout)
	defer cancel()
	var err error
	if s, _ := mon.ClusterState.Get(); s == proto.BACKINGUP {
		var rec proto.AnswerRecovery
		if err = master.Ask(qctx, &proto.AskRecovery{}, &rec); err == nil && rec.BackupTid != proto.InvalidTid {
			mon.BackupTid = proto.Some(rec.BackupTid)
		}
	}
	var last proto.AnswerLastTransaction
	if err == nil {
		if err = master.Ask(qctx, &proto.AskLastTransaction{}, &last); err == nil {
			mon.LastTid = proto.Some(last.Tid)
		}
	}
	switch {
	case err == nil:
		n.mu.Lock()
		if n.mu.master == master && n.mu.v.clusterState == mon.ClusterState {
			n.mu.v.lastTid, n.mu.v.backupTid = mon.LastTid, mon.BackupTid
		}
		n.mu.Unlock()
	case ctx.Err() == nil && qctx.Err() != nil:
		n.log.Error("the master did not answer monitoring questions: dropping it", "timeout", monitorTimeout)
		master.Close()
	}
	return mon, err
}

// monitorAnswerLocked is the answer to AskMonitorInformation for mon, this
// cluster's health, and the monitored backups (whose Lagging it updates),
// with extra appended (see monitorAnswer). n.mu is held.
func (n *Node) monitorAnswerLocked(mon Monitor, extra string) *proto.AnswerMonitorInformation {
	return monitorAnswer(mon, n.backupMonsLocked(), n.cfg.Monitor.MaxLag, extra)
}

// backupMonsLocked returns what is known of the monitored backups. n.mu
// is held.
func (n *Node) backupMonsLocked() []*backupMon {
	backups := make([]*backupMon, len(n.mu.backups))
	for i, b := range n.mu.backups {
		backups[i] = &b.mon
	}
	return backups
}
