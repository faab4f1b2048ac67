package main

import "context"

var cmdPrintCluster = &command{
	name: "cluster",
	help: `Print the state of the cluster.`,
	run: func(ctx context.Context, e *env, args []string) error {
		if err := argCount("print cluster", args, 0, 0); err != nil {
			return err
		}
		c, err := e.admin(ctx)
		if err != nil {
			return err
		}
		s, err := c.PrintClusterState(ctx)
		if err != nil {
			return err
		}
		e.println(s)
		return nil
	},
}
