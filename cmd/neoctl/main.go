// Command neoctl controls a NEO cluster through one of its admin nodes
// (cluster.md §9.5): it prints the cluster state, nodes and partition
// table, starts and stops the cluster, adds, kills and drops storages,
// rebalances the partition table... Its output, error messages and exit
// statuses are those of neoppod's neoctl, so that scripts written for
// neoppod work unchanged. Run it without a command for the list.
//
// Exit status: 0 on success, 1 when the command failed (the reason is
// printed on stderr as one line), 2 for invalid options.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/neogo/neo/ctl"
	"github.com/neogo/neo/proto"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	m := &Main{Stdout: os.Stdout, Stderr: os.Stderr}
	err := m.Run(ctx, os.Args[1:])
	stop()
	os.Exit(exitStatus(err, os.Stderr))
}

// exitStatus reports err on stderr the way neoppod's neoctl does and
// returns the exit status.
func exitStatus(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var usage *usageError
	if errors.As(err, &usage) {
		return 2 // already reported with the usage
	}
	fmt.Fprintln(stderr, errorLine(err))
	return 1
}

// errorLine is the one line neoctl prints for err.
func errorLine(err error) string {
	var perr *proto.Error
	switch {
	case errors.As(err, &perr) && perr.Code == proto.DENIED:
		return perr.Message // neoppod prints a refusal as it is
	case errors.As(err, &perr) && perr.Code == proto.NOT_READY:
		return "ERROR: " + perr.Message
	case errors.Is(err, ctl.ErrNotConnected):
		return "ERROR: " + ctl.ErrNotConnected.Error()
	case errors.Is(err, ctl.ErrConnectionClosed):
		return "ERROR: " + ctl.ErrConnectionClosed.Error()
	}
	return err.Error()
}

// usageError is an invalid option; the message and usage are printed
// while parsing.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// invalidCommandError is a command line that names no command.
type invalidCommandError struct{ args []string }

func (e *invalidCommandError) Error() string {
	s := "invalid command:"
	for _, a := range e.args {
		s += " " + a
	}
	return s
}
