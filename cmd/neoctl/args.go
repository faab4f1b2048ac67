package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/neogo/neo/proto"
)

// Argument parsing shared by the commands. Numbers follow Python's int()
// (surrounding spaces, sign and '_' between digits allowed), which
// neoppod's neoctl uses.

// argCount checks that cmd got between min and max arguments.
func argCount(cmd string, args []string, min, max int) error {
	switch {
	case len(args) < min:
		return fmt.Errorf("%s: missing argument (see neoctl without arguments)", cmd)
	case len(args) > max:
		return fmt.Errorf("%s: unexpected argument %q", cmd, args[max])
	}
	return nil
}

// parseInt parses a decimal integer as Python's int(s) does.
func parseInt(s string) (int64, error) {
	t := strings.TrimSpace(s)
	digits := strings.TrimLeft(t, "+-")
	if len(t)-len(digits) > 1 || strings.HasPrefix(digits, "_") || strings.HasSuffix(digits, "_") ||
		strings.Contains(digits, "__") {
		return 0, fmt.Errorf("invalid integer %q", s)
	}
	v, err := strconv.ParseInt(t[:len(t)-len(digits)]+strings.ReplaceAll(digits, "_", ""), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid integer %q", s)
	}
	return v, nil
}

// parseUint32 parses a non-negative integer such as a partition offset.
func parseUint32(what, s string) (uint32, error) {
	v, err := parseInt(s)
	if err != nil || v < 0 || v > 1<<32-1 {
		return 0, fmt.Errorf("invalid %s %q", what, s)
	}
	return uint32(v), nil
}

// parseNID parses a node id as neoctl prints it: "S1", "M2"...
func parseNID(s string) (proto.NodeID, error) {
	nid, err := proto.ParseNodeID(s)
	if err != nil {
		return 0, fmt.Errorf("invalid node %q (want a node id like S1)", s)
	}
	return nid, nil
}

func parseNIDs(args []string) ([]proto.NodeID, error) {
	nids := make([]proto.NodeID, 0, len(args))
	for _, a := range args {
		nid, err := parseNID(a)
		if err != nil {
			return nil, err
		}
		nids = append(nids, nid)
	}
	return nids, nil
}

// parseTid parses a TID argument: tid:<integer> or a float UNIX time.
func parseTid(s string) (proto.Tid, error) {
	tid, err := proto.ParseTid(s)
	if err != nil {
		return 0, fmt.Errorf("invalid TID %q: %w", s, err)
	}
	return tid, nil
}

// storageList parses "all" (every storage the admin knows) or a list of
// storage ids.
func storageList(ctx context.Context, e *env, args []string) ([]proto.NodeID, error) {
	if len(args) == 1 && args[0] == "all" {
		c, err := e.admin(ctx)
		if err != nil {
			return nil, err
		}
		return c.StorageIDs(ctx)
	}
	return parseNIDs(args)
}

// enumByName returns the value of names whose name is s in any case.
func enumByName[T ~uint8](what, s string, names []T) (T, error) {
	for _, v := range names {
		if strings.EqualFold(fmt.Sprint(v), s) {
			return v, nil
		}
	}
	return 0, fmt.Errorf("invalid %s %q", what, s)
}
