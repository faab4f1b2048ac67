package core

import (
	"cmp"
	"maps"
	"slices"
	"time"

	"github.com/neogo/neo/proto"
)

// Stats is what the master's metrics and health checks read of the core.
// It is comparable, so that the driver republishes it only when it
// changed.
type Stats struct {
	// Primary: the master plays the primary role (else it is in an
	// election or secondary).
	Primary bool
	// Nodes counts the nodes of the node table by type and state.
	Nodes [4][4]int
	// Cells counts the cells of the partition table by state;
	// Partitions is its number of partitions (0 before it has one).
	Cells      [5]int
	Partitions int
	// Transactions counts the transactions begun and not finished.
	Transactions int
	// LastTid is the last committed tid, LastOid the last oid given.
	LastTid proto.Tid
	LastOid proto.Oid
	// Backup: the cluster is in backup mode and tracks its upstream's
	// commits; UpstreamTid is the last one it knows of, BackupTid the
	// tid up to which every partition has a cell that has it all.
	Backup                 bool
	UpstreamTid, BackupTid proto.Tid
}

// Stats returns the core's counters. It walks the node and partition
// tables: the driver calls it about once a second, not at each step.
func (c *Machine) Stats() Stats {
	s := Stats{
		Primary:      c.sec == nil,
		Transactions: len(c.tm.txns),
		LastTid:      c.lastTransaction,
		LastOid:      c.tm.lastOid,
	}
	if c.inBackup() && c.bk.tracking && c.backupTid != proto.InvalidTid {
		s.Backup, s.UpstreamTid, s.BackupTid = true, c.bk.last, c.backupTid
	}
	for _, n := range c.nodes.List(nil) {
		if int(n.Type) < len(s.Nodes) && int(n.State) < len(s.Nodes[0]) {
			s.Nodes[n.Type][n.State]++
		}
	}
	if c.pt != nil {
		s.Partitions = int(c.pt.NumPartitions())
		for p := range c.pt.NumPartitions() {
			for _, cell := range c.pt.Row(p) {
				if int(cell.State) < len(s.Cells) {
					s.Cells[cell.State]++
				}
			}
		}
	}
	return s
}

// TxnInfo is a transaction in progress, for the master's state dump
// (SIGRTMIN+2).
type TxnInfo struct {
	TTid proto.Tid
	Tid  proto.Tid // final tid once AskFinishTransaction was accepted, 0 before
	// Client is 0 once the transaction is orphaned (client lost after
	// its finish).
	Client proto.NodeID
	// State: "begun" (stores and votes), "locking" (finishing, waiting
	// for Locking's AnswerInformationLocked), "locked" (waiting for the
	// transactions before it in the commit queue).
	State   string
	Born    time.Time
	Locking []proto.NodeID
}

// Transactions returns the transactions in progress, by ttid.
func (c *Machine) Transactions() []TxnInfo {
	out := make([]TxnInfo, 0, len(c.tm.txns))
	for _, t := range c.tm.txns {
		i := TxnInfo{TTid: t.ttid, Tid: t.tid, Client: t.client, State: "begun", Born: t.born}
		if t.tid != 0 {
			i.State = "locked"
			if len(t.locking) > 0 {
				i.State = "locking"
				i.Locking = slices.Sorted(maps.Keys(t.locking))
			}
		}
		out = append(out, i)
	}
	slices.SortFunc(out, func(a, b TxnInfo) int { return cmp.Compare(a.TTid, b.TTid) })
	return out
}
