package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/neogo/neo/internal/nodelog"
	"github.com/neogo/neo/internal/syncbuf"
)

// TestFollow: with -f, records written after the start are printed, each
// once, until neolog is stopped.
func TestFollow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n.log")
	l, err := nodelog.Open(path, nodelog.Options{MaxBuffer: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	log := slog.New(l.Handler(nil))
	log.Info("first")
	ctx, cancel := context.WithCancel(context.Background())
	var out syncbuf.Buffer
	status := make(chan int, 1)
	go func() { status <- run(ctx, []string{"-f", "-s", "0.02", path}, &out, &out) }()
	wait := func(s string) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !strings.Contains(out.String(), s); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q after 30 s:\n%s", s, out.String())
			}
		}
	}
	wait("first")
	log.Info("second")
	wait("second")
	log.Warn("third")
	wait("third")
	cancel()
	if st := <-status; st != 0 {
		t.Errorf("status %d", st)
	}
	for _, s := range []string{"first", "second", "third"} {
		if n := strings.Count(out.String(), s); n != 1 {
			t.Errorf("%q printed %d times:\n%s", s, n, out.String())
		}
	}
}
