package client_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/neogo/neo/client"
	"github.com/neogo/neo/internal/neotest"
	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
)

// testPKI is a certificate authority made for one test.
type testPKI struct {
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	pem    []byte
	serial int64
}

func newTestPKI(t *testing.T, name string) *testPKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
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
	return &testPKI{cert: cert, key: key, serial: 1,
		pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// node issues a certificate for a node (TLS client and server) and
// loads it as a node would from --ca/--cert/--key files.
func (p *testPKI) node(t *testing.T, name string) *neonet.TLSConfig {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := map[string][]byte{
		"ca.crt":   p.pem,
		"node.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		"node.key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := neonet.LoadTLS(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "node.crt"), filepath.Join(dir, "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// A client with a certificate of the cluster's CA commits and reads over
// TLS (master and storage links); one with a certificate of another CA,
// or without TLS, cannot connect.
func TestTLS(t *testing.T) {
	pki := newTestPKI(t, "neo test ca")
	c := neotest.Start(t, neotest.Options{Storages: 2, Replicas: 1, Partitions: 4, TLS: pki.node(t, "cluster")})
	ctx := opContext(t)

	cl, err := client.Open(ctx, client.Config{Masters: c.Masters(), Cluster: c.Name(),
		TLS: pki.node(t, "client"), Logger: neotest.Logger().With("node", "client")})
	if err != nil {
		t.Fatalf("open over TLS: %v", err)
	}
	defer cl.Close()
	oid, err := cl.NewOID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tid, err := neotest.Commit(ctx, cl, oid, proto.ZeroTid, []byte("secret"))
	if err != nil {
		t.Fatalf("commit over TLS: %v", err)
	}
	obj, err := cl.Load(ctx, oid, proto.InvalidTid)
	if err != nil || string(obj.Data) != "secret" || obj.Serial != tid {
		t.Errorf("Load over TLS = %q at %v, %v; want %q at %v", obj.Data, obj.Serial, err, "secret", tid)
	}

	for _, tc := range []struct {
		name string
		tls  *neonet.TLSConfig
	}{
		{"other CA", newTestPKI(t, "other ca").node(t, "intruder")},
		{"plain TCP", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Open retries until its context ends: bound it.
			ctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			bad, err := client.Open(ctx, client.Config{Masters: c.Masters(), Cluster: c.Name(), TLS: tc.tls})
			if err == nil {
				bad.Close()
				t.Fatal("Open succeeded")
			}
		})
	}
}
