package main

import (
	"context"

	"github.com/neogo/neo/ctl"
	"github.com/neogo/neo/proto"
)

var cmdPrintNode = &command{
	name: "node",
	help: `Print the nodes known to the admin: id, type, address, state and the
time the node identified to the primary master.
Arguments: [type]
  type: only nodes of this type (master, storage, client or admin)`,
	run: func(ctx context.Context, e *env, args []string) error {
		if err := argCount("print node", args, 0, 1); err != nil {
			return err
		}
		var typ proto.Opt[proto.NodeType]
		if len(args) == 1 {
			t, err := enumByName("node type", args[0],
				[]proto.NodeType{proto.MASTER, proto.STORAGE, proto.CLIENT, proto.ADMIN})
			if err != nil {
				return err
			}
			typ = proto.Some(t)
		}
		return e.printAnswer(ctx, func(c *ctl.Client) (string, error) { return c.PrintNodes(ctx, typ) })
	},
}
