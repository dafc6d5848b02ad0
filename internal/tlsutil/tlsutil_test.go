package tlsutil

import (
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writePair(t *testing.T, dir, name string, crt, key []byte) (string, string) {
	t.Helper()
	c, k := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(c, crt, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(k, key, 0o600); err != nil {
		t.Fatal(err)
	}
	return c, k
}

func TestLoadPair(t *testing.T) {
	dir := t.TempDir()
	crtA, keyA, err := SelfSigned("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	crtB, _, err := SelfSigned("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		crt, key []byte
		want     string // "" for success
	}{
		{"matching pair", crtA, keyA, ""},
		{"key of another certificate", crtB, keyA, "private key does not match"},
		{"not PEM", []byte("garbage"), keyA, "failed to find any PEM data"},
		{"empty key", crtA, nil, "failed to find any PEM data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, k := writePair(t, dir, strings.ReplaceAll(tc.name, " ", "-"), tc.crt, tc.key)
			cert, err := LoadPair(c, k)
			if tc.want == "" {
				if err != nil || cert.Leaf == nil {
					t.Fatalf("got %v (leaf %v), want the pair with its leaf", err, cert.Leaf)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if _, err := LoadPair(filepath.Join(dir, "missing.crt"), filepath.Join(dir, "missing.key")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing files: got %v", err)
	}
}

// TestCertSwap checks that a handshake after Set gets the new
// certificate from the same tls.Config.
func TestCertSwap(t *testing.T) {
	pair := func() tls.Certificate {
		c, k, err := SelfSigned("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		cert, err := tls.X509KeyPair(c, k)
		if err != nil {
			t.Fatal(err)
		}
		return cert
	}
	a, b := pair(), pair()
	r := NewCert(a)
	cfg := r.Config()
	if cfg.MinVersion != tls.VersionTLS12 || len(cfg.Certificates) != 0 {
		t.Fatalf("config: MinVersion %x, %d static certificates; want TLS 1.2 and none", cfg.MinVersion, len(cfg.Certificates))
	}
	got, err := cfg.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil || !got.Leaf.Equal(a.Leaf) {
		t.Fatalf("before Set: got %v, %v; want a", got, err)
	}
	r.Set(b)
	got, err = cfg.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil || !got.Leaf.Equal(b.Leaf) {
		t.Fatalf("after Set: got %v, %v; want b", got, err)
	}
}
