package syncbuf_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/neogo/neo/internal/syncbuf"
)

// TestConcurrent: writers and a reader at once (the race detector checks
// the locking); every line written is there once at the end.
func TestConcurrent(t *testing.T) {
	var b syncbuf.Buffer
	var wg sync.WaitGroup
	const writers, lines = 4, 100
	for w := range writers {
		wg.Go(func() {
			for i := range lines {
				fmt.Fprintf(&b, "w%d-%d\n", w, i)
			}
		})
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range lines {
			_ = b.String()
		}
	}()
	wg.Wait()
	<-done
	got := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(got) != writers*lines {
		t.Fatalf("%d lines, want %d", len(got), writers*lines)
	}
	seen := map[string]bool{}
	for _, l := range got {
		if seen[l] {
			t.Errorf("line %q twice", l)
		}
		seen[l] = true
	}
}
