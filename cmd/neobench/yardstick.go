package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/neogo/neo/internal/procstat"
)

// The machine's raw limits, measured in the same run as the cluster so
// that the cluster's figures can be given as ratios to them.
const (
	// rttCount round trips are timed after rttWarm untimed ones.
	rttCount, rttWarm = 2000, 200
	// rttRequest is the size of the request of a raw round trip: about
	// that of a load request (header, oid, before tid).
	rttRequest = 32
	// fsyncCount appends + fsyncs are timed.
	fsyncCount = 200
	// echoEnv, when set to an answer size, makes the program the echo
	// process of rawRTT instead of neobench.
	echoEnv = "NEOBENCH_ECHO_SIZE"
)

// rawRTT starts this program again as an echo process and times round
// trips to it over loopback TCP: a request of rttRequest bytes, an answer
// of size bytes, which is what a load is on the wire without any server
// work. It returns the latencies and this process's CPU time per round
// trip: the least a client's load can cost it.
func rawRTT(ctx context.Context, size int) ([]time.Duration, time.Duration, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, 0, fmt.Errorf("raw round trip: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), echoEnv+"="+strconv.Itoa(size))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, 0, fmt.Errorf("raw round trip: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, 0, fmt.Errorf("raw round trip: start echo process %s: %w", exe, err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return nil, 0, fmt.Errorf("raw round trip: echo process %s gave no address: %w", exe, err)
	}
	addr = strings.TrimSpace(addr)
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, 0, fmt.Errorf("raw round trip: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	req, ans := make([]byte, rttRequest), make([]byte, size)
	lat := make([]time.Duration, 0, rttCount)
	var cpu0 time.Duration
	for i := range rttWarm + rttCount {
		if i == rttWarm {
			cpu0 = cpuTime()
		}
		t0 := time.Now()
		if _, err := conn.Write(req); err != nil {
			return nil, 0, fmt.Errorf("raw round trip to %s: %w", addr, err)
		}
		if _, err := io.ReadFull(conn, ans); err != nil {
			return nil, 0, fmt.Errorf("raw round trip to %s: %w", addr, err)
		}
		if i >= rttWarm {
			lat = append(lat, time.Since(t0))
		}
	}
	return lat, (cpuTime() - cpu0) / rttCount, nil
}

// echoServe is the echo process of rawRTT: it listens on a loopback
// port, prints its address, and answers each request of rttRequest bytes
// of its one connection with size bytes, until the connection ends.
func echoServe(sizeEnv string, stdout io.Writer) error {
	size, err := strconv.Atoi(sizeEnv)
	if err != nil || size < 1 {
		return fmt.Errorf("%s=%q: want a positive size", echoEnv, sizeEnv)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer l.Close()
	fmt.Fprintln(stdout, l.Addr())
	conn, err := l.Accept()
	if err != nil {
		return err
	}
	defer conn.Close()
	req, ans := make([]byte, rttRequest), make([]byte, size)
	for {
		if _, err := io.ReadFull(conn, req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if _, err := conn.Write(ans); err != nil {
			return err
		}
	}
}

// rawFsync times appends of size bytes to a new file in dir, each
// followed by an fsync: the least a durable commit costs on that
// filesystem. The file is removed.
func rawFsync(dir string, size int) ([]time.Duration, error) {
	f, err := os.CreateTemp(dir, "neobench-fsync-*")
	if err != nil {
		return nil, fmt.Errorf("raw fsync: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, size)
	lat := make([]time.Duration, 0, fsyncCount)
	for range fsyncCount {
		t0 := time.Now()
		if _, err := f.Write(buf); err != nil {
			return nil, fmt.Errorf("raw fsync: append to %s: %w", f.Name(), err)
		}
		if err := f.Sync(); err != nil {
			return nil, fmt.Errorf("raw fsync: %s: %w", f.Name(), err)
		}
		lat = append(lat, time.Since(t0))
	}
	return lat, nil
}

// node is a cluster process whose CPU time is measured.
type node struct {
	pid  int
	name string
}

// readPids reads a pids file of neo-py-cluster.sh: "PID NAME" lines.
func readPids(path string) ([]node, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var nodes []node
	for i, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		pid, err := strconv.Atoi(f[0])
		if err != nil || pid <= 0 || len(f) > 2 {
			return nil, fmt.Errorf("%s:%d: %q is not \"PID [NAME]\"", path, i+1, line)
		}
		name := f[0]
		if len(f) == 2 {
			name = f[1]
		}
		nodes = append(nodes, node{pid, name})
	}
	if len(nodes) == 0 {
		return nil, fmt.Errorf("%s: no process", path)
	}
	return nodes, nil
}

// serversCPU returns the CPU time used so far by all of nodes; zero if
// there are none (no --pids).
func serversCPU(nodes []node) (time.Duration, error) {
	byName, err := nodesCPU(nodes)
	var sum time.Duration
	for _, cpu := range byName {
		sum += cpu
	}
	return sum, err
}

// nodesCPU returns the CPU time used so far by each of nodes, by name.
func nodesCPU(nodes []node) (map[string]time.Duration, error) {
	byName := map[string]time.Duration{}
	for _, n := range nodes {
		cpu, err := procstat.CPU(n.pid)
		if err != nil {
			return nil, fmt.Errorf("CPU time of node %s (pid %d): %w", n.name, n.pid, err)
		}
		byName[n.name] += cpu
	}
	return byName, nil
}

// nodesMemory returns each node's memory figures (procstat.Memory) in
// MiB, by name: peak RSS, and the resident anonymous and file pages.
func nodesMemory(nodes []node) (peak, anon, file map[string]float64, err error) {
	peak, anon, file = map[string]float64{}, map[string]float64{}, map[string]float64{}
	mib := func(b int64) float64 { return round(float64(b)/(1<<20), 1) }
	for _, n := range nodes {
		m, err := procstat.ReadMemory(n.pid)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("memory of node %s (pid %d): %w", n.name, n.pid, err)
		}
		peak[n.name], anon[n.name], file[n.name] = mib(m.PeakRSS), mib(m.RSSAnon), mib(m.RSSFile)
	}
	return peak, anon, file, nil
}
