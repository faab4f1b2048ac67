package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/neogo/neo/proto"
)

func parse(t *testing.T, args ...string) (map[string]string, error) {
	t.Helper()
	var out bytes.Buffer
	return adminOptions().Parse(args, &out)
}

func TestOptions(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "neo.conf")
	err := os.WriteFile(conf, []byte(`[DEFAULT]
cluster: prod
masters: 127.0.0.1:5000 127.0.0.1:5001

[admin]
bind = 127.0.0.1:6000
monitor_email =
    a@example.com
    b@example.com
monitor_maxlag: 3.5
smtp_tls: yes
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		emails []string
		bind   string
		lag    float64
	}{
		{"config file", []string{"-f", conf}, []string{"a@example.com", "b@example.com"}, "127.0.0.1:6000", 3.5},
		{"command line replaces the file's list", []string{"-f", conf, "--monitor-email", "c@x", "--monitor-email=d@x", "-b", "127.0.0.1:7000"},
			[]string{"c@x", "d@x"}, "127.0.0.1:7000", 3.5},
		{"defaults", []string{"-c", "x"}, nil, "127.0.0.1:9999", 0},
		{"abbreviated long option", []string{"--clu", "x", "--monitor-m", "2"}, nil, "127.0.0.1:9999", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := parse(t, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			cfg, _, err := configFromOptions(v)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg.Monitor.Emails, tc.emails) || cfg.Bind.String() != tc.bind || cfg.Monitor.MaxLag != tc.lag {
				t.Errorf("emails %q bind %v maxlag %v", cfg.Monitor.Emails, cfg.Bind, cfg.Monitor.MaxLag)
			}
		})
	}
	t.Run("masters default and list", func(t *testing.T) {
		v, _ := parse(t, "-c", "x")
		cfg, _, err := configFromOptions(v)
		if err != nil || !reflect.DeepEqual(cfg.Masters, []proto.Addr{{Host: "127.0.0.1", Port: 10000}}) {
			t.Errorf("masters %v, %v", cfg.Masters, err)
		}
		v, _ = parse(t, "-c", "x", "-m", "127.0.0.1:1 [::1]:2 127.0.0.1")
		cfg, _, err = configFromOptions(v)
		want := []proto.Addr{{Host: "127.0.0.1", Port: 1}, {Host: "::1", Port: 2}, {Host: "127.0.0.1", Port: 10000}}
		if err != nil || !reflect.DeepEqual(cfg.Masters, want) {
			t.Errorf("masters %v, %v", cfg.Masters, err)
		}
	})
}

func TestBadCommandLines(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{nil, 2, "the following arguments are required: -c/--cluster"},
		{[]string{"-c", "x", "--monitor-maxlag", "soon"}, 2, "invalid float value"},
		{[]string{"-c", "x", "--ca", "ca.pem"}, 1, "To enable encryption, 3 files must be provided"},
		{[]string{"-c", "x", "--smtp-auth", "nopass"}, 1, "USER:PASS"},
		{[]string{"-c", "x", "--http-peers", "S1=http://127.0.0.1:1/metrics"}, 1, "--http-peers needs --http"},
		{[]string{"-c", "x", "--http", "127.0.0.1:0", "--http-peers", "S1"}, 1, "--http-peers: peer \"S1\": expected NAME=URL"},
	} {
		var out, errb bytes.Buffer
		code := run(t.Context(), tc.args, &out, &errb)
		if code != tc.code || !strings.Contains(errb.String(), tc.msg) {
			t.Errorf("%q: exit %d, stderr %q; want %d and %q", tc.args, code, errb.String(), tc.code, tc.msg)
		}
	}
}
