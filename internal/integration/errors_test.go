//go:build integration

package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/neogo/neo/proto"
)

// Tests of what an operator sees when something is wrong: a clear line
// naming what failed and with which input, the right exit status, and
// nothing half-written on disk.

// errorsWaitTimeout bounds each wait of these tests for a node to say or
// do something.
const errorsWaitTimeout = 20 * time.Second

// errorsRun runs one of our binaries to completion (bounded by cmdTimeout).
func errorsRun(t *testing.T, prog string, args ...string) result {
	t.Helper()
	return run(t, nil, filepath.Join(goClusterBin(t), prog), args...)
}

// errorsOneLine checks that r failed with status code and that its stderr
// holds one line matching want, after a usage line if usage is set.
func errorsOneLine(t *testing.T, r result, code int, usage bool, want string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit status %d, want %d\n%s", r.code, code, r)
	}
	var lines []string // without the warnings, checked by the caller, and the log's text
	for _, l := range strings.Split(strings.TrimRight(r.stderr, "\n"), "\n") {
		if !strings.Contains(l, ": warning: ") && !strings.HasPrefix(l, "time=") {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		lines = []string{""}
	}
	nwant := 1
	if usage {
		nwant = 2
		if !strings.HasPrefix(lines[0], "usage: ") {
			t.Errorf("stderr does not start with the usage line:\n%s", r.stderr)
		}
	}
	if len(lines) != nwant {
		t.Errorf("stderr has %d lines, want %d:\n%s", len(lines), nwant, r.stderr)
	}
	if !regexp.MustCompile(want).MatchString(lines[len(lines)-1]) {
		t.Errorf("last stderr line %q does not match %q", lines[len(lines)-1], want)
	}
}

// TestErrorsOptions checks bad command lines and configuration files of the
// three daemons: argparse's errors exit 2 after the usage line, other
// errors of the configuration exit 1 with one line naming the input.
func TestErrorsOptions(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.cfg")
	badVal := filepath.Join(dir, "badval.cfg")
	noSep := filepath.Join(dir, "nosep.cfg")
	typo := filepath.Join(dir, "typo.cfg")
	for f, s := range map[string]string{
		typo:   "[DEFAULT]\nadapter = SQLite\n[master]\npartitons = 3\n",
		badVal: "[master]\ncluster = x\npartitions = abc\n",
		noSep:  "[master]\ncluster x\n",
	} {
		if err := os.WriteFile(f, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	db := filepath.Join(dir, "db.sqlite")
	for _, tc := range []struct {
		prog  string
		args  []string
		code  int
		usage bool
		want  string // regexp of the last line of stderr
	}{
		{"neomaster", []string{"-c", "x", "--partitions", "abc"}, 2, true, `^neomaster: error: argument -p/--partitions: invalid int value: 'abc'$`},
		{"neomaster", []string{"-c", "x", "--bogus"}, 2, true, `^neomaster: error: unrecognized arguments: --bogus$`},
		{"neomaster", []string{"--partitions", "3"}, 2, true, `^neomaster: error: the following arguments are required: -c/--cluster$`},
		{"neomaster", []string{"-c", "x", "--replicas", "-1", "-b", "127.0.0.1:0"}, 1, false, `^neomaster: .*replicas.*-1`},
		{"neomaster", []string{"-c", "x", "--partitions", "0", "-b", "127.0.0.1:0"}, 1, false, `^neomaster: .*partitions.*0`},
		{"neomaster", []string{"-c", "x", "-b", "no-such-host.invalid:1"}, 1, false, `^neomaster: --bind: .*no-such-host\.invalid`},
		{"neomaster", []string{"-c", "x", "-b", "127.0.0.1:99999"}, 1, false, `^neomaster: --bind: .*99999`},
		{"neomaster", []string{"-c", "x", "-f", missing}, 1, false, `^neomaster: config file .*missing\.cfg.*(no such file|not exist)`},
		{"neomaster", []string{"-c", "x", "-f", badVal}, 1, false, `^neomaster: config file .*badval\.cfg.*partitions.*'abc'`},
		{"neomaster", []string{"-c", "x", "-f", noSep}, 1, false, `^neomaster: config file .*nosep\.cfg line 2`},
		{"neomaster", []string{"-c", "x", "-f", badVal, "-s", "nosection"}, 1, false, `^neomaster: config file .*badval\.cfg: no section: 'nosection'$`},
		// An unknown key is only a warning, as neoppod ignores it: the
		// next error (a bad port) shows that the file was read.
		{"neomaster", []string{"-c", "x", "-f", typo, "-b", "127.0.0.1:99999"}, 1, false, `^neomaster: --bind: .*99999`},
		{"neostorage", []string{"-c", "x", "-d", db, "--adapter", "Foo"}, 2, true, `^neostorage: error: argument -a/--adapter: invalid choice: 'Foo' \(choose from .*'SQLite'\)$`},
		{"neostorage", []string{"-c", "x", "-d", db, "--adapter", "MySQL"}, 1, false, `^neostorage: open backend "mysql:.*": parse .*: not \[user\[:password\]@\]database\[socket\]$`},
		{"neostorage", []string{"-c", "x", "-d", db, "--wait", "x"}, 2, true, `^neostorage: error: argument -w/--wait: invalid int value: 'x'$`},
		{"neostorage", []string{"-c", "x", "-d", db, "-m", "127.0.0.1:notaport"}, 1, false, `^neostorage: --masters: .*notaport`},
		{"neostorage", []string{"-c", "x"}, 2, true, `^neostorage: error: the following arguments are required: -d/--database$`},
		{"neoadmin", []string{"-c", "x", "--monitor-maxlag", "abc"}, 2, true, `^neoadmin: error: argument --monitor-maxlag: invalid float value: 'abc'$`},
		{"neoadmin", []string{"-c", "x", "-b", "300.1.1.1:1"}, 1, false, `^neoadmin: --bind: .*300\.1\.1\.1`},
	} {
		t.Run(tc.prog+" "+strings.Join(tc.args, " "), func(t *testing.T) {
			r := errorsRun(t, tc.prog, tc.args...)
			t.Logf("exit %d: %s", r.code, lastLine(r.stderr))
			errorsOneLine(t, r, tc.code, tc.usage, tc.want)
			if slices.Contains(tc.args, typo) && !strings.Contains(r.stderr, "neomaster: warning: config file "+typo+", section [master]: unknown option 'partitons' ignored\n") {
				t.Errorf("no warning for the unknown key:\n%s", r.stderr)
			}
			if !slices.Contains(tc.args, typo) && strings.Contains(r.stderr, "warning") {
				t.Errorf("unexpected warning:\n%s", r.stderr)
			}
		})
	}
	if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused neostorage left %s behind (stat: %v)", db, err)
	}
}

// errorsWaitLog waits until the file holds a line matching re and returns
// it; it fails the test after errorsWaitTimeout.
func errorsWaitLog(t *testing.T, file string, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.Now().Add(errorsWaitTimeout)
	for {
		data, _ := os.ReadFile(file)
		for _, l := range strings.Split(string(data), "\n") {
			if re.MatchString(l) {
				return l
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no line matching %q after %v:\n%s", file, re, errorsWaitTimeout, data)
		}
		select {
		case <-time.After(pollInterval):
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		}
	}
}

// errorsAlive fails the test if the node exited.
func errorsAlive(t *testing.T, c *goCluster, name string) {
	t.Helper()
	for _, p := range c.procs {
		if p.name != name {
			continue
		}
		if p.exited() {
			t.Fatalf("%s exited: %v\n%s", name, p.err, c.tail(name))
		}
		return
	}
	t.Fatalf("no node %s", name)
}

// TestErrorsWrongCluster starts a storage and an admin with another
// cluster name than the master's: the master refuses them (PROTOCOL_ERROR),
// they say so in an ERROR line naming their cluster and the master, and go
// on retrying, as neoppod's nodes do.
func TestErrorsWrongCluster(t *testing.T) {
	c := newGoCluster(t, 0, 0, 4)
	c.spawn("master", "neomaster", "--cluster", c.name, "--masters", c.master, "--bind", c.master,
		"--partitions", "4", "--logfile", filepath.Join(c.dir, "master.log"))
	other := c.name + "x"
	common := []string{"--cluster", other, "--masters", c.master}
	c.spawn("storage_0", "neostorage", append(common, "--bind", "127.0.0.1:0",
		"--database", filepath.Join(c.dir, "storage_0.sqlite"), "--logfile", filepath.Join(c.dir, "storage_0.log"))...)
	c.spawn("admin", "neoadmin", append(common, "--bind", c.admin, "--logfile", filepath.Join(c.dir, "admin.log"))...)

	refused := regexp.MustCompile(`level=ERROR .*refused.*invalid cluster name`)
	for _, n := range []string{"storage_0", "admin"} {
		l := errorsWaitLog(t, filepath.Join(c.dir, n+".out"), refused)
		t.Logf("%s: %s", n, l)
		if !strings.Contains(l, "cluster="+other) || !strings.Contains(l, c.master) {
			t.Errorf("%s: the refusal does not name our cluster %s and the master %s: %s", n, other, c.master, l)
		}
	}
	l := errorsWaitLog(t, filepath.Join(c.dir, "master.out"), regexp.MustCompile(`level=WARN .*cluster name`))
	t.Logf("master: %s", l)
	if !strings.Contains(l, other) {
		t.Errorf("master: the refusal does not name the peer's cluster %s: %s", other, l)
	}
	for _, n := range []string{"master", "storage_0", "admin"} {
		errorsAlive(t, c, n)
	}
}

// TestErrorsVersionMismatch connects a fake peer that speaks another
// protocol version to the master: the master logs it with both versions,
// closes the connection and goes on serving. Then a fake master of
// another version is given to a storage: the storage logs it and retries.
func TestErrorsVersionMismatch(t *testing.T) {
	c := newGoCluster(t, 1, 0, 4)
	c.start()
	hs := []byte{0x92, 0xa3, 'N', 'E', 'O', byte(proto.Version + 1)}

	ctx, cancel := context.WithTimeout(t.Context(), errorsWaitTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.master)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(errorsWaitTimeout))
	if _, err := conn.Write(hs); err != nil {
		t.Fatal(err)
	}
	// The master sends its own handshake, then closes without more.
	got, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("master did not close the connection of a peer of version %d: %v", proto.Version+1, err)
	}
	if want := hs[:5]; len(got) > 6 || !bytes.HasPrefix(got, want) {
		t.Errorf("master sent %x to a peer of another version, want its handshake only", got)
	}
	l := errorsWaitLog(t, filepath.Join(c.dir, "master.out"), regexp.MustCompile(`level=WARN .*version mismatch`))
	t.Logf("master: %s", l)
	if !strings.Contains(l, fmt.Sprint(proto.Version+1)) || !strings.Contains(l, fmt.Sprint(proto.Version)) {
		t.Errorf("master: the log line does not give both versions: %s", l)
	}
	errorsAlive(t, c, "master")
	if st, err := c.clusterState(ctx); err != nil || st != proto.RUNNING {
		t.Errorf("after the refused peer, cluster state %v, %v; want RUNNING", st, err)
	}

	// A fake master of another version.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			k, err := ln.Accept()
			if err != nil {
				return
			}
			k.Write(hs)
			k.Close()
		}
	}()
	c.spawn("storage_x", "neostorage", "--cluster", c.name, "--masters", ln.Addr().String(), "--bind", "127.0.0.1:0",
		"--database", filepath.Join(c.dir, "storage_x.sqlite"), "--logfile", filepath.Join(c.dir, "storage_x.log"))
	l = errorsWaitLog(t, filepath.Join(c.dir, "storage_x.out"), regexp.MustCompile(`level=ERROR .*version mismatch`))
	t.Logf("storage: %s", l)
	if !strings.Contains(l, ln.Addr().String()) || !strings.Contains(l, fmt.Sprintf("version %d", proto.Version+1)) {
		t.Errorf("storage: the log line does not name the master and its version: %s", l)
	}
	errorsAlive(t, c, "storage_x")
}

// errorsSum is a digest of a file, to check that a refused node left it
// untouched.
func errorsSum(t *testing.T, path string) [32]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(data)
}

// TestErrorsDatabaseOfAnotherCluster starts a storage with --cluster B on
// a database created by cluster A: it refuses to start, naming both, and
// leaves the database (and its absent journal) untouched.
func TestErrorsDatabaseOfAnotherCluster(t *testing.T) {
	c := newGoCluster(t, 1, 0, 4)
	c.start()
	c.stop()
	db := filepath.Join(c.dir, "storage_0.sqlite")
	before := errorsSum(t, db)
	entries, _ := os.ReadDir(c.dir)
	other := c.name + "x"
	log := filepath.Join(c.dir, "other.log")
	r := errorsRun(t, "neostorage", "--cluster", other, "--masters", c.master, "--bind", "127.0.0.1:0",
		"--database", db, "--logfile", log)
	want := fmt.Sprintf(`^neostorage: .*%s.*%q.*%q`, regexp.QuoteMeta(db), c.name, other)
	errorsOneLine(t, r, 1, false, want)
	if errorsSum(t, db) != before {
		t.Errorf("the refused storage modified %s", db)
	}
	after, _ := os.ReadDir(c.dir)
	if len(after) != len(entries)+1 { // + other.log
		t.Errorf("the refused storage left files behind: %v, was %v", after, entries)
	}
	if !strings.Contains(r.stderr, "level=ERROR") || !strings.Contains(r.stderr, other) {
		t.Errorf("the log does not say why the storage exited:\n%s", r.stderr)
	}
	if data, _ := os.ReadFile(log); !bytes.Contains(data, []byte(other)) {
		t.Errorf("the log file (SQLite) does not say why the storage exited")
	}
}

// errorsFullPy is neoppod's client used through the storage API:
//
//	commit MASTERS CLUSTER SIZE: one transaction storing a new object of
//	  SIZE random bytes; prints "OK <tid> <oid>" or "FAIL <oid> <error>".
//	check MASTERS CLUSTER OID=TID|OID=- ...: load each oid, which must be
//	  at TID or not exist (-); also the iterator must list exactly the
//	  given tids. Prints "OK" or the differences.
const errorsFullPy = `
import os, sys
from binascii import hexlify, unhexlify
from neo.client.Storage import Storage
from ZODB.Connection import TransactionMetaData
from ZODB.POSException import POSKeyError
from ZODB.utils import z64

def hx(b): return hexlify(b).decode()

mode, masters, name = sys.argv[1:4]
st = Storage(master_nodes=masters, name=name)
if mode == 'commit':
    t = TransactionMetaData(description=b'errors full disk')
    oid = None
    try:
        st.tpc_begin(t)
        oid = st.new_oid()
        st.store(oid, z64, os.urandom(int(sys.argv[4])), '', t)
        st.tpc_vote(t)
        tid = st.tpc_finish(t)
        print('OK %s %s' % (hx(tid), hx(oid)), flush=True)
    except Exception as e:
        try:
            st.tpc_abort(t)
        except Exception as e2:
            print('ABORT FAILED %s: %s' % (type(e2).__name__, e2), flush=True)
        print('FAIL %s %s: %s' % (hx(oid) if oid else '-', type(e).__name__, str(e).replace('\n', ' ')), flush=True)
elif mode == 'check':
    errs, tids = [], set()
    for a in sys.argv[4:]:
        oid, tid = a.split('=')
        try:
            data, serial = st.load(unhexlify(oid), '')
        except POSKeyError:
            if tid != '-':
                errs.append('load(%s): POSKeyError, want %s' % (oid, tid))
            continue
        if tid == '-':
            errs.append('load(%s): serial %s, want no object' % (oid, hx(serial)))
        elif hx(serial) != tid:
            errs.append('load(%s): serial %s, want %s' % (oid, hx(serial), tid))
        if tid != '-':
            tids.add(tid)
    listed = set(hx(txn.tid) for txn in st.iterator())
    if listed != tids:
        errs.append('iterator lists %s, want %s' % (sorted(listed), sorted(tids)))
    print('\n'.join(errs) or 'OK', flush=True)
st.close()
`

// errorsPy runs errorsFullPy, bounded by goClientTimeout.
func (c *goCluster) errorsPy(p *peers, args ...string) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.t.Context(), goClientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.py, append([]string{"-c", errorsFullPy, args[0], c.master, c.name}, args[1:]...)...)
	cmd.Env = append(os.Environ(), p.env()...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		c.t.Fatalf("client %v: %v (ctx: %v)\nstdout:\n%s\nstderr:\n%s", args, err, ctx.Err(), stdout.String(), stderr.String())
	}
	return strings.TrimSpace(stdout.String())
}

// errorsFill fills the filesystem of dir with one file and returns its
// path.
func errorsFill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "ballast")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill %s: %v", dir, err)
			}
			return path
		}
	}
}

// TestErrorsFullDisk puts the storage database on a small tmpfs, fills
// it, and commits through neoppod's client: the commit fails (not hangs),
// the storage stays up, and once space is back commits work again and
// the failed transaction is nowhere.
func TestErrorsFullDisk(t *testing.T) {
	p := needPeers(t)
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	mnt, err := os.MkdirTemp("", "errors-fulldisk-")
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=8m"); err != nil {
		os.Remove(mnt)
		t.Skipf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { // after the cluster stopped: registered first
		if err := syscall.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
		os.Remove(mnt)
	})

	c := newGoCluster(t, 1, 0, 4)
	common := []string{"--cluster", c.name, "--masters", c.master}
	c.spawn("master", "neomaster", append(common, "--bind", c.master, "--partitions", "4", "--replicas", "0",
		"--autostart", "1", "--logfile", filepath.Join(c.dir, "master.log"))...)
	c.spawn("storage_0", "neostorage", append(common, "--bind", "127.0.0.1:0",
		"--database", filepath.Join(mnt, "storage_0.sqlite"), "--logfile", filepath.Join(c.dir, "storage_0.log"))...)
	c.spawn("admin", "neoadmin", append(common, "--bind", c.admin, "--logfile", filepath.Join(c.dir, "admin.log"))...)
	c.waitRunning()

	var want []string // OID=TID|OID=- for the check
	commit := func(size int, ok bool) {
		t.Helper()
		out := c.errorsPy(p, "commit", fmt.Sprint(size))
		f := strings.Fields(out)
		switch {
		case ok && len(f) == 3 && f[0] == "OK":
			want = append(want, f[2]+"="+f[1])
		case !ok && len(f) >= 2 && f[0] == "FAIL":
			t.Logf("commit on a full disk: %s", out)
			if f[1] != "-" {
				want = append(want, f[1]+"=-")
			}
		default:
			t.Fatalf("commit of %d bytes (want success %v): %s\n%s", size, ok, out, c.tail("storage_0"))
		}
	}
	commit(1000, true)
	ballast := errorsFill(t, mnt)
	commit(1<<20, false)
	errorsAlive(t, c, "storage_0")
	errorsWaitLog(t, filepath.Join(c.dir, "storage_0.out"), regexp.MustCompile(`level=ERROR .*(full|space)`))

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	c.waitRunning()
	commit(1<<20, true)
	commit(1000, true)
	if out := c.errorsPy(p, append([]string{"check"}, want...)...); out != "OK" {
		t.Errorf("after the full disk:\n%s", out)
	}
	errorsAlive(t, c, "storage_0")
}
