package neonet

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/neogo/neo/proto"
)

// testCA is a throw-away certificate authority, made at test time.
type testCA struct {
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	pem    []byte
	serial int64
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), serial: 1}
}

// issue makes a node certificate with the given extended key usages (none:
// no EKU extension, as in neoppod's test certificate).
func (ca *testCA) issue(t testing.TB, cn string, eku ...x509.ExtKeyUsage) (certPEM, keyPEM []byte, serial *big.Int) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca.serial++
	serial = big.NewInt(ca.serial)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  eku,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), serial
}

// crl returns a PEM CRL revoking the given serials.
func (ca *testCA) crl(t testing.TB, revoked ...*big.Int) []byte {
	t.Helper()
	tmpl := &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: time.Now().Add(-time.Hour), NextUpdate: time.Now().Add(time.Hour)}
	for _, s := range revoked {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries,
			x509.RevocationListEntry{SerialNumber: s, RevocationTime: time.Now().Add(-time.Minute)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.cert, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}

// node returns the TLS config of a node whose certificate ca issued, with
// trust anchored in trust.
func (ca *testCA) node(t testing.TB, trust []byte, eku ...x509.ExtKeyUsage) *TLSConfig {
	t.Helper()
	certPEM, keyPEM, _ := ca.issue(t, "node", eku...)
	c, err := NewTLSConfig(trust, certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Both ends authenticate; TLS 1.2; the NEO stream runs inside.
func TestTLSMutualAuth(t *testing.T) {
	ca := newTestCA(t)
	for _, tc := range []struct {
		name string
		eku  []x509.ExtKeyUsage
	}{
		{"no EKU", nil},
		{"serverAuth only", []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}},
		{"clientAuth only", []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log, _ := testLogger(t)
			cfg := Config{Logger: log, TLS: ca.node(t, ca.pem, tc.eku...)}
			cli, srv := pair(t, "tcp4", cfg, cfg)
			ctx := testCtx(t)
			if err := cli.Ask(ctx, &proto.Ping{}, &proto.Pong{}); err != nil {
				t.Fatal(err)
			}
			if err := srv.Ask(ctx, &proto.Ping{}, &proto.Pong{}); err != nil {
				t.Fatal(err)
			}
			for _, l := range []*Link{cli, srv} {
				tc, ok := l.conn.(*tls.Conn)
				if !ok {
					t.Fatalf("link over %T, want TLS", l.conn)
				}
				st := tc.ConnectionState()
				if st.Version != tls.VersionTLS12 || len(st.PeerCertificates) == 0 {
					t.Fatalf("TLS version %x, %d peer certificates", st.Version, len(st.PeerCertificates))
				}
			}
		})
	}
}

// A plain peer talking to a TLS listener is closed at its first byte; a
// TLS peer talking to a plain listener fails the NEO handshake.
func TestTLSVersusPlain(t *testing.T) {
	ca := newTestCA(t)
	tlsCfg := ca.node(t, ca.pem)

	t.Run("plain to tls", func(t *testing.T) {
		log, rec := testLogger(t)
		ln := listen(t, "tcp4", Config{Logger: log, TLS: tlsCfg})
		conn, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		p := newRawPeer(t, conn)
		p.write([]byte(proto.Handshake))
		p.expectEOF() // and nothing was sent
		if _, err := Dial(testCtx(t), "tcp4", ln.Addr().String(), Config{}); err == nil {
			t.Fatal("plain Dial to a TLS listener succeeded")
		}
		errs := rec.waitErrs(t, "incoming connection refused", 2)
		if len(errs) != 2 || !errors.Is(errs[0], ErrNotTLS) || !errors.Is(errs[1], ErrNotTLS) {
			t.Fatalf("logged %v, want ErrNotTLS twice", errs)
		}
	})

	t.Run("tls to plain", func(t *testing.T) {
		log, rec := testLogger(t)
		ln := listen(t, "tcp4", Config{Logger: log})
		if _, err := Dial(testCtx(t), "tcp4", ln.Addr().String(), Config{TLS: tlsCfg}); err == nil {
			t.Fatal("TLS Dial to a plain listener succeeded")
		}
		errs := rec.waitErrs(t, "incoming connection refused", 1)
		if len(errs) != 1 || !errors.Is(errs[0], ErrNotNEO) {
			t.Fatalf("logged %v, want ErrNotNEO", errs)
		}
	})
}

// Certificates not chaining to the CA, revoked ones, and missing ones are
// refused, on either side.
func TestTLSRejects(t *testing.T) {
	ca := newTestCA(t)
	other := newTestCA(t)
	good := ca.node(t, ca.pem)
	revokedPEM, revokedKey, serial := ca.issue(t, "revoked")
	withCRL := append(append([]byte{}, ca.pem...), ca.crl(t, serial)...)

	for _, tc := range []struct {
		name     string
		cli, srv *TLSConfig
	}{
		{"client cert from another CA", other.node(t, ca.pem), good},
		{"server cert from another CA", good, other.node(t, ca.pem)},
		{"client trusts another CA", ca.node(t, other.pem), good},
		{"revoked client cert", fromPEM(t, ca.pem, revokedPEM, revokedKey), trusting(t, withCRL, good)},
		{"revoked server cert", trusting(t, withCRL, good), fromPEM(t, ca.pem, revokedPEM, revokedKey)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log, rec := testLogger(t)
			ln := listen(t, "tcp4", Config{Logger: log, TLS: tc.srv})
			l, err := Dial(testCtx(t), "tcp4", ln.Addr().String(), Config{TLS: tc.cli})
			if err == nil {
				// TLS 1.2: the client may finish before the server
				// checked its certificate; the server then closes.
				closeAndWait(t, l)
				if err = waitClosed(t, l); errors.Is(err, ErrClosedLocally) {
					t.Fatal("link accepted")
				}
			}
			if errs := rec.waitErrs(t, "incoming connection refused", 1); len(errs) != 1 {
				t.Fatalf("server logged %v, want one refusal", errs)
			}
		})
	}

	t.Run("client without certificate", func(t *testing.T) {
		log, rec := testLogger(t)
		ln := listen(t, "tcp4", Config{Logger: log, TLS: good})
		conn, err := tls.Dial("tcp4", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12})
		if err == nil {
			conn.SetDeadline(time.Now().Add(testTimeout))
			_, err = conn.Read(make([]byte, 1))
			conn.Close()
		}
		if err == nil {
			t.Fatal("server accepted a client without certificate")
		}
		if errs := rec.waitErrs(t, "incoming connection refused", 1); len(errs) != 1 {
			t.Fatalf("server logged %v, want one refusal", errs)
		}
	})
}

// fromPEM builds a TLSConfig from PEM.
func fromPEM(t testing.TB, ca, cert, key []byte) *TLSConfig {
	t.Helper()
	c, err := NewTLSConfig(ca, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// trusting returns a copy of c that trusts the CAs and CRLs of caPEM.
func trusting(t testing.TB, caPEM []byte, c *TLSConfig) *TLSConfig {
	t.Helper()
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert.Certificate[0]})
	kder, err := x509.MarshalECPrivateKey(c.Cert.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	return fromPEM(t, caPEM, cert, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
}

// LoadTLS reads --ca --cert --key files.
func TestLoadTLS(t *testing.T) {
	ca := newTestCA(t)
	certPEM, keyPEM, _ := ca.issue(t, "node")
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caFile, certFile, keyFile := write("ca.crt", append(ca.pem, ca.crl(t)...)), write("node.crt", certPEM), write("node.key", keyPEM)
	c, err := LoadTLS(caFile, certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.CRLs) != 1 {
		t.Errorf("%d CRLs loaded, want 1", len(c.CRLs))
	}
	cli, _ := pair(t, "tcp4", Config{TLS: c}, Config{TLS: c})
	if err := cli.Ask(testCtx(t), &proto.Ping{}, &proto.Pong{}); err != nil {
		t.Fatal(err)
	}

	for _, bad := range [][3]string{
		{filepath.Join(dir, "missing"), certFile, keyFile},
		{certFile, keyFile, keyFile},
		{caFile, certFile, caFile},
		{keyFile, certFile, keyFile},
	} {
		if _, err := LoadTLS(bad[0], bad[1], bad[2]); err == nil {
			t.Errorf("LoadTLS%q: no error", bad)
		}
	}
}
