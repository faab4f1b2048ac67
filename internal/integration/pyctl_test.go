//go:build integration

package integration

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// pyctl runs neoppod's neoctl in one long-lived Python process
// (testdata/neoctl_server.py): a fresh interpreter costs about a second
// per command on a loaded machine, which the comparisons below would pay
// hundreds of times. Errors and usage are still checked with fresh
// processes (peers.script).
type pyctl struct {
	mu     sync.Mutex
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Reader
	stderr *os.File
}

var (
	pyctlOnce sync.Once
	pyctlVal  *pyctl
	pyctlErr  error
)

func (p *peers) ctlServer(t *testing.T) *pyctl {
	t.Helper()
	pyctlOnce.Do(func() { pyctlVal, pyctlErr = startPyctl(p) })
	if pyctlErr != nil {
		t.Fatalf("start neoctl server: %v", pyctlErr)
	}
	return pyctlVal
}

func startPyctl(p *peers) (*pyctl, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	errf, err := os.CreateTemp("", "neoctl-server-*.log")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(p.py, filepath.Join(root, "internal", "integration", "testdata", "neoctl_server.py"))
	cmd.Env = append(os.Environ(), p.env()...)
	cmd.Stderr = errf
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &pyctl{cmd: cmd, in: in, out: bufio.NewReader(out), stderr: errf}, nil
}

// stop ends the server (closing its stdin) and waits for it.
func (s *pyctl) stop() {
	s.in.Close()
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
	s.stderr.Close()
	os.Remove(s.stderr.Name())
}

// run runs neoctl args in the server, within cmdTimeout.
func (s *pyctl) run(t *testing.T, args ...string) result {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	req, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.in.Write(append(req, '\n')); err != nil {
		t.Fatalf("neoctl server: write: %v", err)
	}
	type answer struct {
		line []byte
		err  error
	}
	ch := make(chan answer, 1)
	go func() {
		line, err := s.out.ReadBytes('\n')
		ch <- answer{line, err}
	}()
	var a answer
	select {
	case a = <-ch:
	case <-time.After(cmdTimeout):
		s.cmd.Process.Kill()
		t.Fatalf("neoctl server: no answer to %q after %v", args, cmdTimeout)
	}
	if a.err != nil {
		log, _ := os.ReadFile(s.stderr.Name())
		t.Fatalf("neoctl server: read: %v\n%s", a.err, log)
	}
	var r struct {
		Stdout, Stderr string
		Code           int
	}
	if err := json.Unmarshal(a.line, &r); err != nil {
		t.Fatalf("neoctl server: %v: %q", err, a.line)
	}
	return result{stdout: r.Stdout, stderr: r.Stderr, code: r.Code}
}
