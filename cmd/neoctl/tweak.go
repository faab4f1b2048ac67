package main

import (
	"context"

	"github.com/neogo/neo/ctl"
)

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
		return e.printAnswer(ctx, func(c *ctl.Client) (string, error) { return c.Tweak(ctx, dryRun, nids) })
	},
}
