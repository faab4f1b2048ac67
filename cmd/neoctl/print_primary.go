package main

import (
	"context"

	"github.com/neogo/neo/ctl"
)

var cmdPrintPrimary = &command{
	name: "primary",
	help: `Print the id of the primary master.`,
	run: func(ctx context.Context, e *env, args []string) error {
		if err := argCount("print primary", args, 0, 0); err != nil {
			return err
		}
		return e.printAnswer(ctx, func(c *ctl.Client) (string, error) { return c.PrintPrimary(ctx) })
	},
}
