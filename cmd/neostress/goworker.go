package main

// The workload through our Go client (--client go): the same run
// structure as worker.py, with package client instead of neoppod's
// client and ZODB. The tool runs itself as the worker processes
// ('neostress go-worker ...', not meant to be run by hand): --procs
// processes of one client.Client each, --threads goroutines per
// process, the same records (rec-P-T.jsonl) and heartbeats (hb-P.json)
// as worker.py, so that the watch, the summary and the verification are
// shared. Objects are raw records (no pickles): an insert's object holds
// its value ("%016x"), the hot counter "H<n>", an append list
// "L<seq>,<seq>,...".
//
// There is no conflict resolution, undo or pack in package client, so
// there are no BTree, Length, uappend, undo or pack transactions: an
// insert stores 1-3 new objects (NewOID), a hot increment loads the
// counter and stores n+1 based on its serial (a *client.ConflictError at
// vote is the application's retry signal, up to maxAttempts), an append
// loads the worker's own list and stores it with one more entry.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/neogo/neo/client"
	"github.com/neogo/neo/proto"
)

// goWorkerMode is the first argument that makes this binary a Go worker
// process.
const goWorkerMode = "go-worker"

const (
	maxAttempts = 20                    // per transaction, conflicts included
	errorPause  = 50 * time.Millisecond // after an exception, before the next transaction
	tbKeep      = 20                    // full error texts recorded per type and place
)

// goLayout is the objects the workload shares, created by goInit and
// written to records/layout.json.
type goLayout struct {
	Hot  proto.Oid            `json:"hot"`
	Logs map[string]proto.Oid `json:"logs"` // worker "P.T" -> its append list
}

func layoutPath(dir string) string { return filepath.Join(dir, "layout.json") }

// goInit creates the hot counter and one append list per worker in one
// transaction, and writes the layout into dir.
func goInit(ctx context.Context, masters []string, cluster string, workers []string, dir string) (*goLayout, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	c, err := client.Open(ctx, client.Config{Masters: masters, Cluster: cluster})
	if err != nil {
		return nil, fmt.Errorf("go client init: %w", err)
	}
	defer c.Close()
	lay := &goLayout{Logs: map[string]proto.Oid{}}
	if lay.Hot, err = c.NewOID(ctx); err != nil {
		return nil, fmt.Errorf("go client init: %w", err)
	}
	txn, err := c.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("go client init: %w", err)
	}
	err = txn.Store(ctx, lay.Hot, proto.ZeroTid, encodeHot(0))
	for _, w := range workers {
		if err != nil {
			break
		}
		var oid proto.Oid
		if oid, err = c.NewOID(ctx); err == nil {
			lay.Logs[w] = oid
			err = txn.Store(ctx, oid, proto.ZeroTid, encodeList(nil))
		}
	}
	if err == nil {
		err = txn.Vote(ctx)
	}
	if err == nil {
		_, err = txn.Finish(ctx)
	} else {
		txn.Abort(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("go client init: %w", err)
	}
	data, _ := json.Marshal(lay)
	if err := os.WriteFile(layoutPath(dir), data, 0o644); err != nil {
		return nil, err
	}
	return lay, nil
}

func readLayout(dir string) (*goLayout, error) {
	data, err := os.ReadFile(layoutPath(dir))
	if err != nil {
		return nil, err
	}
	var lay goLayout
	if err := json.Unmarshal(data, &lay); err != nil {
		return nil, fmt.Errorf("%s: %w", layoutPath(dir), err)
	}
	return &lay, nil
}

func encodeHot(n int) []byte { return []byte("H" + strconv.Itoa(n)) }

func decodeHot(b []byte) (int, error) {
	if len(b) < 2 || b[0] != 'H' {
		return 0, fmt.Errorf("hot counter record %q: not H<n>", b)
	}
	return strconv.Atoi(string(b[1:]))
}

func encodeList(entries []int) []byte {
	var b strings.Builder
	b.WriteByte('L')
	for i, e := range entries {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(e))
	}
	return []byte(b.String())
}

func decodeList(b []byte) ([]int, error) {
	if len(b) < 1 || b[0] != 'L' {
		return nil, fmt.Errorf("append list record %q: not L<seq>,...", b)
	}
	out := []int{}
	if len(b) == 1 {
		return out, nil
	}
	for _, f := range strings.Split(string(b[1:]), ",") {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("append list record %q: %w", b, err)
		}
		out = append(out, n)
	}
	return out, nil
}

// errorKind names an error that reached a worker by the client's
// sentinel or type it matches, for grouping (the "type" of a record).
func errorKind(err error) string {
	var ce *client.ConflictError
	var pe *proto.Error
	switch {
	case errors.As(err, &ce):
		return "client.ConflictError"
	case errors.Is(err, client.ErrMasterLost):
		return "client.ErrMasterLost"
	case errors.Is(err, client.ErrNoStorage):
		return "client.ErrNoStorage"
	case errors.Is(err, client.ErrChecksum):
		return "client.ErrChecksum"
	case errors.Is(err, client.ErrTxnDone):
		return "client.ErrTxnDone"
	case errors.Is(err, client.ErrClosed):
		return "client.ErrClosed"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return "context"
	case errors.As(err, &pe):
		return "proto.Error " + pe.Code.String()
	}
	return fmt.Sprintf("%T", err)
}

// errorOutcome is the outcome of a transaction that failed at stage:
// unknown for an error of Finish, except ErrMasterLost, which Finish
// returns only for a transaction that did not commit (the verification
// holds the client to that).
func errorOutcome(stage string, err error) string {
	if stage == "Finish" && !errors.Is(err, client.ErrMasterLost) {
		return "unknown"
	}
	return "none"
}

// goWorkerMain is 'neostress go-worker MASTERS CLUSTER --proc P ...': one
// worker process. It returns the exit status.
func goWorkerMain(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet(goWorkerMode, flag.ContinueOnError)
	fs.SetOutput(stderr)
	proc := fs.Int("proc", 0, "process index")
	threads := fs.Int("threads", 2, "worker goroutines")
	dir := fs.String("dir", "", "records directory (holds layout.json)")
	seed := fs.Int64("seed", 1, "random seed")
	if len(args) < 2 {
		fmt.Fprintln(stderr, "usage: neostress go-worker MASTERS CLUSTER --proc P --threads T --dir D [--seed S]")
		return exitUsage
	}
	masters, cluster := strings.Fields(args[0]), args[1]
	if err := fs.Parse(args[2:]); err != nil || *dir == "" {
		return exitUsage
	}
	// SIGUSR1: every goroutine's stack to stderr (the hang report).
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		for range usr1 {
			_ = pprof.Lookup("goroutine").WriteTo(stderr, 2)
		}
	}()
	stop := make(chan struct{})
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM, os.Interrupt)
	go func() {
		<-term
		close(stop)
	}()

	hbPath := filepath.Join(*dir, fmt.Sprintf("hb-%d.json", *proc))
	var workers []*goWorker
	beat := func(phase string) {
		hb := heartbeat{T: unix(time.Now()), Pid: os.Getpid(), Phase: phase, Threads: []threadBeat{}}
		for _, w := range workers {
			hb.Threads = append(hb.Threads, w.beat())
		}
		data, _ := json.Marshal(hb)
		tmp := hbPath + ".tmp"
		if os.WriteFile(tmp, data, 0o644) == nil {
			_ = os.Rename(tmp, hbPath)
		}
	}
	beat("connecting")
	lay, err := readLayout(*dir)
	if err != nil {
		fmt.Fprintf(stderr, "go-worker: %v\n", err)
		return exitFail
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx := context.Background()
	var c *client.Client
	for c == nil {
		octx, cancel := context.WithTimeout(ctx, 30*time.Second)
		c, err = client.Open(octx, client.Config{Masters: masters, Cluster: cluster, Logger: log})
		cancel()
		if err != nil {
			fmt.Fprintf(stderr, "go-worker: open: %v\n", err)
			select {
			case <-stop:
				return exitFail
			case <-time.After(time.Second):
			}
		}
	}
	for i := 0; i < *threads; i++ {
		w, err := newGoWorker(*proc, i, c, lay, *dir, *seed, stop)
		if err != nil {
			fmt.Fprintf(stderr, "go-worker: %v\n", err)
			return exitFail
		}
		workers = append(workers, w)
	}
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(ctx)
		}()
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for running := true; running; {
		select {
		case <-tick.C:
			beat("running")
		case <-stop:
			running = false
		case <-done:
			running = false
		}
	}
	beat("stopping")
	for stopped := false; !stopped; {
		select {
		case <-done:
			stopped = true
		case <-tick.C:
			beat("stopping")
		}
	}
	beat("stopped")
	if err := c.Close(); err != nil {
		fmt.Fprintf(stderr, "go-worker: close: %v\n", err)
	}
	beat("done")
	return exitOK
}

// goWorker is one application goroutine. The heartbeat fields are in
// mu (read by the heartbeat); the rest belongs to its goroutine.
type goWorker struct {
	proc, idx int
	me        string
	c         *client.Client
	lay       *goLayout
	rnd       *rand.Rand
	out       *os.File
	stop      <-chan struct{}
	seq       int
	tbSeen    map[string]int
	listTid   proto.Tid // of the last acknowledged append

	mu struct {
		sync.Mutex
		threadBeat
	}
}

func newGoWorker(proc, idx int, c *client.Client, lay *goLayout, dir string, seed int64, stop <-chan struct{}) (*goWorker, error) {
	me := fmt.Sprintf("%d.%d", proc, idx)
	if _, ok := lay.Logs[me]; !ok {
		return nil, fmt.Errorf("layout has no append list for worker %s", me)
	}
	out, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("rec-%d-%d.jsonl", proc, idx)), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	w := &goWorker{proc: proc, idx: idx, me: me, c: c, lay: lay, out: out, stop: stop, tbSeen: map[string]int{},
		rnd: rand.New(rand.NewSource(seed*1000003 + int64(proc)*1009 + int64(idx)))}
	w.mu.Thread, w.mu.Progress, w.mu.Alive = idx, unix(time.Now()), true
	return w, nil
}

func (w *goWorker) beat() threadBeat {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mu.threadBeat
}

// update changes the heartbeat fields under mu.
func (w *goWorker) update(f func(b *threadBeat)) {
	w.mu.Lock()
	f(&w.mu.threadBeat)
	w.mu.Unlock()
}

func (w *goWorker) stopped() bool {
	select {
	case <-w.stop:
		return true
	default:
		return false
	}
}

// pause waits d unless the worker is told to stop.
func (w *goWorker) pause(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-w.stop:
	case <-t.C:
	}
}

// write appends one record (a JSON object) to the worker's log.
func (w *goWorker) write(rec map[string]any) {
	rec["t"] = unix(time.Now())
	data, _ := json.Marshal(rec)
	_, _ = w.out.Write(append(data, '\n'))
}

// writeError records an error that reached the worker; its full text
// goes in "tb" the first tbKeep times per kind and place.
func (w *goWorker) writeError(err error, where string, rec map[string]any) {
	w.update(func(b *threadBeat) { b.Errors++ })
	kind := errorKind(err)
	key := kind + "\x00" + where
	w.tbSeen[key]++
	msg := err.Error()
	if len(msg) > 2000 {
		msg = msg[:2000]
	}
	rec["k"], rec["type"], rec["msg"], rec["where"] = "error", kind, msg, where
	if errors.Is(err, client.ErrMasterLost) {
		rec["via_primary"] = true
	}
	if w.tbSeen[key] <= tbKeep {
		rec["tb"] = fmt.Sprintf("%s: %s\n", where, err)
	}
	w.write(rec)
}

func (w *goWorker) run(ctx context.Context) {
	defer func() {
		w.out.Close()
		w.update(func(b *threadBeat) { b.Alive = false })
	}()
	for !w.stopped() {
		w.step(ctx)
	}
}

// pick chooses the next transaction: 45% insert, 25% hot, 30% append
// (worker.py's proportions without undo and pack).
func (w *goWorker) pick() string {
	r := w.rnd.Float64() * 100
	switch {
	case r < 45:
		return "insert"
	case r < 70:
		return "hot"
	}
	return "append"
}

func (w *goWorker) step(ctx context.Context) {
	op := w.pick()
	rec := map[string]any{"k": "begin", "op": op}
	var oids []proto.Oid
	if op == "insert" {
		n := 1 + w.rnd.Intn(3)
		var keys, vals []string
		for i := 0; i < n; i++ {
			oid, err := w.c.NewOID(ctx)
			if err != nil {
				// outside any transaction, as worker.py's 'setup'
				w.writeError(err, "NewOID", map[string]any{"seq": w.seq, "op": "setup", "outcome": "none"})
				w.update(func(b *threadBeat) { b.Progress = unix(time.Now()) })
				w.pause(errorPause)
				return
			}
			oids = append(oids, oid)
			keys = append(keys, oid.String())
			vals = append(vals, fmt.Sprintf("%016x", w.rnd.Uint64()))
		}
		rec["keys"], rec["vals"] = keys, vals
	}
	w.seq++
	seq := w.seq
	rec["seq"] = seq
	w.write(rec)
	t0 := time.Now()
	w.update(func(b *threadBeat) { b.Op, b.OpStart = &op, secsF(unix(t0)) })
	w.transact(ctx, op, seq, rec, oids, t0)
	w.update(func(b *threadBeat) { b.Op, b.OpStart, b.Progress = nil, nil, unix(time.Now()) })
}

// transact runs the transaction's attempts and records its outcome.
func (w *goWorker) transact(ctx context.Context, op string, seq int, rec map[string]any, oids []proto.Oid, t0 time.Time) {
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		ta := time.Now()
		if attempt > 1 && w.stopped() {
			break
		}
		tid, value, stage, err := w.attempt(ctx, op, seq, rec, oids)
		var ce *client.ConflictError
		if errors.As(err, &ce) {
			w.update(func(b *threadBeat) { b.Conflicts++; b.Progress = unix(time.Now()) })
			w.write(map[string]any{"k": "conflict", "seq": seq, "attempt": attempt, "type": "ConflictError", "msg": err.Error()})
			w.pause(time.Duration(w.rnd.Float64() * float64(5*time.Millisecond) * float64(attempt)))
			// As ZODB does at each transaction's start (Connection's
			// sync): see the commits made meanwhile, so that the retry
			// loads the current revision.
			if err := w.c.Sync(ctx); err != nil {
				w.writeError(err, "Client.Sync", map[string]any{"seq": seq, "op": op, "attempt": attempt,
					"outcome": "none", "t0": unix(t0), "ta": unix(ta)})
				w.pause(errorPause)
				return
			}
			continue
		}
		if err != nil {
			w.writeError(err, "Txn."+stage, map[string]any{"seq": seq, "op": op, "attempt": attempt,
				"outcome": errorOutcome(stage, err), "t0": unix(t0), "ta": unix(ta)})
			w.pause(errorPause)
			return
		}
		now := time.Now()
		w.update(func(b *threadBeat) { b.Commits++; b.LastCommit = secsF(unix(now)) })
		ack := map[string]any{"k": "ack", "seq": seq, "op": op, "attempts": attempt, "t0": unix(t0), "ta": unix(ta), "tid": tid.String()}
		for _, k := range []string{"keys", "vals"} {
			if v, ok := rec[k]; ok {
				ack[k] = v
			}
		}
		if op == "hot" {
			ack["value"] = value
		}
		if op == "append" {
			ack["entry"] = seq
			w.listTid = tid
		}
		w.write(ack)
		return
	}
	w.write(map[string]any{"k": "gaveup", "seq": seq, "op": op})
}

// attempt is one try of the transaction: the tid it committed, the
// value written (hot), or the stage that failed (Load, Begin, Store,
// Vote, Finish) and the error.
func (w *goWorker) attempt(ctx context.Context, op string, seq int, rec map[string]any, oids []proto.Oid) (proto.Tid, int, string, error) {
	type store struct {
		oid    proto.Oid
		serial proto.Tid
		data   []byte
	}
	var stores []store
	value := 0
	switch op {
	case "insert":
		vals := rec["vals"].([]string)
		for i, oid := range oids {
			stores = append(stores, store{oid, proto.ZeroTid, []byte(vals[i])})
		}
	case "hot":
		obj, err := w.c.Load(ctx, w.lay.Hot, proto.InvalidTid)
		if err != nil {
			return 0, 0, "Load", err
		}
		n, err := decodeHot(obj.Data)
		if err != nil {
			return 0, 0, "Load", err
		}
		value = n + 1
		stores = append(stores, store{w.lay.Hot, obj.Serial, encodeHot(value)})
	case "append":
		oid := w.lay.Logs[w.me]
		obj, err := w.c.Load(ctx, oid, proto.InvalidTid)
		if err != nil {
			return 0, 0, "Load", err
		}
		if obj.Serial < w.listTid {
			// Only this worker writes its list: a load after its
			// last acknowledged append must return that revision.
			w.write(map[string]any{"k": "stale", "seq": seq, "op": op,
				"msg": fmt.Sprintf("load of own list %v after the commit of tid %v returned serial %v", oid, w.listTid, obj.Serial)})
		}
		entries, err := decodeList(obj.Data)
		if err != nil {
			return 0, 0, "Load", err
		}
		stores = append(stores, store{oid, obj.Serial, encodeList(append(entries, seq))})
	}
	txn, err := w.c.Begin(ctx)
	if err != nil {
		return 0, 0, "Begin", err
	}
	txn.Description = []byte(op + " " + w.me)
	for _, s := range stores {
		if err := txn.Store(ctx, s.oid, s.serial, s.data); err != nil {
			txn.Abort(ctx)
			return 0, 0, "Store", err
		}
	}
	if err := txn.Vote(ctx); err != nil {
		txn.Abort(ctx)
		return 0, 0, "Vote", err
	}
	tid, err := txn.Finish(ctx)
	if err != nil {
		return 0, 0, "Finish", err
	}
	return tid, value, "", nil
}

// goDump reads the database back with a fresh Go client: the hot
// counter, every append list, and every oid below the next one the
// master allocates (the layout's excepted), present or not. It returns
// it in the form of worker.py dump: the present oids are the "tree"
// (key: oid, value: the record), so that verify checks them against the
// inserts recorded.
func goDump(ctx context.Context, masters []string, cluster string, lay *goLayout) (*dbState, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	c, err := client.Open(ctx, client.Config{Masters: masters, Cluster: cluster})
	if err != nil {
		return nil, fmt.Errorf("read the database back (go client): %w", err)
	}
	defer c.Close()
	if err := c.Sync(ctx); err != nil {
		return nil, fmt.Errorf("read the database back: %w", err)
	}
	load := func(oid proto.Oid) ([]byte, bool, error) {
		var err error
		for try := 0; try < 10; try++ {
			var obj client.Object
			obj, err = c.Load(ctx, oid, proto.InvalidTid)
			switch {
			case err == nil:
				return obj.Data, true, nil
			case errors.Is(err, proto.ErrOidDoesNotExist):
				return nil, false, nil
			case ctx.Err() != nil:
				return nil, false, err
			}
			time.Sleep(200 * time.Millisecond)
		}
		return nil, false, fmt.Errorf("read the database back: %w", err)
	}
	db := &dbState{Tree: [][2]string{}, Logs: map[string][]int{}, ULogs: map[string][]int{}}
	data, ok, err := load(lay.Hot)
	if err == nil && !ok {
		err = fmt.Errorf("hot counter %v missing", lay.Hot)
	}
	if err == nil {
		db.Hot, err = decodeHot(data)
	}
	if err != nil {
		return nil, err
	}
	special := map[proto.Oid]bool{lay.Hot: true}
	for w, oid := range lay.Logs {
		special[oid] = true
		data, ok, err := load(oid)
		if err == nil && !ok {
			err = fmt.Errorf("append list of %s (%v) missing", w, oid)
		}
		if err != nil {
			return nil, err
		}
		if db.Logs[w], err = decodeList(data); err != nil {
			return nil, err
		}
	}
	next, err := c.NewOID(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the database back: %w", err)
	}
	// every oid below next, 8 at a time
	type found struct {
		oid  proto.Oid
		data []byte
	}
	oidc := make(chan proto.Oid)
	var mu sync.Mutex
	var present []found
	var firstErr error
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for oid := range oidc {
				data, ok, err := load(oid)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if ok {
					present = append(present, found{oid, data})
				}
				mu.Unlock()
			}
		}()
	}
	for oid := proto.Oid(0); oid < next; oid++ {
		if !special[oid] {
			oidc <- oid
		}
	}
	close(oidc)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	for _, f := range present {
		db.Tree = append(db.Tree, [2]string{f.oid.String(), string(f.data)})
	}
	db.Length = len(db.Tree)
	if last, err := c.LastTid(ctx); err == nil {
		db.LastTid = last.String()
	}
	return db, nil
}
