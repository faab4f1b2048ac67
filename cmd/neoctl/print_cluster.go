package main

import (
	"context"

	"github.com/neogo/neo/ctl"
)

var cmdPrintCluster = &command{
	name: "cluster",
	help: `Print the state of the cluster.`,
	run: func(ctx context.Context, e *env, args []string) error {
		if err := argCount("print cluster", args, 0, 0); err != nil {
			return err
		}
		return e.printAnswer(ctx, func(c *ctl.Client) (string, error) { return c.PrintClusterState(ctx) })
	},
}
