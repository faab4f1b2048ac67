package neonet

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/neogo/neo/internal/testca"
	"github.com/neogo/neo/proto"
)

// nodeTLS returns the TLS config of a node whose certificate ca issued,
// with trust anchored in trust.
func nodeTLS(t testing.TB, ca *testca.CA, trust []byte, eku ...x509.ExtKeyUsage) *TLSConfig {
	t.Helper()
	certPEM, keyPEM, _ := ca.Issue(t, "node", eku...)
	c, err := NewTLSConfig(trust, certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Both ends authenticate; TLS 1.2; the NEO stream runs inside.
func TestTLSMutualAuth(t *testing.T) {
	ca := testca.New(t, "CA")
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
			cfg := Config{Logger: log, TLS: nodeTLS(t, ca, ca.PEM, tc.eku...)}
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
	ca := testca.New(t, "CA")
	tlsCfg := nodeTLS(t, ca, ca.PEM)

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
	ca := testca.New(t, "CA")
	other := testca.New(t, "CA")
	good := nodeTLS(t, ca, ca.PEM)
	revokedPEM, revokedKey, serial := ca.Issue(t, "revoked")
	withCRL := append(append([]byte{}, ca.PEM...), ca.CRL(t, serial)...)

	for _, tc := range []struct {
		name     string
		cli, srv *TLSConfig
	}{
		{"client cert from another CA", nodeTLS(t, other, ca.PEM), good},
		{"server cert from another CA", good, nodeTLS(t, other, ca.PEM)},
		{"client trusts another CA", nodeTLS(t, ca, other.PEM), good},
		{"revoked client cert", fromPEM(t, ca.PEM, revokedPEM, revokedKey), trusting(t, withCRL, good)},
		{"revoked server cert", trusting(t, withCRL, good), fromPEM(t, ca.PEM, revokedPEM, revokedKey)},
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
	ca := testca.New(t, "CA")
	certPEM, keyPEM, _ := ca.Issue(t, "node")
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caFile, certFile, keyFile := write("ca.crt", append(ca.PEM, ca.CRL(t)...)), write("node.crt", certPEM), write("node.key", keyPEM)
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
