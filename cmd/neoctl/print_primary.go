package main

import "context"

var cmdPrintPrimary = &command{
	name: "primary",
	help: `Print the id of the primary master.`,
	run: func(ctx context.Context, e *env, args []string) error {
		if err := argCount("print primary", args, 0, 0); err != nil {
			return err
		}
		c, err := e.admin(ctx)
		if err != nil {
			return err
		}
		s, err := c.PrintPrimary(ctx)
		if err != nil {
			return err
		}
		e.println(s)
		return nil
	},
}
