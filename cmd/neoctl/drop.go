package main

import (
	"context"

	"github.com/neogo/neo/ctl"
	"github.com/neogo/neo/proto"
)

var cmdDrop = &command{
	name: "drop",
	help: `Remove a stopped storage from the cluster for good.
Arguments: node`,
	run: func(ctx context.Context, e *env, args []string) error {
		return setNodeState(ctx, e, "drop", args, proto.UNKNOWN)
	},
}

// setNodeState runs drop and kill: one node id argument.
func setNodeState(ctx context.Context, e *env, cmd string, args []string, state proto.NodeState) error {
	if err := argCount(cmd, args, 1, 1); err != nil {
		return err
	}
	nid, err := parseNID(args[0])
	if err != nil {
		return err
	}
	return e.printAnswer(ctx, func(c *ctl.Client) (string, error) { return c.SetNodeState(ctx, nid, state) })
}
