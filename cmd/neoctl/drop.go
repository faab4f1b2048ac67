package main

import (
	"context"

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
	c, err := e.admin(ctx)
	if err != nil {
		return err
	}
	msg, err := c.SetNodeState(ctx, nid, state)
	if err != nil {
		return err
	}
	e.println(msg)
	return nil
}
