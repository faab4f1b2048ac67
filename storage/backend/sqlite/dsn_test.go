package sqlite

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
		{dsn: "/var/db.sqlite", want: Params{Path: "/var/db.sqlite", Synchronous: "FULL", JournalMode: "WAL"}},
		{dsn: "rel/db", want: Params{Path: "rel/db", Synchronous: "FULL", JournalMode: "WAL"}},
		{dsn: "~/db", want: Params{Path: filepath.Join(home, "db"), Synchronous: "FULL", JournalMode: "WAL"}},
		{dsn: "sqlite:///abs/db?synchronous=normal", want: Params{Path: "/abs/db", Synchronous: "NORMAL", JournalMode: "WAL"}},
		{dsn: "sqlite://rel/db", want: Params{Path: "rel/db", Synchronous: "FULL", JournalMode: "WAL"}},
		{dsn: "file:/x/db?cache_size=-64000&journal_mode=wal&cksumvfs=0", want: Params{Path: "/x/db", Synchronous: "FULL", JournalMode: "WAL", CacheSize: "-64000"}},
		{dsn: "file:/x/a%3fb", want: Params{Path: "/x/a?b", Synchronous: "FULL", JournalMode: "WAL"}},
		{dsn: "file:/x/db?foo=1", wantErr: true},
		{dsn: "file:/x/db?synchronous=FULL&synchronous=OFF", wantErr: true},
		{dsn: "file:/x/db?cksumvfs=1", wantErr: true},
		{dsn: "file:/x/db?cache_size=big", wantErr: true},
		{dsn: "file:/x/db?synchronous=FULL;DROP", wantErr: true},
		{dsn: "sqlite://", wantErr: true},
	} {
		got, err := ParseDSN(tt.dsn)
		if (err != nil) != tt.wantErr || (err == nil && got != tt.want) {
			t.Errorf("ParseDSN(%q) = %+v, %v; want %+v, error %v", tt.dsn, got, err, tt.want, tt.wantErr)
		}
	}
}
