package main

import "context"

var cmdTruncate = &command{
	name: "truncate",
	help: `Cut the history of the database after a TID. The cluster must be
RUNNING with no transaction in progress; it then goes back to RECOVERING and
waits for every storage of the partition table ('start' would leave missing
storages untruncated).
Arguments: tid`,
	run: func(ctx context.Context, e *env, args []string) error {
		if err := argCount("truncate", args, 1, 1); err != nil {
			return err
		}
		tid, err := parseTid(args[0])
		if err != nil {
			return err
		}
		c, err := e.admin(ctx)
		if err != nil {
			return err
		}
		_, err = c.Truncate(ctx, tid) // neoppod prints nothing
		return err
	},
}
