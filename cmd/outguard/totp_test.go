package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outguard/outguard/config"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

func TestTOTPSecret(t *testing.T) {
	out, errOut, code := runCLI(t, "totp-secret", "--name", "alice", "--json")
	var res totpSecret
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil {
		t.Fatalf("totp-secret --json: exit %d, %q %q", code, out, errOut)
	}
	key, err := otp.NewKeyFromURL(res.URI)
	if err != nil || key.Secret() != res.Secret || key.AccountName() != "alice" || key.Issuer() != "outguard" || key.Period() != 30 {
		t.Fatalf("uri %q: %v", res.URI, err)
	}
	// The secret is one the configuration accepts, and codes made from
	// the URI (as an app does) match codes made from the secret.
	if s, err := (config.Account{TOTPSecret: res.Secret}).TOTP(); err != nil || s != res.Secret {
		t.Fatalf("config rejects the secret: %v", err)
	}
	now := time.Now()
	c, _ := totp.GenerateCode(key.Secret(), now)
	if !totp.Validate(c, res.Secret) {
		t.Fatal("a code of the URI's secret does not validate")
	}
	// Two runs make two secrets.
	out2, _, _ := runCLI(t, "totp-secret", "--name", "alice")
	if !strings.HasPrefix(out2, "totp_secret: ") || strings.Contains(out2, res.Secret) {
		t.Fatalf("second run: %q", out2)
	}

	f := filepath.Join(t.TempDir(), "alice.totp")
	out, _, code = runCLI(t, "totp-secret", "--name", "alice", "--out", f)
	b, err := os.ReadFile(f)
	if code != 0 || err != nil || !strings.Contains(out, "otpauth://totp/") {
		t.Fatalf("--out: exit %d, %v, %q", code, err, out)
	}
	if st, _ := os.Stat(f); st.Mode().Perm() != 0o600 || strings.Contains(out, "totp_secret: ") || !strings.Contains(out, "secret="+strings.TrimSpace(string(b))) {
		t.Fatalf("--out: mode %v, or the secret was printed: %q", st.Mode(), out)
	}
	if s, err := (config.Account{TOTPSecretFile: f}).TOTP(); err != nil || s == "" {
		t.Fatalf("config rejects the file: %v", err)
	}
	if _, _, code := runCLI(t, "totp-secret", "--name", "alice", "--out", f); code != 1 {
		t.Errorf("--out over an existing file: exit %d, want 1", code)
	}
	if _, _, code := runCLI(t, "totp-secret"); code != 2 {
		t.Errorf("without --name: exit %d, want 2", code)
	}
	if out, _, code := runCLI(t, "totp-secret", "--help"); code != 0 || !strings.Contains(out, "Usage:") || !strings.Contains(out, "RFC 6238") {
		t.Errorf("--help: exit %d, %q", code, out)
	}
}
