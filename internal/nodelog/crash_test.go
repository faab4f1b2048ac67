package nodelog

import (
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// crashEnv names the log file of the process TestCrashReport runs (this
// test binary again) that crashes.
const crashEnv = "NODELOG_CRASH_LOG"

// TestCrashReport: a panic on a goroutine other than main, which no
// deferred call sees, kills a process; its report, with the stack of
// every goroutine, is in the log once the log is opened again.
func TestCrashReport(t *testing.T) {
	if path := os.Getenv(crashEnv); path != "" {
		crash(path)
		return
	}
	path := filepath.Join(t.TempDir(), "n.log")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashReport$")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the crashing process exited 0:\n%s", out)
	}
	if !strings.Contains(string(out), "goroutine ") {
		t.Fatalf("no crash report on stderr:\n%s", out)
	}

	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var msg string
	var level int
	if err := db.QueryRow("SELECT level, msg FROM log WHERE msg LIKE 'Pre-mortem%'").Scan(&level, &msg); err != nil {
		t.Fatalf("no pre-mortem record: %v", err)
	}
	if level != levelError {
		t.Errorf("level %d", level)
	}
	for _, want := range []string{
		"panic: crash on purpose",
		"nodelog.crashingGoroutine", // the goroutine that panicked
		"nodelog.blockedGoroutine",  // another one: every goroutine is there
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("the report lacks %q:\n%s", want, msg)
		}
	}
	// Imported once: the next open adds nothing.
	l, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if n := count(t, path, "log"); n != 1 {
		t.Errorf("%d records after a second open, want 1", n)
	}
}

// crash opens the log at path as a node does, then panics on a
// goroutine while another waits.
func crash(path string) {
	l, err := Open(path, Options{})
	if err != nil {
		panic(err)
	}
	if err := l.CatchCrashes(); err != nil {
		panic(err)
	}
	go blockedGoroutine(make(chan struct{}))
	// Crash once it waits: the runtime cannot show the stack of a
	// goroutine running on another thread.
	for !strings.Contains(AllStacks(), "[chan receive]:\ngithub.com/neogo/neo/internal/nodelog.blockedGoroutine") {
		runtime.Gosched()
	}
	done := make(chan struct{})
	go crashingGoroutine(done)
	<-done
}

func blockedGoroutine(c chan struct{}) { <-c }

func crashingGoroutine(chan struct{}) { panic("crash on purpose") }

// TestCrashFileRemoved: a node that stops without crashing leaves no
// crash file.
func TestCrashFileRemoved(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n.log")
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.CatchCrashes(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + crashSuffix); err != nil {
		t.Fatalf("no crash output: %v", err)
	}
	l.Close()
	if _, err := os.Stat(path + crashSuffix); !os.IsNotExist(err) {
		t.Errorf("crash file left after a clean close: %v", err)
	}
}
