package core

import "github.com/neogo/neo/proto"

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
