// Package admin is NEO's admin node (cluster.md §1.4): the intermediary
// between the operator's neoctl and the primary master.
//
// The admin identifies to the primary master as an ADMIN node, following
// NotPrimaryMaster redirections and looking for a master again, at most
// once per ReconnectDelay per address, whenever the one it follows goes
// away (internal/masterlink). It
// keeps a copy of the node table, the partition table and the cluster
// state from the master's NotifyNodeInformation, SendPartitionTable,
// NotifyPartitionChanges and NotifyClusterInformation.
//
// neoctl connects without identifying (protocol.md §5.4, §5.14):
//
//	neoctl ──AskNodeList/AskPartitionList/AskClusterState/AskPrimary──▶ admin   answered from the copy
//	neoctl ──AskMonitorInformation──▶ admin ──AskLastTransaction──▶ master      summary of the health
//	neoctl ──SetClusterState, TweakPartitionTable, ...──▶ admin ──same packet──▶ master
//	neoctl ◀──────────── master's answer, relayed with neoctl's message id ──────────┘
//
// Without a primary master every neoctl packet is answered NOT_READY "Not
// connected to a primary master." and the link aborted. When the master is
// lost after announcing STOPPING, the admin exits.
//
// The health of the cluster (state, cells per state, nodes down, last tid)
// is summarised for neoctl's "print summary" and, with e-mail recipients
// configured, sent by e-mail when it changes. The admin of a backup
// cluster reports that health to the upstream admin its master names
// (protocol.md §5.17, upstream.go); on the upstream side, the admins of
// the backups named in Config.Monitor.Backups identify on the neoctl
// listener and the summary shows each backup and its lag (backuplink.go,
// backupmon.go). The e-mails (mail.go) carry the same summary, backups
// included, when a cluster changes state, cells or nodes down or a backup
// starts or stops lagging (--monitor-maxlag), which is checked again
// every 10 minutes while this cluster and a backup are operational.
package admin
