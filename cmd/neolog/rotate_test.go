package main

import (
	"bufio"
	"context"
	"database/sql"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/neogo/neo/internal/nodelog"
	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
)

// startMaster builds neomaster and starts it with -l logfile; it returns
// the process and its address, read from its log on stderr.
func startMaster(t *testing.T, logfile string) (*exec.Cmd, string) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "neomaster")
	if out, err := exec.Command("go", "build", "-o", bin, "../neomaster").CombinedOutput(); err != nil {
		t.Fatalf("go build neomaster: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0") // a free port
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "-l", logfile, "-c", "rot", "-b", addr, "-m", addr)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	listening := make(chan bool, 1)
	go func() {
		var lines []string
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if lines = append(lines, sc.Text()); strings.Contains(sc.Text(), "master listening") {
				listening <- true
			}
		}
		t.Logf("neomaster's stderr:\n%s", strings.Join(lines, "\n"))
		close(listening)
	}()
	select {
	case ok := <-listening:
		if !ok {
			t.Fatalf("neomaster exited: %v", cmd.Wait())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("neomaster did not say it listens")
	}
	return cmd, addr
}

// identify opens a link to the master and asks it to identify a node of
// type typ; it returns the link, whatever the answer.
func identify(t *testing.T, addr string, typ proto.NodeType) *neonet.Link {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := neonet.Dial(ctx, "tcp", addr, neonet.Config{})
	if err != nil {
		t.Fatal(err)
	}
	l.Ask(ctx, &proto.RequestIdentification{NodeType: typ, ClusterName: "rot", Extra: proto.Dict{}}, &proto.AcceptIdentification{})
	return l
}

// peersOf returns, for each client port, how many RequestIdentification
// packets the log file at path recorded from it.
func peersOf(t *testing.T, path string) map[string]int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT peer FROM packet WHERE code = ?", (&proto.RequestIdentification{}).NEOMsgCode())
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer rows.Close()
	n := map[string]int{}
	for rows.Next() {
		var peer string
		rows.Scan(&peer)
		n[peer]++
	}
	return n
}

// countLog returns how many records of the log file at path have a
// message LIKE pattern.
func countLog(t *testing.T, path, pattern string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM log WHERE msg LIKE ?", pattern).Scan(&n); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return n
}

// TestRotation renames the log of a running neomaster and sends it
// SIGRTMIN+1: each packet it received is recorded once, those before the
// signal in the renamed file, those after the new file appeared in it.
// neoctl flush_log (a FlushLog from an admin) writes them out.
// SIGRTMIN does not kill it; SIGRTMIN+2 logs its state.
func TestRotation(t *testing.T) {
	dir := t.TempDir()
	logfile := filepath.Join(dir, "master.log")
	cmd, addr := startMaster(t, logfile)
	const n = 20
	var before, after []string
	var flusher *neonet.Link // the last admin's link, for FlushLog
	for i := range 2 * n {
		if i == n {
			if err := os.Rename(logfile, logfile+".1"); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Process.Signal(nodelog.SigReopen); err != nil {
				t.Fatal(err)
			}
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				if _, err := os.Stat(logfile); err == nil {
					break
				} else if time.Now().After(deadline) {
					t.Fatal("no new log file after SIGRTMIN+1")
				}
			}
		}
		// Admins, which a master in recovery accepts at once.
		l := identify(t, addr, proto.ADMIN)
		peer := "< None (" + l.LocalAddr().String() + ")"
		if i < 2*n-1 {
			l.Close()
		} else {
			flusher = l
			defer l.Close()
			if err := l.Send(&proto.FlushLog{}); err != nil {
				t.Fatal(err)
			}
		}
		if i < n {
			before = append(before, peer)
		} else {
			after = append(after, peer)
		}
	}
	var got map[string]int
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		got = peersOf(t, logfile)
		if len(got) == n || time.Now().After(deadline) {
			break
		}
	}
	old := peersOf(t, logfile+".1")
	for _, p := range before {
		if old[p] != 1 || got[p] != 0 {
			t.Errorf("%s recorded %d times in the renamed file, %d in the new one; want 1, 0", p, old[p], got[p])
		}
	}
	for _, p := range after {
		if got[p] != 1 || old[p] != 0 {
			t.Errorf("%s recorded %d times in the new file, %d in the renamed one; want 1, 0", p, got[p], old[p])
		}
	}
	if len(old) != n || len(got) != n {
		t.Errorf("renamed file: %d peers, new file: %d; want %d each", len(old), len(got), n)
	}
	// SIGRTMIN, which Go cannot catch, does not kill it; SIGRTMIN+2 logs
	// the master's state, a FlushLog writes it out (sent again until it
	// is there: the signal and the packet race).
	cmd.Process.Signal(nodelog.SigFlush)
	cmd.Process.Signal(nodelog.SigDump)
	for deadline := time.Now().Add(30 * time.Second); countLog(t, logfile, "state %nid=M1 cluster_state=RECOVERING%") != 1; time.Sleep(20 * time.Millisecond) {
		if err := flusher.Send(&proto.FlushLog{}); err != nil {
			t.Fatalf("master gone after SIGRTMIN: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("no state in the log after SIGRTMIN+2 and FlushLog")
		}
	}
	// Stopped cleanly, the master writes the rest out.
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("neomaster: %v", err)
	}
	var out strings.Builder
	if st := run(context.Background(), []string{logfile + ".1", logfile}, &out, &out); st != 0 {
		t.Fatalf("neolog: status %d: %s", st, out.String())
	}
	if c := strings.Count(out.String(), "RequestIdentification          <"); c != 2*n {
		t.Errorf("neolog shows %d RequestIdentification received, want %d:\n%s", c, 2*n, out.String())
	}
}
