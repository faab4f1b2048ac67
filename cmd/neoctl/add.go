package main

import "context"

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
		c, err := e.admin(ctx)
		if err != nil {
			return err
		}
		msg, err := c.AddPendingNodes(ctx, nids)
		if err != nil {
			return err
		}
		e.println(msg)
		return nil
	},
}
