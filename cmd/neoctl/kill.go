package main

import (
	"context"

	"github.com/neogo/neo/proto"
)

var cmdKill = &command{
	name: "kill",
	help: `Stop a storage or a secondary master that the cluster can do without.
Arguments: node`,
	run: func(ctx context.Context, e *env, args []string) error {
		return setNodeState(ctx, e, "kill", args, proto.DOWN)
	},
}
