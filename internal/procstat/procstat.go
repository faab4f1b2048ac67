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

// PeakRSS returns the peak resident set size of process pid (VmHWM of
// /proc/PID/status): what the process needed at most, whenever it was.
func PeakRSS(pid int) (int64, error) {
	path := fmt.Sprintf("/proc/%d/status", pid)
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return parsePeakRSS(data, path)
}

// parsePeakRSS returns VmHWM in bytes from the contents of a status file,
// where it is a line "VmHWM:<blanks>N kB".
func parsePeakRSS(data []byte, path string) (int64, error) {
	for line := range bytes.Lines(data) {
		rest, ok := bytes.CutPrefix(line, []byte("VmHWM:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("%s: VmHWM %q is not \"N kB\"", path, bytes.TrimSpace(rest))
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil || kb < 0 {
			return 0, fmt.Errorf("%s: VmHWM %q is not a size in kB", path, f[0])
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("%s: no VmHWM line (a kernel thread?)", path)
}
