package neonet

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// TLSConfig is a node's TLS setup (protocol.md §1.3, cluster.md §10.3): the
// CA that every peer certificate must chain to, with the CRLs found in the
// CA file, and the node's own certificate. Build it with [LoadTLS] or
// [NewTLSConfig]; it is read-only afterwards and may be shared.
//
// Connections use TLS 1.2 only (neoppod's choice) and authenticate both
// ends. Host names are not checked: NEO nodes are identified by the CA,
// not by name. Chains are verified against the CA with any extended key
// usage accepted, because nodes commonly use one certificate both as TLS
// client and server.
type TLSConfig struct {
	Roots *x509.CertPool
	CRLs  []*x509.RevocationList // checked against the peer's leaf certificate
	Cert  tls.Certificate
}

// LoadTLS reads the PEM files given to a node as --ca, --cert and --key.
// The CA file may hold several certificates and CRLs.
func LoadTLS(caFile, certFile, keyFile string) (*TLSConfig, error) {
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("neonet: tls: %w", err)
	}
	cert, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("neonet: tls: %w", err)
	}
	key, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("neonet: tls: %w", err)
	}
	c, err := NewTLSConfig(ca, cert, key)
	if err != nil {
		return nil, fmt.Errorf("neonet: tls (ca %s, cert %s, key %s): %w", caFile, certFile, keyFile, err)
	}
	return c, nil
}

// NewTLSConfig is [LoadTLS] on the PEM contents.
func NewTLSConfig(caPEM, certPEM, keyPEM []byte) (*TLSConfig, error) {
	c := &TLSConfig{Roots: x509.NewCertPool()}
	ncert := 0
	for rest := caPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch b.Type {
		case "CERTIFICATE":
			cert, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("ca certificate %d: %w", ncert+1, err)
			}
			c.Roots.AddCert(cert)
			ncert++
		case "X509 CRL":
			crl, err := x509.ParseRevocationList(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("ca crl %d: %w", len(c.CRLs)+1, err)
			}
			c.CRLs = append(c.CRLs, crl)
		}
	}
	if ncert == 0 {
		return nil, errors.New("no certificate in the ca file")
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	c.Cert = cert
	return c, nil
}

// verify checks the peer's certificate chain against the CA and the CRLs.
func (c *TLSConfig) verify(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("neonet: tls: peer sent no certificate")
	}
	leaf := cs.PeerCertificates[0]
	opts := x509.VerifyOptions{
		Roots:         c.Roots,
		Intermediates: x509.NewCertPool(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}
	for _, ic := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(ic)
	}
	chains, err := leaf.Verify(opts)
	if err != nil {
		return fmt.Errorf("neonet: tls: peer certificate %q: %w", leaf.Subject, err)
	}
	for _, crl := range c.CRLs {
		if !bytes.Equal(crl.RawIssuer, leaf.RawIssuer) {
			continue
		}
		// Trust the CRL only if the leaf's issuer signed it.
		if len(chains[0]) < 2 || crl.CheckSignatureFrom(chains[0][1]) != nil {
			continue
		}
		for _, rc := range crl.RevokedCertificateEntries {
			if rc.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
				return fmt.Errorf("neonet: tls: peer certificate %q (serial %s) is revoked", leaf.Subject, leaf.SerialNumber)
			}
		}
	}
	return nil
}

func (c *TLSConfig) base() *tls.Config {
	return &tls.Config{
		MinVersion:       tls.VersionTLS12,
		MaxVersion:       tls.VersionTLS12,
		VerifyConnection: c.verify,
	}
}

// clientConfig is the dialing side: the chain is verified by verify, not
// by crypto/tls, which would insist on a host name. No SNI is sent.
func (c *TLSConfig) clientConfig() *tls.Config {
	tc := c.base()
	tc.InsecureSkipVerify = true
	cert := &c.Cert
	// Send our certificate whatever CA names the server asks for.
	tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	return tc
}

// serverConfig is the accepting side: a client certificate is required and
// verified by verify (crypto/tls would demand the clientAuth usage).
func (c *TLSConfig) serverConfig() *tls.Config {
	tc := c.base()
	tc.Certificates = []tls.Certificate{c.Cert}
	tc.ClientAuth = tls.RequireAnyClientCert
	return tc
}

// HTTPClientConfig is the TLS setup for reading another node's HTTP side
// (an admin reading the storages' /metrics): the peer's chain verified
// against the cluster's CA, our certificate sent when asked.
func (c *TLSConfig) HTTPClientConfig() *tls.Config {
	tc := c.clientConfig()
	tc.MaxVersion = 0
	return tc
}

// HTTPServerConfig is the TLS setup of a node's HTTP side (package
// nodehttp): the node's certificate; a client certificate is asked for
// but optional, and when given it must chain to the cluster's CA, as a
// peer node's (else the handshake fails). A request whose
// tls.ConnectionState has PeerCertificates thus comes from a holder of a
// certificate of the cluster. TLS 1.2 and later: browsers connect too.
func (c *TLSConfig) HTTPServerConfig() *tls.Config {
	tc := c.base()
	tc.MaxVersion = 0
	tc.Certificates = []tls.Certificate{c.Cert}
	tc.ClientAuth = tls.RequestClientCert
	tc.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return nil
		}
		return c.verify(cs)
	}
	return tc
}
