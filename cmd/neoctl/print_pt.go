package main

import (
	"context"

	"github.com/neogo/neo/ctl"
	"github.com/neogo/neo/proto"
)

var cmdPrintPT = &command{
	name: "pt",
	help: `Print the partition table: as a matrix (one line per storage, one
letter per partition) or, when min or max is given, one line per partition.
Arguments: [min [max [node]]]
  min: first partition to print (default 0)
  max: partition after the last one to print (0, the default: up to the end)
  node: accepted for compatibility; the admin ignores it`,
	run: func(ctx context.Context, e *env, args []string) error {
		if err := argCount("print pt", args, 0, 3); err != nil {
			return err
		}
		var min, max uint32
		var nid proto.NodeID
		var err error
		if len(args) > 0 {
			if min, err = parseUint32("min offset", args[0]); err != nil {
				return err
			}
		}
		if len(args) > 1 {
			if max, err = parseUint32("max offset", args[1]); err != nil {
				return err
			}
		}
		if len(args) > 2 {
			if nid, err = parseNID(args[2]); err != nil {
				return err
			}
		}
		return e.printAnswer(ctx, func(c *ctl.Client) (string, error) { return c.PrintPartitionTable(ctx, min, max, nid) })
	},
}
