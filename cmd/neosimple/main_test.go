package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/neogo/neo/ctl"
	"github.com/neogo/neo/internal/cliopt"
	"github.com/neogo/neo/internal/syncbuf"
	"github.com/neogo/neo/proto"
)

func TestParseArgs(t *testing.T) {
	tests := []struct {
		args    []string
		want    options // compared on the fields below
		wantErr string  // substring of the usage error
	}{
		{args: []string{"-d", "x"}, want: options{dir: "x", storages: 2, replicas: 1, partitions: 12, cluster: "neosimple"}},
		{args: []string{"--dir=x", "-n", "3", "-r", "2", "-p", "5", "--cluster", "c1", "--master-port", "2051", "--admin-port", "9999"},
			want: options{dir: "x", storages: 3, replicas: 2, partitions: 5, cluster: "c1", masterPort: 2051, adminPort: 9999}},
		{args: nil, wantErr: "-d DIR is required"},
		{args: []string{"-d", "x", "-n", "0"}, wantErr: "at least one storage"},
		{args: []string{"-d", "x", "-r", "-1"}, wantErr: "replicas cannot be negative"},
		{args: []string{"-d", "x", "-p", "0"}, wantErr: "at least one partition"},
		{args: []string{"-d", "x", "--cluster", "a b"}, wantErr: "one non-empty word"},
		{args: []string{"-d", "x", "--master-port", "70000"}, wantErr: "not a port"},
		{args: []string{"-d", "x", "--master-port", "5", "--admin-port", "5"}, wantErr: "must differ"},
		{args: []string{"-d", "x", "--bogus"}, wantErr: "-bogus"},
		{args: []string{"-d", "x", "extra"}, wantErr: `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			o, err := parseArgs(tt.args, io.Discard)
			if tt.wantErr != "" {
				var ue *cliopt.UsageError
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want a usage error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := options{dir: o.dir, storages: o.storages, replicas: o.replicas, partitions: o.partitions,
				cluster: o.cluster, masterPort: o.masterPort, adminPort: o.adminPort}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	var out bytes.Buffer
	if _, err := parseArgs([]string{"-h"}, &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v, want flag.ErrHelp", err)
	}
	for _, s := range []string{"-d, --dir DIR", "--master-port", "Ctrl-C", "neo.client.Storage"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("usage lacks %q:\n%s", s, out.String())
		}
	}
}

func TestBadDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if code := run([]string{"-d", filepath.Join(file, "sub")}, nil, io.Discard, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "cannot create directory") {
		t.Errorf("stderr = %q", stderr.String())
	}
}

// instance is one neosimple run in this process.
type instance struct {
	sig    chan os.Signal
	code   chan int
	stderr *syncbuf.Buffer
	env    map[string]string
}

// startInstance runs neosimple on dir and waits for DIR/cluster.env.
func startInstance(t *testing.T, dir string, args ...string) *instance {
	t.Helper()
	in := &instance{sig: make(chan os.Signal, 1), code: make(chan int, 1), stderr: &syncbuf.Buffer{}}
	go func() {
		in.code <- run(append([]string{"-d", dir, "--start-timeout", "30s"}, args...), in.sig, io.Discard, in.stderr)
	}()
	t.Cleanup(func() {
		select {
		case in.sig <- os.Interrupt:
		default:
		}
		select {
		case <-in.code:
		case <-time.After(40 * time.Second):
			t.Errorf("neosimple did not stop; stderr:\n%s", in.stderr)
		}
	})
	deadline := time.Now().Add(40 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(dir, envFile))
		if err == nil {
			in.env = map[string]string{}
			sc := bufio.NewScanner(bytes.NewReader(b))
			for sc.Scan() {
				k, v, _ := strings.Cut(sc.Text(), "=")
				in.env[k] = v
			}
			return in
		}
		select {
		case code := <-in.code:
			t.Fatalf("neosimple exited %d before RUNNING; stderr:\n%s", code, in.stderr)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after 40s; stderr:\n%s", envFile, in.stderr)
		}
	}
}

// stop sends SIGINT and returns the exit status.
func (in *instance) stop(t *testing.T) int {
	t.Helper()
	in.sig <- os.Interrupt
	select {
	case code := <-in.code:
		in.code <- code // for the cleanup
		return code
	case <-time.After(40 * time.Second):
		t.Fatalf("neosimple did not stop in 40s; stderr:\n%s", in.stderr)
		return -1
	}
}

// TestStartStopRestart runs a real cluster in process: RUNNING, clean
// stop on SIGINT, and a restart on the same data keeps the partition
// table (same ptid, every cell UP_TO_DATE).
func TestStartStopRestart(t *testing.T) {
	dir := t.TempDir()
	in := startInstance(t, dir, "-n", "2", "-r", "1", "-p", "4", "--cluster", "nstest")
	if in.env["NEO_CLUSTER"] != "nstest" || in.env["NEO_MASTERS"] == "" || in.env["NEO_ADMIN"] == "" {
		t.Fatalf("cluster.env = %v", in.env)
	}
	pt1 := printPT(t, in.env["NEO_ADMIN"])
	if got := strings.Count(pt1, "U"); got < 8 {
		t.Fatalf("want 4 partitions x 2 UP_TO_DATE cells, got:\n%s", pt1)
	}
	if code := in.stop(t); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, in.stderr)
	}
	if s := in.stderr.String(); !strings.Contains(s, "cluster stopped") || strings.Contains(s, "clean stop failed") {
		t.Fatalf("not a clean stop; stderr:\n%s", s)
	}
	if _, err := os.Stat(filepath.Join(dir, envFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s left after stop: %v", envFile, err)
	}

	in2 := startInstance(t, dir, "-n", "2", "--cluster", "nstest", "--http", "127.0.0.1:0")
	if pt2 := printPT(t, in2.env["NEO_ADMIN"]); pt2 != pt1 {
		t.Errorf("partition table changed across a clean restart:\nbefore:\n%s\nafter:\n%s", pt1, pt2)
	}
	checkHTTP(t, in2.env["NEO_HTTP"])
	if code := in2.stop(t); code != 0 {
		t.Fatalf("restart: exit %d; stderr:\n%s", code, in2.stderr)
	}
}

// checkHTTP checks the nodes' HTTP side served at url (--http): every
// node ready, each one's metrics under its name.
func checkHTTP(t *testing.T, url string) {
	t.Helper()
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("NEO_HTTP = %q", url)
	}
	get := func(path string) (int, string) {
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := get("/readyz")
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz: %d %s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for path, want := range map[string]string{
		"/master/metrics":    `neo_cluster_state{state="RUNNING"} 1`,
		"/storage_1/metrics": `neo_storage_cells{state="UP_TO_DATE"} 4`,
		"/admin/readyz":      "ok",
		"/admin/":            "<title>NEO cluster</title>",
		"/admin/api/v1/pt":   `"state": "UP_TO_DATE"`,
		"/":                  `href="/storage_0/metrics"`,
	} {
		if code, body := get(path); code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("%s: %d, want 200 with %q", path, code, want)
		}
	}
	if code, _ := get("/storage_9/metrics"); code != http.StatusNotFound {
		t.Errorf("/storage_9/metrics: %d, want 404", code)
	}
}

func printPT(t *testing.T, admin string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	cl, err := ctl.Dial(ctx, ctl.Config{Addr: admin})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	s, err := cl.PrintPartitionTable(ctx, 0, 0, proto.NodeID(0))
	if err != nil {
		t.Fatalf("print pt: %v", err)
	}
	return s
}

// TestStoppedByNeoctl: "neoctl set cluster STOPPING" ends neosimple with
// status 0, as Ctrl-C does.
func TestStoppedByNeoctl(t *testing.T) {
	in := startInstance(t, t.TempDir(), "-n", "1", "-r", "0", "-p", "2")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	cl, err := ctl.Dial(ctx, ctl.Config{Addr: in.env["NEO_ADMIN"]})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.SetClusterState(ctx, proto.STOPPING); err != nil && !errors.Is(err, ctl.ErrConnectionClosed) {
		t.Fatalf("set cluster STOPPING: %v", err)
	}
	select {
	case code := <-in.code:
		in.code <- code
		if code != 0 {
			t.Fatalf("exit %d; stderr:\n%s", code, in.stderr)
		}
	case <-time.After(40 * time.Second):
		t.Fatalf("neosimple still running 40s after STOPPING; stderr:\n%s", in.stderr)
	}
}
