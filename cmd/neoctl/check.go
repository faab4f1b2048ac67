package main

import (
	"context"
	"errors"
	"strings"

	"github.com/neogo/neo/proto"
)

var cmdCheck = &command{
	name: "check",
	help: `Compare the replicas of partitions to find corrupted metadata
(experimental). A mismatch is only logged by the primary master; note that
a pack running at the same time causes false reports.
Arguments: [partition]:[reference] ... [min_tid [max_tid]]
  partition: partition to check; empty (':') for all of them
  reference: id of a storage whose copy is known good; if empty, a backup
    cluster compares with its upstream cluster
  min_tid, max_tid: range of transactions to check (default: all)`,
	run: func(ctx context.Context, e *env, args []string) error {
		var parts []proto.CheckSource
		index := map[uint32]int{} // partition -> position in parts
		set := func(p uint32, src proto.NodeID) {
			if i, ok := index[p]; ok {
				parts[i].Source = src
				return
			}
			index[p] = len(parts)
			parts = append(parts, proto.CheckSource{Partition: p, Source: src})
		}
		min, max := proto.ZeroTid, proto.InvalidTid
		for i, a := range args {
			partition, ref, ok := strings.Cut(a, ":")
			// neoppod takes "tid:N" for a partition and fails; it is a tid.
			if !ok || strings.Contains(ref, ":") || strings.EqualFold(partition, "tid") {
				// The first argument that is no partition starts the tid range.
				var err error
				if min, err = parseTid(a); err != nil {
					return err
				}
				if i+1 < len(args) {
					if max, err = parseTid(args[i+1]); err != nil {
						return err
					}
				}
				if i+2 < len(args) {
					return argCount("check", args, 0, i+2)
				}
				break
			}
			var src proto.NodeID
			if ref != "" {
				var err error
				if src, err = parseNID(ref); err != nil {
					return err
				}
			}
			if partition != "" {
				p, err := parseUint32("partition", partition)
				if err != nil {
					return err
				}
				set(p, src)
				continue
			}
			if len(parts) > 0 {
				return errors.New("check: ':' (all partitions) must come before single partitions")
			}
			c, err := e.admin(ctx)
			if err != nil {
				return err
			}
			np, err := c.NumPartitions(ctx)
			if err != nil {
				return err
			}
			for p := range np {
				set(p, src)
			}
		}
		c, err := e.admin(ctx)
		if err != nil {
			return err
		}
		_, err = c.CheckReplicas(ctx, parts, min, max) // neoppod prints nothing
		return err
	},
}
