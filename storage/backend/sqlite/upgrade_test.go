package sqlite_test

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/neogo/neo/storage/backend"
)

// execSQL runs the statements of text on the database at path.
func execSQL(t *testing.T, path, text string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(text); err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
}

func loadDump(t *testing.T, path, file string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "upgrade", file))
	if err != nil {
		t.Fatal(err)
	}
	execSQL(t, path, string(b))
}

// rowsOf returns the rows of query q as sorted text lines.
func rowsOf(t *testing.T, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for i, v := range vals {
			if i > 0 {
				b.WriteByte(' ')
			}
			switch v := v.(type) {
			case nil:
				b.WriteString("NULL")
			case []byte:
				fmt.Fprintf(&b, "x'%x'", v)
			default:
				fmt.Fprintf(&b, "%T:%v", v, v)
			}
		}
		out = append(out, b.String())
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// describe is the structure and the rows of the database at path: per
// table, its columns (name, type, not null, default, primary key rank),
// WITHOUT ROWID, its indexes with their columns, and its rows.
func describe(t *testing.T, path string) map[string][]string {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	d := map[string][]string{}
	for _, tl := range rowsOf(t, db, `SELECT name, wr FROM pragma_table_list WHERE schema='main' AND name NOT LIKE 'sqlite_%'`) {
		table := strings.TrimPrefix(strings.Fields(tl)[0], "string:")
		d[table+" table"] = []string{tl}
		d[table+" columns"] = rowsOf(t, db, fmt.Sprintf(`SELECT cid, name, type, "notnull", dflt_value, pk FROM pragma_table_info('%s')`, table))
		for _, il := range rowsOf(t, db, fmt.Sprintf(`SELECT name, "unique", origin, partial FROM pragma_index_list('%s')`, table)) {
			idx := strings.TrimPrefix(strings.Fields(il)[0], "string:")
			cols := rowsOf(t, db, fmt.Sprintf(`SELECT seqno, name FROM pragma_index_info('%s')`, idx))
			if strings.HasPrefix(idx, "sqlite_autoindex_") {
				idx = "autoindex"
			}
			d[table+" index "+idx] = append([]string{il[strings.Index(il, " "):]}, cols...)
		}
		d[table+" rows"] = rowsOf(t, db, "SELECT * FROM "+table)
	}
	return d
}

// A database in each older format (a dump written from the spec) opens
// upgraded: the structure of a database created by the backend, the same
// rows as that of v4-rows.sql (cluster.md §8.12).
func TestUpgrade(t *testing.T) {
	dir := t.TempDir()
	want := filepath.Join(dir, "fresh.db")
	b, err := open(t, want, backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	loadDump(t, want, "v4-rows.sql")
	wantD := describe(t, want)
	for _, v := range []string{"v0", "v1", "v2", "v3"} {
		t.Run(v, func(t *testing.T) {
			path := filepath.Join(dir, v+".db")
			loadDump(t, path, v+".sql")
			b, err := open(t, path, backend.Options{})
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			got := describe(t, path)
			for _, k := range sortedKeys(wantD, got) {
				if !slices.Equal(got[k], wantD[k]) {
					t.Errorf("%s:\n got  %q\n want %q", k, got[k], wantD[k])
				}
			}
			// Upgraded once, it opens as is.
			b, err = open(t, path, backend.Options{})
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			b.Close()
		})
	}
}

func sortedKeys(ms ...map[string][]string) []string {
	var ks []string
	for _, m := range ms {
		for k := range m {
			if !slices.Contains(ks, k) {
				ks = append(ks, k)
			}
		}
	}
	slices.Sort(ks)
	return ks
}

// An upgrade from format 0 is refused while ttrans or tobj has rows, a
// newer format always; both with neoppod's messages, the database left
// as it was.
func TestUpgradeRefused(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name, dump, extra string
		err               error
		msg               string
	}{
		{"ttrans", "v0.sql", `INSERT INTO ttrans VALUES (0, 1002, 0, X'', X'', X'', X'', 1002)`, backend.ErrUnfinished,
			"The database can not be upgraded because you have unfinished transactions. Use an older version of NEO to verify them."},
		{"tobj", "v0.sql", `INSERT INTO tobj VALUES (0, 2, 1002, NULL, NULL)`, backend.ErrUnfinished,
			"The database can not be upgraded because you have unfinished transactions. Use an older version of NEO to verify them."},
		{"newer", "v3.sql", `UPDATE config SET value='5' WHERE name='version'`, backend.ErrDowngrade,
			"The database can not be downgraded."},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, c.name+".db")
			loadDump(t, path, c.dump)
			execSQL(t, path, c.extra)
			before := describe(t, path)
			b, err := open(t, path, backend.Options{})
			if err == nil {
				b.Close()
				t.Fatal("opened")
			}
			if !errors.Is(err, c.err) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("got %v, want %q", err, c.msg)
			}
			after := describe(t, path)
			for _, k := range sortedKeys(before, after) {
				if !slices.Equal(before[k], after[k]) {
					t.Errorf("%s changed:\n %q\n %q", k, before[k], after[k])
				}
			}
		})
	}
}
