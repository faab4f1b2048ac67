package nodelog

import (
	"context"
	"log/slog"
	"path"
	"runtime"
	"strings"
	"time"
)

// Handler returns a slog.Handler that records the records of level
// [Options.Level] and above in the log and passes those next enables to
// next (the readable text on stderr), which may be nil.
func (l *Log) Handler(next slog.Handler) slog.Handler {
	return &handler{log: l, next: next}
}

// handler is the slog.Handler of a Log.
type handler struct {
	log    *Log
	next   slog.Handler
	prefix string // group of the attributes to come, "g." for group g
	attrs  string // " k=v" of WithAttrs, already formatted
}

func (h *handler) Enabled(ctx context.Context, level slog.Level) bool {
	return level >= h.log.level.Level() || h.next != nil && h.next.Enabled(ctx, level)
}

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < h.log.level.Level() {
		if h.next != nil && h.next.Enabled(ctx, r.Level) {
			return h.next.Handle(ctx, r)
		}
		return nil
	}
	var b strings.Builder
	b.WriteString(r.Message)
	b.WriteString(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		appendAttr(&b, h.prefix, a)
		return true
	})
	// The source line is found from pc when the record is written: most
	// records leave the buffer unwritten.
	h.log.add(record{date: unixTime(r.Time), level: pyLevel(r.Level), msg: b.String(), pc: r.PC})
	if h.next != nil && h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.attrs)
	for _, a := range attrs {
		appendAttr(&b, h.prefix, a)
	}
	h2 := *h
	h2.attrs = b.String()
	if h.next != nil {
		h2.next = h.next.WithAttrs(attrs)
	}
	return &h2
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.prefix = h.prefix + name + "."
	if h.next != nil {
		h2.next = h.next.WithGroup(name)
	}
	return &h2
}

// appendAttr appends " k=v" as slog's text handler writes it (groups
// flattened as g.k), quoting values with spaces.
func appendAttr(b *strings.Builder, prefix string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range a.Value.Group() {
			appendAttr(b, p, g)
		}
		return
	}
	b.WriteByte(' ')
	b.WriteString(prefix)
	b.WriteString(a.Key)
	b.WriteByte('=')
	v := a.Value.String()
	if v == "" || strings.ContainsAny(v, " =\"\n\t") {
		v = quote(v)
	}
	b.WriteString(v)
}

func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`).Replace(s) + `"`
}

// pyLevel maps slog's levels to Python logging's (DEBUG 10 ... ERROR 40).
func pyLevel(l slog.Level) int {
	switch {
	case l < slog.LevelInfo:
		return levelDebug
	case l < slog.LevelWarn:
		return levelInfo
	case l < slog.LevelError:
		return levelWarning
	}
	return levelError
}

func unixTime(t time.Time) float64 {
	if t.IsZero() {
		return unixNow()
	}
	return float64(t.UnixNano()) / 1e9
}

// source returns the source file and line of a record's pc.
func source(pc uintptr) (pathname string, line int) {
	if pc == 0 {
		return "", 0
	}
	f, _ := runtime.CallersFrames([]uintptr{pc}).Next()
	return sourcePath(f), f.Line
}

// sourcePath returns the record's source file relative to the module,
// as neoppod writes paths relative to its package: "master/server.go".
func sourcePath(f runtime.Frame) string {
	fn := f.Function // "github.com/neogo/neo/master.(*Server).run"
	const mod = "github.com/neogo/neo/"
	if i := strings.LastIndex(fn, "/"); i >= 0 {
		if j := strings.IndexByte(fn[i:], '.'); j >= 0 {
			pkg := fn[:i+j]
			if rel, ok := strings.CutPrefix(pkg, mod); ok {
				return rel + "/" + path.Base(f.File)
			}
			return pkg + "/" + path.Base(f.File)
		}
	}
	return path.Base(f.File)
}
