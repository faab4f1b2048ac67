package procstat

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseCPU(t *testing.T) {
	// comm with a space and a ')': only the last ')' ends it.
	stat := "4242 (neo stor) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 130 0 0 20 0 9 0 1 2 3\n"
	got, err := parseCPU([]byte(stat), "stat")
	if err != nil {
		t.Fatal(err)
	}
	if want := 3800 * time.Millisecond; got != want {
		t.Errorf("cpu = %v, want %v", got, want)
	}
	for _, bad := range []string{"4242 neo S 1", "4242 (neo) S 1 2 3", "4242 (neo) S 1 4242 4242 0 -1 4194560 100 0 0 0 x 130 0"} {
		if _, err := parseCPU([]byte(bad), "stat"); err == nil || !strings.Contains(err.Error(), "stat:") {
			t.Errorf("%q: err = %v, want an error naming the file", bad, err)
		}
	}
}

func TestCPUSelf(t *testing.T) {
	// Work until a tick shows: a test of this process's CPU time,
	// whatever the machine's load.
	deadline := time.Now().Add(10 * time.Second)
	x := 0
	for {
		for i := range 1 << 20 {
			x ^= i
		}
		cpu, err := CPU(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if cpu > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cpu of this process still %v after 10 s of work (%d)", cpu, x)
		}
	}
	if _, err := CPU(-1); err == nil {
		t.Error("CPU(-1): no error")
	}
}

func TestParseMemory(t *testing.T) {
	status := "Name:\tneostorage\nVmPeak:\t 1300000 kB\nVmHWM:\t   81920 kB\nVmRSS:\t   40000 kB\nRssAnon:\t   30000 kB\nRssFile:\t   10000 kB\n"
	got, err := parseMemory([]byte(status), "status")
	if err != nil {
		t.Fatal(err)
	}
	if want := (Memory{PeakRSS: 81920 << 10, RSSAnon: 30000 << 10, RSSFile: 10000 << 10}); got != want {
		t.Errorf("memory = %+v, want %+v", got, want)
	}
	for _, bad := range []string{"Name:\tx\nVmRSS:\t1 kB\n", "VmHWM:\t12 MB\nRssAnon:\t1 kB\nRssFile:\t1 kB\n",
		"VmHWM:\tx kB\n", "VmHWM:\n", "VmHWM:\t1 kB\nRssAnon:\t1 kB\n"} {
		if _, err := parseMemory([]byte(bad), "status"); err == nil || !strings.Contains(err.Error(), "status:") {
			t.Errorf("%q: err = %v, want an error naming the file", bad, err)
		}
	}
}

func TestMemorySelf(t *testing.T) {
	// This process holds at least the slice it has just touched.
	buf := make([]byte, 8<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	m, err := ReadMemory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if m.PeakRSS < int64(len(buf)) || m.RSSAnon < int64(len(buf)) {
		t.Errorf("memory %+v: less than the %d bytes just written", m, len(buf))
	}
	if _, err := ReadMemory(-1); err == nil {
		t.Error("ReadMemory(-1): no error")
	}
}
