// Package procstat reads what Linux's /proc/PID/stat says of a process:
// the CPU time it has used, which, unlike wall-clock time, a machine
// shared with other work does not disturb much.
package procstat

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// clockTick is the unit of /proc's CPU times (USER_HZ): 100 on every
// Linux architecture Go supports (sysconf(_SC_CLK_TCK) needs cgo).
const clockTick = 10 * time.Millisecond

// CPU returns the CPU time (user + system, all threads) that process pid
// has used so far.
func CPU(pid int) (time.Duration, error) {
	path := fmt.Sprintf("/proc/%d/stat", pid)
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return parseCPU(data, path)
}

// parseCPU returns utime+stime from the contents of a stat file: after
// "pid (comm) " (comm may hold spaces and parentheses, hence the last
// ')'), state is field 3, utime 14 and stime 15.
func parseCPU(data []byte, path string) (time.Duration, error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("%s: no ')' after the command name", path)
	}
	f := bytes.Fields(data[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("%s: %d fields after the command name, want at least 13", path, len(f))
	}
	var ticks int64
	for _, s := range f[11:13] { // fields 14 and 15
		n, err := strconv.ParseInt(string(s), 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%s: CPU time %q is not a tick count", path, s)
		}
		ticks += n
	}
	return time.Duration(ticks) * clockTick, nil
}

// Memory is what /proc/PID/status says of a process's memory, in bytes.
type Memory struct {
	// PeakRSS is the peak resident set size (VmHWM): what the process
	// held at most, whenever it was, its mapped file pages included.
	PeakRSS int64
	// RSSAnon and RSSFile split the current resident set: the process's
	// own memory (heap, stacks), and the pages of mapped files (e.g.
	// SQLite's mmap of its database), which are the kernel's page cache,
	// clean, shared and reclaimable.
	RSSAnon, RSSFile int64
}

// ReadMemory returns the memory figures of process pid.
func ReadMemory(pid int) (Memory, error) {
	path := fmt.Sprintf("/proc/%d/status", pid)
	data, err := os.ReadFile(path)
	if err != nil {
		return Memory{}, err
	}
	return parseMemory(data, path)
}

// parseMemory reads the contents of a status file, where each figure is
// a line "Key:<blanks>N kB".
func parseMemory(data []byte, path string) (Memory, error) {
	var m Memory
	fields := []struct {
		key string
		v   *int64
	}{{"VmHWM:", &m.PeakRSS}, {"RssAnon:", &m.RSSAnon}, {"RssFile:", &m.RSSFile}}
	found := 0
	for line := range bytes.Lines(data) {
		for _, f := range fields {
			rest, ok := bytes.CutPrefix(line, []byte(f.key))
			if !ok {
				continue
			}
			w := bytes.Fields(rest)
			if len(w) != 2 || string(w[1]) != "kB" {
				return m, fmt.Errorf("%s: %s %q is not \"N kB\"", path, f.key, bytes.TrimSpace(rest))
			}
			kb, err := strconv.ParseInt(string(w[0]), 10, 64)
			if err != nil || kb < 0 {
				return m, fmt.Errorf("%s: %s %q is not a size in kB", path, f.key, w[0])
			}
			*f.v = kb << 10
			found++
		}
	}
	if found != len(fields) {
		return m, fmt.Errorf("%s: %d of the lines VmHWM, RssAnon, RssFile (a kernel thread?)", path, found)
	}
	return m, nil
}
