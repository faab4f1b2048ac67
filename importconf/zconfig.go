package importconf

import (
	"fmt"
	"slices"
	"strings"
)

// The storage= option: a ZConfig configuration of ZODB's storage schema
// (a single section implementing ZODB.storage), parsed with ZConfig's
// syntax. Only <filestorage> is supported.

// zodbStorages are the storage types of ZODB's schema, for the message
// that refuses them.
var zodbStorages = map[string]string{
	"mappingstorage": "MappingStorage",
	"demostorage":    "DemoStorage",
	"zeoclient":      "ZEO",
	"blobstorage":    "BlobStorage",
	"fullstorage":    "BDBFullStorage",
	"minimalstorage": "BDBMinimalStorage",
	"relstorage":     "RelStorage",
}

// fileStorageKeys are the keys of ZODB's <filestorage>.
var fileStorageKeys = []string{"path", "blob-dir", "create", "read-only", "quota", "packer", "pack-gc", "pack-keep-old"}

func parseZConfig(file, section string, opt *iniOption, value string, lookupEnv func(string) (string, bool)) (*FileStorage, error) {
	lines := strings.Split(value, "\n")
	// The file's line of each line of the value, when interpolation did
	// not change their number.
	sameLines := strings.Count(value, "\n") == strings.Count(opt.value(), "\n")
	lineOf := func(i int) int {
		if sameLines && i < len(opt.lines) {
			return opt.lines[i].line
		}
		return opt.line
	}
	var fs *FileStorage
	seen := map[string]int{}
	defines := map[string]string{}
	depth := 0
	var unsupported string
	for i, raw := range lines {
		line := strings.TrimSpace(raw)
		bad := func(key, format string, args ...any) error {
			k := "storage"
			if key != "" {
				k += ": " + key
			}
			return &Error{File: file, Line: lineOf(i), Section: section, Key: k, Msg: fmt.Sprintf(format, args...)}
		}
		switch {
		case line == "" || line[0] == '#':
		case strings.HasPrefix(line, "</"):
			if !strings.HasSuffix(line, ">") {
				return nil, bad("", "malformed section end %s", quote(line))
			}
			typ := strings.ToLower(strings.TrimSpace(line[2 : len(line)-1]))
			if depth == 0 || typ != "filestorage" {
				return nil, bad("", "unbalanced section end %s", quote(line))
			}
			depth--
		case line[0] == '<':
			if !strings.HasSuffix(line, ">") {
				return nil, bad("", "malformed section start %s", quote(line))
			}
			rest := line[1 : len(line)-1]
			empty := strings.HasSuffix(rest, "/")
			rest = strings.TrimSuffix(rest, "/")
			f := strings.Fields(rest)
			if len(f) == 0 || len(f) > 2 || strings.ContainsAny(rest, "()") {
				return nil, bad("", "malformed section header %s", quote(line))
			}
			typ := strings.ToLower(f[0])
			if depth > 0 {
				return nil, bad("", "<%s> inside <filestorage>: it has no subsection", typ)
			}
			if typ != "filestorage" {
				what := zodbStorages[typ]
				if what == "" {
					what = "<" + typ + ">"
					if unsupported != "" {
						what += " (from %import " + unsupported + ")"
					}
				}
				return nil, bad("", "%s sources are not supported: only <filestorage> (ZODB FileStorage, a Data.fs file) is", what)
			}
			if fs != nil {
				return nil, bad("", "a second storage section: a source is a single storage")
			}
			fs = &FileStorage{PackGC: true, PackKeepOld: true}
			if len(f) == 2 {
				fs.Name = strings.ToLower(f[1])
			}
			if !empty {
				depth++
			}
		case line[0] == '%':
			f := strings.Fields(line[1:])
			if len(f) < 2 {
				return nil, bad("", "malformed directive %s", quote(line))
			}
			switch strings.ToLower(f[0]) {
			case "define":
				name := strings.ToLower(f[1])
				if !isName(f[1]) {
					return nil, bad("", "%s is not a name for %%define", quote(f[1]))
				}
				arg := strings.TrimSpace(strings.TrimSpace(line[1:])[len(f[0]):])
				v, err := substitute(strings.TrimSpace(arg[len(f[1]):]), defines, lookupEnv)
				if err != nil {
					return nil, bad("", "%v", err)
				}
				if old, ok := defines[name]; ok && old != v {
					return nil, bad("", "cannot redefine %s", quote(name))
				}
				defines[name] = v
			case "import":
				unsupported = f[1]
			case "include":
				return nil, bad("", "%%include is not supported: put the storage section in the file")
			default:
				return nil, bad("", "unknown directive %s", quote(f[0]))
			}
		default:
			key, v := line, ""
			if j := strings.IndexAny(line, " \t"); j >= 0 {
				key, v = line[:j], strings.TrimSpace(line[j:])
			}
			key = strings.ToLower(key)
			if depth == 0 {
				return nil, bad(key, "key outside of the storage section")
			}
			if !slices.Contains(fileStorageKeys, key) {
				return nil, bad(key, "not a key of <filestorage> (%s)", strings.Join(fileStorageKeys, ", "))
			}
			if prev, ok := seen[key]; ok {
				return nil, bad(key, "set twice (first at line %d)", prev)
			}
			seen[key] = lineOf(i)
			v, err := substitute(v, defines, lookupEnv)
			if err != nil {
				return nil, bad(key, "%v", err)
			}
			if err := fs.set(key, v, lookupEnv); err != nil {
				return nil, bad(key, "%v", err)
			}
		}
	}
	if depth > 0 {
		return nil, &Error{File: file, Line: opt.line, Section: section, Key: "storage", Msg: "<filestorage> not closed"}
	}
	if fs == nil {
		return nil, &Error{File: file, Line: opt.line, Section: section, Key: "storage", Msg: "no storage section: a <filestorage> with its path"}
	}
	if fs.Path == "" {
		return nil, &Error{File: file, Line: opt.line, Section: section, Key: "storage: path", Msg: "missing: <filestorage> needs the path of the Data.fs"}
	}
	return fs, nil
}

func (fs *FileStorage) set(key, v string, lookupEnv func(string) (string, bool)) error {
	boolean := func() (bool, error) {
		switch strings.ToLower(v) {
		case "yes", "true", "on":
			return true, nil
		case "no", "false", "off":
			return false, nil
		}
		return false, fmt.Errorf("%s is not a boolean (true, false, yes, no, on, off)", quote(v))
	}
	var err error
	switch key {
	case "path":
		if v == "" {
			return fmt.Errorf("empty path")
		}
		fs.Path = expandUser(v, lookupEnv)
	case "blob-dir":
		if v != "" {
			return fmt.Errorf("NEO has no blobs: a source with blobs cannot be imported")
		}
	case "create":
		var c bool
		if c, err = boolean(); err == nil && c {
			return fmt.Errorf("create would truncate the source database")
		}
	case "read-only":
		fs.ReadOnly, err = boolean()
	case "pack-gc":
		fs.PackGC, err = boolean()
	case "pack-keep-old":
		fs.PackKeepOld, err = boolean()
	case "packer":
		fs.Packer = v
	case "quota":
		fs.Quota, err = byteSize(v)
	}
	return err
}

// byteSize reads ZConfig's byte-size: an integer with an optional KB,
// MB or GB suffix, in any case.
func byteSize(v string) (int64, error) {
	mult := int64(1)
	s := strings.ToLower(v)
	for suffix, m := range map[string]int64{"kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30} {
		if strings.HasSuffix(s, suffix) {
			s, mult = s[:len(s)-2], m
			break
		}
	}
	n, err := pyInt(s)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%s is not a size in bytes (e.g. 100MB)", quote(v))
	}
	return n * mult, nil
}

// expandUser replaces a leading "~" by HOME, as os.path.expanduser.
func expandUser(p string, lookupEnv func(string) (string, bool)) string {
	if p != "~" && !strings.HasPrefix(p, "~/") {
		return p
	}
	home, ok := lookupEnv("HOME")
	if !ok {
		return p
	}
	return strings.TrimSuffix(home, "/") + p[1:]
}

// substitute expands ZConfig's $name, ${name}, $(ENV) and $$.
func substitute(s string, defines map[string]string, lookupEnv func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		s = s[i+1:]
		if s == "" {
			return "", fmt.Errorf("lone '$' at the end")
		}
		env := false
		var name string
		switch s[0] {
		case '$':
			b.WriteByte('$')
			s = s[1:]
			continue
		case '{', '(':
			close := "}"
			if s[0] == '(' {
				close, env = ")", true
			}
			j := strings.Index(s, close)
			if j < 0 || !isName(s[1:j]) {
				return "", fmt.Errorf("bad substitution $%s", s)
			}
			name, s = s[1:j], s[j+1:]
		default:
			j := 0
			for j < len(s) && (s[j] == '_' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || j > 0 && s[j] >= '0' && s[j] <= '9') {
				j++
			}
			if j == 0 {
				return "", fmt.Errorf("'$' not followed by '$' or a name")
			}
			name, s = s[:j], s[j:]
		}
		var v string
		var ok bool
		if env {
			v, ok = lookupEnv(name)
		} else {
			v, ok = defines[strings.ToLower(name)]
		}
		if !ok {
			return "", fmt.Errorf("no value for $%s", name)
		}
		b.WriteString(v)
	}
}

func isName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
