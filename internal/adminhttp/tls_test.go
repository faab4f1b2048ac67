package adminhttp_test

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/neogo/neo/internal/neotest"
	"github.com/neogo/neo/internal/nodehttp"
	"github.com/neogo/neo/internal/testca"
)

// TestAPITLS: on a cluster with TLS the admin's HTTP side is HTTPS; a
// client certificate is optional, but one of another CA is refused at
// the handshake; a write from afar passes with a certificate of the
// cluster, not without.
func TestAPITLS(t *testing.T) {
	ca := testca.New(t, "neo test ca")
	nodeTLS := neotest.NodeTLS(t, ca, "cluster")
	h := nodehttp.New(nodehttp.Options{})
	srv, err := nodehttp.ListenTLS(t.Context(), "127.0.0.1:0", h, nodeTLS.HTTPServerConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if !strings.HasPrefix(srv.URL(), "https://") {
		t.Fatalf("URL %s: not https", srv.URL())
	}
	neotest.Start(t, neotest.Options{
		Storages: 1, Admin: true, TLS: nodeTLS,
		HTTP: func(node string) *nodehttp.Handler {
			if node == neotest.Admin {
				return h
			}
			return nil
		},
	})

	httpsClient := func(cert *tls.Certificate) *http.Client {
		// The node certificates name no host: the test trusts the
		// server's as a peer node's would, by its CA, not its name.
		tc := &tls.Config{InsecureSkipVerify: true}
		if cert != nil {
			tc.Certificates = []tls.Certificate{*cert}
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 30 * time.Second}
	}
	operator := neotest.NodeTLS(t, ca, "operator").Cert
	stranger := neotest.NodeTLS(t, testca.New(t, "other ca"), "stranger").Cert
	for _, tc := range []struct {
		name string
		cert *tls.Certificate
		ok   bool
	}{
		{"no client certificate", nil, true},
		{"certificate of the cluster", &operator, true},
		{"certificate of another CA", &stranger, false},
	} {
		resp, err := httpsClient(tc.cert).Get(srv.URL() + "/api/v1/cluster")
		if err == nil {
			resp.Body.Close()
		}
		switch {
		case tc.ok && (err != nil || resp.StatusCode != 200):
			t.Errorf("%s: %v %v, want 200", tc.name, err, resp)
		case !tc.ok && err == nil:
			t.Errorf("%s: %d, want the handshake refused", tc.name, resp.StatusCode)
		}
	}

	// The write gate, for a peer that is not on loopback.
	leaf, err := x509.ParseCertificate(operator.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		state  *tls.ConnectionState
		status int
	}{
		{"plain HTTP", nil, 403},
		{"HTTPS without certificate", &tls.ConnectionState{}, 403},
		{"HTTPS with a certificate of the cluster", &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}, 200},
	} {
		req := httptest.NewRequestWithContext(t.Context(), "POST", "/api/v1/tweak", strings.NewReader(`{"dry_run": true}`))
		req.RemoteAddr, req.TLS = "192.0.2.7:4242", tc.state
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != tc.status {
			t.Errorf("write over %s from 192.0.2.7: %d %s, want %d", tc.name, w.Code, w.Body, tc.status)
		}
	}
}
