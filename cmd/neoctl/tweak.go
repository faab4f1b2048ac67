package main

import "context"

var cmdTweak = &command{
	name: "tweak",
	help: `Rebalance the partitions over the running storages and print the new
table. The listed storages (and the down ones) keep their cells but are not
counted as copies: list the storages you want to drop once the data has
been copied elsewhere.
Arguments: [-n] [node ...]
  -n: only show the table that would result`,
	run: func(ctx context.Context, e *env, args []string) error {
		dryRun := len(args) > 0 && args[0] == "-n"
		if dryRun {
			args = args[1:]
		}
		nids, err := parseNIDs(args)
		if err != nil {
			return err
		}
		c, err := e.admin(ctx)
		if err != nil {
			return err
		}
		s, err := c.Tweak(ctx, dryRun, nids)
		if err != nil {
			return err
		}
		e.println(s)
		return nil
	},
}
