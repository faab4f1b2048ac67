package importconf

import (
	"errors"
	"testing"

	"github.com/neogo/neo/proto"
)

// FuzzParse: any file gives a Config or an *Error, never a panic; and
// a Config that parses sets up.
func FuzzParse(f *testing.F) {
	f.Add([]byte(okMain + okRoot))
	f.Add([]byte(splitExample))
	for _, tt := range validCases[2:3] {
		f.Add([]byte(tt.src))
	}
	f.Add([]byte("[DEFAULT]\nx=%(y)s\n[a]\ny=1\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		c, err := Parse("f", src, env("HOME", "/h", "NAME", "n"))
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *Error", err)
			}
			return
		}
		if len(c.Sources) == 0 || c.Main.Database == "" {
			t.Fatalf("config without source or database: %+v", c)
		}
		for _, s := range c.Sources {
			if s.Storage.Path == "" {
				t.Fatalf("source %s without path", s.Name)
			}
		}
		_, _, _ = c.Setup(func(s *Source) (proto.Oid, error) { return 1 << 20, nil })
	})
}
