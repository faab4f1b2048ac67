package cliopt

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/neogo/neo/internal/nodehttp"
	"github.com/neogo/neo/internal/nodelog"
)

// dyingNode is a node one of whose goroutines waits in
// waitingForever, until stop is closed, when its Run fails with err or
// panics.
type dyingNode struct {
	err   error
	panic bool
	stop  chan struct{}
}

func (n dyingNode) Run(context.Context) error {
	go waitingForever(n.stop)
	for !strings.Contains(nodelog.AllStacks(), "cliopt.waitingForever") {
		runtime.Gosched()
	}
	if n.panic {
		panic("node panics on purpose")
	}
	return n.err
}

func waitingForever(c chan struct{}) { <-c }

// preMortem returns the pre-mortem record of the log file at path.
func preMortem(t *testing.T, path string) string {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var msg string
	if err := db.QueryRow("SELECT msg FROM log WHERE msg LIKE 'Pre-mortem data:%'").Scan(&msg); err != nil {
		t.Fatalf("no pre-mortem record in %s: %v", path, err)
	}
	return msg
}

// TestPreMortemAllGoroutines: a node stopping on an error or a panic
// logs the stacks of all its goroutines, not only the one that failed.
func TestPreMortemAllGoroutines(t *testing.T) {
	for _, tc := range []struct {
		name string
		node dyingNode
		want string
	}{
		{"error", dyingNode{err: errors.New("disk on fire")}, "disk on fire"},
		{"panic", dyingNode{panic: true}, "node panics on purpose"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "n.log")
			tc.node.stop = make(chan struct{})
			defer close(tc.node.stop)
			d := testDaemon(nil, nil)
			d.New = func(string, *NodeLog, *nodehttp.Handler) (Node, error) { return tc.node, nil }
			var status int
			func() {
				defer func() {
					if r := recover(); r != nil && !tc.node.panic {
						t.Fatalf("panic %v", r)
					} else if r == nil && tc.node.panic {
						t.Error("the panic was not raised again")
					}
				}()
				status = d.Run(t.Context(), []string{"-c", "c", "-l", path}, io.Discard, io.Discard)
			}()
			if !tc.node.panic && status != 1 {
				t.Errorf("status %d", status)
			}
			msg := preMortem(t, path)
			for _, want := range []string{tc.want, "\ngoroutine ", "\ngithub.com/neogo/neo/internal/cliopt.waitingForever("} {
				if !strings.Contains(msg, want) {
					t.Errorf("pre-mortem data lacks %q:\n%s", want, msg)
				}
			}
		})
	}
}
