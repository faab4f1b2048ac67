package main

import (
	"context"
	"fmt"

	"github.com/neogo/neo/ctl"
)

var cmdPruneOrphan = &command{
	name: "prune_orphan",
	help: `Delete object data that no object record refers to (may take long).
Arguments: dry_run node [node ...] | all
  dry_run: 1 to only count such data (in the storage logs), 0 to delete it
  node: id of a storage; all: every connected storage`,
	run: func(ctx context.Context, e *env, args []string) error {
		if err := argCount("prune_orphan", args, 1, len(args)); err != nil {
			return err
		}
		var dryRun bool
		switch args[0] {
		case "0":
		case "1":
			dryRun = true
		default:
			return fmt.Errorf("prune_orphan: dry_run must be 0 or 1, not %q", args[0])
		}
		nids, err := storageList(ctx, e, args[1:])
		if err != nil {
			return err
		}
		return e.printAnswer(ctx, func(c *ctl.Client) (string, error) { return c.Repair(ctx, nids, dryRun) })
	},
}
