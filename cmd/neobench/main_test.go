package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/neogo/neo/client"
	"github.com/neogo/neo/internal/cliopt"
	"github.com/neogo/neo/internal/neotest"
	"github.com/neogo/neo/proto"
)

// Bounds of the waits of these tests.
const (
	startTimeout = neotest.StartTimeout
	runTimeout   = 2 * time.Minute
)

// TestMain lets the test binary be neobench's echo process, as the
// command is (rawRTT starts its own executable).
func TestMain(m *testing.M) {
	if size, ok := os.LookupEnv(echoEnv); ok {
		if err := echoServe(size, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestParseArgs(t *testing.T) {
	base := []string{"--masters", "127.0.0.1:1", "--cluster", "c"}
	tests := []struct {
		args    []string
		want    options // compared on the fields below
		wantErr string  // substring of the usage error
	}{
		{args: base, want: options{masters: []string{"127.0.0.1:1"}, cluster: "c", objects: 20000, size: 1024,
			txnObjects: 100, loads: 10000, threads: 4, smallCommits: 1000, phaseSeconds: 25}},
		{args: []string{"--masters", "127.0.0.1:1, [::1]:2 h:3", "--cluster=c", "-n", "5", "-s", "7", "-k", "2",
			"-l", "3", "-t", "8", "-c", "0", "--phase-seconds", "0.5", "--label", "go", "--json"},
			want: options{masters: []string{"127.0.0.1:1", "[::1]:2", "h:3"}, cluster: "c", objects: 5, size: 7,
				txnObjects: 2, loads: 3, threads: 8, smallCommits: 0, phaseSeconds: 0.5, label: "go", json: true}},
		{args: []string{"--cluster", "c"}, wantErr: "--masters"},
		{args: []string{"--masters", " , ", "--cluster", "c"}, wantErr: "--masters"},
		{args: []string{"--masters", "127.0.0.1:1"}, wantErr: "--cluster"},
		{args: []string{"--masters", "127.0.0.1:1", "--cluster", "a b"}, wantErr: "--cluster"},
		{args: []string{"--masters", "127.0.0.1", "--cluster", "c"}, wantErr: `"127.0.0.1" is not host:port`},
		{args: []string{"--masters", "127.0.0.1:70000", "--cluster", "c"}, wantErr: "is not host:port"},
		{args: []string{"--masters", ":1", "--cluster", "c"}, wantErr: "is not host:port"},
		{args: append(base, "-n", "0"), wantErr: "-n 0"},
		{args: append(base, "-s", "0"), wantErr: "-s 0"},
		{args: append(base, "-k", "0"), wantErr: "-k 0"},
		{args: append(base, "-l", "0"), wantErr: "-l 0"},
		{args: append(base, "-t", "0"), wantErr: "-t 0"},
		{args: append(base, "-c", "-1"), wantErr: "-c -1"},
		{args: append(base, "-w", "-1"), wantErr: "-w -1"},
		{args: append(base, "-n", "16"), wantErr: "-w 16: more committers than objects"},
		{args: append(base, "--phase-seconds", "0"), wantErr: "--phase-seconds"},
		{args: append(base, "--phase-seconds", "NaN"), wantErr: "--phase-seconds"},
		{args: append(base, "--connect-timeout", "0s"), wantErr: "--connect-timeout"},
		{args: append(base, "-n", "x"), wantErr: "invalid value"},
		{args: append(base, "--bogus"), wantErr: "-bogus"},
		{args: append(base, "extra"), wantErr: `unexpected argument "extra"`},
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
			got := options{masters: o.masters, cluster: o.cluster, objects: o.objects, size: o.size,
				txnObjects: o.txnObjects, loads: o.loads, threads: o.threads, smallCommits: o.smallCommits,
				phaseSeconds: o.phaseSeconds, label: o.label, json: o.json}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestUsageExit(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"--cluster", "c", "-n", "0"}, &stdout, &stderr); code != 2 {
		t.Errorf("exit status %d, want 2", code)
	}
	if lines := strings.Split(strings.TrimSpace(stderr.String()), "\n"); len(lines) != 1 ||
		!strings.HasPrefix(lines[0], "neobench: ") || !strings.Contains(lines[0], "neobench -h") {
		t.Errorf("stderr = %q, want one line pointing to -h", stderr.String())
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout = %q, want nothing", stdout.String())
	}
}

func TestHelp(t *testing.T) {
	var out bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, &out, io.Discard); code != 0 {
		t.Fatalf("exit status %d, want 0", code)
	}
	for _, s := range []string{"--masters", "--cluster", "-n N", "-s S", "-k K", "-l L", "-t T", "-c C",
		"--phase-seconds", "--label", "--json", "populate", "load_cold", "load_warm", "small_commit", "exit status"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("usage lacks %q", s)
		}
	}
}

func TestUnreachable(t *testing.T) {
	// A port nobody listens on: bind one, then close it.
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	code := run(ctx, []string{"--masters", freeAddr(t), "--cluster", "c", "--connect-timeout", "300ms"}, &stdout, &stderr)
	if code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	if lines := strings.Split(strings.TrimSpace(stderr.String()), "\n"); len(lines) != 1 ||
		!strings.Contains(lines[0], "cannot reach cluster c") {
		t.Errorf("stderr = %q, want one line saying the cluster is unreachable", stderr.String())
	}
}

func TestLatencies(t *testing.T) {
	var lat []time.Duration
	for i := 100; i >= 1; i-- {
		lat = append(lat, time.Duration(i)*time.Microsecond)
	}
	p50, p99, mean := latencies(lat)
	// Nearest rank over 0..99: index 50 (51 µs) and index 98 (99 µs).
	if *p50 != 51 || *p99 != 99 || *mean != 50 {
		t.Errorf("p50, p99, mean = %d, %d, %d; want 51, 99, 50", *p50, *p99, *mean)
	}
	if p50, p99, mean := latencies(nil); p50 != nil || p99 != nil || mean != nil {
		t.Error("latencies of nothing are not nil")
	}
}

// line is the part of a JSON line the tests check.
type line struct {
	Bench       string             `json:"bench"`
	Label       string             `json:"label"`
	Metric      string             `json:"metric"`
	Threads     int                `json:"threads"`
	N           *int               `json:"n"`
	ElapsedS    *float64           `json:"elapsed_s"`
	CommitsPerS *float64           `json:"commits_per_s"`
	ObjectsPerS *float64           `json:"objects_per_s"`
	LoadsPerS   *float64           `json:"loads_per_s"`
	P50us       *int64             `json:"p50_us"`
	P99us       *int64             `json:"p99_us"`
	ClientCPUus *float64           `json:"client_cpu_us_per_op"`
	ClientShare *float64           `json:"client_share"`
	Errors      *int               `json:"errors"`
	FirstError  string             `json:"first_error"`
	Complete    *bool              `json:"complete"`
	OK          *bool              `json:"ok"`
	ServersCPU  *float64           `json:"servers_cpu_ms"`
	RTTp50us    *float64           `json:"rtt_p50_us"`
	FsyncP50us  *float64           `json:"fsync_p50_us"`
	PerRTT      *float64           `json:"p50_per_rtt"`
	PerCommit   *float64           `json:"p50_per_commit_limit"`
	PeakRSS     map[string]float64 `json:"peak_rss_mib"`
	NodesCPU    map[string]float64 `json:"nodes_cpu_ms"`
	RSSAnon     map[string]float64 `json:"rss_anon_mib"`
}

func TestRunJSON(t *testing.T) {
	c := neotest.Start(t, neotest.Options{Storages: 2, Replicas: 1, Partitions: 3})
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	// The cluster runs in this process: its CPU time is that of the
	// "nodes" of --pids.
	pids := filepath.Join(t.TempDir(), "pids")
	if err := os.WriteFile(pids, fmt.Appendf(nil, "%d self\n", os.Getpid()), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"--masters", c.MasterAddr(), "--cluster", c.Name(), "-n", "45", "-s", "300", "-k", "10",
		"-l", "12", "-t", "3", "-c", "7", "-w", "3", "--phase-seconds", "60", "--label", "test", "--json",
		"--pids", pids, "--fsync-dir", t.TempDir()}
	if code := run(ctx, args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit status %d; stderr:\n%s", code, stderr.String())
	}
	type key struct {
		metric  string
		threads int
	}
	got := map[key]line{}
	var order []key
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if l.Bench != "neobench" || l.Label != "test" || l.ElapsedS == nil {
			t.Errorf("line %q: want bench neobench, label test, elapsed_s", sc.Text())
		}
		if l.Metric != "yardstick" && l.ServersCPU == nil {
			t.Errorf("line %q: want the servers' CPU time", sc.Text())
		}
		if l.Metric != "total" && l.Metric != "yardstick" && (l.ClientCPUus == nil || *l.ClientCPUus <= 0 || l.ClientShare == nil || *l.ClientShare <= 0) {
			t.Errorf("line %q: want the client's CPU time", sc.Text())
		}
		k := key{l.Metric, l.Threads}
		got[k] = l
		order = append(order, k)
	}
	want := []key{{"yardstick", 0}, {"populate", 0}, {"load_cold", 1}, {"load_cold", 3}, {"load_warm", 1}, {"load_warm", 3},
		{"small_commit", 0}, {"commit_goroutines", 3}, {"commit_clients", 3}, {"total", 0}}
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Fatalf("metrics %v, want %v", order, want)
	}
	pop := got[key{"populate", 0}]
	if pop.N == nil || *pop.N != 45 || pop.Complete == nil || !*pop.Complete ||
		pop.CommitsPerS == nil || *pop.CommitsPerS <= 0 || pop.ObjectsPerS == nil || *pop.ObjectsPerS <= 0 ||
		pop.P50us == nil || pop.P99us == nil || *pop.P99us < *pop.P50us {
		t.Errorf("populate: %+v", pop)
	}
	if y := got[key{"yardstick", 0}]; y.RTTp50us == nil || *y.RTTp50us <= 0 || y.FsyncP50us == nil || *y.FsyncP50us <= 0 {
		t.Errorf("yardstick: %+v", y)
	}
	for _, k := range want[2:6] {
		l := got[k]
		if l.N == nil || *l.N != 12 || l.Errors == nil || *l.Errors != 0 || l.LoadsPerS == nil || *l.LoadsPerS <= 0 ||
			l.P50us == nil || l.P99us == nil || l.PerRTT == nil {
			t.Errorf("%v: %+v (first error %q)", k, l, l.FirstError)
		}
	}
	sc7 := got[key{"small_commit", 0}]
	if sc7.N == nil || *sc7.N != 7 || sc7.CommitsPerS == nil || *sc7.CommitsPerS <= 0 || sc7.P50us == nil || sc7.PerCommit == nil {
		t.Errorf("small_commit: %+v", sc7)
	}
	for _, k := range want[7:9] {
		if l := got[k]; l.N == nil || *l.N != 7 || l.CommitsPerS == nil || *l.CommitsPerS <= 0 || l.P99us == nil {
			t.Errorf("%v: %+v", k, l)
		}
	}
	if tot := got[key{"total", 0}]; tot.OK == nil || !*tot.OK || len(tot.PeakRSS) != 1 || tot.PeakRSS["self"] <= 0 ||
		len(tot.NodesCPU) != 1 || tot.NodesCPU["self"] <= 0 || tot.RSSAnon["self"] <= 0 {
		t.Errorf("total: %+v", tot)
	}
	for _, s := range []string{"populate: 45 objects x 300 bytes", "load_warm threads=3", "small commits: 7"} {
		if !strings.Contains(stderr.String(), s) {
			t.Errorf("progress lacks %q:\n%s", s, stderr.String())
		}
	}

	// The small commits were real updates: the objects they wrote are
	// the current revisions.
	cl := c.Open(t, client.Config{})
	last, err := cl.LastTid(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The small commits were real updates, and so were the concurrent
	// ones: 7 by 3 goroutines, 7 by 3 clients, each committer updating
	// its own objects; an object updated by more than one phase counts
	// once.
	if n := singleObjectTxns(ctx, t, cl, last); n < 7 || n > 21 {
		t.Errorf("%d objects are alone in their last transaction, want from 7 to 21", n)
	}
}

// singleObjectTxns loads the objects from oid 0 until one does not
// exist and counts the serials that only one of them has.
func singleObjectTxns(ctx context.Context, t *testing.T, cl *client.Client, last proto.Tid) int {
	t.Helper()
	objects := map[proto.Tid]int{}
	for oid := proto.Oid(0); oid < 1000; oid++ {
		obj, err := cl.Load(ctx, oid, last+1)
		if errors.Is(err, proto.ErrOidDoesNotExist) || errors.Is(err, proto.ErrOidNotFound) {
			if oid == 0 {
				continue // the oids may start at 1
			}
			break
		}
		if err != nil {
			t.Fatalf("load oid %v: %v", oid, err)
		}
		objects[obj.Serial]++
	}
	n := 0
	for _, k := range objects {
		if k == 1 {
			n++
		}
	}
	return n
}

// freeAddr returns a loopback address nobody listens on (just closed).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestRunTable(t *testing.T) {
	c := neotest.Start(t, neotest.Options{Storages: 1, Partitions: 2})
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	prof := filepath.Join(t.TempDir(), "cpu.prof")
	args := []string{"--masters", c.MasterAddr(), "--cluster", c.Name(), "-n", "9", "-s", "10", "-k", "4", "-l", "100", "-t", "2", "-c", "2", "-w", "2",
		"--cpuprofile", prof}
	if code := run(ctx, args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit status %d; stderr:\n%s", code, stderr.String())
	}
	if fi, err := os.Stat(prof); err != nil || fi.Size() == 0 {
		t.Errorf("--cpuprofile: no profile written (%v)", err)
	}
	out := stdout.String()
	for _, s := range []string{"metric", "raw round trip p50", "populate", "commit_goroutines", "commit_clients", "objects/s", "load_cold", "load_warm", "small_commit", "total", " ok", "cpu_us/op"} {
		if !strings.Contains(out, s) {
			t.Errorf("table lacks %q:\n%s", s, out)
		}
	}
	// 9 objects: the first warms, 8 remain, so 4 per sample.
	if !strings.Contains(stderr.String(), "only 4 objects per sample") {
		t.Errorf("stderr does not say the samples were cut:\n%s", stderr.String())
	}
}

// TestLoadLoopChecks makes sure that the check of loaded data can fail:
// objects whose expected data or serial differ from what the cluster
// has are counted as errors.
func TestLoadLoopChecks(t *testing.T) {
	c := neotest.Start(t, neotest.Options{Storages: 1, Partitions: 2})
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	o, err := parseArgs([]string{"--masters", c.MasterAddr(), "--cluster", c.Name(), "-n", "5", "-s", "20", "-w", "2", "--json"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	b := newBench(o, &out, io.Discard, slog.New(slog.DiscardHandler))
	cl, err := b.open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := b.populate(ctx, cl); err != nil {
		t.Fatal(err)
	}
	var oids []proto.Oid
	for oid := range b.expected {
		oids = append(oids, oid)
	}
	ok, err := b.loadPass(ctx, cl, "load_cold", oids, 2)
	if err != nil || !ok {
		t.Fatalf("untouched: ok=%v err=%v", ok, err)
	}
	b.expected[oids[0]] = []byte("other")
	b.serial[oids[1]]++
	out.Reset()
	ok, err = b.loadPass(ctx, cl, "load_warm", oids, 1)
	if err != nil || ok {
		t.Fatalf("tampered: ok=%v err=%v, want not ok", ok, err)
	}
	var l line
	if err := json.Unmarshal(out.Bytes(), &l); err != nil {
		t.Fatal(err)
	}
	if l.Errors == nil || *l.Errors != 2 || !strings.HasPrefix(l.FirstError, "bad ") || *l.N != 5 {
		t.Errorf("tampered: %s", out.String())
	}
}

func TestReadPids(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct{ text, want, err string }{
		{text: "12 master\n13 storage_0\n\n14\n", want: "[{12 master} {13 storage_0} {14 14}]"},
		{text: "x master\n", err: `:1: "x master" is not`},
		{text: "12 a b\n", err: "is not"},
		{text: "\n", err: "no process"},
	} {
		p := filepath.Join(dir, "pids")
		if err := os.WriteFile(p, []byte(tt.text), 0o644); err != nil {
			t.Fatal(err)
		}
		nodes, err := readPids(p)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: err = %v, want %q", tt.text, err, tt.err)
			}
			continue
		}
		if err != nil || fmt.Sprint(nodes) != tt.want {
			t.Errorf("%q: %v, %v; want %s", tt.text, nodes, err, tt.want)
		}
	}
	if _, err := serversCPU([]node{{pid: -1, name: "gone"}}); err == nil || !strings.Contains(err.Error(), "node gone (pid -1)") {
		t.Errorf("CPU of a missing node: err = %v", err)
	}
}

func TestPayloadsDistinct(t *testing.T) {
	// A storage keeps equal data once: distinct payloads make the
	// database as big as -n x -s says. The noise is small for small -n:
	// every payload of a run, not just the populated ones, is checked.
	o := &options{objects: 3000, size: 700, smallCommits: 50}
	b := newBench(o, io.Discard, io.Discard, slog.New(slog.DiscardHandler))
	seen := map[string]int{}
	for i := range 3*o.objects + o.smallCommits {
		p := b.payload()
		if len(p) != o.size {
			t.Fatalf("payload %d: %d bytes, want %d", i, len(p), o.size)
		}
		if j, dup := seen[string(p)]; dup {
			t.Fatalf("payload %d equals payload %d", i, j)
		}
		seen[string(p)] = i
	}
}
