package importconf

import (
	"strings"
	"unicode"
)

// The INI layer: what Python's configparser.ConfigParser (strict, with
// BasicInterpolation, empty lines kept in values) makes of a file.

const defaultSection = "DEFAULT"

// iniLine is a line of a value and its line number in the file.
type iniLine struct {
	text string
	line int
}

type iniOption struct {
	name  string // lower-cased
	line  int
	lines []iniLine
}

// value is the raw value: its lines joined, trailing space removed.
func (o *iniOption) value() string {
	var b strings.Builder
	for i, l := range o.lines {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(l.text)
	}
	return strings.TrimRightFunc(b.String(), unicode.IsSpace)
}

type iniSection struct {
	name   string
	line   int
	opts   []*iniOption
	byName map[string]*iniOption
}

func newSection(name string, line int) *iniSection {
	return &iniSection{name: name, line: line, byName: map[string]*iniOption{}}
}

type iniFile struct {
	defaults *iniSection
	sections []*iniSection
}

// parseINI splits src into sections and options.
func parseINI(file string, src string) (*iniFile, error) {
	f := &iniFile{defaults: newSection(defaultSection, 0)}
	byName := map[string]*iniSection{}
	var cur *iniSection
	var opt *iniOption
	indent := 0
	lines := strings.Split(src, "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	for n, line := range lines {
		lineno := n + 1
		line = strings.TrimSuffix(line, "\r")
		value := strings.TrimSpace(line)
		comment := strings.HasPrefix(value, "#") || strings.HasPrefix(value, ";")
		if comment {
			value = ""
		}
		if value == "" {
			if !comment && cur != nil && opt != nil {
				opt.lines = append(opt.lines, iniLine{"", lineno})
			}
			continue
		}
		cind := strings.IndexFunc(line, func(r rune) bool { return !unicode.IsSpace(r) })
		if cur != nil && opt != nil && cind > indent {
			opt.lines = append(opt.lines, iniLine{value, lineno})
			continue
		}
		indent = cind
		if end := strings.LastIndexByte(value, ']'); value[0] == '[' && end >= 2 {
			name := value[1:end]
			switch s := byName[name]; {
			case s != nil:
				return nil, &Error{File: file, Line: lineno, Section: name, Msg: "section defined twice (first at line " + itoa(s.line) + ")"}
			case name == defaultSection:
				cur = f.defaults
			default:
				cur = newSection(name, lineno)
				byName[name] = cur
				f.sections = append(f.sections, cur)
			}
			opt = nil
			continue
		}
		if cur == nil {
			return nil, &Error{File: file, Line: lineno, Msg: "no section header before " + quote(value)}
		}
		i := strings.IndexAny(value, "=:")
		if i < 0 {
			return nil, &Error{File: file, Line: lineno, Section: cur.name, Msg: "not a section header nor a key=value option: " + quote(value)}
		}
		name := strings.ToLower(strings.TrimRightFunc(value[:i], unicode.IsSpace))
		if name == "" {
			return nil, &Error{File: file, Line: lineno, Section: cur.name, Msg: "option without a name: " + quote(value)}
		}
		if o := cur.byName[name]; o != nil {
			return nil, &Error{File: file, Line: lineno, Section: cur.name, Key: name, Msg: "option set twice (first at line " + itoa(o.line) + ")"}
		}
		opt = &iniOption{name: name, line: lineno, lines: []iniLine{{strings.TrimSpace(value[i+1:]), lineno}}}
		cur.opts = append(cur.opts, opt)
		cur.byName[name] = opt
	}
	return f, nil
}

// items returns the options of s as configparser's items(s) does: the
// defaults first, then the section's own (replacing a default keeps its
// place), each value interpolated.
func (f *iniFile) items(file string, s *iniSection) ([]*iniOption, map[string]string, error) {
	var opts []*iniOption
	raw := map[string]string{}
	pos := map[string]int{}
	for _, src := range []*iniSection{f.defaults, s} {
		for _, o := range src.opts {
			if i, ok := pos[o.name]; ok {
				opts[i] = o
			} else {
				pos[o.name] = len(opts)
				opts = append(opts, o)
			}
			raw[o.name] = o.value()
		}
	}
	vals := make(map[string]string, len(opts))
	for _, o := range opts {
		v, err := interpolate(raw, raw[o.name], 1)
		if err != nil {
			return nil, nil, &Error{File: file, Line: o.line, Section: s.name, Key: o.name, Msg: err.Error()}
		}
		vals[o.name] = v
	}
	return opts, vals, nil
}

const maxInterpolationDepth = 10

type interpolationError string

func (e interpolationError) Error() string { return string(e) }

// interpolate expands %(name)s and %% as configparser's
// BasicInterpolation.
func interpolate(vars map[string]string, rest string, depth int) (string, error) {
	if depth > maxInterpolationDepth {
		return "", interpolationError("interpolation deeper than 10 levels (a loop?)")
	}
	var b strings.Builder
	for rest != "" {
		p := strings.IndexByte(rest, '%')
		if p < 0 {
			b.WriteString(rest)
			break
		}
		b.WriteString(rest[:p])
		rest = rest[p:]
		switch {
		case strings.HasPrefix(rest, "%%"):
			b.WriteByte('%')
			rest = rest[2:]
		case strings.HasPrefix(rest, "%("):
			end := strings.Index(rest, ")s")
			if end < 3 || strings.Contains(rest[2:end], ")") {
				return "", interpolationError("bad interpolation reference " + quote(rest))
			}
			name := strings.ToLower(rest[2:end])
			rest = rest[end+2:]
			v, ok := vars[name]
			if !ok {
				return "", interpolationError("%(" + name + ")s refers to no option of the section or DEFAULT")
			}
			if strings.Contains(v, "%") {
				var err error
				if v, err = interpolate(vars, v, depth+1); err != nil {
					return "", err
				}
			}
			b.WriteString(v)
		default:
			return "", interpolationError("'%' must be followed by '%' or '(' in " + quote(rest) + " (write %% for a literal %, e.g. %%import in a ZConfig section)")
		}
	}
	return b.String(), nil
}
