package main

import (
	"context"

	"github.com/neogo/neo/ctl"
)

var cmdAdd = &command{
	name: "add",
	help: `Make pending storages take part in the cluster (they get partitions
at the next tweak).
Arguments: node [node ...] | all
  node: id of a pending storage; all: every storage`,
	run: func(ctx context.Context, e *env, args []string) error {
		nids, err := storageList(ctx, e, args)
		if err != nil {
			return err
		}
		return e.printAnswer(ctx, func(c *ctl.Client) (string, error) { return c.AddPendingNodes(ctx, nids) })
	},
}
