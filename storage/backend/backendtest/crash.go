package backendtest

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

// crashChildEnv names the database a re-executed test binary commits to.
const crashChildEnv = "NEO_BACKENDTEST_CRASH_CHILD"

// Crash test parameters: the parent kills the child after crashAcks
// acknowledged commits; the child stops by itself after crashMax.
const (
	crashAcks = 60
	crashMax  = 100000
)

// crashChild commits transactions until killed, printing "locked TTID TID"
// once a transaction is locked (what the client's acknowledgement waits
// for) and "unlocked TID" once it is unlocked.
func crashChild(t *testing.T, open Opener, path string) {
	ctx := context.Background()
	b, err := open(t, path, backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := bufio.NewWriter(os.Stdout)
	for i := 0; i < crashMax; i++ {
		ttid := proto.Tid(0x1000 + 2*NP*i)
		tid := ttid + NP
		recs := []backend.Record{rec(proto.Oid(i%16), []byte(fmt.Sprintf("data %d", i))), rec(proto.Oid(100+i), make([]byte, 2000))}
		meta := &backend.TxnMeta{TTid: ttid, User: []byte("crash"), Oids: oidsOf(recs)}
		if err := b.StoreTransaction(ctx, ttid, recs, meta); err != nil {
			t.Fatal(err)
		}
		if err := b.LockTransaction(ctx, ttid, tid, false); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(out, "locked %d %d\n", ttid, tid)
		out.Flush()
		if err := b.UnlockTransaction(ctx, ttid, tid); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(out, "unlocked %d\n", tid)
		out.Flush()
	}
	t.Fatal("crash child was not killed")
}

func testCrash(t *testing.T, open Opener) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	e := newEnv(t, open, backend.Options{})
	e.must(e.b.Close())
	e.b = nil
	top, _, _ := strings.Cut(t.Name(), "/")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+top+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+e.path)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	e.must(err)
	e.must(cmd.Start())
	locked := map[proto.Tid]proto.Tid{}
	unlocked := map[proto.Tid]bool{}
	sc := bufio.NewScanner(stdout)
	for len(unlocked) < crashAcks && sc.Scan() {
		var ttid, tid uint64
		if n, _ := fmt.Sscanf(sc.Text(), "locked %d %d", &ttid, &tid); n == 2 {
			locked[proto.Tid(ttid)] = proto.Tid(tid)
		} else if n, _ := fmt.Sscanf(sc.Text(), "unlocked %d", &tid); n == 1 {
			unlocked[proto.Tid(tid)] = true
		}
	}
	// Kill while it is committing: it never stops between transactions.
	cmd.Process.Signal(syscall.SIGKILL)
	for sc.Scan() { // lines written before the kill count too
		var ttid, tid uint64
		if n, _ := fmt.Sscanf(sc.Text(), "locked %d %d", &ttid, &tid); n == 2 {
			locked[proto.Tid(ttid)] = proto.Tid(tid)
		} else if n, _ := fmt.Sscanf(sc.Text(), "unlocked %d", &tid); n == 1 {
			unlocked[proto.Tid(tid)] = true
		}
	}
	err = cmd.Wait()
	if len(unlocked) < crashAcks {
		t.Fatalf("child acknowledged %d commits before exiting: %v", len(unlocked), err)
	}
	e.reopen()
	pending := e.locked()
	var replayed, replayedUnlocked int
	for ttid, tid := range locked {
		if _, err := e.b.Transaction(e.ctx, tid); err == nil {
			continue
		}
		// Locked, and its unlock not committed (a backend may defer it,
		// cluster.md §6.10): verification replays it.
		if pending[ttid] != tid {
			t.Errorf("locked transaction %s (tid %s, unlocked: %v) lost: temporary tables have %v", ttid, tid, unlocked[tid], pending)
			continue
		}
		e.must(e.b.ValidateTransaction(e.ctx, ttid, tid))
		replayed++
		if unlocked[tid] {
			replayedUnlocked++
		}
	}
	e.must(e.b.DropUnfinishedData(e.ctx))
	for ttid, tid := range locked {
		m, err := e.b.Transaction(e.ctx, tid)
		if err != nil {
			t.Errorf("transaction %s: %v", tid, err)
			continue
		}
		for _, oid := range m.Oids {
			if _, err := e.b.Load(e.ctx, oid, tid, none); err != nil {
				t.Errorf("transaction %s (ttid %s): %v", tid, ttid, err)
			}
		}
	}
	t.Logf("%d locked, %d unlocked acknowledged before SIGKILL, %d replayed from temporary tables (%d of them unlocked); %v left pending",
		len(locked), len(unlocked), replayed, replayedUnlocked, maps.Collect(maps.All(pending)))
}
