package backend_test

import (
	"context"
	"errors"
	"testing"

	"github.com/neogo/neo/storage/backend"
)

var errFake = errors.New("fake open")

// got records the calls of the fake backend, registered once per binary.
var got []string

func init() {
	backend.Register("faketest", func(ctx context.Context, dsn string, opts backend.Options) (backend.Backend, error) {
		got = append(got, "faketest "+dsn)
		return nil, errFake
	})
}

func TestOpenPicksSchemeOrDefault(t *testing.T) {
	for _, tt := range []struct{ dsn, want string }{
		{"faketest:///x/y", "faketest faketest:///x/y"},
		{"faketest:rel", "faketest faketest:rel"},
	} {
		got = nil
		_, err := backend.Open(t.Context(), tt.dsn, backend.Options{})
		if !errors.Is(err, errFake) || len(got) != 1 || got[0] != tt.want {
			t.Errorf("Open(%q): %v, called %v; want %q", tt.dsn, err, got, tt.want)
		}
	}
	// No backend for the default scheme is linked into this test binary.
	if _, err := backend.Open(t.Context(), "/some/path", backend.Options{}); err == nil {
		t.Errorf("Open of a plain path without a default backend: no error")
	}
	if _, err := backend.Open(t.Context(), "nosuch:/x", backend.Options{}); err == nil {
		t.Errorf("Open with an unknown scheme: no error")
	}
}
