package nodelog

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
)

// A goroutine's panic that nobody recovers, or a fatal error of the
// runtime, kills the process without running a deferred function: the
// node cannot log its "Pre-mortem data" then, and the runtime freezes the
// other goroutines, so none can write the log while it dies. The runtime
// writes its report, though: with every goroutine's stack (as neoppod's
// pre-mortem traceback covers its whole state) once [CatchCrashes] set
// the traceback level to "all", and to a file of ours besides stderr.
// The next [Open] of the log moves the report into the log.

// crashSuffix names the file, beside the log, where the runtime writes
// its crash report.
const crashSuffix = ".crash"

// crashMsg begins the record of a report found at Open.
const crashMsg = "Pre-mortem data (the previous run crashed):\n"

// CatchCrashes makes the runtime's report of a crash (a panic not
// recovered, a fatal error) show every goroutine's stack, on stderr and
// in PATH.crash beside the log file, which the next Open of the log
// moves into it. It is for a process's one node log (the runtime has
// one crash output); a nil Log sets the traceback level only.
func (l *Log) CatchCrashes() error {
	debug.SetTraceback("all")
	if l == nil {
		return nil
	}
	f, err := os.OpenFile(l.path+crashSuffix, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("crash output: %w", err)
	}
	defer f.Close() // the runtime keeps a duplicate
	if err := debug.SetCrashOutput(f, debug.CrashOptions{}); err != nil {
		return fmt.Errorf("crash output %s: %w", f.Name(), err)
	}
	l.wmu.Lock()
	l.crashPath = f.Name()
	l.wmu.Unlock()
	return nil
}

// removeCrashFile removes the crash output of a node that did not crash
// (at Close), unless something was written to it; wmu is held.
func (l *Log) removeCrashFile() {
	if l.crashPath == "" {
		return
	}
	if fi, err := os.Stat(l.crashPath); err == nil && fi.Size() == 0 {
		os.Remove(l.crashPath)
	}
}

// importCrash moves a crash report left at PATH.crash into the log, as
// an error record dated when the report was written; l is not shared
// yet. The file is emptied, not removed: a running node of an older
// start may still have it as its crash output.
func (l *Log) importCrash() error {
	path := l.path + crashSuffix
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return nil // no report: nothing to do
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("crash report %s: %w", path, err)
	}
	l.add(record{date: unixTime(fi.ModTime()), level: levelError, pathname: path, msg: crashMsg + string(b)})
	if err := os.Truncate(path, 0); err != nil {
		return fmt.Errorf("crash report %s: %w", path, err)
	}
	return nil
}

// AllStacks returns the stacks of every goroutine, as the runtime prints
// them: the pre-mortem data of a node that stops on an error.
func AllStacks() string {
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return string(buf[:n])
		}
		buf = make([]byte, 2*len(buf))
	}
}
