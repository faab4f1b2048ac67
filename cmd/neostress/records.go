package main

// The workers' records and their verification against the database read
// back with a fresh client: nothing acknowledged lost, nothing never
// acknowledged present (transactions of unknown outcome may be either,
// but all or nothing), the counters consistent.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// record is one line of a worker thread's rec-P-T.jsonl (see worker.py).
type record struct {
	K         string   `json:"k"` // begin, ack, conflict, error, gaveup
	Seq       int      `json:"seq"`
	Op        string   `json:"op"` // insert, hot, append, undo, pack; setup (errors only)
	Keys      []string `json:"keys"`
	Vals      []string `json:"vals"`
	UndoneSeq int      `json:"undone_seq"`
	UndoneTid string   `json:"undone_tid"`
	Attempt   int      `json:"attempt"`
	Attempts  int      `json:"attempts"`
	Type      string   `json:"type"`
	Msg       string   `json:"msg"`
	TB        string   `json:"tb"`      // only the first ones per type and place
	Where     string   `json:"where"`   // innermost frame, file:line
	Outcome   string   `json:"outcome"` // errors: none or unknown
	T         float64  `json:"t"`       // when written
	T0        float64  `json:"t0"`      // transaction (first attempt) start
	Ta        float64  `json:"ta"`      // last attempt start
	Tid       string   `json:"tid"`
	Value     *int     `json:"value"` // hot: the value written
	// ViaPrimary: the exception came from the client's link to the
	// primary master (worker.py via_primary).
	ViaPrimary bool `json:"via_primary"`
}

// outcome of a transaction.
type outcome int

const (
	notCommitted outcome = iota
	committed
	unknownOutcome // exception in tpc_finish, or the worker was killed
)

func (o outcome) String() string {
	return [...]string{"not committed", "acknowledged", "unknown outcome"}[o]
}

// txn is one transaction of a worker thread, from its records.
type txn struct {
	Worker    string // "P.T", the name of its log
	Begin     record
	End       *record // ack, error or gaveup; nil if it never ended
	Conflicts int
}

func (t *txn) outcome() outcome {
	switch {
	case t.End == nil:
		return unknownOutcome
	case t.End.K == "ack":
		return committed
	case t.End.K == "error" && t.End.Outcome == "unknown":
		return unknownOutcome
	}
	return notCommitted
}

// errorRecord is an exception that reached the application.
type errorRecord struct {
	Worker string
	record
}

// history is everything the workers recorded.
type history struct {
	Txns      map[string][]*txn // worker -> transactions in order
	Errors    []errorRecord
	Conflicts int
	BadLines  int // unparsable lines (a worker killed while writing one)
	// Stale: loads (Go workers) that did not see the worker's own last
	// commit, the first ones' messages.
	Stale    int
	StaleMsg []string
}

var recName = regexp.MustCompile(`^rec-(\d+)-(\d+)\.jsonl$`)

// loadHistory reads every rec-P-T.jsonl of dir.
func loadHistory(dir string) (*history, error) {
	h := &history{Txns: map[string][]*txn{}}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		m := recName.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		if err := h.load(filepath.Join(dir, e.Name()), m[1]+"."+m[2]); err != nil {
			return nil, err
		}
	}
	return h, nil
}

func (h *history) load(path, worker string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	var cur *txn
	for sc.Scan() {
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			h.BadLines++
			continue
		}
		switch r.K {
		case "begin":
			cur = &txn{Worker: worker, Begin: r}
			h.Txns[worker] = append(h.Txns[worker], cur)
		case "stale":
			h.Stale++
			if len(h.StaleMsg) < 5 {
				h.StaleMsg = append(h.StaleMsg, fmt.Sprintf("worker %s seq %d: %s", worker, r.Seq, r.Msg))
			}
		case "conflict":
			h.Conflicts++
			if cur != nil && cur.Begin.Seq == r.Seq {
				cur.Conflicts++
			}
		case "error", "ack", "gaveup":
			if r.K == "error" {
				h.Errors = append(h.Errors, errorRecord{Worker: worker, record: r})
				if r.Op == "setup" {
					continue // outside any transaction
				}
			}
			if cur == nil || cur.Begin.Seq != r.Seq || cur.End != nil {
				return fmt.Errorf("%s: %s record of seq %d without its begin", path, r.K, r.Seq)
			}
			end := r
			cur.End = &end
		}
	}
	return sc.Err()
}

// dbState is the database as 'worker.py dump' reads it.
type dbState struct {
	PackWait  *float64         `json:"pack_wait"`
	TreeCheck *string          `json:"tree_check"`
	Tree      [][2]string      `json:"tree"`
	Length    int              `json:"length"`
	Hot       int              `json:"hot"`
	Logs      map[string][]int `json:"logs"`
	ULogs     map[string][]int `json:"ulogs"`
	LastTid   string           `json:"last_tid"`
}

// verdict is the outcome of the verification.
type verdict struct {
	Lost         int      `json:"lost"`
	Duplicated   int      `json:"duplicated"`
	Inconsistent int      `json:"inconsistent"` // Length, BTrees checks, torn transactions
	Problems     []string `json:"problems"`     // the first maxProblems, one line each
	// transactions of unknown outcome found committed / not committed
	UnknownCommitted int `json:"unknown_committed"`
	UnknownAbsent    int `json:"unknown_absent"`
	Keys             int `json:"keys"`
	Hot              int `json:"hot"`
	LogEntries       int `json:"log_entries"`
}

const maxProblems = 50

func (v *verdict) problem(counter *int, format string, args ...any) {
	*counter++
	if len(v.Problems) < maxProblems {
		v.Problems = append(v.Problems, fmt.Sprintf(format, args...))
	}
}

// verify compares the history with the database.
func verify(h *history, db *dbState) verdict {
	var v verdict
	v.Keys, v.Hot = len(db.Tree), db.Hot
	if db.TreeCheck != nil {
		v.problem(&v.Inconsistent, "BTrees check of the tree: %s", *db.TreeCheck)
	}
	if db.Length != len(db.Tree) {
		v.problem(&v.Inconsistent, "Length %d != len(tree) %d", db.Length, len(db.Tree))
	}
	workers := make([]string, 0, len(h.Txns))
	for w := range h.Txns {
		workers = append(workers, w)
	}
	sort.Slice(workers, func(i, j int) bool { return workerOrder(workers[i], workers[j]) })

	// inserts; a key may be written by several transactions (Go
	// workers: a new master may allocate again the oids of a
	// transaction its predecessor's loss failed), at most one of which
	// commits (the others conflict: the object exists)
	type want struct {
		val string
		t   *txn
	}
	keys := map[string][]want{}
	for _, w := range workers {
		for _, t := range h.Txns[w] {
			if t.Begin.Op == "insert" {
				for i, k := range t.Begin.Keys {
					if i < len(t.Begin.Vals) {
						keys[k] = append(keys[k], want{t.Begin.Vals[i], t})
					}
				}
			}
		}
	}
	present := map[*txn]int{}
	inTree := make(map[string]bool, len(db.Tree))
	for _, kv := range db.Tree {
		k, val := kv[0], kv[1]
		inTree[k] = true
		writers, ok := keys[k]
		if !ok {
			v.problem(&v.Duplicated, "key %s in the tree was never written", k)
			continue
		}
		var match, maybe *want
		for i := range writers {
			wk := &writers[i]
			if wk.t.outcome() == notCommitted {
				continue
			}
			if maybe == nil {
				maybe = wk
			}
			if val == wk.val && match == nil {
				match = wk
			}
		}
		switch {
		case match != nil:
			present[match.t]++
		case maybe != nil:
			v.problem(&v.Lost, "key %s: value %s, acknowledged %s", k, val, maybe.val)
			present[maybe.t]++
		default:
			wk := writers[len(writers)-1]
			v.problem(&v.Duplicated, "key %s in the tree: its transaction (worker %s seq %d) was %s", k, wk.t.Worker, wk.t.Begin.Seq, describeEnd(wk.t))
		}
	}
	for _, w := range workers {
		for _, t := range h.Txns[w] {
			if t.Begin.Op != "insert" {
				continue
			}
			n := present[t]
			switch t.outcome() {
			case committed:
				if n != len(t.Begin.Keys) {
					for _, k := range t.Begin.Keys {
						if !inTree[k] {
							v.problem(&v.Lost, "key %s lost (worker %s seq %d, acknowledged tid %s)", k, w, t.Begin.Seq, t.End.Tid)
						}
					}
				}
			case unknownOutcome:
				switch n {
				case 0:
					v.UnknownAbsent++
				case len(t.Begin.Keys):
					v.UnknownCommitted++
				default:
					v.problem(&v.Inconsistent, "insert of worker %s seq %d (unknown outcome) half committed: %d of %d keys", w, t.Begin.Seq, n, len(t.Begin.Keys))
				}
			}
		}
	}

	// hot counter: exactly the acknowledged increments, plus those of
	// unknown outcome that committed
	acked, unknown := 0, 0
	values := map[int]string{}
	maxValue := 0
	for _, w := range workers {
		for _, t := range h.Txns[w] {
			if t.Begin.Op != "hot" {
				continue
			}
			switch t.outcome() {
			case committed:
				acked++
				if t.End.Value != nil {
					val := *t.End.Value
					id := fmt.Sprintf("worker %s seq %d tid %s", w, t.Begin.Seq, t.End.Tid)
					if prev, dup := values[val]; dup {
						v.problem(&v.Lost, "hot counter: value %d acknowledged twice (%s and %s): a lost update", val, prev, id)
					}
					values[val] = id
					maxValue = max(maxValue, val)
				}
			case unknownOutcome:
				unknown++
			}
		}
	}
	switch {
	case db.Hot < acked:
		v.problem(&v.Lost, "hot counter %d < %d acknowledged increments: %d lost", db.Hot, acked, acked-db.Hot)
	case db.Hot > acked+unknown:
		v.problem(&v.Duplicated, "hot counter %d > %d acknowledged + %d unknown increments: %d never acknowledged", db.Hot, acked, unknown, db.Hot-acked-unknown)
	case maxValue > db.Hot:
		v.problem(&v.Lost, "hot counter %d < %d, a value acknowledged", db.Hot, maxValue)
	}

	// append logs: acknowledged appends present in order unless undone
	for kind, logs := range map[string]map[string][]int{"logs": db.Logs, "ulogs": db.ULogs} {
		for name, entries := range logs {
			v.LogEntries += len(entries)
			if _, ok := h.Txns[name]; !ok && len(entries) > 0 {
				v.problem(&v.Duplicated, "%s %s has %d entries but its worker never ran", kind, name, len(entries))
			}
		}
	}
	for _, w := range workers {
		verifyLog(&v, "logs "+w, "append", h.Txns[w], db.Logs[w])
		verifyLog(&v, "ulogs "+w, "uappend", h.Txns[w], db.ULogs[w])
	}
	return v
}

func describeEnd(t *txn) string {
	if t.End == nil {
		return "never ended"
	}
	switch t.End.K {
	case "error":
		return fmt.Sprintf("not committed (%s raised outside tpc_finish)", t.End.Type)
	case "gaveup":
		return "not committed (gave up after conflicts)"
	}
	return t.outcome().String()
}

// entryState is what the log must hold of one append.
type entryState int

const (
	mustNot entryState = iota // never acknowledged, or undone
	may                       // unknown outcome (of the append or of its undo)
	must                      // acknowledged, not undone
)

// verifyLog checks one thread's list: the appends of op (append or
// uappend), less the undone ones, in order.
func verifyLog(v *verdict, w, op string, txns []*txn, entries []int) {
	state := map[int]entryState{}
	why := map[int]string{}
	for _, t := range txns {
		switch t.Begin.Op {
		case op:
			switch t.outcome() {
			case committed:
				state[t.Begin.Seq] = must
			case unknownOutcome:
				state[t.Begin.Seq] = may
			default:
				why[t.Begin.Seq] = describeEnd(t)
			}
		case "undo":
			if op != "uappend" {
				continue
			}
			target := t.Begin.UndoneSeq
			switch t.outcome() {
			case committed:
				state[target] = mustNot
				why[target] = fmt.Sprintf("undone by seq %d", t.Begin.Seq)
			case unknownOutcome:
				if state[target] == must {
					state[target] = may
				}
			}
		}
	}
	seen := map[int]bool{}
	last := -1
	for i, e := range entries {
		if seen[e] {
			v.problem(&v.Duplicated, "%s: entry %d twice", w, e)
			continue
		}
		seen[e] = true
		if e <= last {
			v.problem(&v.Inconsistent, "%s: entry %d at position %d after %d: out of order", w, e, i, last)
		}
		last = e
		if st, ok := state[e]; !ok || st == mustNot {
			reason := why[e]
			if reason == "" {
				reason = "never written"
			}
			v.problem(&v.Duplicated, "%s: entry %d present but %s", w, e, reason)
		}
	}
	seqs := make([]int, 0, len(state))
	for s := range state {
		seqs = append(seqs, s)
	}
	sort.Ints(seqs)
	for _, s := range seqs {
		if state[s] == must && !seen[s] {
			v.problem(&v.Lost, "%s: acknowledged append %d lost", w, s)
		}
	}
}

// excGroup is the exceptions of one type raised at one place.
type excGroup struct {
	Type       string    `json:"type"`
	Where      string    `json:"where"` // innermost frame: file:line in function
	Count      int       `json:"count"`
	Unknown    int       `json:"unknown_outcome"` // raised inside tpc_finish
	Ops        []string  `json:"ops"`
	Message    string    `json:"message"`    // of the first one
	Traceback  string    `json:"traceback"`  // of the first one
	Tracebacks []string  `json:"tracebacks"` // the distinct ones, at most maxTracebacks
	Times      []float64 `json:"times"`      // UNIX times
}

const maxTracebacks = 10

var tbFrame = regexp.MustCompile(`File "([^"]+)", line (\d+), in (\S+)`)

// innermost is the last frame of a Python traceback, its file shortened
// to the path inside its package tree.
func innermost(tb string) string {
	m := tbFrame.FindAllStringSubmatch(tb, -1)
	if len(m) == 0 {
		return "?"
	}
	f := m[len(m)-1]
	return shortPath(f[1]) + ":" + f[2] + " in " + f[3]
}

// shortPath is a Python source path from its package tree on.
func shortPath(file string) string {
	for _, marker := range []string{"/neoppod/", "/site-packages/", "/dist-packages/", "/src/"} {
		if i := strings.LastIndex(file, marker); i >= 0 {
			return file[i+len(marker):]
		}
	}
	return file
}

// groupErrors groups the exceptions by type and innermost frame, most
// frequent first.
func groupErrors(errs []errorRecord) []excGroup {
	idx := map[string]*excGroup{}
	var order []*excGroup
	for _, e := range errs {
		key := e.Type + "\x00" + e.Where
		g, ok := idx[key]
		if !ok {
			g = &excGroup{Type: e.Type, Where: shortPath(e.Where), Message: e.Msg}
			idx[key] = g
			order = append(order, g)
		}
		if g.Traceback == "" && e.TB != "" {
			g.Traceback = e.TB
			if w := innermost(e.TB); w != "?" {
				g.Where = w // Python: the innermost frame; Go: the operation
			}
		}
		if e.TB != "" && len(g.Tracebacks) < maxTracebacks && !contains(g.Tracebacks, e.TB) {
			g.Tracebacks = append(g.Tracebacks, e.TB)
		}
		g.Times = append(g.Times, e.T)
		g.Count++
		if e.Outcome == "unknown" {
			g.Unknown++
		}
		if !contains(g.Ops, e.Op) {
			g.Ops = append(g.Ops, e.Op)
		}
	}
	sort.SliceStable(order, func(i, j int) bool { return order[i].Count > order[j].Count })
	out := make([]excGroup, len(order))
	for i, g := range order {
		out[i] = *g
	}
	return out
}

// workerOrder sorts "P.T" names numerically.
func workerOrder(a, b string) bool {
	pa, ta, _ := strings.Cut(a, ".")
	pb, tb, _ := strings.Cut(b, ".")
	ia, _ := strconv.Atoi(pa)
	ib, _ := strconv.Atoi(pb)
	if ia != ib {
		return ia < ib
	}
	ja, _ := strconv.Atoi(ta)
	jb, _ := strconv.Atoi(tb)
	return ja < jb
}
