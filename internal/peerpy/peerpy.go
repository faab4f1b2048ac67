// Package peerpy runs programs with the Python of the reference peers
// (../shared/peers: ZODB, neoppod), for tests that compare our results
// with theirs.
package peerpy

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// Dir returns the peers' directory: NEO_PEERS as `make integration` sets
// it, else shared/peers beside the module.
func Dir() string {
	if d := os.Getenv("NEO_PEERS"); d != "" {
		return d
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "peers")
}

// Require returns Dir; the test is skipped when the peers are not set
// up, and fails under CI=true, where they must be.
func Require(t testing.TB) string {
	t.Helper()
	dir := Dir()
	if _, err := os.Stat(filepath.Join(dir, "env.sh")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("python peers missing under CI=true: %v", err)
		}
		t.Skipf("python peers missing: %v", err)
	}
	return dir
}

// Run runs the peers' $PY with args (after sourcing their env.sh, then
// setting env, NAME=value items), stdin as its input, and returns its
// stdout; an error carries its stderr.
func Run(t testing.TB, stdin []byte, env []string, args ...string) ([]byte, error) {
	t.Helper()
	envSh := filepath.Join(Require(t), "env.sh")
	// env.sh finds the peers through $HOME: env is set after it.
	script := `. "$0"; n=$1; shift; exec env "${@:1:n}" "$PY" "${@:n+1}"`
	argv := append([]string{"-c", script, envSh, strconv.Itoa(len(env))}, env...)
	cmd := exec.Command("bash", append(argv, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("python %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return out, nil
}
