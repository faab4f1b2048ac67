package importer

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/neogo/neo/filestorage"
	"github.com/neogo/neo/importconf"
	"github.com/neogo/neo/internal/syncbuf"
	"github.com/neogo/neo/storage/backend"
	"github.com/neogo/neo/storage/backend/backendtest"
)

// crashChildEnv names the directory of the import a re-executed test
// binary runs until it is killed.
const crashChildEnv = "NEO_IMPORTER_CRASH_CHILD"

const crashConf = `[neo]
adapter=SQLite
database=%s/neo.sqlite
import_rate=%s
[root]
storage=
  <filestorage>
    path %s/root.fs
    read-only true
  </filestorage>
`

func crashOpen(t *testing.T, dir, rate string, log *slog.Logger, progress time.Duration) *Importer {
	conf, err := importconf.Parse("importer.conf", []byte(fmt.Sprintf(crashConf, dir, rate, dir)), nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: context.Background(), dir: dir, conf: conf}
	im, err := OpenConfig(e.ctx, conf, Options{Options: backend.Options{Logger: log}, BatchBytes: 16 << 10, CommitInterval: time.Millisecond, ProgressInterval: progress})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, cells, _ := im.PartitionTable(e.ctx); len(cells) == 0 {
		if err := backendtest.Setup(e.ctx, im, "test", np); err != nil {
			t.Fatal(err)
		}
	}
	return im
}

// TestKill9 kills a process importing (SIGKILL, after some commits), then
// imports again: every source transaction and record ends up in the
// destination once, with its data.
func TestKill9(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		log := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelDebug}))
		im := crashOpen(t, dir, "1M", log, 0) // slow: killed in the middle
		im.Wait(context.Background())
		t.Fatal("crash child was not killed")
	}
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	dir := t.TempDir()
	writeBigFS(t, filepath.Join(dir, "root.fs"), 2)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestKill9$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	commits := 0
	sc := bufio.NewScanner(stdout)
	for commits < 5 && sc.Scan() {
		if strings.Contains(sc.Text(), "importer: committed") {
			commits++
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	go io.Copy(io.Discard, stdout)
	cmd.Wait()
	if commits < 5 {
		t.Fatalf("child: %d commits before it ended", commits)
	}

	im := crashOpen(t, dir, "0", nil, 0)
	defer im.Close()
	if tid, done := im.Imported(); tid == 0 || done {
		t.Fatalf("after the kill: imported up to %v, done %v: the kill was not in the middle of the import", tid, done)
	}
	if err := im.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	fs, err := filestorage.Open(filepath.Join(dir, "root.fs"), filestorage.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	it := fs.Iterate(0)
	txns, records := 0, 0
	for {
		tx, err := it.NextTxn()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		txns++
		for {
			d, err := it.NextData()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			records++
			o, err := im.Load(ctx, d.Oid, tx.Tid, inv)
			if err != nil {
				t.Fatalf("oid %v at %v: %v", d.Oid, tx.Tid, err)
			}
			got, err := decompress(o)
			if err != nil || !bytes.Equal(got, d.Data) {
				t.Fatalf("oid %v at %v: wrong data (%v)", d.Oid, tx.Tid, err)
			}
		}
	}
	st, err := im.Stats(ctx)
	if err != nil || st.Transactions != txns || st.Objects != records {
		t.Fatalf("after kill -9 and restart: %+v %v, want %d transactions, %d objects", st, err, txns, records)
	}
}

// The import logs its progress at a steady pace, then the end.
func TestProgressLog(t *testing.T) {
	dir := t.TempDir()
	writeBigFS(t, filepath.Join(dir, "root.fs"), 1)
	var buf syncbuf.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	im := crashOpen(t, dir, "2M", log, 50*time.Millisecond)
	defer im.Close()
	if err := im.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	n := strings.Count(out, "importer: progress")
	if n < 3 {
		t.Errorf("%d progress lines in 0.5 s or more, every 50 ms:\n%s", n, out)
	}
	for _, want := range []string{"transactions=", "bytes=", "MB/s=", "left=", "All data are imported. You should change your configuration to use the native backend and restart."} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in the log:\n%s", want, out)
		}
	}
}
