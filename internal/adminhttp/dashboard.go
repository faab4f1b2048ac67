package adminhttp

import (
	_ "embed"
	"net/http"
)

// dashboard is the web page of the admin: plain HTML, CSS and script,
// nothing fetched from elsewhere.
//
//go:embed dashboard.html
var dashboard []byte

func serveDashboard(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'")
	w.Write(dashboard)
}
