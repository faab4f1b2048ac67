package ctl

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/neogo/neo/proto"
)

// The operations below return exactly the text neoctl prints for them,
// without the final newline.

// PrintIDs returns "print ids": the last oid (or, for a backup cluster,
// the backup tid), the last tid and the partition table id.
//
//	last_oid = 0x0
//	last_tid = 0x3f0c2d3a9d5f1111 (2026-11-25 12:17:04.178144)
//	last_ptid = 1
func (c *Client) PrintIDs(ctx context.Context) (string, error) {
	rec, err := c.Recovery(ctx)
	if err != nil {
		return "", err
	}
	var first string
	var last proto.Tid
	if rec.BackupTid != proto.InvalidTid {
		if last, err = c.LastTransaction(ctx); err != nil {
			return "", err
		}
		first = "backup_tid = " + FormatTid(rec.BackupTid)
	} else {
		ids, err := c.LastIDs(ctx)
		if err != nil {
			return "", err
		}
		if ids.LastOid == proto.InvalidOid || ids.LastTid == proto.InvalidTid {
			return "", errors.New("print ids: the master reports no last oid or tid")
		}
		first = fmt.Sprintf("last_oid = 0x%x", uint64(ids.LastOid))
		last = ids.LastTid
	}
	return first + "\nlast_tid = " + FormatTid(last) + "\nlast_ptid = " + FormatPTid(rec.PTid), nil
}

// PrintPartitionTable returns "print pt [min [max [node]]]": the header
// "# ptid: N, replicas: R", then the matrix when min and max are both 0,
// else rows min to max-1 (max 0: to the end) one per line.
func (c *Client) PrintPartitionTable(ctx context.Context, min, max uint32, nid proto.NodeID) (string, error) {
	pl, err := c.PartitionList(ctx, min, max, nid)
	if err != nil {
		return "", err
	}
	head := "# ptid: " + FormatPTid(pl.PTid) + ", replicas: " + strconv.FormatUint(uint64(pl.NumReplicas), 10) + "\n"
	if min != 0 || max != 0 {
		return head + FormatRows(min, pl.RowList), nil
	}
	body, err := c.formatTable(ctx, pl.RowList)
	if err != nil {
		return "", err
	}
	return head + body, nil
}

// formatTable formats rows as a matrix, asking the admin for the storages.
func (c *Client) formatTable(ctx context.Context, rows [][]proto.CellInfo) (string, error) {
	storages, err := c.NodeList(ctx, proto.Some(proto.STORAGE))
	if err != nil {
		return "", err
	}
	return FormatPartitionTable(rows, storages)
}

// PrintNodes returns "print node [type]".
func (c *Client) PrintNodes(ctx context.Context, typ proto.Opt[proto.NodeType]) (string, error) {
	nodes, err := c.NodeList(ctx, typ)
	if err != nil {
		return "", err
	}
	return FormatNodeList(nodes), nil
}

// PrintClusterState returns "print cluster": the state name, or "None"
// if the admin does not know it yet.
func (c *Client) PrintClusterState(ctx context.Context) (string, error) {
	st, err := c.ClusterState(ctx)
	if err != nil {
		return "", err
	}
	if v, ok := st.Get(); ok {
		return v.String(), nil
	}
	return "None", nil
}

// PrintPrimary returns "print primary": the primary master's id.
func (c *Client) PrintPrimary(ctx context.Context) (string, error) {
	nid, err := c.Primary(ctx)
	if err != nil {
		return "", err
	}
	return FormatNID(nid), nil
}

// PrintSummary returns "print summary"; see [FormatSummary].
func (c *Client) PrintSummary(ctx context.Context) (string, error) {
	m, err := c.MonitorInformation(ctx)
	if err != nil {
		return "", err
	}
	return FormatSummary(m), nil
}

// Tweak runs "tweak [-n] [node...]": the matrix of the new partition table
// if it changed, else "No change done.".
func (c *Client) Tweak(ctx context.Context, dryRun bool, nids []proto.NodeID) (string, error) {
	a, err := c.TweakPartitionTable(ctx, dryRun, nids)
	if err != nil {
		return "", err
	}
	if !a.Changed {
		return "No change done.", nil
	}
	return c.formatTable(ctx, a.RowList)
}

// StorageIDs returns the ids of all the storages the admin knows, for the
// "all" argument of add and prune_orphan.
func (c *Client) StorageIDs(ctx context.Context) ([]proto.NodeID, error) {
	nodes, err := c.NodeList(ctx, proto.Some(proto.STORAGE))
	if err != nil {
		return nil, err
	}
	nids := make([]proto.NodeID, 0, len(nodes))
	for _, n := range nodes {
		nids = append(nids, n.NID)
	}
	return nids, nil
}

// NumPartitions returns the number of partitions, for "check :".
func (c *Client) NumPartitions(ctx context.Context) (uint32, error) {
	pl, err := c.PartitionList(ctx, 0, 0, 0)
	if err != nil {
		return 0, err
	}
	return uint32(len(pl.RowList)), nil
}
