package main

import (
	"context"

	"github.com/neogo/neo/ctl"
	"github.com/neogo/neo/proto"
)

var cmdSetCluster = &command{
	name: "cluster",
	help: `Ask the master to switch the cluster to another state.
Arguments: state
  state: the new state, e.g. STOPPING (any case)`,
	run: func(ctx context.Context, e *env, args []string) error {
		if err := argCount("set cluster", args, 1, 1); err != nil {
			return err
		}
		st, err := enumByName("cluster state", args[0], []proto.ClusterState{
			proto.RECOVERING, proto.VERIFYING, proto.RUNNING, proto.STOPPING,
			proto.STARTING_BACKUP, proto.BACKINGUP, proto.STOPPING_BACKUP})
		if err != nil {
			return err
		}
		return e.printAnswer(ctx, func(c *ctl.Client) (string, error) { return c.SetClusterState(ctx, st) })
	},
}
