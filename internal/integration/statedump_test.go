//go:build integration

package integration

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/neogo/neo/client"
	"github.com/neogo/neo/internal/nodelog"
	"github.com/neogo/neo/proto"
)

// The state dump (SIGRTMIN+2, cluster.md §10.2) of our master and
// storage, read from their log files with our neolog: each node's links
// (peer, state, requests in flight) and the transactions in progress.
// Two transactions store the same object: the first voted, the second's
// store waits for its lock on the storage.
func TestStateDump(t *testing.T) {
	c := newSLCluster(t, "go", 1, 0, 1)
	ctx, cancel := context.WithTimeout(t.Context(), 2*slWait)
	defer cancel()
	open := func() *client.Client {
		return openClient(t, ctx, client.Config{Masters: c.masters, Cluster: c.name, Logger: clientLogger(t, c.dir)})
	}
	cl1, cl2 := open(), open()
	oid, err := cl1.NewOID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t1, err := cl1.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer t1.Abort(context.Background())
	if err := t1.Store(ctx, oid, proto.ZeroTid, []byte("first")); err != nil {
		t.Fatal(err)
	}
	if err := t1.Vote(ctx); err != nil {
		t.Fatal(err)
	}
	t2, err := cl2.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer t2.Abort(context.Background())
	if err := t2.Store(ctx, oid, proto.ZeroTid, []byte("second")); err != nil {
		t.Fatal(err)
	}

	// Each expected line: its fragments in order (the master's records
	// have the attributes node and cluster first).
	txn := func(t interface{ TTID() proto.Tid }, cl *client.Client, state string) []string {
		return []string{" transaction ", fmt.Sprintf("ttid=%s tid=0000000000000000 client=%s state=%s age=", t.TTID(), cl.NID(), state)}
	}
	want := map[string][][]string{
		"master": {
			txn(t1, cl1, "begun"),
			txn(t2, cl2, "begun"),
			{" link ", "peer=S1 type=STORAGE local=", "state=open"},
			{" link ", fmt.Sprintf("peer=%s type=CLIENT local=", cl1.NID())},
		},
		storageName(0): {
			append(txn(t1, cl1, "voted"), "objects=1 locks=1"),
			append(txn(t2, cl2, "storing"), "objects=0 locks=0"),
			{" link ", "peer=M1 type=MASTER local=", "state=open"},
			// The second store, not answered: waiting for the lock.
			{" link ", fmt.Sprintf("peer=%s type=CLIENT local=", cl2.NID()), `pending="" serving=AskStoreObject#`},
		},
	}
	var out map[string]string
	for deadline := time.Now().Add(slWait); ; time.Sleep(100 * time.Millisecond) {
		// Signal, then flush the log buffers (neoctl flush_log): the
		// records are INFO, kept in RAM until then.
		for node := range want {
			if err := c.procs[node].cmd.Process.Signal(nodelog.SigDump); err != nil {
				t.Fatalf("signal %s: %v", node, err)
			}
		}
		time.Sleep(50 * time.Millisecond)
		c.neoctl("flush_log")
		out = map[string]string{}
		missing := ""
		for node, lines := range want {
			r := run(t, nil, filepath.Join(c.bin, "neolog"), filepath.Join(c.dir, node+".log"))
			if r.code != 0 {
				t.Fatalf("neolog %s: %v", node, r)
			}
			out[node] = r.stdout
			for _, l := range lines {
				if !hasLine(r.stdout, l) {
					missing += fmt.Sprintf("\n%s: %q", node, l)
				}
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the state dumps lack:%s\nmaster's dump:\n%s\nstorage's dump:\n%s", missing,
				dumpLines(out["master"]), dumpLines(out[storageName(0)]))
		}
	}
}

// dumpLines returns the lines of a neolog output that a state dump wrote.
func dumpLines(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		for _, w := range []string{" state ", " links ", " link ", " transactions ", " transaction "} {
			if strings.Contains(l, w) {
				b.WriteString(l + "\n")
				break
			}
		}
	}
	return b.String()
}

// hasLine reports whether a line of s has the fragments, in order.
func hasLine(s string, fragments []string) bool {
	for _, l := range strings.Split(s, "\n") {
		rest, ok := l, true
		for _, f := range fragments {
			var found bool
			if _, rest, found = strings.Cut(rest, f); !found {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}
