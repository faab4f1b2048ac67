package main

// The slow-disk fault: a storage's writes to the disk holding its
// database are throttled by the kernel (cgroup v1 blkio,
// blkio.throttle.write_iops_device) for a while, so that each of its
// syncs takes a fraction of a second, as on a failing or saturated disk.
// Nothing is faked in the storage: the process is moved into a cgroup and
// back.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	sysunix "golang.org/x/sys/unix"
)

// blkioRoot is where the cgroup v1 blkio hierarchy is mounted.
const blkioRoot = "/sys/fs/cgroup/blkio"

// slowDisk throttles the writes of processes moved into its cgroup.
type slowDisk struct {
	dir  string // the cgroup's directory
	dev  string // MAJOR:MINOR of the disk throttled
	iops int
}

// newSlowDisk creates a cgroup throttling writes to the disk that holds
// path to iops write operations per second. It fails, saying why, where
// the kernel cannot do it.
func newSlowDisk(path string, iops int) (*slowDisk, error) {
	if iops < 1 {
		return nil, fmt.Errorf("--slow-iops %d: at least 1", iops)
	}
	dev, err := diskOf(path)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(blkioRoot, fmt.Sprintf("neostress-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("slow-disk needs a writable cgroup v1 blkio hierarchy at %s: %w", blkioRoot, err)
	}
	s := &slowDisk{dir: dir, dev: dev, iops: iops}
	limit := fmt.Sprintf("%s %d", dev, iops)
	if err := os.WriteFile(filepath.Join(dir, "blkio.throttle.write_iops_device"), []byte(limit), 0o644); err != nil {
		s.close()
		return nil, fmt.Errorf("slow-disk: throttle %s: %w", limit, err)
	}
	return s, nil
}

// diskOf returns MAJOR:MINOR of the whole disk holding path (throttling
// applies to a disk's request queue, not to a partition).
func diskOf(path string) (string, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return "", fmt.Errorf("slow-disk: %w", err)
	}
	major, minor := sysunix.Major(st.Dev), sysunix.Minor(st.Dev)
	sys := fmt.Sprintf("/sys/dev/block/%d:%d", major, minor)
	if _, err := os.Stat(sys); err != nil {
		return "", fmt.Errorf("slow-disk: %s is on device %d:%d, not a block device (tmpfs or overlay?): %w", path, major, minor, err)
	}
	if _, err := os.Stat(filepath.Join(sys, "partition")); err == nil {
		parent, err := os.ReadFile(filepath.Join(sys, "..", "dev"))
		if err != nil {
			return "", fmt.Errorf("slow-disk: disk of partition %d:%d: %w", major, minor, err)
		}
		return strings.TrimSpace(string(parent)), nil
	}
	return fmt.Sprintf("%d:%d", major, minor), nil
}

// slow moves pid into the throttled cgroup for d, then back where it was.
// It returns once the process is back, or ctx is done (the process is
// moved back then too).
func (s *slowDisk) slow(ctx context.Context, pid int, d time.Duration) error {
	orig, err := blkioCgroup(pid)
	if err != nil {
		return err
	}
	if err := movePid(s.dir, pid); err != nil {
		return err
	}
	_ = sleepCtx(ctx, d)
	if err := movePid(filepath.Join(blkioRoot, orig), pid); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("slow-disk: move %d back to %s: %w", pid, orig, err)
	}
	return nil
}

// blkioCgroup returns the blkio cgroup path of pid, relative to blkioRoot.
func blkioCgroup(pid int) (string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return "", fmt.Errorf("slow-disk: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		// ID:controllers:path
		f := strings.SplitN(sc.Text(), ":", 3)
		if len(f) == 3 && contains(strings.Split(f[1], ","), "blkio") {
			return f[2], nil
		}
	}
	return "", fmt.Errorf("slow-disk: pid %d has no blkio cgroup (cgroup v2 only?)", pid)
}

func movePid(dir string, pid int) error {
	err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644)
	if err != nil {
		return fmt.Errorf("slow-disk: move pid %d to %s: %w", pid, dir, err)
	}
	return nil
}

// close removes the cgroup; a process still in it is moved to the root
// first (it would keep the cgroup alive).
func (s *slowDisk) close() {
	if data, err := os.ReadFile(filepath.Join(s.dir, "cgroup.procs")); err == nil {
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil {
				_ = movePid(blkioRoot, pid)
			}
		}
	}
	_ = os.Remove(s.dir)
}
