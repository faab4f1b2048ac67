package importconf

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/neogo/neo/internal/peerpy"
	"github.com/neogo/neo/pickleref"
	"github.com/neogo/neo/proto"
)

func env(kv ...string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i] == k {
				return kv[i+1], true
			}
		}
		return "", false
	}
}

func fsAt(path string) FileStorage { return FileStorage{Path: path, PackGC: true, PackKeepOld: true} }

// The example of cluster.md §8.10 and neoppod's importer.conf, in short.
const splitExample = `
[neo]
adapter=MySQL
database=neo

[root]
storage=
  <filestorage>
    path /path/to/root.fs
  </filestorage>
foo=421
bar=666

[foo]
oid=123
storage=
  <filestorage>
    path /path/to/foo.fs
  </filestorage>
baz=1000

[bar]
oid=4567
storage=
  <filestorage>
    path /path/to/bar.fs
  </filestorage>

[baz]
oid=2000
storage=
  <filestorage>
    path /path/to/baz.fs
  </filestorage>
`

// validCases are files that parse, and what they give.
var validCases = []struct {
	name string
	src  string
	want Config
}{
	{"a single FileStorage, defaults", `
[neo]
adapter=SQLite
database=/srv/neo.sqlite

[root]
storage=
  <filestorage>
    path /srv/Data.fs
  </filestorage>
`, Config{Main: Main{Section: "neo", Adapter: "SQLite", Database: "/srv/neo.sqlite", Compress: Compress{Enabled: true}},
		Sources: []*Source{{Name: "root", Line: 6, Storage: fsAt("/srv/Data.fs")}}}},
	{"split databases with mount points (neoppod's example)", splitExample,
		Config{Main: Main{Section: "neo", Adapter: "MySQL", Database: "neo", Compress: Compress{Enabled: true}},
			Sources: []*Source{
				{Name: "root", Line: 6, Storage: fsAt("/path/to/root.fs"), Mounts: []Mount{{"foo", 421, 11}, {"bar", 666, 12}}},
				{Name: "foo", Line: 14, Oid: 123, Storage: fsAt("/path/to/foo.fs"), Mounts: []Mount{{"baz", 1000, 20}}},
				{Name: "bar", Line: 22, Oid: 4567, Storage: fsAt("/path/to/bar.fs")},
				{Name: "baz", Line: 29, Oid: 2000, Storage: fsAt("/path/to/baz.fs")},
			}}},
	{"every option, ConfigParser's syntax: ':', case, comments, continuations, interpolation", `
; a comment
[Main]
Adapter: MySQLdb
base = neo@localhost
database = %(base)s %% x
engine=InnoDB
wait = 2.5
compress = zlib=9
writeback = true
extra = kept
  and continued

[src]
# indented lines continue a value, blank lines too
storage =
    %%define D /srv/zodb
    %%define sp a  b
    <filestorage main>
      # a ZConfig comment
      PATH $D/Data.fs

      read-only YES
      quota 10mb
      pack-gc off
      pack-keep-old false
      packer my.$sp
      blob-dir
      create no
    </FileStorage>
`, Config{Main: Main{Section: "Main", Adapter: "MySQLdb", Database: "neo@localhost % x", Engine: "InnoDB", Wait: 2.5,
		Compress: Compress{Enabled: true, Level: 9}, Writeback: true,
		Unknown: []Option{{"base", "neo@localhost", 5}, {"extra", "kept\nand continued", 11}}},
		Sources: []*Source{{Name: "src", Line: 14, Storage: FileStorage{Path: "/srv/zodb/Data.fs", ReadOnly: true,
			Quota: 10 << 20, Packer: "my.a  b", Name: "main"}}}}},
	{"compress false, ~ and $(ENV) in paths, a self-closed section", `
[neo]
database=x
compress=false
[r]
storage=
  <filestorage>
    path ~/$(NAME).fs
  </filestorage>
`, Config{Main: Main{Section: "neo", Adapter: "MySQL", Database: "x"},
		Sources: []*Source{{Name: "r", Line: 5, Storage: fsAt("/home/u/db.fs")}}}},
	{"oid 0 counts as the root, like neoppod; the root may be mounted back", `
[neo]
database=x
[a]
oid=0
storage=<filestorage>
  path a.fs
  </filestorage>
b=5
[b]
oid=1_000
a=7
storage=
  <filestorage>
    path b.fs
  </filestorage>
`, Config{Main: Main{Section: "neo", Adapter: "MySQL", Database: "x", Compress: Compress{Enabled: true}},
		Sources: []*Source{
			{Name: "a", Line: 4, Storage: fsAt("a.fs"), Mounts: []Mount{{"b", 5, 9}}},
			{Name: "b", Line: 10, Oid: 1000, Storage: fsAt("b.fs"), Mounts: []Mount{{"a", 7, 12}}},
		}}},
}

func TestParseValid(t *testing.T) {
	for _, tt := range validCases {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("importer.conf", []byte(tt.src), env("HOME", "/home/u", "NAME", "db"))
			if err != nil {
				t.Fatal(err)
			}
			tt.want.File = "importer.conf"
			if !reflect.DeepEqual(*c, tt.want) {
				t.Errorf("got\n%+v\n%s\nwant\n%+v\n%s", c.Main, dumpSources(c.Sources), tt.want.Main, dumpSources(tt.want.Sources))
			}
		})
	}
}

func dumpSources(ss []*Source) string {
	var b strings.Builder
	for _, s := range ss {
		b.WriteString(strings.ReplaceAll(strings.TrimSpace(strings.Join([]string{s.Name, itoa(s.Line), s.Oid.String()}, " ")), "\n", " "))
		b.WriteString(" ")
		b.WriteString(s.Storage.Path)
		for _, m := range s.Mounts {
			b.WriteString(" " + m.Name + "=" + itoa(int(m.Oid)) + "@" + itoa(m.Line))
		}
		b.WriteString("\n")
	}
	return b.String()
}

const okMain = "[neo]\ndatabase=x\n"
const okRoot = "[root]\nstorage=\n  <filestorage>\n    path a.fs\n  </filestorage>\n"

// invalidCases are bad files, and the error each gives.
var invalidCases = []struct {
	name, src string
	line      int
	section   string
	key       string
	msg       string
}{
	{"empty file", "", 0, "", "", "no section"},
	{"option before any section", "database=x\n", 1, "", "", "no section header"},
	{"line without = or :", okMain + "garbage\n", 3, "neo", "", "not a section header nor a key=value"},
	{"option without a name", okMain + "=x\n", 3, "neo", "", "option without a name"},
	{"duplicate section", okMain + okRoot + "[neo]\n", 8, "neo", "", "section defined twice (first at line 1)"},
	{"duplicate option", okMain + "Database=y\n" + okRoot, 3, "neo", "database", "option set twice (first at line 2)"},
	{"no source", okMain, 0, "", "", "no source database"},
	{"missing database", "[neo]\nadapter=SQLite\n" + okRoot, 1, "neo", "database", "missing"},
	{"unknown adapter", okMain + "adapter=Postgres\n" + okRoot, 3, "neo", "adapter", "MySQL, MySQLdb, PyMySQL, SQLite"},
	{"Importer into Importer", okMain + "adapter=Importer\n" + okRoot, 3, "neo", "adapter", "cannot itself be an Importer"},
	{"bad compress", okMain + "compress=True\n" + okRoot, 3, "neo", "compress", "true, false, zlib or zlib=LEVEL"},
	{"bad zlib level", okMain + "compress=zlib=10\n" + okRoot, 3, "neo", "compress", "1 to 9"},
	{"bad writeback", okMain + "writeback=yes\n" + okRoot, 3, "neo", "writeback", "neither true nor false"},
	{"bad wait", okMain + "wait=soon\n" + okRoot, 3, "neo", "wait", "seconds"},
	{"writeback to split databases", okMain + "writeback=true\n" + splitExample[strings.Index(splitExample, "[root]"):], 0, "neo", "writeback", "single"},
	{"bad interpolation", okMain + "engine=%(nope)s\n" + okRoot, 3, "neo", "engine", "refers to no option"},
	{"bare percent", okMain + "engine=50%\n" + okRoot, 3, "neo", "engine", "must be followed"},
	{"ZConfig directive with a single %, as configparser refuses it", okMain + "[root]\nstorage=\n  %import x\n", 4, "root", "storage", "write %% for a literal %"},
	{"DEFAULT options are mount points of the sources too", "[DEFAULT]\ndir=/srv\n" + okMain + okRoot, 2, "root", "dir", "mount point"},
	{"interpolation loop", okMain + "a=%(b)s\nb=%(a)s\n" + okRoot, 3, "neo", "a", "deeper than 10"},
	{"no storage option", okMain + "[root]\nfoo=1\n", 3, "root", "storage", "missing"},
	{"ZEO source", okMain + "[root]\nstorage=\n  <zeoclient>\n    server localhost:8100\n  </zeoclient>\n", 5, "root", "storage", "ZEO sources are not supported: only <filestorage>"},
	{"RelStorage source", okMain + "[root]\nstorage=\n  %%import relstorage\n  <relstorage>\n  </relstorage>\n", 6, "root", "storage", "RelStorage sources are not supported"},
	{"unknown storage type", okMain + "[root]\nstorage=\n  %%import my.pkg\n  <mine>\n  </mine>\n", 6, "root", "storage", "<mine> (from %import my.pkg) sources are not supported"},
	{"MappingStorage source", okMain + "[root]\nstorage=<mappingstorage/>\n", 4, "root", "storage", "MappingStorage sources are not supported"},
	{"unknown filestorage key", okMain + "[root]\nstorage=\n  <filestorage>\n    path a.fs\n    cache-size 5\n  </filestorage>\n", 7, "root", "storage: cache-size", "not a key of <filestorage>"},
	{"key=value in ZConfig", okMain + "[root]\nstorage=\n  <filestorage>\n    path=a.fs\n  </filestorage>\n", 6, "root", "storage: path=a.fs", "not a key"},
	{"no path", okMain + "[root]\nstorage=\n  <filestorage>\n    read-only true\n  </filestorage>\n", 4, "root", "storage: path", "missing"},
	{"path twice", okMain + "[root]\nstorage=\n  <filestorage>\n    path a\n    path b\n  </filestorage>\n", 7, "root", "storage: path", "set twice (first at line 6)"},
	{"bad boolean", okMain + "[root]\nstorage=\n  <filestorage>\n    path a\n    read-only maybe\n  </filestorage>\n", 7, "root", "storage: read-only", "not a boolean"},
	{"bad quota", okMain + "[root]\nstorage=\n  <filestorage>\n    path a\n    quota lots\n  </filestorage>\n", 7, "root", "storage: quota", "size in bytes"},
	{"create truncates", okMain + "[root]\nstorage=\n  <filestorage>\n    path a\n    create true\n  </filestorage>\n", 7, "root", "storage: create", "truncate"},
	{"blobs", okMain + "[root]\nstorage=\n  <filestorage>\n    path a\n    blob-dir /b\n  </filestorage>\n", 7, "root", "storage: blob-dir", "NEO has no blobs"},
	{"unclosed section", okMain + "[root]\nstorage=\n  <filestorage>\n    path a\n", 4, "root", "storage", "not closed"},
	{"unbalanced end", okMain + "[root]\nstorage=\n  <filestorage>\n    path a\n  </zeoclient>\n", 7, "root", "storage", "unbalanced"},
	{"two storages", okMain + "[root]\nstorage=\n  <filestorage>\n    path a\n  </filestorage>\n  <filestorage>\n  </filestorage>\n", 8, "root", "storage", "second storage section"},
	{"nested section", okMain + "[root]\nstorage=\n  <filestorage>\n    <x>\n  </filestorage>\n", 6, "root", "storage", "no subsection"},
	{"%include", okMain + "[root]\nstorage=\n  %%include other.conf\n", 5, "root", "storage", "%include is not supported"},
	{"undefined $name", okMain + "[root]\nstorage=\n  <filestorage>\n    path $nope\n  </filestorage>\n", 6, "root", "storage: path", "no value for $nope"},
	{"bad mount oid", okMain + okRoot + "foo=0x10\n[foo]\noid=1\nstorage=<filestorage/>\n", 8, "root", "foo", "not a decimal oid"},
	{"negative oid", okMain + okRoot + "[foo]\noid=-1\n", 9, "foo", "oid", "not a decimal oid"},
	{"mount point of no section", okMain + okRoot + "Foo=421\n", 8, "root", "foo", "mount point of no section (known: root; option names are lower-cased)"},
	{"same oid mounted twice", okMain + okRoot + "a=1\nb=1\n", 9, "root", "b", "already the mount point of a"},
	{"self mount", okMain + okRoot + "root=5\n", 8, "root", "root", "cannot mount itself"},
	{"two roots", okMain + okRoot + strings.Replace(okRoot, "[root]", "[other]", 1), 8, "other", "oid", "only the root database, here [root], has no oid="},
	{"no root", okMain + "[a]\noid=1\nstorage=<filestorage>\n path a\n </filestorage>\n", 0, "", "", "no root database"},
	{"unmounted database", okMain + okRoot + "[a]\noid=1\nstorage=<filestorage>\n path a\n </filestorage>\n", 8, "a", "oid", "no mount point leads to this database"},
}

// Bad files: the error names the line, the section and the key.
func TestParseInvalid(t *testing.T) {
	for _, tt := range invalidCases {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("x.conf", []byte(tt.src), nil)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v, want an *Error", err)
			}
			if e.File != "x.conf" || e.Line != tt.line || e.Section != tt.section || e.Key != tt.key || !strings.Contains(e.Msg, tt.msg) {
				t.Errorf("error %q (line %d, section %q, key %q), want line %d, section %q, key %q, %q",
					err, e.Line, e.Section, e.Key, tt.line, tt.section, tt.key, tt.msg)
			}
		})
	}
}

// neoppod's own importer.conf, read from the peers, parses as it is.
func TestNeoppodExample(t *testing.T) {
	var path string
	for _, dir := range []string{peerpy.Dir(), filepath.Join(os.Getenv("HOME"), ".cache", "neo-peers")} {
		if dir == "" {
			continue
		}
		for _, p := range []string{filepath.Join(dir, "neoppod", "importer.conf"), filepath.Join(dir, "importer.conf")} {
			if _, err := os.Stat(p); err == nil && path == "" {
				path = p
			}
		}
	}
	if path == "" {
		t.Skip("neoppod's importer.conf not found")
	}
	// As neoppod does, refuse it: it has writeback=true and split
	// databases ("Can not forward new transactions to splitted DB").
	_, err := Load(path)
	var e *Error
	if !errors.As(err, &e) || e.Key != "writeback" {
		t.Fatalf("Load(%s): %v, want the writeback error", path, err)
	}
	// Without writeback, it is neoppod's split example.
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(path, []byte(strings.Replace(string(src), "writeback=true", "writeback=false", 1)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Main.Adapter != "MySQL" || c.Main.Database != "neo" || c.Main.Writeback {
		t.Errorf("main %+v", c.Main)
	}
	want, err := Parse("x", []byte(splitExample), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(dumpLines(c.Sources), ""), strings.Join(dumpLines(want.Sources), ""); got != want {
		t.Errorf("sources\n%s\nwant (lines aside)\n%s", got, want)
	}
}

// dumpLines is dumpSources without line numbers.
func dumpLines(ss []*Source) []string {
	var out []string
	for _, s := range ss {
		l := s.Name + " " + s.Oid.String() + " " + s.Storage.Path
		for _, m := range s.Mounts {
			l += " " + m.Name + "=" + itoa(int(m.Oid))
		}
		out = append(out, l+"\n")
	}
	return out
}

// Setup renumbers as cluster.md §8.10's pseudo-code: depth first along
// the mount points, each database after the ones set up before it.
func TestSetup(t *testing.T) {
	c, err := Parse("x", []byte(splitExample), nil)
	if err != nil {
		t.Fatal(err)
	}
	next := map[string]proto.Oid{"root": 1000, "foo": 200, "bar": 5000, "baz": 3000}
	var order []string
	shifts, last, err := c.Setup(func(s *Source) (proto.Oid, error) {
		order = append(order, s.Name)
		return next[s.Name], nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]*pickleref.Shift{
		"root": {Offset: 0, Mount: map[proto.Oid]proto.Oid{421: 123 + 1000, 666: 4567 + 4200}},
		"foo":  {Offset: 1000, Mount: map[proto.Oid]proto.Oid{1000: 2000 + 1200}},
		"baz":  {Offset: 1200, Mount: map[proto.Oid]proto.Oid{}},
		"bar":  {Offset: 4200, Mount: map[proto.Oid]proto.Oid{}},
	}
	if !reflect.DeepEqual(shifts, want) {
		t.Errorf("shifts %v, want %v", shifts, want)
	}
	if last != 9199 {
		t.Errorf("last oid %d, want 9199", last)
	}
	if !reflect.DeepEqual(order, []string{"root", "foo", "baz", "bar"}) {
		t.Errorf("new_oid order %v", order)
	}
	next["bar"] = 4567
	if _, _, err := c.Setup(func(s *Source) (proto.Oid, error) { return next[s.Name], nil }); err == nil ||
		!strings.Contains(err.Error(), "beyond the last oid") {
		t.Errorf("mounted oid beyond the database: %v", err)
	}
}
