package testca_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"testing"

	"github.com/neogo/neo/internal/testca"
)

// TestIssue: a certificate verifies against its CA, not against another;
// a CRL names the serials it revokes; the files load as a key pair.
func TestIssue(t *testing.T) {
	ca, other := testca.New(t, "ca"), testca.New(t, "other")
	certPEM, _, serial := ca.Issue(t, "node", testca.NodeUsage...)
	b, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "node" || cert.SerialNumber.Cmp(serial) != 0 {
		t.Errorf("certificate of %q serial %v, want node %v", cert.Subject.CommonName, cert.SerialNumber, serial)
	}
	verify := func(root *testca.CA) error {
		pool := x509.NewCertPool()
		pool.AddCert(root.Cert)
		_, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		return err
	}
	if err := verify(ca); err != nil {
		t.Errorf("verify with its CA: %v", err)
	}
	if err := verify(other); err == nil {
		t.Error("verified with another CA")
	}

	b, _ = pem.Decode(ca.CRL(t, serial))
	crl, err := x509.ParseRevocationList(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := crl.CheckSignatureFrom(ca.Cert); err != nil || len(crl.RevokedCertificateEntries) != 1 || crl.RevokedCertificateEntries[0].SerialNumber.Cmp(serial) != 0 {
		t.Errorf("CRL: signature %v, entries %v; want %v revoked", err, crl.RevokedCertificateEntries, serial)
	}

	caFile, certFile, keyFile := ca.Files(t, "node2")
	if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
		t.Error(err)
	}
	if got, err := os.ReadFile(caFile); err != nil || string(got) != string(ca.PEM) {
		t.Errorf("CA file: %v, %d bytes; want the CA's PEM", err, len(got))
	}
}
