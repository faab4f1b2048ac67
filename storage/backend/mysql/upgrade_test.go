package mysql_test

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/neogo/neo/storage/backend"
)

// loadSQL runs the statements of text (one per line ending with ";") on
// database name.
func loadSQL(t *testing.T, name, text string) {
	t.Helper()
	conn, err := adminDB(t).Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(t.Context(), "USE `"+name+"`"); err != nil {
		t.Fatal(err)
	}
	for _, q := range strings.Split(text, ";\n") {
		var lines []string
		for _, l := range strings.Split(q, "\n") {
			if !strings.HasPrefix(l, "--") {
				lines = append(lines, l)
			}
		}
		if q = strings.TrimSpace(strings.Join(lines, "\n")); q == "" {
			continue
		}
		if _, err := conn.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func loadDump(t *testing.T, name, file string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "upgrade", file))
	if err != nil {
		t.Fatal(err)
	}
	loadSQL(t, name, string(b))
}

var autoIncrement = regexp.MustCompile(` AUTO_INCREMENT=\d+`)

// describe is each table of database name: SHOW CREATE TABLE (without
// the AUTO_INCREMENT counter) and its rows.
func describe(t *testing.T, name string) map[string]string {
	t.Helper()
	d := map[string]string{}
	for _, table := range strings.Fields(query(t, name, "SHOW TABLES FROM $DB")) {
		c := query(t, name, "SHOW CREATE TABLE $DB."+table)
		rows := strings.SplitAfter(query(t, name, "SELECT * FROM $DB."+table), "\n")
		slices.Sort(rows)
		d[table] = autoIncrement.ReplaceAllString(c, "") + "\n" + strings.Join(rows, "")
	}
	return d
}

func compare(t *testing.T, got, want map[string]string) {
	t.Helper()
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s:\n got  %s\n want %s", k, got[k], w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected table", k)
		}
	}
}

// A database in each older format (a dump written from the spec) opens
// upgraded: the tables of a database created by the backend, the same
// rows as those of v4-rows.sql (cluster.md §8.12).
func TestUpgrade(t *testing.T) {
	needServer(t)
	fresh := t.TempDir() + "/fresh"
	b, err := open(t, fresh, backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	loadDump(t, dbName(fresh), "v4-rows.sql")
	want := describe(t, dbName(fresh))
	for _, v := range []string{"v0", "v1", "v2", "v3"} {
		t.Run(v, func(t *testing.T) {
			path := t.TempDir() + "/" + v
			createDB(t, dbName(path))
			loadDump(t, dbName(path), v+".sql")
			b, err := open(t, path, backend.Options{})
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			compare(t, describe(t, dbName(path)), want)
			b, err = open(t, path, backend.Options{})
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			b.Close()
		})
	}
}

// MySQL commits each DDL statement: an upgrade that died in a rebuild is
// resumed when the database is opened again.
func TestUpgradeResumed(t *testing.T) {
	needServer(t)
	fresh := t.TempDir() + "/fresh"
	b, err := open(t, fresh, backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	loadDump(t, dbName(fresh), "v4-rows.sql")
	want := describe(t, dbName(fresh))
	for _, c := range []struct{ name, dump, crash string }{
		// Died while filling the new obj table: it is built again.
		{"filling", "v1.sql", "CREATE TABLE _new_obj (x INT);\nINSERT INTO _new_obj VALUES (1);\n"},
		// Died between dropping pt and renaming the new one at step 4:
		// the new one is taken.
		{"renaming", "v3.sql", "CREATE TABLE _new_pt (\n`partition` SMALLINT UNSIGNED NOT NULL,\n" +
			"nid INT NOT NULL,\ntid BIGINT NOT NULL,\npack BIGINT UNSIGNED,\n" +
			"PRIMARY KEY (`partition`, nid)) ENGINE=InnoDB;\n" +
			"INSERT INTO _new_pt SELECT *, IF(nid=1, 0, NULL) FROM pt;\nDROP TABLE pt;\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := t.TempDir() + "/" + c.name
			name := dbName(path)
			createDB(t, name)
			loadDump(t, name, c.dump)
			loadSQL(t, name, c.crash)
			b, err := open(t, path, backend.Options{})
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			compare(t, describe(t, name), want)
		})
	}
}

// An upgrade from format 0 is refused while ttrans or tobj has rows, a
// newer format always; both with neoppod's messages, the database left
// as it was.
func TestUpgradeRefused(t *testing.T) {
	needServer(t)
	const unfinished = "The database can not be upgraded because you have unfinished transactions. Use an older version of NEO to verify them."
	for _, c := range []struct {
		name, dump, extra string
		err               error
		msg               string
	}{
		{"ttrans", "v0.sql", `INSERT INTO ttrans VALUES (0, 1002, 0, '', '', '', '', 1002)`, backend.ErrUnfinished, unfinished},
		{"tobj", "v0.sql", `INSERT INTO tobj VALUES (0, 2, 1002, NULL, NULL)`, backend.ErrUnfinished, unfinished},
		{"newer", "v3.sql", `UPDATE config SET value='5' WHERE name='version'`, backend.ErrDowngrade, "The database can not be downgraded."},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := t.TempDir() + "/" + c.name
			name := dbName(path)
			createDB(t, name)
			loadDump(t, name, c.dump)
			loadSQL(t, name, c.extra)
			before := describe(t, name)
			b, err := open(t, path, backend.Options{})
			if err == nil {
				b.Close()
				t.Fatal("opened")
			}
			if !errors.Is(err, c.err) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("got %v, want %q", err, c.msg)
			}
			compare(t, describe(t, name), before)
		})
	}
}
