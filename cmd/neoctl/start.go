package main

import (
	"context"

	"github.com/neogo/neo/ctl"
	"github.com/neogo/neo/proto"
)

var cmdStart = &command{
	name: "start",
	help: `Let a cluster that is waiting in RECOVERING start with the storages
it has now (same as: set cluster VERIFYING).`,
	run: func(ctx context.Context, e *env, args []string) error {
		if err := argCount("start", args, 0, 0); err != nil {
			return err
		}
		return e.printAnswer(ctx, func(c *ctl.Client) (string, error) { return c.SetClusterState(ctx, proto.VERIFYING) })
	},
}
