package main

import (
	"context"

	"github.com/neogo/neo/ctl"
)

var cmdPrintIDs = &command{
	name: "ids",
	help: `Print the last OID, the last TID and the partition table id (for a
backup cluster, the backup TID instead of the last OID).`,
	run: func(ctx context.Context, e *env, args []string) error {
		if err := argCount("print ids", args, 0, 0); err != nil {
			return err
		}
		return e.printAnswer(ctx, func(c *ctl.Client) (string, error) { return c.PrintIDs(ctx) })
	},
}
