package masterlink

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
)

func TestFailuresLogged(t *testing.T) {
	var buf bytes.Buffer
	f := newFailures(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	refused := errors.New("connection refused")
	for _, c := range []struct {
		addr string
		err  error
		want string // the line logged at INFO or above, "" for none
	}{
		{"m1:1", refused, "level=INFO msg=\"master not available\" master=m1:1"},
		{"m1:1", refused, ""}, // the same failure again: debug only
		{"m2:1", refused, "level=INFO msg=\"master not available\" master=m2:1"},
		{"m1:1", errors.New("timeout"), "level=INFO msg=\"master not available\" master=m1:1"},
		{"m1:1", fmt.Errorf("%w: invalid cluster name", proto.ErrProtocol), "level=ERROR msg=\"the master refused our identification\""},
		{"m1:1", fmt.Errorf("%w: invalid cluster name", proto.ErrProtocol), "level=ERROR msg=\"the master refused our identification\""},
		{"m1:1", fmt.Errorf("dial: %w", neonet.ErrVersionMismatch), "level=ERROR msg=\"the master speaks another protocol version\""},
	} {
		buf.Reset()
		f.report(c.addr, c.err)
		got := buf.String()
		if c.want == "" && got != "" || c.want != "" && !strings.Contains(got, c.want) {
			t.Errorf("report(%s, %v) logged %q, want %q", c.addr, c.err, got, c.want)
		}
	}
}
