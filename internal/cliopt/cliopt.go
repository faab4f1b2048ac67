// Package cliopt parses the command lines of the NEO daemons (neomaster,
// neostorage, neoadmin) the way neoppod's do: Python argparse driven by
// neo.lib.config, so that our binaries can replace neoppod's in a
// deployment or a test harness without changing its scripts.
//
// Long options may be abbreviated to any unique prefix; "--opt value" and
// "--opt=value" are both accepted; short options take "-p 3" or "-p3"; a
// value may be a negative number ("-r -1"). A bad command line exits with
// status 2 after the usage line. "-f FILE -s SECTION" loads defaults from an
// INI file whose keys are the long names with "-" replaced by "_" (see
// [Parser.Parse]); a bad file exits with status 1, without the usage line,
// and a key of the section that no option reads is only a warning.
//
// The daemons share their run too ([Daemon]). Our own tools (neosimple,
// neobench) take Go flags instead, and share with [ParseFlags] and
// [UsageStatus] how a bad command line is reported.
package cliopt

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

// Kind is the type of an option's value. Values stay strings (as in a
// config file); the kind says how they are checked.
type Kind int

const (
	String Kind = iota // any non-empty string
	Int                // a decimal integer
	Bool               // a flag without value: "true" when given
	Float              // a floating-point number
	Path               // a string with a leading ~ or ~user expanded
)

// Option describes one option. Its key, by which [Parser.Parse] returns its
// value and a config file names it, is Long with "-" replaced by "_".
type Option struct {
	Short      string // one letter, or ""
	Long       string
	Kind       Kind
	Default    string // used when HasDefault
	HasDefault bool
	Required   bool
	Multiple   bool     // repeatable: values are joined with newlines, as in a config file
	Choices    []string // if not empty, the only accepted values
	Help       string
}

func (o *Option) key() string { return strings.ReplaceAll(o.Long, "-", "_") }

func (o *Option) names() string {
	if o.Short != "" {
		return "-" + o.Short + "/--" + o.Long
	}
	return "--" + o.Long
}

// UsageError is a command-line error, for which a command exits with
// status 2: a daemon after the usage line and the message, as argparse
// does ([Parser.ParseCommandLine]); a tool after the message and a pointer
// to -h ([UsageStatus]).
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// ErrHelp is returned when -h/--help was given; the help text was written.
var ErrHelp = errors.New("help requested")

// Parser parses one command's options.
type Parser struct {
	Prog        string // the command's name, which starts every message
	Description string // shown by -h
	Options     []*Option
	// Positionals name required positional arguments, in order, each
	// with its help; Parse returns them by name.
	Positionals [][2]string

	// Warnings are set by Parse: keys of the config file's section that
	// no option reads. They are not errors: neoppod ignores them.
	Warnings []string
}

// Usage returns argparse's usage line, without a newline.
func (p *Parser) Usage() string {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: %s [-h]", p.Prog)
	for _, o := range p.Options {
		n := "--" + o.Long
		if o.Short != "" {
			n = "-" + o.Short
		}
		if o.Kind != Bool {
			n += " " + strings.ToUpper(o.key())
		}
		if o.Required {
			fmt.Fprintf(&b, " %s", n)
		} else {
			fmt.Fprintf(&b, " [%s]", n)
		}
	}
	for _, a := range p.Positionals {
		fmt.Fprintf(&b, " %s", a[0])
	}
	return b.String()
}

// Help writes the usage line and one line per option, as -h does.
func (p *Parser) Help(w io.Writer) {
	fmt.Fprintln(w, p.Usage())
	fmt.Fprintf(w, "\n%s\n", p.Description)
	if len(p.Positionals) > 0 {
		fmt.Fprintf(w, "\npositional arguments:\n")
		for _, a := range p.Positionals {
			fmt.Fprintf(w, "  %-22s%s\n", a[0], a[1])
		}
	}
	fmt.Fprintf(w, "\noptions:\n  -h, --help            show this help message and exit\n")
	for _, o := range p.Options {
		n := "--" + o.Long
		if o.Short != "" {
			n = "-" + o.Short + ", " + n
		}
		if o.Kind != Bool {
			n += " " + strings.ToUpper(o.key())
		}
		h := o.Help
		if o.HasDefault {
			h += " (default: " + o.Default + ")"
		}
		if len(n) > 21 {
			// Too long to share the line with its help (argparse does so too).
			n += "\n" + strings.Repeat(" ", 24)
		}
		fmt.Fprintf(w, "  %-22s%s\n", n, h)
	}
}

// lookupLong finds the option named by a long name or a unique prefix of it.
func (p *Parser) lookupLong(name string) (*Option, error) {
	var match []*Option
	for _, o := range p.Options {
		if o.Long == name {
			return o, nil
		}
		if strings.HasPrefix(o.Long, name) {
			match = append(match, o)
		}
	}
	if strings.HasPrefix("help", name) {
		return nil, ErrHelp
	}
	switch len(match) {
	case 0:
		return nil, nil
	case 1:
		return match[0], nil
	}
	var names []string
	for _, o := range match {
		names = append(names, "--"+o.Long)
	}
	return nil, &UsageError{fmt.Sprintf("ambiguous option: --%s could match %s", name, strings.Join(names, ", "))}
}

func (p *Parser) lookupShort(c string) *Option {
	for _, o := range p.Options {
		if o.Short == c {
			return o
		}
	}
	return nil
}

// Parse returns the options' values by key: the command line wins over
// the config file, which wins over the defaults; an option without any
// value is absent. A Bool option is "true" when set; the values of a
// Multiple option are joined with newlines (see [Lines]).
//
// The config file is read when the options "file" (-f) and "section" (-s)
// exist and -f is given on the command line. It is an INI file as read by
// Python's ConfigParser: keys of [DEFAULT] apply to every section, a value
// may continue on indented lines, and a Bool key takes yes/no, on/off,
// true/false or 1/0.
//
// The error is a *[UsageError] for a bad command line, [ErrHelp] after
// -h/--help wrote the help to stdout, and any other error for a bad config
// file.
func (p *Parser) Parse(args []string, stdout io.Writer) (map[string]string, error) {
	given := map[string]string{}
	var unknown, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		var o *Option
		var val string
		hasVal := false
		switch {
		case a == "--":
			for _, a := range args[i+1:] {
				if len(pos) < len(p.Positionals) {
					pos = append(pos, a)
				} else {
					unknown = append(unknown, a)
				}
			}
			i = len(args)
			continue
		case strings.HasPrefix(a, "--"):
			name := a[2:]
			if k := strings.IndexByte(name, '='); k >= 0 {
				name, val, hasVal = name[:k], name[k+1:], true
			}
			var err error
			o, err = p.lookupLong(name)
			if errors.Is(err, ErrHelp) {
				p.Help(stdout)
				return nil, ErrHelp
			}
			if err != nil {
				return nil, err
			}
		case strings.HasPrefix(a, "-") && len(a) > 1:
			c := a[1:2]
			if c == "h" {
				p.Help(stdout)
				return nil, ErrHelp
			}
			o = p.lookupShort(c)
			if o != nil && len(a) > 2 {
				if o.Kind == Bool {
					return nil, &UsageError{fmt.Sprintf("argument %s: ignored explicit argument '%s'", o.names(), a[2:])}
				}
				val, hasVal = strings.TrimPrefix(a[2:], "="), true
			}
		default:
			if len(pos) < len(p.Positionals) {
				pos = append(pos, a)
			} else {
				unknown = append(unknown, a)
			}
			continue
		}
		if o == nil {
			unknown = append(unknown, a)
			continue
		}
		if o.Kind == Bool {
			if hasVal {
				return nil, &UsageError{fmt.Sprintf("argument %s: ignored explicit argument '%s'", o.names(), val)}
			}
			given[o.key()] = "true"
			continue
		}
		if !hasVal {
			if i+1 >= len(args) || strings.HasPrefix(args[i+1], "-") && len(args[i+1]) > 1 && !isNegativeNumber(args[i+1]) {
				return nil, &UsageError{fmt.Sprintf("argument %s: expected one argument", o.names())}
			}
			i++
			val = args[i]
		}
		if err := checkValue(o, val); err != nil {
			return nil, err
		}
		if prev, ok := given[o.key()]; ok && o.Multiple {
			val = prev + "\n" + val
		}
		given[o.key()] = val
	}
	if len(unknown) > 0 {
		return nil, &UsageError{"unrecognized arguments: " + strings.Join(unknown, " ")}
	}

	values := map[string]string{}
	for _, o := range p.Options {
		if o.HasDefault {
			values[o.key()] = o.Default
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
			if !slices.ContainsFunc(p.Options, func(o *Option) bool { return o.key() == k }) {
				p.Warnings = append(p.Warnings, fmt.Sprintf("config file %s, section [%s]: unknown option '%s' ignored", file, section, k))
			}
		}
		for _, o := range p.Options {
			v, ok := fromFile[o.key()]
			if !ok {
				continue
			}
			if o.Kind == Bool {
				b, err := parseINIBool(v)
				if err != nil {
					return nil, fmt.Errorf("config file %s, option %s: %w", file, o.key(), err)
				}
				if !b {
					delete(values, o.key())
					continue
				}
				v = "true"
			} else if o.Multiple {
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
	for _, o := range p.Options {
		if o.Required {
			if _, ok := values[o.key()]; !ok {
				missing = append(missing, o.names())
			}
		}
	}
	for i, a := range p.Positionals {
		if i < len(pos) {
			values[a[0]] = pos[i]
		} else {
			missing = append(missing, a[0])
		}
	}
	if len(missing) > 0 {
		return nil, &UsageError{"the following arguments are required: " + strings.Join(missing, ", ")}
	}
	for _, o := range p.Options {
		if o.Kind == Path {
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
func configValueError(file, section string, o *Option, err error) error {
	msg := strings.TrimPrefix(err.Error(), "argument "+o.names()+": ")
	return fmt.Errorf("config file %s, section [%s]: %s: %s", file, section, o.key(), msg)
}

func checkValue(o *Option, val string) error {
	switch o.Kind {
	case Int:
		if _, err := strconv.Atoi(strings.TrimSpace(val)); err != nil {
			return &UsageError{fmt.Sprintf("argument %s: invalid int value: '%s'", o.names(), val)}
		}
	case Float:
		if _, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err != nil {
			return &UsageError{fmt.Sprintf("argument %s: invalid float value: '%s'", o.names(), val)}
		}
	default:
		if val == "" {
			return &UsageError{fmt.Sprintf("argument %s: value is empty", o.names())}
		}
		if len(o.Choices) > 0 && !slices.Contains(o.Choices, val) {
			q := make([]string, len(o.Choices))
			for i, c := range o.Choices {
				q[i] = "'" + c + "'"
			}
			return &UsageError{fmt.Sprintf("argument %s: invalid choice: '%s' (choose from %s)", o.names(), val, strings.Join(q, ", "))}
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
