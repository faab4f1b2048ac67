package main

import "context"

var cmdPrintIDs = &command{
	name: "ids",
	help: `Print the last OID, the last TID and the partition table id (for a
backup cluster, the backup TID instead of the last OID).`,
	run: func(ctx context.Context, e *env, args []string) error {
		if err := argCount("print ids", args, 0, 0); err != nil {
			return err
		}
		c, err := e.admin(ctx)
		if err != nil {
			return err
		}
		s, err := c.PrintIDs(ctx)
		if err != nil {
			return err
		}
		e.println(s)
		return nil
	},
}
