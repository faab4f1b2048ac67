package mysql

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Params are what neoppod's --database string for MySQL names.
type Params struct {
	User     string // "" for the driver's default
	Password string
	HasPass  bool   // a password was given, possibly empty
	Database string // never empty
	Socket   string // unix socket path, "~" expanded; "" for the default
}

// dsnRe is the syntax of cluster.md §8.1, [user[:password]@]database[socket],
// the socket starting with "/", "." or "~". It is matched leftmost-first
// with greedy groups, as neoppod matches it, so that the odd strings (an
// "@" in a password or socket path) split the same way in both.
var dsnRe = regexp.MustCompile(`^(?:([^:]+)(?::(.*))?@)?([^~./]+)(.+)?$`)

// ParseDSN parses "mysql:" followed by neoppod's --database syntax (the
// prefix is optional).
func ParseDSN(dsn string) (Params, error) {
	s := strings.TrimPrefix(dsn, "mysql:")
	m := dsnRe.FindStringSubmatchIndex(s)
	if m == nil {
		return Params{}, fmt.Errorf("parse %q: not [user[:password]@]database[socket]", dsn)
	}
	group := func(i int) (string, bool) {
		if m[2*i] < 0 {
			return "", false
		}
		return s[m[2*i]:m[2*i+1]], true
	}
	var p Params
	p.User, _ = group(1)
	p.Password, p.HasPass = group(2)
	p.Database, _ = group(3)
	p.Socket, _ = group(4)
	if p.Socket == "~" || strings.HasPrefix(p.Socket, "~/") {
		home, err := os.UserHomeDir()
		if err != nil {
			return p, fmt.Errorf("parse %q: expand ~: %w", dsn, err)
		}
		p.Socket = filepath.Join(home, p.Socket[1:])
	}
	return p, nil
}

// String is the --database form of p, with the password hidden.
func (p Params) String() string {
	var b strings.Builder
	if p.User != "" {
		b.WriteString(p.User)
		if p.HasPass {
			b.WriteString(":***")
		}
		b.WriteByte('@')
	}
	b.WriteString(p.Database)
	b.WriteString(p.Socket)
	return b.String()
}
