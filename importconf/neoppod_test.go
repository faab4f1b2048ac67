//go:build integration

package importconf

// Tests against neoppod itself (the peers of ../shared/peers, located by
// NEO_PEERS as `make integration` sets it, else beside the module):
// testdata/neoconf.py reads each test file with neoppod's importer
// (configparser, ZConfig and ZODB's storage schema, the oid mapping
// checks), and we compare. They skip without the peers, except under
// CI=true.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/neogo/neo/internal/peerpy"
	"github.com/neogo/neo/proto"
)

// neoppodRead is what testdata/neoconf.py prints for a file.
type neoppodRead struct {
	Error string `json:"error"`
	Main  struct {
		Adapter, Database, Engine string
		Wait                      float64
		Compress                  struct {
			Enabled bool
			Level   int
		}
		Writeback bool
	}
	Sources []struct {
		Name        string
		Oid         uint64
		Mounts      [][2]any
		Type        string
		Path        string
		ReadOnly    bool   `json:"read_only"`
		Quota       int64  `json:"quota"`
		Packer      string `json:"packer"`
		PackGC      bool   `json:"pack_gc"`
		PackKeepOld bool   `json:"pack_keep_old"`
	}
}

// neoppodRun runs testdata/neoconf.py with args, HOME and NAME set as
// in the tests' environment, and returns its output.
func neoppodRun(t *testing.T, home string, args ...string) []byte {
	t.Helper()
	out, err := peerpy.Run(t, nil, []string{"HOME=" + home, "NAME=db"}, append([]string{"testdata/neoconf.py"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// neoppod reads the files with testdata/neoconf.py, HOME and NAME set
// as in the tests' environment.
func neoppod(t *testing.T, home string, files []string) []neoppodRead {
	t.Helper()
	out := neoppodRun(t, home, files...)
	var reads []neoppodRead
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var r neoppodRead
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		reads = append(reads, r)
	}
	if len(reads) != len(files) {
		t.Fatalf("neoconf.py read %d files of %d", len(reads), len(files))
	}
	return reads
}

// inDir moves the test files' paths into dir, which holds their
// directories: ZConfig checks that the directory of a path exists.
func inDir(dir, src string) string {
	for _, d := range []string{"/srv/zodb", "/path/to"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	src = strings.ReplaceAll(src, "/srv/", dir+"/srv/")
	return strings.ReplaceAll(src, "/path/to/", dir+"/path/to/")
}

// We read the valid files as neoppod does.
func TestNeoppodReadsValid(t *testing.T) {
	dir := t.TempDir()
	var files []string
	for i, tt := range validCases {
		f := filepath.Join(dir, "valid"+itoa(i)+".conf")
		if err := os.WriteFile(f, []byte(inDir(dir, tt.src)), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	reads := neoppod(t, dir, files)
	for i, tt := range validCases {
		t.Run(tt.name, func(t *testing.T) {
			py := reads[i]
			if py.Error != "" {
				t.Fatalf("neoppod refuses it: %s", py.Error)
			}
			src, err := os.ReadFile(files[i])
			if err != nil {
				t.Fatal(err)
			}
			c, err := Parse(files[i], src, env("HOME", dir, "NAME", "db"))
			if err != nil {
				t.Fatal(err)
			}
			m := c.Main
			if m.Adapter != py.Main.Adapter || m.Database != py.Main.Database || m.Engine != py.Main.Engine ||
				m.Wait != py.Main.Wait || m.Writeback != py.Main.Writeback ||
				m.Compress.Enabled != py.Main.Compress.Enabled || m.Compress.Level != py.Main.Compress.Level {
				t.Errorf("main %+v, neoppod %+v", m, py.Main)
			}
			if len(c.Sources) != len(py.Sources) {
				t.Fatalf("%d sources, neoppod %d", len(c.Sources), len(py.Sources))
			}
			for j, s := range c.Sources {
				ps := py.Sources[j]
				fs := s.Storage
				if s.Name != ps.Name || uint64(s.Oid) != ps.Oid || ps.Type != "FileStorage" || fs.Path != ps.Path ||
					fs.ReadOnly != ps.ReadOnly || fs.Quota != ps.Quota || fs.Packer != ps.Packer ||
					fs.PackGC != ps.PackGC || fs.PackKeepOld != ps.PackKeepOld {
					t.Errorf("source %+v %+v, neoppod %+v", s, fs, ps)
				}
				if len(s.Mounts) != len(ps.Mounts) {
					t.Fatalf("mounts %v, neoppod %v", s.Mounts, ps.Mounts)
				}
				for k, mp := range s.Mounts {
					if mp.Name != ps.Mounts[k][0] || float64(mp.Oid) != ps.Mounts[k][1] {
						t.Errorf("mount %d: %v, neoppod %v (setup order matters)", k, mp, ps.Mounts[k])
					}
				}
			}
		})
	}
}

// stricterThanNeoppod are the files we refuse that neoppod accepts (and
// fails on later, or imports wrongly).
var stricterThanNeoppod = map[string]string{
	"Importer into Importer": "an Importer cannot be its own destination",
	"ZEO source":             "we read FileStorage only",
	"MappingStorage source":  "we read FileStorage only",
	"create truncates":       "it would destroy the source",
	"blobs":                  "NEO has no blobs",
	"same oid mounted twice": "neoppod keeps one of them",
	"self mount":             "meaningless",
}

// neoppod refuses the invalid files too, but for the listed ones.
func TestNeoppodRefusesInvalid(t *testing.T) {
	dir := t.TempDir()
	var files []string
	for i, tt := range invalidCases {
		f := filepath.Join(dir, "invalid"+itoa(i)+".conf")
		if err := os.WriteFile(f, []byte(inDir(dir, tt.src)), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	reads := neoppod(t, dir, files)
	for i, tt := range invalidCases {
		if _, ok := stricterThanNeoppod[tt.name]; !ok && reads[i].Error == "" {
			t.Errorf("%s: neoppod accepts it", tt.name)
		}
		if reads[i].Error == "" {
			t.Logf("%s: stricter than neoppod", tt.name)
		}
	}
}

// Setup renumbers as neoppod's importer does, on real FileStorages.
func TestNeoppodSetup(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "split.conf")
	if err := os.WriteFile(f, []byte(inDir(dir, splitExample)), 0o644); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{"root": 1000, "foo": 200, "bar": 5000, "baz": 3000}
	var args []string
	for k, v := range counts {
		args = append(args, k+"="+itoa(v))
	}
	var py struct {
		Loid uint64
		Dbs  map[string]struct {
			Shift, Next uint64
			Mapping     map[string]uint64
		}
	}
	if err := json.Unmarshal(neoppodRun(t, dir, append([]string{"setup", f}, args...)...), &py); err != nil {
		t.Fatal(err)
	}
	c, err := Load(f)
	if err != nil {
		t.Fatal(err)
	}
	shifts, last, err := c.Setup(func(s *Source) (proto.Oid, error) { return proto.Oid(counts[s.Name]), nil })
	if err != nil {
		t.Fatal(err)
	}
	if uint64(last) != py.Loid {
		t.Errorf("last oid %d, neoppod %d", last, py.Loid)
	}
	for name, sh := range shifts {
		p := py.Dbs[name]
		mount := map[string]uint64{}
		for k, v := range sh.Mount {
			mount[strconv.FormatUint(uint64(k), 10)] = uint64(v)
		}
		if sh.Offset != p.Shift || uint64(counts[name]) != p.Next || !reflect.DeepEqual(mount, p.Mapping) {
			t.Errorf("[%s] offset %d next %d mapping %v; neoppod %+v", name, sh.Offset, counts[name], mount, p)
		}
	}
}
