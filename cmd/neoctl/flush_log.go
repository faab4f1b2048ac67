package main

import "context"

var cmdFlushLog = &command{
	name: "flush_log",
	help: `Make every node of the cluster write out its buffered log (for
backup clusters, only their primary master).`,
	run: func(ctx context.Context, e *env, args []string) error {
		if err := argCount("flush_log", args, 0, 0); err != nil {
			return err
		}
		c, err := e.admin(ctx)
		if err != nil {
			return err
		}
		return c.FlushLog(ctx)
	},
}
