package nodehttp

import (
	"errors"
	"fmt"
	"html"
	"net/http"
	"strings"
)

// ClusterMux serves the HTTP sides of the nodes of one process (neosimple)
// on one address: node NAME's endpoints under /NAME/ (/master/metrics,
// /storage_0/readyz...), /healthz, /readyz (every node ready) and an
// index at /. nodes are the names in display order; handlers holds each
// one's handler.
func ClusterMux(nodes []string, handlers map[string]*Handler) http.Handler {
	mux := http.NewServeMux()
	for _, n := range nodes {
		mux.Handle("/"+n+"/", http.StripPrefix("/"+n, handlers[n]))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		var errs []error
		for _, n := range nodes {
			if err := handlers[n].ready(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", n, err))
			}
		}
		if err := errors.Join(errs...); err != nil {
			http.Error(w, "not ready:\n"+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		var b strings.Builder
		b.WriteString("<!doctype html><meta charset=utf-8><title>NEO nodes</title><h1>NEO nodes</h1><ul>")
		for _, n := range nodes {
			n := html.EscapeString(n)
			fmt.Fprintf(&b, `<li>%s: <a href="/%s/readyz">readyz</a> <a href="/%s/metrics">metrics</a>`, n, n, n)
		}
		b.WriteString(`</ul><p><a href="/readyz">readyz of all</a>`)
		for _, n := range nodes {
			if n == "admin" { // the admin's dashboard (package adminhttp)
				b.WriteString(` · <a href="/admin/">dashboard</a>`)
			}
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, b.String())
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, fmt.Sprintf("404 %s: no such page (try /, /readyz, /NODE/metrics)", r.URL.Path), http.StatusNotFound)
	})
	return mux
}
