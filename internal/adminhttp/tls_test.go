package adminhttp_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/neogo/neo/internal/neotest"
	"github.com/neogo/neo/internal/nodehttp"
	"github.com/neogo/neo/neonet"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	der    []byte
	serial int64
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, der: der, serial: 1}
}

// issue returns a certificate of the CA (TLS client and server) and the
// node setup that holds it.
func (ca *testCA) issue(t *testing.T, name string) (tls.Certificate, *neonet.TLSConfig) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	return cert, &neonet.TLSConfig{Roots: roots, Cert: cert}
}

// TestAPITLS: on a cluster with TLS the admin's HTTP side is HTTPS; a
// client certificate is optional, but one of another CA is refused at
// the handshake; a write from afar passes with a certificate of the
// cluster, not without.
func TestAPITLS(t *testing.T) {
	ca := newTestCA(t, "neo test ca")
	_, nodeTLS := ca.issue(t, "cluster")
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
	operator, _ := ca.issue(t, "operator")
	stranger, _ := newTestCA(t, "other ca").issue(t, "stranger")
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
