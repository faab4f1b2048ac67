package backend

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// OpenFunc opens a backend from its data source name, the full string
// given to [Open] (for example "sqlite:///var/lib/neo/db.sqlite").
type OpenFunc func(ctx context.Context, dsn string, opts Options) (Backend, error)

// DefaultScheme is used for a data source name without a registered
// scheme: a plain path, as neoppod's `-d` option takes.
const DefaultScheme = "sqlite"

var registry struct {
	sync.Mutex
	m map[string]OpenFunc
}

// Register makes a backend available under scheme. It panics if scheme is
// registered twice, like database/sql.Register.
func Register(scheme string, open OpenFunc) {
	registry.Lock()
	defer registry.Unlock()
	if registry.m == nil {
		registry.m = map[string]OpenFunc{}
	}
	if _, dup := registry.m[scheme]; dup {
		panic("backend: Register called twice for scheme " + scheme)
	}
	registry.m[scheme] = open
}

// Schemes returns the registered schemes, sorted.
func Schemes() []string {
	registry.Lock()
	defer registry.Unlock()
	var s []string
	for k := range registry.m {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

// Open opens the backend named by dsn: "SCHEME:..." for a registered
// scheme, else a plain path for [DefaultScheme].
func Open(ctx context.Context, dsn string, opts Options) (Backend, error) {
	scheme := DefaultScheme
	if i := strings.IndexByte(dsn, ':'); i > 0 {
		registry.Lock()
		_, ok := registry.m[dsn[:i]]
		registry.Unlock()
		if ok {
			scheme = dsn[:i]
		}
	}
	registry.Lock()
	open := registry.m[scheme]
	registry.Unlock()
	if open == nil {
		return nil, fmt.Errorf("open backend %q: no backend registered for scheme %q (registered: %v)", dsn, scheme, Schemes())
	}
	b, err := open(ctx, dsn, opts)
	if err != nil {
		return nil, fmt.Errorf("open backend %q: %w", dsn, err)
	}
	return b, nil
}
