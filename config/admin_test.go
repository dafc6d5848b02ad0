package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const testHash = "$2a$10$dbXzmbHaCgJ1iu4IiLf.OOhLHH0DYHPPoSP8ZZmDe1wHO4S4iqn6q"

func TestAdminAccounts(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bob.totp"), []byte("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	y := sectionBase + `
admin:
  tokens:
    - name: cli
      hash: "` + testHash + `"
  accounts:
    - name: alice
      password_hash: "` + testHash + `"
      totp_secret: "jbswy3dpehpk3pxpjbswy3dpehpk3pxp"
    - name: bob
      password_hash: "` + testHash + `"
      totp_secret_file: bob.totp
      scope: out.example.net
  sign_in_throttle:
    failures: 10
`
	p := filepath.Join(dir, "outguard.yaml")
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	a := c.Admin.Accounts
	if len(a) != 2 || a[0].Scope != "all" || a[1].TOTPSecretFile != filepath.Join(dir, "bob.totp") {
		t.Fatalf("accounts: %+v", a)
	}
	for _, x := range a {
		if s, err := x.TOTP(); err != nil || s != "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP" {
			t.Fatalf("%s: TOTP() = %q, %v", x.Name, s, err)
		}
	}
	if _, err := (Account{TOTPSecretFile: filepath.Join(dir, "missing")}).TOTP(); err == nil {
		t.Fatal("TOTP() of a missing file: no error")
	}
	th := c.Admin.SignInThrottle
	if th.Failures != 10 || th.Window.D() != 15*time.Minute || th.Lockout.D() != time.Minute || th.MaxLockout.D() != time.Hour {
		t.Fatalf("sign_in_throttle: %+v", th)
	}
}

func TestAdminAccountsBad(t *testing.T) {
	acct := func(s string) string {
		return sectionBase + `
admin:
  tokens:
    - name: cli
      hash: "` + testHash + `"
  accounts:
    - ` + s + "\n"
	}
	for _, tc := range []struct{ yaml, want string }{
		{acct(`{name: cli, password_hash: "` + testHash + `"}`), "a token has the same name"},
		{acct(`{name: a, password_hash: "secret"}`), "password_hash is not an argon2id or bcrypt hash"},
		{acct(`{name: a, password_hash: "` + testHash + `", scope: nowhere.example}`), `scope "nowhere.example" is neither`},
		{acct(`{name: a, password_hash: "` + testHash + `", totp_secret: "not base32!"}`), "not base32"},
		{acct(`{name: a, password_hash: "` + testHash + `", totp_secret: "JBSWY3DP"}`), "at least 16"},
		{acct(`{name: a, password_hash: "` + testHash + `", totp_secret: x, totp_secret_file: y}`), "both set"},
		{acct(`{name: a, password_hash: "` + testHash + `", totp: x}`), `unknown key "totp"`},
		{acct(`{name: "", password_hash: "` + testHash + `"}`), "name is empty"},
		{sectionBase + "admin:\n  sign_in_throttle:\n    failures: -1\n", "failures -1"},
		{sectionBase + "admin:\n  sign_in_throttle:\n    lockout: 2h\n", "max_lockout 1h0m0s is shorter than lockout 2h0m0s"},
	} {
		_, err := Parse([]byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error with %q", tc.want, err, tc.want)
		} else if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v does not wrap ErrInvalid", tc.want, err)
		}
	}
}
