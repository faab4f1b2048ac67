package cliopt

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/neogo/neo/internal/nodehttp"
)

// testNode is a node whose Run returns err.
type testNode struct{ err error }

func (n testNode) Run(context.Context) error { return n.err }

var errTestStopped = errors.New("test node stopped")

func testDaemon(newErr, runErr error) *Daemon[string] {
	return &Daemon[string]{
		Options: &Parser{Prog: "neotest", Description: "NEO test node", Options: ServerOptions("test", "", "127.0.0.1:1")},
		Role:    "test",
		Config: func(v map[string]string) (string, string, error) {
			if v["bind"] == "bad" {
				return "", "", errors.New("--bind: bad address")
			}
			return v["cluster"], v["logfile"], nil
		},
		New: func(cfg string, log *NodeLog, _ *nodehttp.Handler) (Node, error) {
			if newErr != nil {
				return nil, newErr
			}
			return testNode{runErr}, nil
		},
		Stopped: func(err error) bool { return errors.Is(err, errTestStopped) },
	}
}

func TestDaemonRun(t *testing.T) {
	for _, tc := range []struct {
		name           string
		args           []string
		newErr, runErr error
		status         int
		stderr         []string // substrings, in this order
	}{
		{name: "help", args: []string{"-h"}, status: 0},
		{name: "bad command line", args: nil, status: 2, stderr: []string{"usage: neotest", "neotest: error: the following arguments are required: -c/--cluster"}},
		{name: "bad config", args: []string{"-c", "x", "-b", "bad"}, status: 1, stderr: []string{"neotest: --bind: bad address"}},
		{name: "bad log file", args: []string{"-c", "x", "-l", "/nonexistent/dir/log"}, status: 1, stderr: []string{"neotest: open /nonexistent/dir/log"}},
		{name: "not started", args: []string{"-c", "x"}, newErr: errors.New("no way"), status: 1,
			stderr: []string{`msg="test not started" node=test cluster=x err="no way"`, "neotest: no way"}},
		{name: "run error", args: []string{"-c", "x"}, runErr: errors.New("boom"), status: 1,
			stderr: []string{`msg="test stopped" node=test cluster=x err=boom`, "neotest: boom"}},
		{name: "bad --http", args: []string{"-c", "x", "--http", "nowhere"}, status: 1,
			stderr: []string{`msg="test not started"`, "neotest: --http nowhere: listen tcp: address nowhere: missing port in address"}},
		{name: "--http", args: []string{"-c", "x", "--http", "127.0.0.1:0", "--http-pprof"}, status: 0,
			stderr: []string{`msg="serving HTTP" node=test cluster=x addr=127.0.0.1:`}},
		{name: "--http with TLS half given", args: []string{"-c", "x", "--http", "127.0.0.1:0", "--ca", "ca.pem"}, status: 1,
			stderr: []string{"neotest: To enable encryption, 3 files must be provided"}},
		{name: "normal end", args: []string{"-c", "x"}, status: 0},
		{name: "canceled", args: []string{"-c", "x"}, runErr: context.Canceled, status: 0},
		{name: "stopped", args: []string{"-c", "x"}, runErr: errTestStopped, status: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			status := testDaemon(tc.newErr, tc.runErr).Run(t.Context(), tc.args, &out, &errb)
			if status != tc.status {
				t.Errorf("status = %d, want %d; stderr:\n%s", status, tc.status, errb.String())
			}
			rest := errb.String()
			for _, s := range tc.stderr {
				i := strings.Index(rest, s)
				if i < 0 {
					t.Fatalf("stderr lacks %q (in order):\n%s", s, errb.String())
				}
				rest = rest[i+len(s):]
			}
			if tc.stderr == nil && errb.Len() > 0 {
				t.Errorf("stderr = %q, want nothing", errb.String())
			}
		})
	}
}

func TestServerOptions(t *testing.T) {
	var out bytes.Buffer
	p := &Parser{Prog: "neotest", Description: "NEO test node", Options: ServerOptions("test", "", "127.0.0.1:1")}
	p.Help(&out)
	for _, s := range []string{"--masters MASTERS space-separated list of master node addresses\n", "(default: 127.0.0.1:1)", "(default: test)"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("help lacks %q:\n%s", s, out.String())
		}
	}
	if o := ServerOptions("test", "127.0.0.1:2", "x")[7]; o.Long != "masters" || !o.HasDefault || o.Default != "127.0.0.1:2" {
		t.Errorf("masters option = %+v, want default 127.0.0.1:2", o)
	}
}

func TestLoadTLS(t *testing.T) {
	if c, err := LoadTLS(map[string]string{}); c != nil || err != nil {
		t.Errorf("no TLS options: %v, %v; want nil, nil", c, err)
	}
	if _, err := LoadTLS(map[string]string{"ca": "ca.pem"}); err == nil || !strings.Contains(err.Error(), "3 files must be provided") {
		t.Errorf("only --ca: err = %v, want the 3 files error", err)
	}
	if _, err := LoadTLS(map[string]string{"ca": "/nonexistent/ca", "cert": "c", "key": "k"}); err == nil {
		t.Error("missing files: no error")
	}
}

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		status int
		stdout string
		stderr string
	}{
		{args: []string{"-n", "3"}, status: -1},
		{args: []string{"-h"}, status: 0, stdout: "usage: neotest\n"},
		{args: []string{"--bogus"}, status: 2, stderr: "neotest: flag provided but not defined: -bogus (see neotest -h)\n"},
		{args: []string{"-n", "x"}, status: 2, stderr: `neotest: invalid value "x" for flag -n: parse error (see neotest -h)` + "\n"},
		{args: []string{"extra"}, status: 2, stderr: `neotest: unexpected argument "extra" (see neotest -h)` + "\n"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			fs := flag.NewFlagSet("neotest", flag.ContinueOnError)
			fs.Int("n", 1, "a number")
			var out, errb bytes.Buffer
			status := -1
			if err := ParseFlags(fs, tc.args, "usage: neotest\n", &out); err != nil {
				status = UsageStatus("neotest", err, &errb)
			}
			if status != tc.status || out.String() != tc.stdout || errb.String() != tc.stderr {
				t.Errorf("status %d, stdout %q, stderr %q; want %d, %q, %q", status, out.String(), errb.String(), tc.status, tc.stdout, tc.stderr)
			}
		})
	}
	var errb bytes.Buffer
	if st := UsageStatus("neotest", errors.New("other"), &errb); st != 2 || errb.String() != "neotest: other\n" {
		t.Errorf("other error: status %d, stderr %q", st, errb.String())
	}
}

// TestDaemonHTTPFromConfigFile: --http may come from neo.conf, as every
// option (http_pprof too: a boolean key).
func TestDaemonHTTPFromConfigFile(t *testing.T) {
	f := writeConf(t, "[test]\ncluster = x\nhttp = 127.0.0.1:0\nhttp_pprof = yes\n")
	var out, errb bytes.Buffer
	if status := testDaemon(nil, nil).Run(t.Context(), []string{"-f", f}, &out, &errb); status != 0 {
		t.Fatalf("status %d; stderr:\n%s", status, errb.String())
	}
	if !strings.Contains(errb.String(), `msg="serving HTTP" node=test cluster=x addr=127.0.0.1:`) {
		t.Errorf("no HTTP served; stderr:\n%s", errb.String())
	}
}
