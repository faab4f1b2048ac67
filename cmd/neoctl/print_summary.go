package main

import (
	"context"

	"github.com/neogo/neo/ctl"
)

var cmdPrintSummary = &command{
	name: "summary",
	help: `Print the health of this cluster and of the backup clusters it
monitors. The first line is '# ' and a JSON object mapping "warning" and
"problem" to the clusters in that state: null for this cluster, a name for
a backup; lists that would be empty are left out. The summary follows.
With our admin, each storage of our implementation that imports a ZODB
(the Importer backend) adds its progress, which neoppod shows nowhere:
"; S1: importing 42.0%: 27000 transactions, 480.2 of 1143.3 MB, 9.1 MB/s,
1m13s left".`,
	run: func(ctx context.Context, e *env, args []string) error {
		if err := argCount("print summary", args, 0, 0); err != nil {
			return err
		}
		return e.printAnswer(ctx, func(c *ctl.Client) (string, error) { return c.PrintSummary(ctx) })
	},
}
