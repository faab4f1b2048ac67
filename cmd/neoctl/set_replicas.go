package main

import (
	"context"
	"errors"

	"github.com/neogo/neo/ctl"
)

var cmdSetReplicas = &command{
	name: "replicas",
	help: `Change how many extra copies of each partition the cluster keeps.
Arguments: n
  n: number of replicas, 0 for none`,
	run: func(ctx context.Context, e *env, args []string) error {
		if err := argCount("set replicas", args, 1, 1); err != nil {
			return err
		}
		n, err := parseInt(args[0])
		if err != nil {
			return err
		}
		if n < 0 || n > 1<<32-1 {
			return errors.New("invalid number of replicas") // neoppod's text
		}
		return e.printAnswer(ctx, func(c *ctl.Client) (string, error) { return c.SetNumReplicas(ctx, uint32(n)) })
	},
}
