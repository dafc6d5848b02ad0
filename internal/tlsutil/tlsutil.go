// Package tlsutil loads listener certificates, swaps in renewed ones
// without a restart, and makes the self-signed one used when none is
// configured (trial mode).
package tlsutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
)

// SelfSigned returns a new self-signed ECDSA certificate for hosts, valid
// for a year, as PEM blocks.
func SelfSigned(hosts ...string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "outguard self-signed", Organization: []string{"outguard trial"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), nil
}

// LoadOrCreate loads dir/selfsigned.{crt,key}, making them first when
// they do not exist. created says whether it made them.
func LoadOrCreate(dir string, hosts ...string) (cert tls.Certificate, created bool, err error) {
	crt, key := filepath.Join(dir, "selfsigned.crt"), filepath.Join(dir, "selfsigned.key")
	cert, err = tls.LoadX509KeyPair(crt, key)
	if err == nil {
		return cert, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return cert, false, fmt.Errorf("loading self-signed certificate: %w", err)
	}
	c, k, err := SelfSigned(hosts...)
	if err != nil {
		return cert, false, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return cert, false, err
	}
	if err := os.WriteFile(key, k, 0o600); err != nil {
		return cert, false, err
	}
	if err := os.WriteFile(crt, c, 0o644); err != nil {
		return cert, false, err
	}
	cert, err = tls.X509KeyPair(c, k)
	return cert, true, err
}

// Config returns a server TLS configuration with cert.
func Config(cert tls.Certificate) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
}

// Cert is a certificate that can be replaced while listeners serve it:
// its Config reads the current one at every handshake through
// tls.Config.GetCertificate, so a connection made after Set sees the new
// certificate and connections already up keep the one they negotiated.
// It is safe for concurrent use.
type Cert struct {
	cur atomic.Pointer[tls.Certificate]
}

// NewCert returns a Cert serving c.
func NewCert(c tls.Certificate) *Cert {
	r := &Cert{}
	r.Set(c)
	return r
}

// Set replaces the certificate served from the next handshake on.
func (r *Cert) Set(c tls.Certificate) { r.cur.Store(&c) }

// Current returns the certificate served now.
func (r *Cert) Current() *tls.Certificate { return r.cur.Load() }

// GetCertificate is the tls.Config hook; it ignores the client hello.
func (r *Cert) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.cur.Load(), nil
}

// Config returns a server TLS configuration serving r's current
// certificate.
func (r *Cert) Config() *tls.Config {
	return &tls.Config{GetCertificate: r.GetCertificate, MinVersion: tls.VersionTLS12}
}

// LoadPair reads a PEM certificate chain and its private key, as
// tls.LoadX509KeyPair does, and refuses a pair that could not be served:
// a key that does not match, or a leaf certificate that cannot be parsed.
// It changes nothing on error, so a reload can keep the certificate in
// force.
func LoadPair(certFile, keyFile string) (tls.Certificate, error) {
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	if c.Leaf == nil {
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("%s: %w", certFile, err)
		}
		c.Leaf = leaf
	}
	return c, nil
}
