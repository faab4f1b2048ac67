package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// This file is a copy of cmd/neomaster's option parser (a main package
// cannot be imported), extended with float and repeatable options.
//
// It parses command lines the way neoppod's daemons do (Python
// argparse driven by neo.lib.config): long options may be abbreviated to any
// unique prefix, "--opt value" and "--opt=value" are both accepted, short
// options take "-p 3" or "-p3", a bad command line exits with status 2 after
// a usage line, and "-f FILE -s SECTION" loads defaults from an INI file
// whose keys are the long names with "-" replaced by "_".

type optKind int

const (
	kindString optKind = iota
	kindInt
	kindBool
	kindFloat
	kindPath // a string with ~ expanded
)

type optSpec struct {
	short    string // one letter, or ""
	long     string
	kind     optKind
	def      string // default value; "" and !hasDef: none
	hasDef   bool
	required bool
	multiple bool // repeatable: values are joined with newlines, as in a config file
	help     string
}

func (o *optSpec) key() string { return strings.ReplaceAll(o.long, "-", "_") }

func (o *optSpec) names() string {
	if o.short != "" {
		return "-" + o.short + "/--" + o.long
	}
	return "--" + o.long
}

// usageError is a command-line error: argparse prints the usage line and
// the message, then exits with status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// errHelp is returned when -h/--help was given; the help text was written.
var errHelp = errors.New("help requested")

type optParser struct {
	prog  string
	descr string
	specs []*optSpec

	// warnings are set by parse: keys of the config file's section that
	// no option reads. They are not errors: neoppod ignores them.
	warnings []string
}

func (p *optParser) usage() string {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: %s [-h]", p.prog)
	for _, o := range p.specs {
		n := "--" + o.long
		if o.short != "" {
			n = "-" + o.short
		}
		if o.kind != kindBool {
			n += " " + strings.ToUpper(o.key())
		}
		if o.required {
			fmt.Fprintf(&b, " %s", n)
		} else {
			fmt.Fprintf(&b, " [%s]", n)
		}
	}
	return b.String()
}

func (p *optParser) help(w io.Writer) {
	fmt.Fprintln(w, p.usage())
	fmt.Fprintf(w, "\n%s\n\noptions:\n  -h, --help            show this help message and exit\n", p.descr)
	for _, o := range p.specs {
		n := "--" + o.long
		if o.short != "" {
			n = "-" + o.short + ", " + n
		}
		if o.kind != kindBool {
			n += " " + strings.ToUpper(o.key())
		}
		h := o.help
		if o.hasDef {
			h += " (default: " + o.def + ")"
		}
		fmt.Fprintf(w, "  %-22s%s\n", n, h)
	}
}

// lookupLong finds the option named by a long name or a unique prefix of it.
func (p *optParser) lookupLong(name string) (*optSpec, error) {
	var match []*optSpec
	for _, o := range p.specs {
		if o.long == name {
			return o, nil
		}
		if strings.HasPrefix(o.long, name) {
			match = append(match, o)
		}
	}
	if strings.HasPrefix("help", name) {
		return nil, errHelp
	}
	switch len(match) {
	case 0:
		return nil, nil
	case 1:
		return match[0], nil
	}
	var names []string
	for _, o := range match {
		names = append(names, "--"+o.long)
	}
	return nil, &usageError{fmt.Sprintf("ambiguous option: --%s could match %s", name, strings.Join(names, ", "))}
}

func (p *optParser) lookupShort(c string) *optSpec {
	for _, o := range p.specs {
		if o.short == c {
			return o
		}
	}
	return nil
}

// parse returns the values given on the command line, by key, and the
// final values after applying the config file (-f/-s) and defaults.
func (p *optParser) parse(args []string, stdout io.Writer) (map[string]string, error) {
	given := map[string]string{}
	var unknown []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		var o *optSpec
		var val string
		hasVal := false
		switch {
		case a == "--":
			unknown = append(unknown, args[i+1:]...)
			i = len(args)
			continue
		case strings.HasPrefix(a, "--"):
			name := a[2:]
			if k := strings.IndexByte(name, '='); k >= 0 {
				name, val, hasVal = name[:k], name[k+1:], true
			}
			var err error
			o, err = p.lookupLong(name)
			if errors.Is(err, errHelp) {
				p.help(stdout)
				return nil, errHelp
			}
			if err != nil {
				return nil, err
			}
		case strings.HasPrefix(a, "-") && len(a) > 1:
			c := a[1:2]
			if c == "h" {
				p.help(stdout)
				return nil, errHelp
			}
			o = p.lookupShort(c)
			if o != nil && len(a) > 2 {
				if o.kind == kindBool {
					return nil, &usageError{fmt.Sprintf("argument %s: ignored explicit argument '%s'", o.names(), a[2:])}
				}
				val, hasVal = strings.TrimPrefix(a[2:], "="), true
			}
		default:
			unknown = append(unknown, a)
			continue
		}
		if o == nil {
			unknown = append(unknown, a)
			continue
		}
		if o.kind == kindBool {
			if hasVal {
				return nil, &usageError{fmt.Sprintf("argument %s: ignored explicit argument '%s'", o.names(), val)}
			}
			given[o.key()] = "true"
			continue
		}
		if !hasVal {
			if i+1 >= len(args) || strings.HasPrefix(args[i+1], "-") && len(args[i+1]) > 1 && !isNegativeNumber(args[i+1]) {
				return nil, &usageError{fmt.Sprintf("argument %s: expected one argument", o.names())}
			}
			i++
			val = args[i]
		}
		if err := checkValue(o, val); err != nil {
			return nil, err
		}
		if prev, ok := given[o.key()]; ok && o.multiple {
			val = prev + "\n" + val
		}
		given[o.key()] = val
	}
	if len(unknown) > 0 {
		return nil, &usageError{"unrecognized arguments: " + strings.Join(unknown, " ")}
	}

	values := map[string]string{}
	for _, o := range p.specs {
		if o.hasDef {
			values[o.key()] = o.def
		}
	}
	if file, ok := given["file"]; ok {
		section := given["section"]
		if section == "" {
			section = values["section"]
		}
		fromFile, own, err := readConfigSection(expandUser(file), section)
		if err != nil {
			return nil, err
		}
		// Only the section's own keys: [DEFAULT] is shared by every
		// node type, so it holds keys of the others.
		for _, k := range own {
			if !slices.ContainsFunc(p.specs, func(o *optSpec) bool { return o.key() == k }) {
				p.warnings = append(p.warnings, fmt.Sprintf("config file %s, section [%s]: unknown option '%s' ignored", file, section, k))
			}
		}
		for _, o := range p.specs {
			v, ok := fromFile[o.key()]
			if !ok {
				continue
			}
			if o.kind == kindBool {
				b, err := parseINIBool(v)
				if err != nil {
					return nil, fmt.Errorf("config file %s, option %s: %w", file, o.key(), err)
				}
				if !b {
					delete(values, o.key())
					continue
				}
				v = "true"
			} else if o.multiple {
				// One value per line; empty lines are ignored.
				var lines []string
				for _, l := range strings.Split(v, "\n") {
					if l = strings.TrimSpace(l); l != "" {
						if err := checkValue(o, l); err != nil {
							return nil, configValueError(file, section, o, err)
						}
						lines = append(lines, l)
					}
				}
				v = strings.Join(lines, "\n")
			} else if err := checkValue(o, v); err != nil {
				return nil, configValueError(file, section, o, err)
			}
			values[o.key()] = v
		}
	}
	for k, v := range given {
		values[k] = v
	}
	var missing []string
	for _, o := range p.specs {
		if o.required {
			if _, ok := values[o.key()]; !ok {
				missing = append(missing, o.names())
			}
		}
	}
	if len(missing) > 0 {
		return nil, &usageError{"the following arguments are required: " + strings.Join(missing, ", ")}
	}
	for _, o := range p.specs {
		if o.kind == kindPath {
			if v, ok := values[o.key()]; ok {
				values[o.key()] = expandUser(v)
			}
		}
	}
	return values, nil
}

// isNegativeNumber: argparse takes "-1" as a value, not an option.
func isNegativeNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

// configValueError turns checkValue's command-line error into one naming
// the config file, section and key: a bad file exits 1, not 2 with usage.
func configValueError(file, section string, o *optSpec, err error) error {
	msg := strings.TrimPrefix(err.Error(), "argument "+o.names()+": ")
	return fmt.Errorf("config file %s, section [%s]: %s: %s", file, section, o.key(), msg)
}

func checkValue(o *optSpec, val string) error {
	switch o.kind {
	case kindInt:
		if _, err := strconv.Atoi(strings.TrimSpace(val)); err != nil {
			return &usageError{fmt.Sprintf("argument %s: invalid int value: '%s'", o.names(), val)}
		}
	case kindFloat:
		if _, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err != nil {
			return &usageError{fmt.Sprintf("argument %s: invalid float value: '%s'", o.names(), val)}
		}
	default:
		if val == "" {
			return &usageError{fmt.Sprintf("argument %s: value is empty", o.names())}
		}
	}
	return nil
}

// expandUser expands a leading ~ or ~user like Python's os.path.expanduser.
func expandUser(p string) string {
	if !strings.HasPrefix(p, "~") {
		return p
	}
	rest := p[1:]
	name, tail := rest, ""
	if k := strings.IndexByte(rest, '/'); k >= 0 {
		name, tail = rest[:k], rest[k:]
	}
	var home string
	if name == "" {
		home = os.Getenv("HOME")
		if home == "" {
			if u, err := user.Current(); err == nil {
				home = u.HomeDir
			}
		}
	} else if u, err := user.Lookup(name); err == nil {
		home = u.HomeDir
	}
	if home == "" {
		return p
	}
	return filepath.Clean(home) + tail
}

// readConfigSection reads an INI file as Python's ConfigParser does (the
// subset neoppod configurations use): [section] headers, "key = value" or
// "key: value", indented continuation lines, full-line comments starting
// with # or ;, keys case-insensitive, [DEFAULT] values shared by every
// section. A missing file or section is an error.
func readConfigSection(path, section string) (values map[string]string, own []string, err error) {
	f, err := os.Open(path)
	if err != nil {
		// Unlike ConfigParser.read, a missing file is an error: the
		// operator named it.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, nil, fmt.Errorf("config file %s: %w", path, err)
	}
	defer f.Close()
	sections := map[string]map[string]string{}
	var cur map[string]string
	var lastKey string
	sc := bufio.NewScanner(f)
	lineno := 0
	for sc.Scan() {
		lineno++
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || trimmed[0] == '#' || trimmed[0] == ';' {
			lastKey = "" // ConfigParser ends a multi-line value at an empty line
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if cur == nil || lastKey == "" {
				return nil, nil, fmt.Errorf("config file %s line %d: unexpected continuation line", path, lineno)
			}
			cur[lastKey] += "\n" + trimmed
			continue
		}
		if trimmed[0] == '[' && strings.HasSuffix(trimmed, "]") {
			name := trimmed[1 : len(trimmed)-1]
			if sections[name] == nil {
				sections[name] = map[string]string{}
			}
			cur, lastKey = sections[name], ""
			continue
		}
		if cur == nil {
			return nil, nil, fmt.Errorf("config file %s line %d: no section header", path, lineno)
		}
		k := strings.IndexAny(trimmed, "=:")
		if k < 0 {
			return nil, nil, fmt.Errorf("config file %s line %d: no '=' or ':' in %q", path, lineno, trimmed)
		}
		key := strings.ToLower(strings.TrimSpace(trimmed[:k]))
		cur[key] = strings.TrimSpace(trimmed[k+1:])
		lastKey = key
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("config file %s: %w", path, err)
	}
	sec, ok := sections[section]
	if !ok && section != "DEFAULT" {
		return nil, nil, fmt.Errorf("config file %s: no section: '%s'", path, section)
	}
	out := map[string]string{}
	for k, v := range sections["DEFAULT"] {
		out[k] = v
	}
	for k, v := range sec {
		out[k] = v
		own = append(own, k)
	}
	sort.Strings(own)
	// ConfigParser keeps a leading newline when a value starts on the next
	// line; multi-value options ignore empty lines anyway.
	for k, v := range out {
		out[k] = strings.TrimLeft(v, "\n")
	}
	return out, own, nil
}

func parseINIBool(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "yes", "true", "on":
		return true, nil
	case "0", "no", "false", "off":
		return false, nil
	}
	return false, fmt.Errorf("not a boolean: %s", v)
}
