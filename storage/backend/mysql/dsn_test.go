package mysql

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseDSN(t *testing.T) {
	home, _ := os.UserHomeDir()
	for _, tt := range []struct {
		dsn     string
		want    Params
		wantErr bool
	}{
		{dsn: "neo", want: Params{Database: "neo"}},
		{dsn: "mysql:neo", want: Params{Database: "neo"}},
		{dsn: "root@neo", want: Params{User: "root", Database: "neo"}},
		{dsn: "u:pw@neo/tmp/mysql.sock", want: Params{User: "u", Password: "pw", HasPass: true, Database: "neo", Socket: "/tmp/mysql.sock"}},
		{dsn: "u:@neo", want: Params{User: "u", HasPass: true, Database: "neo"}},
		{dsn: "neo./rel.sock", want: Params{Database: "neo", Socket: "./rel.sock"}},
		{dsn: "neo~/s", want: Params{Database: "neo", Socket: filepath.Join(home, "s")}},
		// Greedy groups, as neoppod's regular expression: the last "@"
		// that leaves a database name ends the password.
		{dsn: "u:p@ss@neo/s", want: Params{User: "u", Password: "p@ss", HasPass: true, Database: "neo", Socket: "/s"}},
		{dsn: "u:p:x@neo", want: Params{User: "u", Password: "p:x", HasPass: true, Database: "neo"}},
		{dsn: "", wantErr: true},
		{dsn: "/tmp/sock", wantErr: true},
		{dsn: "u@", want: Params{Database: "u@"}}, // as neoppod: no database after "@"
	} {
		got, err := ParseDSN(tt.dsn)
		if (err != nil) != tt.wantErr || (err == nil && got != tt.want) {
			t.Errorf("ParseDSN(%q) = %+v, %v; want %+v, error %v", tt.dsn, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParamsStringHidesPassword(t *testing.T) {
	p, err := ParseDSN("u:secret@neo/s")
	if err != nil {
		t.Fatal(err)
	}
	if s := p.String(); s != "u:***@neo/s" {
		t.Errorf("String() = %q", s)
	}
}
