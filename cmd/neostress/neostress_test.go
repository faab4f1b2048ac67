package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/neogo/neo/client"
	"github.com/neogo/neo/proto"
)

const ptOut = `# ptid: 7, replicas: 1
             10v
S1 R U.UU.FU.OU.U
S2 R OU.UU.UU.UU.
S3 D .UU.OU.UU.FU
`

func TestParsePT(t *testing.T) {
	pt, err := parsePT(ptOut)
	if err != nil {
		t.Fatal(err)
	}
	if pt.PTid != 7 || pt.Replicas != 1 || len(pt.Rows) != 3 || pt.np() != 12 {
		t.Fatalf("parsed %+v", pt)
	}
	if r := pt.Rows[2]; r.NID != "S3" || r.State != 'D' || r.Cells != ".UU.OU.UU.FU" {
		t.Errorf("row 3 = %+v", r)
	}
	for _, bad := range []string{"", "ptid 7", "# ptid: 1, replicas: 0\nS1 R UU\nS2 R U\n", "# ptid: 1, replicas: 0\nS1 UU\n"} {
		if _, err := parsePT(bad); err == nil {
			t.Errorf("parsePT(%q): no error", bad)
		}
	}
}

func TestUpToDateNeedsEveryStorageRunningAndEveryCellU(t *testing.T) {
	ok, _ := parsePT("# ptid: 3, replicas: 1\nS1 R UUU\nS2 R UUU\n")
	if !ok.allUpToDate(2) {
		t.Error("all U, all R: not up to date")
	}
	if ok.allUpToDate(3) {
		t.Error("a storage missing from the table: up to date")
	}
	for _, out := range []string{
		"# ptid: 3, replicas: 1\nS1 R UUU\nS2 D UUU\n", // down node
		"# ptid: 3, replicas: 1\nS1 R UOU\nS2 R UUU\n", // out of date
		"# ptid: 3, replicas: 1\nS1 R UFU\nS2 R UUU\n", // feeding
		"# ptid: 3, replicas: 1\nS1 R U.U\nS2 R UUU\n", // a missing replica
	} {
		pt, err := parsePT(out)
		if err != nil {
			t.Fatal(err)
		}
		if pt.allUpToDate(2) {
			t.Errorf("%q: up to date", out)
		}
	}
}

func TestSurvivesNeedsAnotherRunningUpToDateCell(t *testing.T) {
	pt, _ := parsePT("# ptid: 3, replicas: 1\nS1 R UUU\nS2 R UOU\nS3 D ..U\n")
	if pt.survives("S1") {
		t.Error("S1 holds the only readable cell of partition 1 on a running node, yet survives")
	}
	if !pt.survives("S2") {
		t.Error("S2: S1 has every partition UP_TO_DATE, yet not survivable")
	}
	// S3 is down: its cells do not count
	pt, _ = parsePT("# ptid: 3, replicas: 1\nS1 R UU.\nS3 D ..U\nS2 R U.U\n")
	if pt.survives("S2") {
		t.Error("partition 2 only on S2 (and a down node), yet S2 survivable")
	}
	if c := pt.corrupted(); c != nil {
		t.Errorf("corrupted = %v", c)
	}
	pt, _ = parsePT("# ptid: 3, replicas: 1\nS1 R UC.\n")
	if c := pt.corrupted(); !slices.Equal(c, []string{"S1:1"}) {
		t.Errorf("corrupted = %v", c)
	}
}

func TestParseNodes(t *testing.T) {
	nodes := parseNodes("A1 | ADMIN   | 127.0.0.1:22101 | RUNNING | 2026-12-07 11:10:48.437540\n" +
		"S2 | STORAGE | 127.0.0.1:45269 | DOWN    | None\n")
	if len(nodes) != 2 || nodes[1] != (nodeInfo{"S2", "STORAGE", "127.0.0.1:45269", "DOWN"}) {
		t.Errorf("nodes = %+v", nodes)
	}
}

func TestSSParsing(t *testing.T) {
	for _, l := range []string{
		`ESTAB 0      0      127.0.0.1:47074 127.0.0.1:44281 users:(("neostorage",pid=5156,fd=17))`,
		`0      0      127.0.0.1:47074 127.0.0.1:44281 users:(("neostorage",pid=5156,fd=17))`,
	} {
		lp, pp, ok := ssPorts(l)
		if !ok || lp != 47074 || pp != 44281 {
			t.Errorf("ssPorts(%q) = %d %d %v", l, lp, pp, ok)
		}
		if pid := ssPid(l); pid != 5156 {
			t.Errorf("ssPid(%q) = %d", l, pid)
		}
	}
	if _, _, ok := ssPorts("LISTEN 0 4096 *:* "); ok {
		t.Error("ssPorts of a line without ports: ok")
	}
}

func TestCheckLines(t *testing.T) {
	for _, c := range []struct {
		line string
		py   bool
		want checkEvent
	}{
		{`time=2026-12-07T11:23:36.226Z level=INFO msg="partition checked" cluster=c role=storage addr=127.0.0.1:1 partition=4 min_tid=0`, false, checkEvent{kind: "checked", partition: 4}},
		{`time=2026-12-07T11:23:36.226Z level=ERROR msg="partition corrupted" node=master cluster=c partition=7 nodes="[S2 S1]"`, false, checkEvent{kind: "corrupted", partition: 7}},
		{`time=x level=WARN msg="check of partition aborted" partition=11`, false, checkEvent{kind: "aborted", partition: 11}},
		{`time=x level=ERROR msg="failed to start checking partition (no replica)" partition=2`, false, checkEvent{kind: "failed", partition: 2}},
		{`partition 3 checked from 0000000000000000 to 040d898b8d101469`, true, checkEvent{kind: "checked", partition: 3}},
		{`Partition 5 corrupted in: S1, S2`, true, checkEvent{kind: "corrupted", partition: 5}},
		{`check of partition 6 aborted`, true, checkEvent{kind: "aborted", partition: 6}},
		{`Failed to start checking partition 8 (no replica)`, true, checkEvent{kind: "failed", partition: 8}},
	} {
		parse := parseGoCheckLine
		if c.py {
			parse = parsePyCheckLine
		}
		got, ok := parse(c.line)
		if !ok || got.kind != c.want.kind || got.partition != c.want.partition {
			t.Errorf("%q: %+v %v, want %+v", c.line, got, ok, c.want)
		}
	}
	if _, ok := parseGoCheckLine(`time=x level=INFO msg="partition table loaded" ptid=1`); ok {
		t.Error("an unrelated line parsed as a check outcome")
	}
}

// writeRecords writes one worker thread's records file.
func writeRecords(t *testing.T, dir, name string, lines ...string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func loadTestHistory(t *testing.T) *history {
	dir := t.TempDir()
	writeRecords(t, dir, "rec-0-0.jsonl",
		`{"k":"begin","seq":1,"op":"insert","keys":["0.0.1.0","0.0.1.1"],"vals":["a","b"],"t":1}`,
		`{"k":"ack","seq":1,"op":"insert","attempts":1,"t0":1,"ta":1,"tid":"01","t":2}`,
		`{"k":"begin","seq":2,"op":"hot","t":2}`,
		`{"k":"conflict","seq":2,"attempt":1,"type":"ConflictError","t":2}`,
		`{"k":"ack","seq":2,"op":"hot","attempts":2,"tid":"02","value":1,"t":3}`,
		`{"k":"begin","seq":3,"op":"append","t":3}`,
		`{"k":"ack","seq":3,"op":"append","tid":"03","t":3}`,
		`{"k":"begin","seq":4,"op":"uappend","t":3}`,
		`{"k":"ack","seq":4,"op":"uappend","tid":"04","t":3}`,
		`{"k":"begin","seq":5,"op":"undo","undone_seq":4,"undone_tid":"04","t":4}`,
		`{"k":"ack","seq":5,"op":"undo","t":5}`,
		`{"k":"begin","seq":6,"op":"insert","keys":["0.0.6.0"],"vals":["c"],"t":5}`,
		`{"k":"error","seq":6,"op":"insert","type":"NEOStorageError","msg":"boom","where":"/x/neoppod/neo/client/app.py:623","tb":"Traceback (most recent call last):\n  File \"/x/neoppod/neo/client/app.py\", line 623, in waitStoreResponses\n    x\nNEOStorageError: boom\n","outcome":"none","t":6}`,
		`{"k":"begin","seq":7,"op":"insert","keys":["0.0.7.0"],"vals":["d"],"t":6}`,
		`{"k":"error","seq":7,"op":"insert","type":"NEOStorageError","msg":"boom","where":"/x/neoppod/neo/client/app.py:623","outcome":"unknown","t":7}`,
		`{"k":"begin","seq":8,"op":"append","t":7}`,
		`{"k":"ack","seq":8,"op":"append","tid":"08","t":8}`,
		`{"k":"begin","seq":9,"op":"uappend","t":8}`,
		`{"k":"ack","seq":9,"op":"uappend","tid":"09","t":9}`,
		`{"k":"begin","seq":10,"op":"hot","t":9}`, // killed: unknown outcome
		`{"k":"ack","seq":10,"op":`,               // torn line
	)
	writeRecords(t, dir, "rec-0-1.jsonl",
		`{"k":"begin","seq":1,"op":"hot","t":1}`,
		`{"k":"ack","seq":1,"op":"hot","tid":"05","value":2,"t":2}`,
		`{"k":"begin","seq":2,"op":"append","t":2}`,
		`{"k":"gaveup","seq":2,"op":"append","t":3}`,
	)
	h, err := loadHistory(dir)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// goodDB is a database consistent with loadTestHistory.
func goodDB() *dbState {
	return &dbState{
		Tree:   [][2]string{{"0.0.1.0", "a"}, {"0.0.1.1", "b"}},
		Length: 2,
		Hot:    2,
		Logs:   map[string][]int{"0.0": {3, 8}, "0.1": {}},
		ULogs:  map[string][]int{"0.0": {9}, "0.1": {}},
	}
}

func TestVerifyAcceptsTheAcknowledgedState(t *testing.T) {
	h := loadTestHistory(t)
	if h.BadLines != 1 || h.Conflicts != 1 || len(h.Errors) != 2 {
		t.Fatalf("history: %d bad lines, %d conflicts, %d errors", h.BadLines, h.Conflicts, len(h.Errors))
	}
	v := verify(h, goodDB())
	if v.Lost+v.Duplicated+v.Inconsistent != 0 {
		t.Fatalf("verify: %+v", v)
	}
	if v.UnknownAbsent != 1 {
		t.Errorf("unknown absent = %d, want 1", v.UnknownAbsent)
	}
	// unknown outcomes may have committed: the insert of seq 7 and the
	// hot increment of seq 10
	db := goodDB()
	db.Tree = append(db.Tree, [2]string{"0.0.7.0", "d"})
	db.Length, db.Hot = 3, 3
	if v := verify(h, db); v.Lost+v.Duplicated+v.Inconsistent != 0 || v.UnknownCommitted != 1 {
		t.Fatalf("verify with unknown outcomes committed: %+v", v)
	}
}

func TestVerifyFindsLostAndDuplicated(t *testing.T) {
	h := loadTestHistory(t)
	for _, c := range []struct {
		name              string
		change            func(*dbState)
		lost, dup, incons int
	}{
		{"acknowledged key missing", func(d *dbState) { d.Tree = d.Tree[:1]; d.Length = 1 }, 1, 0, 0},
		{"wrong value", func(d *dbState) { d.Tree[0][1] = "x" }, 1, 0, 0},
		{"key of a failed transaction", func(d *dbState) {
			d.Tree = append(d.Tree, [2]string{"0.0.6.0", "c"})
			d.Length = 3
		}, 0, 1, 0},
		{"key never written", func(d *dbState) { d.Tree = append(d.Tree, [2]string{"zz", "c"}); d.Length = 3 }, 0, 1, 0},
		{"Length off", func(d *dbState) { d.Length = 5 }, 0, 0, 1},
		{"hot counter low", func(d *dbState) { d.Hot = 1 }, 1, 0, 0},
		{"hot counter high", func(d *dbState) { d.Hot = 4 }, 0, 1, 0},
		{"acknowledged append missing", func(d *dbState) { d.Logs["0.0"] = []int{8} }, 1, 0, 0},
		{"undone append present", func(d *dbState) { d.ULogs["0.0"] = []int{4, 9} }, 0, 1, 0},
		{"given-up append present", func(d *dbState) { d.Logs["0.1"] = []int{2} }, 0, 1, 0},
		{"append twice", func(d *dbState) { d.Logs["0.0"] = []int{3, 8, 8} }, 0, 1, 0},
		{"appends out of order", func(d *dbState) { d.Logs["0.0"] = []int{8, 3} }, 0, 0, 1},
		{"log of no worker", func(d *dbState) { d.Logs["9.9"] = []int{1} }, 0, 1, 0},
		{"BTrees check", func(d *dbState) { s := "ValueError: bad"; d.TreeCheck = &s }, 0, 0, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			db := goodDB()
			c.change(db)
			v := verify(h, db)
			if v.Lost != c.lost || v.Duplicated != c.dup || v.Inconsistent != c.incons {
				t.Errorf("lost %d dup %d inconsistent %d, want %d %d %d: %q", v.Lost, v.Duplicated, v.Inconsistent,
					c.lost, c.dup, c.incons, v.Problems)
			}
		})
	}
}

func TestVerifyFindsLostUpdates(t *testing.T) {
	dir := t.TempDir()
	writeRecords(t, dir, "rec-0-0.jsonl",
		`{"k":"begin","seq":1,"op":"hot","t":1}`,
		`{"k":"ack","seq":1,"op":"hot","tid":"01","value":1,"t":2}`)
	writeRecords(t, dir, "rec-1-0.jsonl",
		`{"k":"begin","seq":1,"op":"hot","t":1}`,
		`{"k":"ack","seq":1,"op":"hot","tid":"02","value":1,"t":2}`)
	h, err := loadHistory(dir)
	if err != nil {
		t.Fatal(err)
	}
	v := verify(h, &dbState{Hot: 2})
	if v.Lost != 1 {
		t.Errorf("two increments acknowledged with the same value: lost %d: %q", v.Lost, v.Problems)
	}
}

func TestGroupErrors(t *testing.T) {
	h := loadTestHistory(t)
	g := groupErrors(h.Errors)
	if len(g) != 1 || g[0].Count != 2 || g[0].Unknown != 1 || g[0].Where != "neo/client/app.py:623 in waitStoreResponses" ||
		!strings.Contains(g[0].Traceback, "NEOStorageError: boom") {
		t.Errorf("groups = %+v", g)
	}
}

func TestParseSuite(t *testing.T) {
	base := config{Servers: "go", Storages: 2, Masters: 1, Faults: []string{"tcp-reset"}}
	runs, err := parseSuite("go/m3/s3:master-kill+storage-kill py:", base)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || runs[0].Masters != 3 || runs[0].Storages != 3 ||
		!slices.Equal(runs[0].Faults, []string{"master-kill", "storage-kill"}) ||
		runs[1].Servers != "py" || runs[1].Faults != nil || runs[1].Masters != 1 {
		t.Errorf("runs = %+v", runs)
	}
	runs, err = parseSuite("go/cgo:storage-kill py/s3/cpy:tcp-reset", config{Client: "py"})
	if err != nil || len(runs) != 2 || runs[0].Client != "go" || runs[1].Client != "py" || runs[1].Storages != 3 {
		t.Errorf("client parts: %+v, %v", runs, err)
	}
	for _, bad := range []string{"", "go/x3:storage-kill", "go/m:storage-kill", "go/:storage-kill", "go/cjava:storage-kill"} {
		if _, err := parseSuite(bad, base); err == nil {
			t.Errorf("parseSuite(%q): no error", bad)
		}
	}
	if runs, err := parseSuite("default", base); err != nil || len(runs) != 8 {
		t.Errorf("default suite: %d runs, %v", len(runs), err)
	}
}

func TestValidateNamesTheOption(t *testing.T) {
	ok := config{Servers: "go", Client: "py", Storages: 2, Masters: 1, Replicas: 1, Partitions: 12, PortBase: 22100, Procs: 2, Threads: 2,
		Duration: time.Minute, FaultEvery: time.Second, AdminEvery: 4, HangTimeout: time.Second, PackEvery: time.Second, PackAge: 10 * time.Second}
	if err := ok.validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		change func(*config)
		want   string
	}{
		{func(c *config) { c.Servers = "java" }, "--servers"},
		{func(c *config) { c.Faults = []string{"disk-full"} }, "--fault"},
		{func(c *config) { c.Replicas = 2 }, "--replicas"},
		{func(c *config) { c.Faults = []string{"master-kill"} }, "--masters"},
		{func(c *config) { c.Replicas, c.Faults = 0, []string{"storage-kill"} }, "--replicas"},
		{func(c *config) { c.PackAge = time.Second }, "--pack-age"},
		{func(c *config) { c.Client = "java" }, "--client"},
		{func(c *config) { c.Faults = []string{"delay"} }, "--delay"},
		{func(c *config) {
			c.Faults, c.Delay, c.DelayFor, c.DelayJitter = []string{"delay"}, time.Millisecond, time.Second, time.Second
		}, "--delay-jitter"},
		{func(c *config) {
			c.Faults, c.Delay, c.DelayFor, c.Masters = []string{"delay"}, time.Millisecond, time.Second, 6
		}, "masters"},
	} {
		c2 := ok
		c.change(&c2)
		if err := c2.validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err %v, want one naming %s", c2, err, c.want)
		}
	}
}

func TestHelpExplainsAndExits0(t *testing.T) {
	var out, errb bytes.Buffer
	if st := run([]string{"--help"}, &out, &errb); st != exitOK {
		t.Fatalf("--help: status %d", st)
	}
	for _, s := range []string{"storage-kill", "tcp-reset", "Examples:", "-procs", "--suite", "exit status"} {
		if !strings.Contains(errb.String(), s) {
			t.Errorf("--help does not mention %q", s)
		}
	}
	if st := run([]string{"--servers", "nope"}, &out, &errb); st != exitUsage {
		t.Errorf("bad --servers: status %d, want %d", st, exitUsage)
	}
	if st := run([]string{"extra"}, &out, &errb); st != exitUsage {
		t.Errorf("extra argument: status %d, want %d", st, exitUsage)
	}
}

func TestPidsFileUpdate(t *testing.T) {
	c := &cluster{dir: t.TempDir()}
	if err := os.WriteFile(filepath.Join(c.dir, "pids"), []byte("10 master\n11 storage_0\n12 admin\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	err := c.setPidLocked("storage_0", 42)
	c.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	pids, err := c.pids()
	if err != nil {
		t.Fatal(err)
	}
	if pids["storage_0"] != 42 || pids["master"] != 10 || pids["admin"] != 12 || len(pids) != 3 {
		t.Errorf("pids = %v", pids)
	}
}

func TestProbeReset(t *testing.T) {
	if _, err := os.Stat("/proc/net/tcp"); err != nil {
		t.Skip("no /proc/net/tcp")
	}
	if err := probeReset(t.Context()); err != nil {
		t.Skipf("ss -K does not work here: %v", err)
	}
}

func TestInFlightAtMasterKill(t *testing.T) {
	kill := time.Unix(100, 0)
	events := []*faultEvent{
		{Kind: "storage-kill", At: time.Unix(50, 0)},
		{Kind: "master-kill", At: kill},
		{Kind: "master-kill", At: time.Unix(200, 0), Skipped: "never survivable"},
	}
	for _, tc := range []struct {
		ta, t   float64
		primary bool
		want    bool
	}{
		{99, 101, false, true},     // begun before the kill, raised after it
		{100.5, 101, false, false}, // begun after the kill
		{98, 99, false, false},     // raised before the kill
		{49, 51, false, false},     // in flight at a storage kill only
		{199, 201, false, false},   // the kill was not injected
		{100.1, 100.3, true, true}, // a request on the dead primary's link
		{100.1, 99.9, true, false}, // the primary's link failed before the kill
		{107, 107.5, true, false},  // too long after the kill to be caused by it
	} {
		if got := inFlightAtMasterKill(record{Ta: tc.ta, T: tc.t, ViaPrimary: tc.primary}, events); got != tc.want {
			t.Errorf("attempt %v..%v: in flight = %v, want %v", tc.ta, tc.t, got, tc.want)
		}
	}
}

func TestGoRecordsRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 12345} {
		if got, err := decodeHot(encodeHot(n)); err != nil || got != n {
			t.Errorf("hot %d: decoded %d, %v", n, got, err)
		}
	}
	for _, l := range [][]int{nil, {3}, {3, 8, 120}} {
		got, err := decodeList(encodeList(l))
		if err != nil || len(got) != len(l) || (len(l) > 0 && !slices.Equal(got, l)) {
			t.Errorf("list %v: decoded %v, %v", l, got, err)
		}
	}
	// never empty: an empty record would read as a deletion
	if len(encodeList(nil)) == 0 || len(encodeHot(0)) == 0 {
		t.Error("an encoding is empty")
	}
	for _, bad := range []string{"", "H", "Hx", "L1"} {
		if _, err := decodeHot([]byte(bad)); err == nil {
			t.Errorf("decodeHot(%q): no error", bad)
		}
	}
	for _, bad := range []string{"", "H1", "L1,", "L1,x"} {
		if _, err := decodeList([]byte(bad)); err == nil {
			t.Errorf("decodeList(%q): no error", bad)
		}
	}
}

func TestErrorKindNamesTheClientSentinel(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("vote: %w", &client.ConflictError{Oid: 1}), "client.ConflictError"},
		{fmt.Errorf("client: begin: %w", client.ErrMasterLost), "client.ErrMasterLost"},
		{&client.NoStorageError{Oid: 1, Err: errors.New("x")}, "client.ErrNoStorage"},
		{fmt.Errorf("x: %w", client.ErrTxnDone), "client.ErrTxnDone"},
		{errors.New("plain"), "*errors.errorString"},
	} {
		if got := errorKind(c.err); got != c.want {
			t.Errorf("errorKind(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

// goHistory has a Go worker write the records of a few transactions, as
// transact does, and reads them back.
func goHistory(t *testing.T) (*history, *goLayout) {
	dir := t.TempDir()
	lay := &goLayout{Hot: 1, Logs: map[string]proto.Oid{"0.0": 2}}
	w, err := newGoWorker(0, 0, nil, lay, dir, 1, make(chan struct{}))
	if err != nil {
		t.Fatal(err)
	}
	begin := func(seq int, op string, keys ...string) {
		rec := map[string]any{"k": "begin", "seq": seq, "op": op}
		if len(keys) > 0 {
			var vals []string
			for _, k := range keys {
				vals = append(vals, "v"+k)
			}
			rec["keys"], rec["vals"] = keys, vals
		}
		w.write(rec)
	}
	ack := func(seq int, op string, value int) {
		rec := map[string]any{"k": "ack", "seq": seq, "op": op, "attempts": 1, "t0": 1.0, "ta": 1.0, "tid": "01"}
		if op == "hot" {
			rec["value"] = value
		}
		w.write(rec)
	}
	fail := func(seq int, op, stage string, err error) {
		w.writeError(err, "Txn."+stage, map[string]any{"seq": seq, "op": op, "attempt": 1, "outcome": errorOutcome(stage, err)})
	}
	begin(1, "insert", "0000000000000010", "0000000000000011")
	ack(1, "insert", 0)
	begin(2, "hot")
	w.write(map[string]any{"k": "conflict", "seq": 2, "attempt": 1, "type": "ConflictError"})
	ack(2, "hot", 1)
	begin(3, "append")
	ack(3, "append", 0)
	begin(4, "insert", "0000000000000012")
	fail(4, "insert", "Vote", fmt.Errorf("client: vote: %w", client.ErrNoStorage))
	begin(5, "insert", "0000000000000013")
	fail(5, "insert", "Finish", errors.New("client: finish: outcome unknown"))
	begin(6, "append")
	w.write(map[string]any{"k": "stale", "seq": 6, "op": "append", "msg": "old serial"})
	fail(6, "append", "Finish", errors.New("outcome unknown"))
	begin(7, "insert", "0000000000000014")
	fail(7, "insert", "Finish", fmt.Errorf("client: finish: %w: not committed", client.ErrMasterLost))
	w.out.Close()
	h, err := loadHistory(dir)
	if err != nil {
		t.Fatal(err)
	}
	return h, lay
}

func TestGoRecordsVerify(t *testing.T) {
	h, _ := goHistory(t)
	if h.Conflicts != 1 || len(h.Errors) != 4 || len(h.Txns["0.0"]) != 7 || h.Stale != 1 {
		t.Fatalf("history: %d conflicts, %d errors, %d transactions, %d stale reads", h.Conflicts, len(h.Errors), len(h.Txns["0.0"]), h.Stale)
	}
	if e := h.Errors[1]; e.Outcome != "unknown" || e.Where != "Txn.Finish" || !strings.Contains(e.TB, "outcome unknown") {
		t.Errorf("error record = %+v", e)
	}
	// ErrMasterLost from Finish: not committed, says the client
	if e := h.Errors[3]; e.Type != "client.ErrMasterLost" || !e.ViaPrimary || e.Outcome != "none" {
		t.Errorf("error record = %+v", e)
	}
	good := func() *dbState {
		return &dbState{
			Tree: [][2]string{{"0000000000000010", "v0000000000000010"}, {"0000000000000011", "v0000000000000011"}},
			Hot:  1, Logs: map[string][]int{"0.0": {3}}, ULogs: map[string][]int{}, Length: 2,
		}
	}
	if v := verify(h, good()); v.Lost+v.Duplicated+v.Inconsistent != 0 || v.UnknownAbsent != 1 {
		t.Errorf("acknowledged state: %+v", v)
	}
	// unknown outcomes (errors from Finish) may have committed
	db := good()
	db.Tree = append(db.Tree, [2]string{"0000000000000013", "v0000000000000013"})
	db.Logs["0.0"] = []int{3, 6}
	db.Length = 3
	if v := verify(h, db); v.Lost+v.Duplicated+v.Inconsistent != 0 || v.UnknownCommitted != 1 {
		t.Errorf("unknown outcomes committed: %+v", v)
	}
	for _, c := range []struct {
		name      string
		change    func(*dbState)
		lost, dup int
	}{
		{"acknowledged object missing", func(d *dbState) { d.Tree = d.Tree[1:] }, 1, 0},
		{"object of a failed vote present", func(d *dbState) {
			d.Tree = append(d.Tree, [2]string{"0000000000000012", "v0000000000000012"})
		}, 0, 1},
		{"object of a finish that failed with ErrMasterLost present", func(d *dbState) {
			d.Tree = append(d.Tree, [2]string{"0000000000000014", "v0000000000000014"})
		}, 0, 1},
		{"object never recorded present", func(d *dbState) { d.Tree = append(d.Tree, [2]string{"0000000000000099", "x"}) }, 0, 1},
		{"hot counter lost", func(d *dbState) { d.Hot = 0 }, 1, 0},
		{"append lost", func(d *dbState) { d.Logs["0.0"] = []int{} }, 1, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			db := good()
			c.change(db)
			db.Length = len(db.Tree)
			v := verify(h, db)
			if v.Lost != c.lost || v.Duplicated != c.dup || v.Inconsistent != 0 {
				t.Errorf("lost %d dup %d inconsistent %d, want %d %d 0: %q", v.Lost, v.Duplicated, v.Inconsistent, c.lost, c.dup, v.Problems)
			}
		})
	}
}

func TestGroupErrorsKeepsTheGoOperation(t *testing.T) {
	h, _ := goHistory(t)
	g := groupErrors(h.Errors)
	if len(g) != 3 {
		t.Fatalf("groups = %+v", g)
	}
	for _, x := range g {
		if x.Type == "client.ErrNoStorage" && (x.Where != "Txn.Vote" || !strings.Contains(x.Traceback, "no storage")) {
			t.Errorf("group = %+v", x)
		}
	}
}

func TestLayoutFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := readLayout(dir); err == nil {
		t.Error("no layout file: no error")
	}
	if err := os.WriteFile(filepath.Join(dir, "layout.json"), []byte(`{"hot":5,"logs":{"0.0":6}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	lay, err := readLayout(dir)
	if err != nil || lay.Hot != 5 || lay.Logs["0.0"] != 6 {
		t.Errorf("layout %+v, %v", lay, err)
	}
}

// echo serves one connection at a time on a loopback listener: what it
// reads it writes back, until EOF, then closes.
func echo(t *testing.T) net.Listener {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return l
}

// echoThroughProxy returns an echo server, a delay proxy (seed 1) in
// front of it and a connection to the proxy, all closed when t ends.
func echoThroughProxy(t *testing.T) (net.Listener, *delayProxy, net.Conn) {
	t.Helper()
	l := echo(t)
	p, err := newDelayProxy(l.Addr().String(), 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.close)
	c, err := net.Dial("tcp", p.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return l, p, c
}

func TestDelayProxyAddsLatencyEachWayAndKeepsOrder(t *testing.T) {
	_, p, c := echoThroughProxy(t)
	roundTrip := func(msg string) time.Duration {
		t0 := time.Now()
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
		if string(buf) != msg {
			t.Fatalf("echo %q, got %q", msg, buf)
		}
		return time.Since(t0)
	}
	// The fastest of a few round trips: a busy machine may stall one, a
	// delaying proxy delays them all.
	fastest := func(msg string) time.Duration {
		best := roundTrip(msg)
		for range 4 {
			best = min(best, roundTrip(msg))
		}
		return best
	}
	roundTrip("warm up")
	if d := fastest("no delay"); d > 20*time.Millisecond {
		t.Errorf("fastest round trip without delay: %v", d)
	}
	p.set(30*time.Millisecond, 5*time.Millisecond)
	if d := roundTrip("delayed"); d < 50*time.Millisecond {
		t.Errorf("round trip with 30ms ± 5ms each way: %v, want >= 50ms", d)
	}
	// many writes, each with its own jitter: still in order
	var want []byte
	for i := 0; i < 50; i++ {
		msg := fmt.Sprintf("%03d", i)
		want = append(want, msg...)
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != string(want) {
		t.Errorf("order: got %q, %v", got, err)
	}
	if n := p.set(0, 0); n == 0 {
		t.Error("no chunk counted as delayed")
	}
	if d := fastest("no delay again"); d > 20*time.Millisecond {
		t.Errorf("fastest round trip after the delay: %v", d)
	}
}

func TestDelayProxyPassesTheEnd(t *testing.T) {
	l, p, c := echoThroughProxy(t)
	c.Write([]byte("bye"))
	c.(*net.TCPConn).CloseWrite() // the echo server sees EOF and closes
	data, err := io.ReadAll(c)
	if err != nil || string(data) != "bye" {
		t.Errorf("after a half close: %q, %v", data, err)
	}
	// a target that refuses: the accepted connection is reset, which on
	// loopback may reach the dialer before its connect returns
	l.Close()
	c2, err := net.Dial("tcp", p.ln.Addr().String())
	if errors.Is(err, syscall.ECONNRESET) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c2.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("connection to a dead target: read %v", err)
	}
}

func TestNatRuleExcludesTheProxy(t *testing.T) {
	args := strings.Join(natRule{from: 22150, to: 40000}.args("-A"), " ")
	for _, want := range []string{"-t nat -A OUTPUT", "--dport 22150", "! -s " + proxySource, "--to-destination 127.0.0.1:40000"} {
		if !strings.Contains(args, want) {
			t.Errorf("rule %q lacks %q", args, want)
		}
	}
}

func TestDelayStatsSplitsByTheDelayWindows(t *testing.T) {
	dir := t.TempDir()
	writeRecords(t, dir, "rec-0-0.jsonl",
		`{"k":"begin","seq":1,"op":"hot","t":100}`,
		`{"k":"ack","seq":1,"op":"hot","tid":"01","value":1,"t":100.01}`,
		`{"k":"begin","seq":2,"op":"hot","t":101}`, // delayed
		`{"k":"ack","seq":2,"op":"hot","tid":"02","value":2,"t":101.2}`,
		`{"k":"begin","seq":3,"op":"hot","t":101.5}`, // delayed, not committed
		`{"k":"gaveup","seq":3,"op":"hot","t":102}`,
		`{"k":"begin","seq":4,"op":"hot","t":103}`,
		`{"k":"ack","seq":4,"op":"hot","tid":"03","value":3,"t":103.03}`)
	h, err := loadHistory(dir)
	if err != nil {
		t.Fatal(err)
	}
	at := func(s float64) time.Time { return time.Unix(0, int64(s*1e9)) }
	events := []*faultEvent{
		{Kind: "delay", At: at(101), Until: at(102)},
		{Kind: "delay", At: at(104)}, // never lifted (interrupted): ignored
		{Kind: "storage-kill", At: at(100)},
	}
	s := delayStats(h, events, 100, 105)
	if s == nil || s.Seconds != 1 || s.Transactions != 1 || s.CommitsPerS != 1 || s.OtherPerS != 0.5 ||
		s.P50 < 0.19 || s.P50 > 0.21 || s.OtherP50 < 0.02 || s.OtherP50 > 0.04 {
		t.Errorf("delay stats = %+v", s)
	}
	if delayStats(h, events[2:], 100, 105) != nil {
		t.Error("stats without delay faults")
	}
}

func TestVerifyAcceptsAKeyWrittenAgainAfterAFailure(t *testing.T) {
	// A new primary may allocate again the oids of a failed transaction.
	dir := t.TempDir()
	writeRecords(t, dir, "rec-0-0.jsonl",
		`{"k":"begin","seq":1,"op":"insert","keys":["k1","k2"],"vals":["a","b"],"t":1}`,
		`{"k":"error","seq":1,"op":"insert","type":"client.ErrMasterLost","outcome":"none","t":2}`)
	writeRecords(t, dir, "rec-0-1.jsonl",
		`{"k":"begin","seq":1,"op":"insert","keys":["k1"],"vals":["c"],"t":3}`,
		`{"k":"ack","seq":1,"op":"insert","tid":"01","t":4}`)
	h, err := loadHistory(dir)
	if err != nil {
		t.Fatal(err)
	}
	db := &dbState{Tree: [][2]string{{"k1", "c"}}, Length: 1}
	if v := verify(h, db); v.Lost+v.Duplicated+v.Inconsistent != 0 {
		t.Errorf("key written again: %+v", v)
	}
	db.Tree[0][1] = "a" // the failed transaction's value
	if v := verify(h, db); v.Lost != 1 {
		t.Errorf("the failed transaction's value: %+v", v)
	}
	db.Tree = append(db.Tree, [2]string{"k2", "b"})
	db.Length = 2
	if v := verify(h, db); v.Duplicated != 1 {
		t.Errorf("a key of the failed transaction only: %+v", v)
	}
}
