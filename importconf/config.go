package importconf

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/neogo/neo/pickleref"
	"github.com/neogo/neo/proto"
)

// Config is an importer.conf.
type Config struct {
	// File is the file's name, as given to Parse or Load.
	File string
	// Main is the first section: the destination backend.
	Main Main
	// Sources are the other sections, in the file's order.
	Sources []*Source
}

// Main is the first section of the file (any name, usually [neo]).
type Main struct {
	Section string
	// Adapter is the destination backend: "MySQL" (neoppod's default,
	// also spelled "MySQLdb" or "PyMySQL") or "SQLite".
	Adapter string
	// Database is the destination database, as the backend's --database.
	Database string
	// Engine is the MySQL engine, "" for the default.
	Engine string
	// Wait is how many seconds to wait for the backend to be available.
	Wait float64
	// Compress says how records are compressed.
	Compress Compress
	// Writeback copies new transactions back to the (single) source.
	Writeback bool
	// Unknown are the options the importer does not use, which neoppod
	// ignores: a caller may warn about them.
	Unknown []Option
}

// Compress is the "compress" option: true (the default: zlib at its
// default level), false, "zlib" or "zlib=N".
type Compress struct {
	Enabled bool
	// Level is zlib's level, 1 to 9, or 0 for zlib's default.
	Level int
}

// Option is an option of the file and its line.
type Option struct {
	Name, Value string
	Line        int
}

// Source is a source ZODB: a section after the first.
type Source struct {
	Name string
	Line int // of the section header
	// Oid is the oid, in this database, of the object that the mount
	// points to this database designate; 0 for the root database, which
	// has no oid= option.
	Oid proto.Oid
	// Mounts are its mount points, in the order neoppod sets them up.
	Mounts []Mount
	// Storage is its storage section.
	Storage FileStorage
}

// Root tells whether s is the root database.
func (s *Source) Root() bool { return s.Oid == 0 }

// Mount is a mount point "NAME=OID" of a source: references to OID in
// that source go to the object Oid of the source named NAME.
type Mount struct {
	Name string // the mounted section
	Oid  proto.Oid
	Line int
}

// FileStorage is a <filestorage> section, with ZODB's keys.
type FileStorage struct {
	Path        string
	ReadOnly    bool
	Quota       int64 // 0: none
	Packer      string
	PackGC      bool
	PackKeepOld bool
	Name        string // the section's name, if any
}

// Error is an error of a configuration file.
type Error struct {
	File    string
	Line    int    // 0 if it is about the whole file
	Section string // "" if none
	Key     string // "" if none
	Msg     string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Section != "" {
		b.WriteString("[" + e.Section + "] ")
	}
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

func itoa(i int) string { return strconv.Itoa(i) }

func quote(s string) string { return strconv.Quote(s) }

// Load reads and parses the file at path; "~" and ZConfig's $(VAR) are
// expanded from the environment.
func Load(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("importconf: %w", err)
	}
	return Parse(path, src, os.LookupEnv)
}

// Parse parses src, the content of the file named file. lookupEnv, if
// not nil, gives the environment for ZConfig's $(VAR) and for "~" in
// paths (HOME).
func Parse(file string, src []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	ini, err := parseINI(file, string(src))
	if err != nil {
		return nil, err
	}
	if len(ini.sections) == 0 {
		return nil, &Error{File: file, Msg: "no section: the first section must describe the destination backend ([neo])"}
	}
	c := &Config{File: file}
	if err := c.parseMain(ini, ini.sections[0]); err != nil {
		return nil, err
	}
	for _, s := range ini.sections[1:] {
		src, err := c.parseSource(ini, s, lookupEnv)
		if err != nil {
			return nil, err
		}
		c.Sources = append(c.Sources, src)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// adapters are the destination backends neoppod's Importer accepts.
var adapters = []string{"MySQL", "MySQLdb", "PyMySQL", "SQLite"}

func (c *Config) parseMain(ini *iniFile, s *iniSection) error {
	opts, vals, err := ini.items(c.File, s)
	if err != nil {
		return err
	}
	m := &c.Main
	m.Section = s.name
	m.Adapter = "MySQL"
	m.Compress = Compress{Enabled: true}
	seen := map[string]bool{}
	for _, o := range opts {
		v := vals[o.name]
		bad := func(msg string) error {
			return &Error{File: c.File, Line: o.line, Section: s.name, Key: o.name, Msg: msg}
		}
		seen[o.name] = true
		switch o.name {
		case "adapter":
			if v == "Importer" {
				return bad("the destination cannot itself be an Importer")
			}
			if !slices.Contains(adapters, v) {
				return bad(fmt.Sprintf("unknown adapter %s: one of %s", quote(v), strings.Join(adapters, ", ")))
			}
			m.Adapter = v
		case "database":
			m.Database = v
		case "engine":
			m.Engine = v
		case "wait":
			w, err := strconv.ParseFloat(v, 64)
			if err != nil || w < 0 {
				return bad(fmt.Sprintf("%s is not a number of seconds", quote(v)))
			}
			m.Wait = w
		case "compress":
			cp, err := parseCompress(v)
			if err != nil {
				return bad(err.Error())
			}
			m.Compress = cp
		case "writeback":
			switch v {
			case "true":
				m.Writeback = true
			case "false":
			default:
				return bad(fmt.Sprintf("%s is neither true nor false", quote(v)))
			}
		default:
			m.Unknown = append(m.Unknown, Option{Name: o.name, Value: v, Line: o.line})
		}
	}
	if !seen["database"] || m.Database == "" {
		return &Error{File: c.File, Line: s.line, Section: s.name, Key: "database", Msg: "missing: the destination database of the " + m.Adapter + " adapter"}
	}
	return nil
}

// parseCompress reads the compress option as neoppod does: exactly true
// or false, else zlib[=LEVEL].
func parseCompress(v string) (Compress, error) {
	switch v {
	case "true":
		return Compress{Enabled: true}, nil
	case "false":
		return Compress{}, nil
	case "zlib":
		return Compress{Enabled: true}, nil
	}
	if lv, ok := strings.CutPrefix(v, "zlib="); ok {
		n, err := pyInt(lv)
		if err != nil || n < 1 || n > 9 {
			return Compress{}, fmt.Errorf("invalid zlib level %s: 1 to 9", quote(lv))
		}
		return Compress{Enabled: true, Level: int(n)}, nil
	}
	return Compress{}, fmt.Errorf("%s: true, false, zlib or zlib=LEVEL", quote(v))
}

// pyInt parses a decimal integer as Python's int() does: surrounding
// spaces, a sign, underscores between digits.
func pyInt(s string) (int64, error) {
	s = strings.TrimSpace(s)
	t := strings.TrimLeft(s, "+-")
	if len(s)-len(t) > 1 || t == "" || t[0] == '_' || t[len(t)-1] == '_' || strings.Contains(t, "__") {
		return 0, strconv.ErrSyntax
	}
	return strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 10, 64)
}

// pyOid parses an oid option: a decimal number of 0 to 2^64-1.
func pyOid(s string) (proto.Oid, error) {
	s = strings.TrimSpace(s)
	t := strings.TrimPrefix(s, "+")
	if t == "" || t[0] == '_' || t[len(t)-1] == '_' || strings.Contains(t, "__") {
		return 0, fmt.Errorf("%s is not a decimal oid", quote(s))
	}
	n, err := strconv.ParseUint(strings.ReplaceAll(t, "_", ""), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s is not a decimal oid (0 to 2^64-1)", quote(s))
	}
	return proto.Oid(n), nil
}

func (c *Config) parseSource(ini *iniFile, s *iniSection, lookupEnv func(string) (string, bool)) (*Source, error) {
	opts, vals, err := ini.items(c.File, s)
	if err != nil {
		return nil, err
	}
	src := &Source{Name: s.name, Line: s.line}
	var storage *iniOption
	mounted := map[proto.Oid]string{}
	for _, o := range opts {
		v := vals[o.name]
		bad := func(msg string) error {
			return &Error{File: c.File, Line: o.line, Section: s.name, Key: o.name, Msg: msg}
		}
		switch o.name {
		case "storage":
			storage = o
		case "oid":
			oid, err := pyOid(v)
			if err != nil {
				return nil, bad(err.Error())
			}
			src.Oid = oid
		default:
			oid, err := pyOid(v)
			if err != nil {
				return nil, bad("mount point: " + err.Error())
			}
			if prev, ok := mounted[oid]; ok {
				return nil, bad(fmt.Sprintf("mount point: oid %d is already the mount point of %s", oid, prev))
			}
			mounted[oid] = o.name
			src.Mounts = append(src.Mounts, Mount{Name: o.name, Oid: oid, Line: o.line})
		}
	}
	if storage == nil {
		return nil, &Error{File: c.File, Line: s.line, Section: s.name, Key: "storage", Msg: "missing: a ZConfig storage section, e.g. <filestorage> path ... </filestorage>"}
	}
	fs, err := parseZConfig(c.File, s.name, storage, vals["storage"], lookupEnv)
	if err != nil {
		return nil, err
	}
	src.Storage = *fs
	return src, nil
}

// validate checks what involves several sections.
func (c *Config) validate() error {
	if len(c.Sources) == 0 {
		return &Error{File: c.File, Msg: "no source database: the sections after [" + c.Main.Section + "] describe the databases to import"}
	}
	if c.Main.Writeback && len(c.Sources) > 1 {
		return &Error{File: c.File, Section: c.Main.Section, Key: "writeback", Msg: fmt.Sprintf("cannot write back to %d source databases: only to a single one", len(c.Sources))}
	}
	byName := map[string]*Source{}
	var root *Source
	for _, s := range c.Sources {
		byName[s.Name] = s
		if s.Root() {
			if root != nil {
				return &Error{File: c.File, Line: s.Line, Section: s.Name, Key: "oid", Msg: "missing (or 0): only the root database, here [" + root.Name + "], has no oid="}
			}
			root = s
		}
	}
	if root == nil {
		return &Error{File: c.File, Msg: "no root database: exactly one source section must have no oid="}
	}
	for _, s := range c.Sources {
		for _, m := range s.Mounts {
			bad := func(msg string) error {
				return &Error{File: c.File, Line: m.Line, Section: s.Name, Key: m.Name, Msg: msg}
			}
			switch t := byName[m.Name]; {
			case t == nil:
				return bad(fmt.Sprintf("mount point of no section (known: %s; option names are lower-cased)", strings.Join(names(c.Sources), ", ")))
			case t == s:
				return bad("a database cannot mount itself")
			}
		}
	}
	// Every database but the root must be mounted from one reachable
	// from the root: neoppod sets them up by walking the mount points.
	reached := map[string]bool{root.Name: true}
	var walk func(s *Source)
	walk = func(s *Source) {
		for _, m := range s.Mounts {
			if !reached[m.Name] {
				reached[m.Name] = true
				walk(byName[m.Name])
			}
		}
	}
	walk(root)
	for _, s := range c.Sources {
		if !reached[s.Name] {
			return &Error{File: c.File, Line: s.Line, Section: s.Name, Key: "oid", Msg: "no mount point leads to this database from the root [" + root.Name + "]"}
		}
	}
	return nil
}

func names(srcs []*Source) []string {
	var n []string
	for _, s := range srcs {
		n = append(n, s.Name)
	}
	return n
}

// Setup computes the renumbering of each source database as neoppod's
// Importer does on its first start (cluster.md §8.10): from the root
// database, in the order of mount points, each database gets the next
// free oid range [Offset, Offset+next) where next is what its
// storage's new_oid returns (its highest oid + 1, or 1 when empty),
// and each mount point oid maps to the mounted object (its oid= plus
// the mounted database's offset). newOid is called once per source, in
// that order. Setup also returns the highest oid of the imported space.
func (c *Config) Setup(newOid func(*Source) (proto.Oid, error)) (map[string]*pickleref.Shift, proto.Oid, error) {
	byName := map[string]*Source{}
	var root *Source
	for _, s := range c.Sources {
		byName[s.Name] = s
		if s.Root() {
			root = s
		}
	}
	if root == nil {
		return nil, 0, &Error{File: c.File, Msg: "no root database"}
	}
	shifts := map[string]*pickleref.Shift{}
	var next = map[string]uint64{}
	var setup func(s *Source, shift uint64) (uint64, error)
	setup = func(s *Source, shift uint64) (uint64, error) {
		sh := &pickleref.Shift{Offset: shift, Mount: map[proto.Oid]proto.Oid{}}
		shifts[s.Name] = sh
		n, err := newOid(s)
		if err != nil {
			return 0, fmt.Errorf("importconf: [%s]: new oid: %w", s.Name, err)
		}
		next[s.Name] = uint64(n)
		if shift += uint64(n); shift < uint64(n) {
			return 0, fmt.Errorf("importconf: [%s]: oid space overflows", s.Name)
		}
		for _, m := range s.Mounts {
			t := byName[m.Name]
			var target uint64
			if ts, done := shifts[t.Name]; done {
				target = uint64(t.Oid) + ts.Offset
			} else {
				target = uint64(t.Oid) + shift
				if shift, err = setup(t, shift); err != nil {
					return 0, err
				}
			}
			// neoppod does not check it: the mounted object would be
			// renumbered into the range of another database.
			if uint64(t.Oid) >= next[t.Name] {
				return 0, &Error{File: c.File, Line: t.Line, Section: t.Name, Key: "oid",
					Msg: fmt.Sprintf("%d is beyond the last oid of the database (%d)", t.Oid, next[t.Name]-1)}
			}
			sh.Mount[m.Oid] = proto.Oid(target)
		}
		return shift, nil
	}
	if _, err := setup(root, 0); err != nil {
		return nil, 0, err
	}
	// The highest oid: the last of the database with the largest offset
	// (offsets are distinct: new_oid returns at least 1).
	var top string
	for name, sh := range shifts {
		if top == "" || sh.Offset > shifts[top].Offset {
			top = name
		}
	}
	return shifts, proto.Oid(shifts[top].Offset + next[top] - 1), nil
}
