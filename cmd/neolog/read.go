package main

import (
	"compress/bzip2"
	"compress/gzip"
	"database/sql"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/zstd"
	_ "modernc.org/sqlite" // database/sql driver "sqlite", as nodes write logs
)

// event is one record to print: a log record or a packet, at date.
type event struct {
	date  float64
	node  string // "" for the file's default name
	level string // DEBUG ... CRITICAL, PACKET
	lines []string
}

// row is a row of the log or packet table, with its node.
type row struct {
	date    float64
	name    sql.NullString
	cluster sql.NullString
	nid     sql.NullInt64

	level    int64
	pathname sql.NullString
	lineno   sql.NullInt64
	msg      sql.NullString

	msgID int64
	code  int64
	peer  string
	body  []byte
}

// source is one log file being read: its log and packet rows, merged by
// date. Following (-f), each pass reads the rows after the last ones.
type source struct {
	o       *options
	path    string
	name    string // default node name: the file name without extension
	db      *sql.DB
	tmp     string // decompressed copy, removed at close
	logDate float64
	pktDate float64
	from    float64 // --from, until the first pass reaches it
}

// compressed maps the extensions neoppod's neolog reads to their
// decompressors (xz through xzcat, as it does without lzma).
var compressed = map[string]func(string, io.Writer) error{
	"gz": func(p string, w io.Writer) error {
		return withFile(p, func(r io.Reader) error {
			z, err := gzip.NewReader(r)
			if err != nil {
				return err
			}
			_, err = io.Copy(w, z)
			return err
		})
	},
	"bz2": func(p string, w io.Writer) error {
		return withFile(p, func(r io.Reader) error { _, err := io.Copy(w, bzip2.NewReader(r)); return err })
	},
	"zst": func(p string, w io.Writer) error {
		return withFile(p, func(r io.Reader) error {
			z, err := zstd.NewReader(r)
			if err != nil {
				return err
			}
			defer z.Close()
			_, err = io.Copy(w, z)
			return err
		})
	},
	"xz": func(p string, w io.Writer) error {
		cmd := exec.Command("xzcat", p)
		cmd.Stdout = w
		return cmd.Run()
	},
}

func withFile(path string, f func(io.Reader) error) error {
	r, err := os.Open(path)
	if err != nil {
		return err
	}
	defer r.Close()
	return f(r)
}

// openSource opens the log file at path (decompressed into a temporary
// file if compressed), read-only.
func openSource(o *options, path string) (*source, error) {
	s := &source{o: o, path: path, from: o.from}
	name := filepath.Base(path)
	dbPath := path
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		ext := name[i+1:]
		name = name[:i]
		if dec, ok := compressed[ext]; ok {
			f, err := os.CreateTemp("", "neolog-*.sqlite")
			if err != nil {
				return nil, err
			}
			s.tmp = f.Name()
			err = dec(path, f)
			f.Close()
			if err != nil {
				os.Remove(s.tmp)
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			dbPath = s.tmp
			if j := strings.LastIndexByte(name, '.'); j >= 0 {
				name = name[:j]
			}
		}
	}
	s.name = name
	if _, err := os.Stat(dbPath); err != nil {
		return nil, err // never create an empty log
	}
	db, err := sql.Open("sqlite", "file:"+dbPath+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s.db = db
	return s, nil
}

func (s *source) close() {
	s.db.Close()
	if s.tmp != "" {
		os.Remove(s.tmp)
	}
}

// query returns the rows of table (log or packet) after date (or from
// it, with ge): first those of the older table table+"1" if any, then
// those of table, in the newer format (node table) or the older one (a
// name column).
func (s *source) query(table string, date float64, ge bool) ([]*sql.Rows, error) {
	cols := "level, pathname, lineno, msg"
	if table == "packet" {
		cols = "msg_id, code, peer, body"
	}
	cmp := ">"
	if ge {
		cmp = ">="
	}
	oldQ := "SELECT date, name, NULL, NULL, " + cols + " FROM %s WHERE date" + cmp + "? ORDER BY date"
	newQ := "SELECT date, name, cluster, nid, " + cols + " FROM %s LEFT JOIN node ON node=id WHERE date" + cmp + "? ORDER BY date"
	var out []*sql.Rows
	if r, err := s.db.Query(fmt.Sprintf(newQ, table), date); err == nil {
		if r1, err := s.db.Query(fmt.Sprintf(oldQ, table+"1"), date); err == nil {
			out = append(out, r1)
		}
		return append(out, r), nil
	}
	r, err := s.db.Query(fmt.Sprintf(oldQ, table), date)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.path, err)
	}
	return []*sql.Rows{r}, nil
}

// cursor reads rows from a list of queries in turn.
type cursor struct {
	rows   []*sql.Rows
	packet bool
	err    error
}

func (c *cursor) next() *row {
	for len(c.rows) > 0 {
		r := c.rows[0]
		if r.Next() {
			var x row
			var err error
			if c.packet {
				err = r.Scan(&x.date, &x.name, &x.cluster, &x.nid, &x.msgID, &x.code, &x.peer, &x.body)
			} else {
				err = r.Scan(&x.date, &x.name, &x.cluster, &x.nid, &x.level, &x.pathname, &x.lineno, &x.msg)
			}
			if err == nil {
				return &x
			}
			c.err = err
		} else if err := r.Err(); err != nil && c.err == nil {
			c.err = err
		}
		r.Close()
		c.rows = c.rows[1:]
	}
	return nil
}

func (c *cursor) close() {
	for _, r := range c.rows {
		r.Close()
	}
}

// pass returns an iterator over the events after those of the previous
// pass: log and packet rows merged by date (a packet goes first only if
// strictly earlier, as in neoppod's neolog).
func (s *source) pass() (next func() (event, bool), done func(), err error) {
	date, ge := s.logDate, false
	pdate := s.pktDate
	if s.from != 0 && max(s.logDate, s.pktDate) < s.from {
		date, pdate, ge = s.from, s.from, true
	}
	s.from = 0
	lr, err := s.query("log", date, ge)
	if err != nil {
		return nil, nil, err
	}
	pr, err := s.query("packet", pdate, ge)
	if err != nil {
		for _, r := range lr {
			r.Close()
		}
		return nil, nil, err
	}
	lc, pc := &cursor{rows: lr}, &cursor{rows: pr, packet: true}
	l, p := lc.next(), pc.next()
	var errs []error
	next = func() (event, bool) {
		for {
			switch {
			case p != nil && (l == nil || p.date < l.date):
				e := s.packet(p)
				p = pc.next()
				return e, true
			case l != nil:
				e := s.log(l)
				l = lc.next()
				return e, true
			}
			for _, c := range []*cursor{lc, pc} {
				if c.err != nil {
					what := "LOG"
					if c.packet {
						what = "PACKET"
					}
					errs = append(errs, c.err)
					e := event{date: nowUnix(), level: what, lines: strings.Split(fmt.Sprintf("%T: %v", c.err, c.err), "\n")}
					c.err = nil
					return e, true
				}
			}
			return event{}, false
		}
	}
	return next, func() { lc.close(); pc.close() }, nil
}

func (s *source) node(r *row) string {
	name := r.name.String
	if r.nid.Valid && r.nid.Int64 != 0 && !s.o.noNID {
		name = nidString(r.nid.Int64)
		if s.o.cluster {
			name = r.cluster.String + "/" + name
		}
	}
	return name
}

func (s *source) log(r *row) event {
	s.logDate = r.date
	return event{date: r.date, node: s.node(r), level: levelName(r.level), lines: splitLines(r.msg.String)}
}

func (s *source) packet(r *row) event {
	s.pktDate = r.date
	return event{date: r.date, node: s.node(r), level: "PACKET", lines: packetLines(s.o, uint32(r.msgID), uint16(r.code), r.peer, r.body)}
}

// splitLines splits as Python's str.splitlines: no empty last line.
func splitLines(s string) []string {
	s = strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}
