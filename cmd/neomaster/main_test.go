package main

import (
	"bytes"
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestOptions(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "neo.conf")
	os.WriteFile(conf, []byte(`# example
[DEFAULT]
cluster: fromfile
masters = 127.0.0.1:1
  127.0.0.1:2

[master]
partitions = 12
bind: 127.0.0.1:4000
autostart = 3
backup = yes

[other]
partitions = 7
`), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		want map[string]string // subset of the result
		err  string            // substring of the error
	}{
		{"defaults", []string{"-c", "x"}, map[string]string{"cluster": "x", "bind": "127.0.0.1:10000", "partitions": "100", "replicas": "0", "section": "master"}, ""},
		{"long and equals", []string{"--cluster=x", "--partitions", "12", "--replicas=1"}, map[string]string{"partitions": "12", "replicas": "1"}, ""},
		{"unique prefix", []string{"--clus", "x", "--part", "5"}, map[string]string{"cluster": "x", "partitions": "5"}, ""},
		{"short attached", []string{"-cx", "-p7", "-A", "2"}, map[string]string{"cluster": "x", "partitions": "7", "autostart": "2"}, ""},
		{"bool flag", []string{"-c", "x", "-B"}, map[string]string{"backup": "true"}, ""},
		{"unknown", []string{"-c", "x", "--bogus"}, nil, "unrecognized arguments: --bogus"},
		{"positional", []string{"-c", "x", "extra"}, nil, "unrecognized arguments: extra"},
		{"missing cluster", []string{"-p", "3"}, nil, "the following arguments are required: -c/--cluster"},
		{"bad int", []string{"-c", "x", "-r", "one"}, nil, "argument -r/--replicas: invalid int value: 'one'"},
		{"missing value", []string{"-c"}, nil, "argument -c/--cluster: expected one argument"},
		{"ambiguous", []string{"-c", "x", "--up", "y"}, nil, "ambiguous option: --up"},
		{"config file", []string{"-f", conf}, map[string]string{"cluster": "fromfile", "partitions": "12", "bind": "127.0.0.1:4000",
			"autostart": "3", "backup": "true", "masters": "127.0.0.1:1\n127.0.0.1:2"}, ""},
		{"command line overrides file", []string{"-f", conf, "-p", "3", "-c", "cli"}, map[string]string{"cluster": "cli", "partitions": "3"}, ""},
		{"other section", []string{"-f", conf, "-s", "other"}, map[string]string{"partitions": "7", "cluster": "fromfile"}, ""},
		{"missing section", []string{"-f", conf, "-s", "nope"}, nil, "no section: 'nope'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := masterOptions().Parse(tc.args, &bytes.Buffer{})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q (all: %v)", k, got[k], v, slices.Sorted(maps.Keys(got)))
				}
			}
		})
	}
}

// TestUnknownConfigKey: a key of the section that no option reads is
// reported (a typo), one of [DEFAULT] is not (shared by every node type).
func TestUnknownConfigKey(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "neo.conf")
	os.WriteFile(conf, []byte("[DEFAULT]\nadapter = SQLite\n[master]\ncluster = x\npartitons = 3\n"), 0o644)
	p := masterOptions()
	if _, err := p.Parse([]string{"-f", conf}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	want := []string{"config file " + conf + ", section [master]: unknown option 'partitons' ignored"}
	if !slices.Equal(p.Warnings, want) {
		t.Errorf("warnings %q, want %q", p.Warnings, want)
	}
}

func TestExitStatus(t *testing.T) {
	dir := t.TempDir()
	badVal := filepath.Join(dir, "bad.conf")
	os.WriteFile(badVal, []byte("[master]\npartitions = abc\n"), 0o644)
	missing := filepath.Join(dir, "missing.conf")
	for _, tc := range []struct {
		args   []string
		status int
		stderr string
	}{
		{[]string{"--bogus", "-c", "x"}, 2, "neomaster: error: unrecognized arguments: --bogus"},
		{[]string{"-c", "x", "-p", "0"}, 1, "partitions must be more than zero"},
		{[]string{"-c", "x", "-r", "-1"}, 1, "neomaster: --replicas -1: replicas must be a positive integer"},
		// A bad config file exits 1 without usage, naming the file.
		{[]string{"-c", "x", "-f", badVal}, 1, "neomaster: config file " + badVal + ", section [master]: partitions: invalid int value: 'abc'"},
		{[]string{"-c", "x", "-f", missing}, 1, "neomaster: config file " + missing + ": no such file or directory"},
		{[]string{"-c", "x", "-r"}, 2, "expected one argument"},
		{[]string{"-c", "x", "--ca", "a"}, 1, "3 files must be provided"},
		{[]string{"-h"}, 0, ""},
	} {
		var out, errb bytes.Buffer
		if st := run(context.Background(), tc.args, &out, &errb); st != tc.status || !strings.Contains(errb.String(), tc.stderr) {
			t.Errorf("%v: status %d stderr %q, want %d %q", tc.args, st, errb.String(), tc.status, tc.stderr)
		}
	}
}

func TestConfigMastersAndDynamicList(t *testing.T) {
	v, err := masterOptions().Parse([]string{"-c", "x", "-m", "127.0.0.1:1 [::1]:2", "-D", "/tmp/m.json"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, err := configFromOptions(v)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Masters) != 2 || cfg.Masters[1].Host != "::1" || cfg.Masters[1].Port != 2 {
		t.Fatalf("masters %v", cfg.Masters)
	}
	if cfg.DynamicMasterList != "/tmp/m.json" {
		t.Fatalf("dynamic master list %q", cfg.DynamicMasterList)
	}
}
