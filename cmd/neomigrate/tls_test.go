package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/neogo/neo/internal/neotest"
	"github.com/neogo/neo/neonet"
)

// certFiles writes a CA and a certificate it signed (TLS server and
// client) with its key, and returns their paths.
func certFiles(t *testing.T) (ca, cert, key string) {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, BasicConstraintsValid: true, IsCA: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "node"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(k)
	ca, cert, key = filepath.Join(dir, "ca.crt"), filepath.Join(dir, "node.crt"), filepath.Join(dir, "node.key")
	for path, b := range map[string][]byte{
		ca:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return ca, cert, key
}

// --ca, --cert and --key copy out of a cluster that uses TLS; all three
// are needed.
func TestTLS(t *testing.T) {
	ca, cert, key := certFiles(t)
	cfg, err := neonet.LoadTLS(ca, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	c := neotest.Start(t, neotest.Options{TLS: cfg})
	out := filepath.Join(t.TempDir(), "Data.fs")
	status, stdout, stderr := migrate(t, "-c", c.Name(), "--ca", ca, "--cert", cert, "--key", key, c.MasterAddr(), out)
	if status != 0 || !strings.Contains(stdout, "Migration done in ") {
		t.Fatalf("export over TLS: status %d\n%s%s", status, stdout, stderr)
	}
	status, _, stderr = migrate(t, "-c", c.Name(), "--ca", ca, c.MasterAddr(), out)
	if status != 1 || !strings.Contains(stderr, "3 files must be provided") {
		t.Errorf("--ca alone: status %d, stderr %q", status, stderr)
	}
}
