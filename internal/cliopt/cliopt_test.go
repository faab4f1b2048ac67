package cliopt

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// testParser has one option of each kind, as the daemons declare them.
func testParser() *Parser {
	return &Parser{
		Prog:        "neotest",
		Description: "NEO test node",
		Options: []*Option{
			{Short: "f", Long: "file", Kind: Path, Help: "specify a configuration file"},
			{Short: "s", Long: "section", Default: "test", HasDefault: true, Help: "specify a configuration section"},
			{Short: "c", Long: "cluster", Required: true, Help: "the cluster name"},
			{Short: "p", Long: "partitions", Kind: Int, Default: "100", HasDefault: true, Help: "partitions number"},
			{Short: "r", Long: "replicas", Kind: Int, Help: "replicas number"},
			{Long: "max-lag", Kind: Float, Help: "a float"},
			{Long: "mail", Multiple: true, Help: "repeatable"},
			{Short: "a", Long: "adapter", Choices: []string{"SQLite", "MySQL"}, Help: "one of two"},
			{Short: "B", Long: "backup", Kind: Bool, Help: "a flag"},
			{Short: "l", Long: "logfile", Kind: Path, Help: "a path"},
			{Long: "upstream-cluster", Help: "shares the prefix up"},
			{Long: "upstream-masters", Help: "shares the prefix up"},
		},
	}
}

func TestParseCommandLine(t *testing.T) {
	t.Setenv("HOME", "/home/neo")
	for _, tc := range []struct {
		name string
		args []string
		want map[string]string // exactly the result
	}{
		{"defaults", []string{"-c", "x"}, map[string]string{"cluster": "x", "section": "test", "partitions": "100"}},
		{"long forms", []string{"--cluster=x", "--partitions", "12", "--replicas=1"},
			map[string]string{"cluster": "x", "section": "test", "partitions": "12", "replicas": "1"}},
		{"unique prefix", []string{"--clus", "x", "--part", "5", "--upstream-c", "u"},
			map[string]string{"cluster": "x", "section": "test", "partitions": "5", "upstream_cluster": "u"}},
		{"exact name beats prefix", []string{"--cluster", "x"}, map[string]string{"cluster": "x", "section": "test", "partitions": "100"}},
		{"short attached", []string{"-cx", "-p7", "-r=2"}, map[string]string{"cluster": "x", "section": "test", "partitions": "7", "replicas": "2"}},
		{"negative numbers are values", []string{"-c", "x", "-r", "-1", "--max-lag", "-2.5"},
			map[string]string{"cluster": "x", "section": "test", "partitions": "100", "replicas": "-1", "max_lag": "-2.5"}},
		{"last one wins", []string{"-c", "x", "-c", "y"}, map[string]string{"cluster": "y", "section": "test", "partitions": "100"}},
		{"repeatable", []string{"-c", "x", "--mail", "a@x", "--mail=b@x"},
			map[string]string{"cluster": "x", "section": "test", "partitions": "100", "mail": "a@x\nb@x"}},
		{"flag and choice", []string{"-c", "x", "-B", "-a", "MySQL"},
			map[string]string{"cluster": "x", "section": "test", "partitions": "100", "backup": "true", "adapter": "MySQL"}},
		{"home expanded", []string{"-c", "x", "-l", "~/neo.log"},
			map[string]string{"cluster": "x", "section": "test", "partitions": "100", "logfile": "/home/neo/neo.log"}},
		{"not a home", []string{"-c", "x", "-l", "a/~b"},
			map[string]string{"cluster": "x", "section": "test", "partitions": "100", "logfile": "a/~b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			got, status, ok := testParser().ParseCommandLine(tc.args, &out, &errb)
			if !ok || status != 0 || errb.Len() != 0 {
				t.Fatalf("ok %v status %d stderr %q", ok, status, errb.String())
			}
			if !mapsEqual(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestCommandLineErrors checks argparse's messages and status 2, after
// the usage line.
func TestCommandLineErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"-c", "x", "--bogus"}, "unrecognized arguments: --bogus"},
		{[]string{"-c", "x", "extra", "--", "-p"}, "unrecognized arguments: extra -p"},
		{[]string{"-p", "3"}, "the following arguments are required: -c/--cluster"},
		{[]string{"-c", "x", "-r", "one"}, "argument -r/--replicas: invalid int value: 'one'"},
		{[]string{"-c", "x", "--max-lag", "soon"}, "argument --max-lag: invalid float value: 'soon'"},
		{[]string{"-c", "x", "-a", "Foo"}, "argument -a/--adapter: invalid choice: 'Foo' (choose from 'SQLite', 'MySQL')"},
		{[]string{"-c"}, "argument -c/--cluster: expected one argument"},
		{[]string{"-c", "-p", "3"}, "argument -c/--cluster: expected one argument"},
		{[]string{"-c", "x", "--up", "y"}, "ambiguous option: --up could match --upstream-cluster, --upstream-masters"},
		{[]string{"-c", "x", "-Bx"}, "argument -B/--backup: ignored explicit argument 'x'"},
		{[]string{"-c", "x", "--backup=yes"}, "argument -B/--backup: ignored explicit argument 'yes'"},
		{[]string{"-c", ""}, "argument -c/--cluster: value is empty"},
	} {
		var out, errb bytes.Buffer
		p := testParser()
		_, status, ok := p.ParseCommandLine(tc.args, &out, &errb)
		want := p.Usage() + "\nneotest: error: " + tc.msg + "\n"
		if ok || status != 2 || errb.String() != want {
			t.Errorf("%q: ok %v status %d stderr %q, want 2 and %q", tc.args, ok, status, errb.String(), want)
		}
	}
}

func TestUsageAndHelp(t *testing.T) {
	p := testParser()
	want := "usage: neotest [-h] [-f FILE] [-s SECTION] -c CLUSTER [-p PARTITIONS] [-r REPLICAS] [--max-lag MAX_LAG]" +
		" [--mail MAIL] [-a ADAPTER] [-B] [-l LOGFILE] [--upstream-cluster UPSTREAM_CLUSTER] [--upstream-masters UPSTREAM_MASTERS]"
	if got := p.Usage(); got != want {
		t.Errorf("usage\n%s\nwant\n%s", got, want)
	}
	for _, args := range [][]string{{"-h"}, {"--he"}, {"-c", "x", "--help", "--bogus"}} {
		var out, errb bytes.Buffer
		_, status, ok := p.ParseCommandLine(args, &out, &errb)
		if ok || status != 0 || errb.Len() != 0 {
			t.Errorf("%q: ok %v status %d stderr %q", args, ok, status, errb.String())
		}
		for _, line := range []string{want + "\n", "\nNEO test node\n", "  -c, --cluster CLUSTER the cluster name\n",
			"  -B, --backup" + strings.Repeat(" ", 10) + "a flag\n", "  -s, --section SECTION specify a configuration section (default: test)\n",
			"  --upstream-cluster UPSTREAM_CLUSTER\n" + strings.Repeat(" ", 24) + "shares the prefix up\n"} {
			if !strings.Contains(out.String(), line) {
				t.Errorf("%q: help has no %q:\n%s", args, line, out.String())
			}
		}
	}
}

func writeConf(t *testing.T, text string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "neo.conf")
	if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestConfigFile(t *testing.T) {
	t.Setenv("HOME", "/home/neo")
	conf := writeConf(t, `# a comment
[DEFAULT]
cluster: fromfile
mail =
  a@x
  c@x
; another comment
[test]
Partitions = 12
backup = yes
max_lag: 1.5
logfile = ~/test.log
upstream_masters = 127.0.0.1:1
  127.0.0.1:2

[other]
partitions = 7
backup = off
`)
	for _, tc := range []struct {
		name string
		args []string
		want map[string]string // a subset of the result
		none []string          // keys that must be absent
	}{
		{"section", []string{"-f", conf}, map[string]string{"cluster": "fromfile", "partitions": "12", "backup": "true", "max_lag": "1.5",
			"logfile": "/home/neo/test.log", "upstream_masters": "127.0.0.1:1\n127.0.0.1:2", "mail": "a@x\nc@x"}, nil},
		{"command line wins", []string{"-f", conf, "-p", "3", "-c", "cli", "--mail", "b@x"},
			map[string]string{"cluster": "cli", "partitions": "3", "mail": "b@x"}, nil},
		{"other section", []string{"-f", conf, "-s", "other"}, map[string]string{"cluster": "fromfile", "partitions": "7"}, []string{"backup", "max_lag"}},
		{"only DEFAULT", []string{"-f", conf, "-s", "DEFAULT"}, map[string]string{"cluster": "fromfile", "partitions": "100"}, []string{"backup"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := testParser().Parse(tc.args, &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
			for _, k := range tc.none {
				if v, ok := got[k]; ok {
					t.Errorf("%s = %q, want none", k, v)
				}
			}
		})
	}
}

// TestConfigErrors: a bad file is an error that names it, without usage,
// and the command exits with status 1.
func TestConfigErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.conf")
	for _, tc := range []struct {
		text string // "" for a missing file
		args []string
		msg  string // after "neotest: config file FILE"
	}{
		{"", nil, ": no such file or directory"},
		{"[test]\npartitions = abc\n", nil, ", section [test]: partitions: invalid int value: 'abc'"},
		{"[test]\nmail = a@x\n  \n", nil, ""}, // not an error: checked below
		{"[test]\nadapter = Foo\n", nil, ", section [test]: adapter: invalid choice: 'Foo' (choose from 'SQLite', 'MySQL')"},
		{"[test]\nbackup = maybe\n", nil, ", option backup: not a boolean: maybe"},
		{"[test]\ncluster x\n", nil, " line 2: no '=' or ':' in \"cluster x\""},
		{"cluster = x\n", nil, " line 1: no section header"},
		{"[test]\n  x\n", nil, " line 2: unexpected continuation line"},
		{"[test]\n", []string{"-s", "nope"}, ": no section: 'nope'"},
	} {
		f := missing
		if tc.text != "" {
			f = writeConf(t, tc.text)
		}
		args := append([]string{"-c", "x", "-f", f}, tc.args...)
		var out, errb bytes.Buffer
		_, status, ok := testParser().ParseCommandLine(args, &out, &errb)
		if tc.msg == "" {
			if !ok || errb.Len() != 0 {
				t.Errorf("%q: ok %v, stderr %q", tc.text, ok, errb.String())
			}
			continue
		}
		want := "neotest: config file " + f + tc.msg + "\n"
		if ok || status != 1 || errb.String() != want {
			t.Errorf("%q: ok %v status %d stderr %q, want 1 and %q", tc.text, ok, status, errb.String(), want)
		}
	}
}

// TestUnknownConfigKey: a key of the section that no option reads is a
// warning (a typo), one of [DEFAULT] is not (shared by every node type).
func TestUnknownConfigKey(t *testing.T) {
	conf := writeConf(t, "[DEFAULT]\ndatabase = x\n[test]\ncluster = x\npartitons = 3\n")
	p := testParser()
	var out, errb bytes.Buffer
	if _, _, ok := p.ParseCommandLine([]string{"-f", conf}, &out, &errb); !ok {
		t.Fatalf("not ok: %s", errb.String())
	}
	w := "config file " + conf + ", section [test]: unknown option 'partitons' ignored"
	if !slices.Equal(p.Warnings, []string{w}) || errb.String() != "neotest: warning: "+w+"\n" {
		t.Errorf("warnings %q, stderr %q", p.Warnings, errb.String())
	}
	logfile := filepath.Join(t.TempDir(), "neo.log")
	errb.Reset()
	log, err := p.Logger(logfile, &errb, "node", "test")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("started")
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errb.String(), "level=WARN msg=\""+w+"\" node=test\n") || !strings.Contains(errb.String(), "msg=started node=test\n") {
		t.Errorf("stderr:\n%s", errb.String())
	}
	db, err := sql.Open("sqlite", logfile) // the driver nodelog uses
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT level, msg FROM log ORDER BY date")
	if err != nil {
		t.Fatal(err)
	}
	var got string
	for rows.Next() {
		var level int
		var msg string
		rows.Scan(&level, &msg)
		got += fmt.Sprintf("%d|%s\n", level, msg)
	}
	if want := "30|" + w + " node=test\n20|started node=test\n"; got != want {
		t.Errorf("log file:\n%s\nwant\n%s", got, want)
	}
}

func TestLoggerOpenError(t *testing.T) {
	_, err := testParser().Logger(filepath.Join(t.TempDir(), "no", "dir.log"), &bytes.Buffer{})
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err %v, want not exist", err)
	}
}

func TestLines(t *testing.T) {
	if got := Lines(" a@x\n\n b@x \n"); !slices.Equal(got, []string{"a@x", "b@x"}) {
		t.Errorf("Lines = %q", got)
	}
	if got := Lines(""); got != nil {
		t.Errorf("Lines(\"\") = %q", got)
	}
}

func TestFail(t *testing.T) {
	var errb bytes.Buffer
	if st := testParser().Fail(&errb, errors.New("boom")); st != 1 || errb.String() != "neotest: boom\n" {
		t.Errorf("status %d stderr %q", st, errb.String())
	}
}

// Positional arguments are returned by name, named in the usage and the
// help, and required.
func TestPositionals(t *testing.T) {
	p := &Parser{Prog: "tool", Options: []*Option{{Short: "q", Long: "quiet", Kind: Bool}},
		Positionals: [][2]string{{"source", "from"}, {"destination", "to"}}}
	v, err := p.Parse([]string{"a", "-q", "--", "-b"}, new(strings.Builder))
	if err != nil || v["source"] != "a" || v["destination"] != "-b" || v["quiet"] != "true" {
		t.Errorf("Parse = %v, %v", v, err)
	}
	if _, err := p.Parse([]string{"a"}, new(strings.Builder)); err == nil || !strings.Contains(err.Error(), "required: destination") {
		t.Errorf("one positional: %v", err)
	}
	if _, err := p.Parse([]string{"a", "b", "c"}, new(strings.Builder)); err == nil || !strings.Contains(err.Error(), "unrecognized arguments: c") {
		t.Errorf("three positionals: %v", err)
	}
	if u := p.Usage(); !strings.HasSuffix(u, "[-q] source destination") {
		t.Errorf("Usage = %q", u)
	}
}
