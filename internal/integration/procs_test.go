//go:build integration

package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Node processes shared by goCluster and foCluster.

// goProc is one node process of a goCluster or a foCluster.
type goProc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has been waited for
	err  error         // its exit, valid once done is closed
}

// startProc starts prog in its own process group, with env added to ours;
// its output is appended to dir/name.out.
func startProc(t *testing.T, dir, name string, env []string, prog string, args ...string) *goProc {
	t.Helper()
	out, err := os.OpenFile(filepath.Join(dir, name+".out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(prog, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		out.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &goProc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	return p
}

// exited reports whether the process has ended (and been waited for).
func (p *goProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stopProcs ends the processes still running: SIGTERM, then SIGKILL
// after goStopTimeout.
func stopProcs(t *testing.T, procs []*goProc) {
	for _, p := range procs {
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	deadline := time.After(goStopTimeout)
	for _, p := range procs {
		select {
		case <-p.done:
		case <-deadline:
			t.Logf("%s still running %v after SIGTERM: SIGKILL", p.name, goStopTimeout)
			p.cmd.Process.Signal(syscall.SIGKILL)
			select {
			case <-p.done:
			case <-time.After(goStopTimeout):
				t.Errorf("%s (pid %d) still alive %v after SIGKILL", p.name, p.cmd.Process.Pid, goStopTimeout)
			}
		}
	}
}
