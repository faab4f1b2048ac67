package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/neogo/neo/internal/nodelog"
	"github.com/neogo/neo/internal/peerpy"
)

// pyLogScript writes a log file with neoppod's own logger, as a neoppod
// node does: records of each level, a multi-line one, and packets (a
// node list, requests, answers, an Error, whose code neoppod's logger
// records as a msgpack ext).
const pyLogScript = `
import sys
from neo.lib import logging
from neo.lib.protocol import Packets, NodeTypes, NodeStates, ErrorCodes, ZERO_TID
logging.setup(sys.argv[1])
class Conn(object):
    def __init__(self, uuid, addr):
        self.uuid, self.addr = uuid, addr
    def getUUID(self):
        return self.uuid
    def getAddress(self):
        return self.addr
def packet(p, id, conn, out):
    p.setId(id)
    logging.packet(conn, p, out)
s1 = Conn(1, (b'127.0.0.1', 24700))
logging.node('neolog', -0x10 << 24 | 1)
logging.info('hello %s', 'world')
logging.debug('a debug record')
packet(Packets.NotifyNodeInformation(1765000000.25, [
    (NodeTypes.MASTER, (b'127.0.0.1', 24701), -0x10 << 24 | 1, NodeStates.RUNNING, None),
    (NodeTypes.STORAGE, (b'127.0.0.1', 24700), 1, NodeStates.PENDING, 1765000000.123456)]), 3, s1, True)
packet(Packets.AskLastIDs(), 4, s1, True)
packet(Packets.AnswerLastIDs(None, None, None), 4, s1, False)
packet(Packets.Error(ErrorCodes.NOT_READY, 'not ready'), 5, s1, False)
packet(Packets.AskObject(1, None, None), 5, Conn(None, (b'127.0.0.1', 24702)), False)
logging.warning('two\nlines')
logging.error('an error')
logging.flush()
`

// neoppodNeolog runs neoppod's neolog on files.
func neoppodNeolog(t *testing.T, args ...string) string {
	t.Helper()
	out, err := peerpy.Run(t, nil, nil, append([]string{"-c", "import sys; from neo.scripts.neolog import main; sys.argv[0] = 'neolog'; main()"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// ourNeolog runs ours on files.
func ourNeolog(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb strings.Builder
	if st := run(context.Background(), args, &out, &errb); st != 0 {
		t.Fatalf("neolog %s: status %d: %s", strings.Join(args, " "), st, errb.String())
	}
	return out.String()
}

// TestSameAsNeoppod: for a log written by neoppod's logger, our neolog
// prints what neoppod's prints, with its options; and it merges that log
// with one of ours (a mixed cluster) as neoppod's does.
func TestSameAsNeoppod(t *testing.T) {
	peerpy.Require(t)
	dir := t.TempDir()
	gopath := filepath.Join(dir, "go.log")
	gl, err := nodelog.Open(gopath, nodelog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	glog := slog.New(gl.Handler(nil))
	glog.Info("ours before")
	gl.Flush()

	pypath := filepath.Join(dir, "py.log")
	if _, err := peerpy.Run(t, []byte(pyLogScript), nil, "-", pypath); err != nil {
		t.Fatal(err)
	}
	glog.Info("ours after", "k", "v")
	if err := gl.Close(); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{}, {"-N"}, {"-C"}, {"-c"}, {"-n", "-"}, {"-d", "%s %j"}} {
		want := neoppodNeolog(t, append(args, pypath)...)
		if got := ourNeolog(t, append(args, pypath)...); got != want {
			t.Errorf("neolog %s: ours\n%s\nneoppod's\n%s", strings.Join(args, " "), got, want)
		}
	}
	want := neoppodNeolog(t, gopath, pypath)
	got := ourNeolog(t, gopath, pypath)
	if got != want {
		t.Errorf("merged: ours\n%s\nneoppod's\n%s", got, want)
	}
	lines := strings.Split(got, "\n")
	if !strings.Contains(lines[0], "ours before") || !strings.Contains(lines[len(lines)-2], "ours after k=v") || len(lines) < 10 {
		t.Errorf("not merged by date:\n%s", got)
	}
	if _, err := os.Stat(pypath); err != nil {
		t.Fatal(err)
	}
}
