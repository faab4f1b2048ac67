// Package cpuprof lets the node commands write a CPU profile when the
// environment asks for one, so that benchmarks of whole clusters (started
// by scripts that know nothing of profiling) can be profiled.
package cpuprof

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
)

// Env names the environment variable holding the profile path prefix:
// the profile goes to PREFIX.PROG.PID, written when the node exits
// normally (SIGTERM or SIGINT, not SIGKILL).
const Env = "NEO_CPUPROFILE"

// Start starts CPU profiling if $NEO_CPUPROFILE is set and returns the
// function that stops it and closes the file; errors go to stderr, since a
// profile is never worth failing the node for.
func Start(stderr io.Writer) (stop func()) {
	prefix := os.Getenv(Env)
	if prefix == "" {
		return func() {}
	}
	path := fmt.Sprintf("%s.%s.%d", prefix, filepath.Base(os.Args[0]), os.Getpid())
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(stderr, "cpu profile: %v\n", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(stderr, "cpu profile %s: %v\n", path, err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintf(stderr, "cpu profile %s: %v\n", path, err)
		}
	}
}
