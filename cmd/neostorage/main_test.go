package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseAddr(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		defPort  int
		bad      bool
	}{
		{in: "127.0.0.1:10000", want: "127.0.0.1:10000"},
		{in: "127.0.0.1", defPort: 10000, want: "127.0.0.1:10000"},
		{in: "[::1]:5", want: "[::1]:5"},
		{in: "::1", defPort: 7, want: "[::1]:7"},
		{in: "127.0.0.1:99999", bad: true},
		{in: "", bad: true},
	} {
		got, err := parseAddr(tc.in, tc.defPort)
		if tc.bad {
			if err == nil {
				t.Errorf("parseAddr(%q) = %q, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseAddr(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestCommandLine(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "neo.conf")
	os.WriteFile(conf, []byte("[DEFAULT]\ncluster = fromfile\n[storage]\ndatabase = "+filepath.Join(dir, "db.sqlite")+"\nmasters =\n  127.0.0.1:1\n  127.0.0.1:2\n"), 0o644)
	badConf := filepath.Join(dir, "bad.conf")
	os.WriteFile(badConf, []byte("[storage]\ncluster = x\ndatabase = y\ncache_size = lots\n"), 0o644)
	for _, tc := range []struct {
		name   string
		args   []string
		status int
		stderr string
	}{
		{"help", []string{"--help"}, 0, ""},
		{"missing required", []string{"-c", "x"}, 2, "the following arguments are required: -d/--database"},
		{"MySQL without server", []string{"-c", "x", "-d", "neo/nonexistent/mysql.sock", "-a", "MySQL"}, 1, "neostorage: open backend \"mysql:neo/nonexistent/mysql.sock\": open MySQL database neo/nonexistent/mysql.sock: connect:"},
		{"unknown adapter", []string{"-c", "x", "-d", "y", "-a", "Foo"}, 2, "neostorage: error: argument -a/--adapter: invalid choice: 'Foo' (choose from 'Importer', 'MySQL', 'MySQLdb', 'PyMySQL', 'SQLite')"},
		{"importer without its configuration", []string{"-c", "x", "-d", filepath.Join(dir, "missing.conf"), "-a", "Importer"}, 1, "missing.conf"},
		{"bad engine", []string{"-c", "x", "-d", "y", "-w", "-1", "-a", "PyMySQL", "-e", "MyISAM"}, 1, `engine "MyISAM": not one of [InnoDB RocksDB]`},
		{"partial TLS", []string{"-c", "x", "-d", "y", "--ca", "ca.pem"}, 1, "3 files must be provided"},
		{"reset from config file", []string{"-f", conf, "--reset"}, 0, ""},
		{"bad cache size", []string{"-c", "x", "-d", "y", "--cache-size", "12X"}, 1, `--cache-size: invalid size "12X"`},
		{"bad cache size from config file", []string{"-f", badConf}, 1, `--cache-size: invalid size "lots"`},
		{"new nid on an empty database", []string{"-c", "x", "-m", "127.0.0.1:1", "-d", filepath.Join(dir, "empty.sqlite"), "--new-nid"}, 1, "database is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut strings.Builder
			if got := run(tc.args, &out, &errOut); got != tc.status {
				t.Fatalf("status %d, want %d; stderr:\n%s", got, tc.status, errOut.String())
			}
			if !strings.Contains(errOut.String(), tc.stderr) {
				t.Fatalf("stderr %q does not contain %q", errOut.String(), tc.stderr)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "db.sqlite")); err != nil {
		t.Fatalf("--reset with the database from the config file: %v", err)
	}
}

func TestHelpListsCacheSize(t *testing.T) {
	var out, errOut strings.Builder
	if got := run([]string{"--help"}, &out, &errOut); got != 0 {
		t.Fatalf("--help: status %d", got)
	}
	if !strings.Contains(out.String(), "--cache-size") || !strings.Contains(out.String(), "64M") {
		t.Errorf("--help does not document --cache-size and its default:\n%s", out.String())
	}
}

func TestSqliteFiles(t *testing.T) {
	for _, tc := range []struct {
		adapter, database string
		want              []string
	}{
		{"SQLite", "/var/neo/s.sqlite", []string{"/var/neo/s.sqlite"}},
		{"sqlite", "file:/var/neo/s.sqlite?_busy=5000", []string{"/var/neo/s.sqlite"}},
		{"SQLite", ":memory:", nil},
		{"MySQL", "neo@db", nil},
		{"Importer", "importer.conf", nil},
	} {
		if got := sqliteFiles(tc.adapter, tc.database); !slices.Equal(got, tc.want) {
			t.Errorf("sqliteFiles(%q, %q) = %q, want %q", tc.adapter, tc.database, got, tc.want)
		}
	}
}

func TestMemoryLimit(t *testing.T) {
	// The object cache plus the headroom, unless GOMEMLIMIT is set: the
	// runtime then applies the environment's own.
	if got, ok := memoryLimit(64<<20, ""); !ok || got != 64<<20+memHeadroom {
		t.Errorf("memoryLimit(64M, \"\") = %d, %v; want %d, true", got, ok, 64<<20+memHeadroom)
	}
	if got, ok := memoryLimit(0, ""); !ok || got != memHeadroom {
		t.Errorf("memoryLimit(0, \"\") = %d, %v; want %d, true", got, ok, memHeadroom)
	}
	if _, ok := memoryLimit(64<<20, "1GiB"); ok {
		t.Error("memoryLimit with GOMEMLIMIT set: a limit of ours")
	}
}
