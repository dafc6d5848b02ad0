package config

import (
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Account is a named console account (docs/config-admin.md#accounts).
type Account struct {
	// Name is the sign-in name and the actor in the audit trail; it must
	// not be a token's name.
	Name string `yaml:"name"`
	// PasswordHash is an argon2id (or bcrypt) hash made with `outguard
	// hash-password`.
	PasswordHash string `yaml:"password_hash"`
	// TOTPSecret (or the file TOTPSecretFile) is the base32 secret of
	// the account's second factor (RFC 6238), made with `outguard
	// totp-secret`; neither: no second factor.
	TOTPSecret     string `yaml:"totp_secret"`
	TOTPSecretFile string `yaml:"totp_secret_file"`
	// Scope is "all" (the default) or the name of one administrative
	// domain, as a token's.
	Scope string `yaml:"scope"`
}

// SignInThrottle sets how failed sign-ins (console and API bearer
// tokens) are slowed down (docs/config-admin.md#sign-in-throttling).
type SignInThrottle struct {
	// Failures within Window lock the client address (or the account)
	// out for Lockout; each further lock-out doubles it up to MaxLockout.
	Failures   int      `yaml:"failures"`
	Window     Duration `yaml:"window"`
	Lockout    Duration `yaml:"lockout"`
	MaxLockout Duration `yaml:"max_lockout"`
}

// Defaults of admin.sign_in_throttle.
const (
	DefaultSignInFailures   = 5
	DefaultSignInWindow     = 15 * time.Minute
	DefaultSignInLockout    = time.Minute
	DefaultSignInMaxLockout = time.Hour
)

func (c *Admin) setDefaults() {
	for i := range c.Accounts {
		if c.Accounts[i].Scope == "" {
			c.Accounts[i].Scope = "all"
		}
	}
	c.OIDC.setDefaults()
	t := &c.SignInThrottle
	setInt(&t.Failures, DefaultSignInFailures)
	setDur(&t.Window, DefaultSignInWindow)
	setDur(&t.Lockout, DefaultSignInLockout)
	setDur(&t.MaxLockout, DefaultSignInMaxLockout)
}

func (c *Admin) resolvePaths(abs func(*string)) {
	for i := range c.Accounts {
		abs(&c.Accounts[i].TOTPSecretFile)
	}
	if c.OIDC != nil {
		abs(&c.OIDC.ClientSecretFile)
	}
}

// validate checks admin.accounts, admin.oidc and admin.sign_in_throttle.
func (c *Admin) validate(cfg *Config) error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...)))
	}
	domains := map[string]bool{}
	for _, d := range cfg.Domains {
		domains[strings.ToLower(d.Name)] = true
	}
	names := map[string]bool{}
	for _, t := range c.Tokens {
		names[t.Name] = true
	}
	seen := map[string]bool{}
	for i, a := range c.Accounts {
		where := fmt.Sprintf("admin.accounts[%d] (%s)", i, a.Name)
		switch {
		case a.Name == "":
			bad("%s: name is empty; it is the sign-in name and the actor recorded in the audit trail", where)
		case seen[a.Name]:
			bad("%s: duplicate account name", where)
		case names[a.Name]:
			bad("%s: a token has the same name; the audit trail could not tell them apart: rename one", where)
		case len(a.Name) > 128 || strings.ContainsAny(a.Name, " \t\r\n"):
			bad("%s: name must be at most 128 characters without spaces", where)
		}
		seen[a.Name] = true
		if !IsPasswordHash(a.PasswordHash) {
			bad("%s: password_hash is not an argon2id or bcrypt hash; make one with `outguard hash-password`", where)
		}
		if a.Scope != "all" && !domains[strings.ToLower(a.Scope)] {
			bad("%s: scope %q is neither \"all\" nor a configured domain", where, a.Scope)
		}
		if a.TOTPSecret != "" && a.TOTPSecretFile != "" {
			bad("%s: totp_secret and totp_secret_file are both set; keep one", where)
			continue
		}
		// A file is read (and checked) when the daemon starts or
		// reloads: relative paths are resolved after validation.
		if a.TOTPSecretFile == "" {
			if _, err := a.TOTP(); err != nil {
				bad("%s: %v", where, err)
			}
		}
	}
	c.OIDC.validate(domains, bad)
	t := c.SignInThrottle
	if t.Failures < 1 || t.Failures > 1000 {
		bad("admin.sign_in_throttle.failures %d: must be between 1 and 1000", t.Failures)
	}
	if t.Window.D() < time.Second || t.Lockout.D() < time.Second {
		bad("admin.sign_in_throttle: window (%s) and lockout (%s) must be at least 1s", t.Window, t.Lockout)
	}
	if t.MaxLockout.D() < t.Lockout.D() {
		bad("admin.sign_in_throttle.max_lockout %s is shorter than lockout %s", t.MaxLockout, t.Lockout)
	}
	return errors.Join(errs...)
}

// minTOTPSecretBytes is the shortest TOTP secret accepted: RFC 4226
// section 4 asks for at least 128 bits.
const minTOTPSecretBytes = 16

// TOTP returns the account's TOTP secret (base32, upper case, no
// padding) from totp_secret or totp_secret_file, "" when it has none.
// It reads the file each time it is called.
func (a Account) TOTP() (string, error) {
	s := a.TOTPSecret
	if a.TOTPSecretFile != "" {
		f, err := os.Open(a.TOTPSecretFile)
		if err != nil {
			return "", fmt.Errorf("totp_secret_file: %v", err)
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, 1025))
		if err != nil {
			return "", fmt.Errorf("totp_secret_file: %v", err)
		}
		if len(b) > 1024 {
			return "", fmt.Errorf("totp_secret_file %s is larger than 1024 bytes; is it the secret?", a.TOTPSecretFile)
		}
		s = string(b)
	}
	s = strings.ToUpper(strings.TrimRight(strings.TrimSpace(s), "="))
	if s == "" {
		if a.TOTPSecretFile != "" {
			return "", fmt.Errorf("totp_secret_file %s is empty", a.TOTPSecretFile)
		}
		return "", nil
	}
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(s)
	if err != nil {
		return "", fmt.Errorf("the TOTP secret is not base32; make one with `outguard totp-secret`")
	}
	if len(raw) < minTOTPSecretBytes {
		return "", fmt.Errorf("the TOTP secret has %d bytes; use at least %d (`outguard totp-secret` makes 20)", len(raw), minTOTPSecretBytes)
	}
	return s, nil
}
