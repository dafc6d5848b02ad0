package ops

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/outguard/outguard/internal/passwd"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// Account is a named console account (docs/config-admin.md#accounts): a
// password hash, an optional TOTP secret (RFC 6238) and a scope like a
// token's.
type Account struct {
	// Name is the sign-in name and the actor in the audit trail.
	Name string
	// PasswordHash is an argon2id (or bcrypt) hash.
	PasswordHash string
	// TOTPSecret is the base32 shared secret of the second factor; ""
	// for none.
	TOTPSecret string
	// Scope is ScopeAll or the name of one administrative domain.
	Scope string
}

// totpStep is the TOTP time step (RFC 6238 section 4, X = 30 seconds).
const totpStep = 30 * time.Second

// maxFieldLength bounds a name, password or code read from a form.
const maxCredentialLength = 512

// accounts is the hot-swappable account table and the TOTP steps used.
type accounts struct {
	mu   sync.Mutex
	list []Account
	// used is the last TOTP time step accepted per account: a code of
	// that step or an earlier one is a replay (RFC 6238 section 5.2).
	used map[string]uint64
}

// SetAccounts replaces the console accounts; it refuses an account
// without a name, hash or scope, or with a TOTP secret that is not
// base32, and keeps the old set.
func (o *Ops) SetAccounts(list []Account) error {
	for i, a := range list {
		if a.Name == "" || a.PasswordHash == "" || a.Scope == "" {
			return fmt.Errorf("admin: account %d (%q): name, password hash and scope are required", i, a.Name)
		}
		if a.TOTPSecret != "" {
			if _, err := totp.GenerateCodeCustom(a.TOTPSecret, time.Unix(0, 0), totpOpts()); err != nil {
				return fmt.Errorf("admin: account %q: TOTP secret: %v", a.Name, err)
			}
		}
	}
	o.accounts.mu.Lock()
	defer o.accounts.mu.Unlock()
	o.accounts.list = append([]Account(nil), list...)
	if o.accounts.used == nil {
		o.accounts.used = map[string]uint64{}
	}
	return nil
}

// CurrentAccount returns the configured account named name, if it is
// still configured: the console ends a session whose account a reload
// removed or changed.
func (o *Ops) CurrentAccount(name string) (Account, bool) {
	o.accounts.mu.Lock()
	defer o.accounts.mu.Unlock()
	for _, a := range o.accounts.list {
		if a.Name == name {
			return a, true
		}
	}
	return Account{}, false
}

func totpOpts() totp.ValidateOpts {
	return totp.ValidateOpts{Period: uint(totpStep / time.Second), Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}
}

// checkTOTP accepts code for secret at now with one step of skew either
// way (RFC 6238 section 5.2) and returns the step it matched.
func checkTOTP(secret, code string, now time.Time) (uint64, bool) {
	code = strings.TrimSpace(code)
	if len(code) != 6 {
		return 0, false
	}
	step := uint64(now.Unix()) / uint64(totpStep/time.Second)
	var found uint64
	ok := false
	for _, s := range []uint64{step - 1, step, step + 1} {
		want, err := totp.GenerateCodeCustom(secret, time.Unix(int64(s)*int64(totpStep/time.Second), 0), totpOpts())
		if err != nil {
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			found, ok = s, true
		}
	}
	return found, ok
}

// dummyHash is verified for an unknown account name, so that a wrong
// name costs as long as a wrong password and names cannot be probed.
var dummyHash = sync.OnceValue(func() string {
	h, err := passwd.Hash("outguard-no-such-account")
	if err != nil {
		return ""
	}
	return h
})

// ClientIP is the address part of an http.Request's RemoteAddr, the key
// the sign-in throttle counts a client's failures under.
func ClientIP(remoteAddr string) string {
	if h, _, err := net.SplitHostPort(remoteAddr); err == nil {
		return h
	}
	return remoteAddr
}

// SignInAccount checks a console account's name, password and, when the
// account has a second factor, its TOTP code. client is the caller's
// address. Failures count against the client and the name; a client or
// name locked out gets a *ThrottledError before any check.
func (o *Ops) SignInAccount(ctx context.Context, name, password, code, client string) (Principal, Account, error) {
	keys := throttleKeys(client, name)
	if err := o.throttled(keys); err != nil {
		return Principal{}, Account{}, err
	}
	p, a, err := o.signInAccount(ctx, name, password, code)
	o.afterSignIn(keys, err)
	return p, a, err
}

func (o *Ops) signInAccount(ctx context.Context, name, password, code string) (Principal, Account, error) {
	bad := Errorf(ErrUnauthorized, "the name, password or code is not valid")
	if name == "" || password == "" || len(name) > maxCredentialLength || len(password) > maxCredentialLength || len(code) > 16 {
		return Principal{}, Account{}, bad
	}
	a, known := o.CurrentAccount(name)
	hash := a.PasswordHash
	if !known {
		hash = dummyHash()
	}
	if err := o.tokens.verifier.VerifyContext(ctx, hash, password); err != nil {
		if errors.Is(err, passwd.ErrMismatch) || errors.Is(err, passwd.ErrUnknownHash) {
			return Principal{}, Account{}, bad
		}
		return Principal{}, Account{}, err
	}
	if !known {
		return Principal{}, Account{}, bad
	}
	if a.TOTPSecret != "" {
		step, ok := checkTOTP(a.TOTPSecret, code, o.now())
		if !ok {
			return Principal{}, Account{}, bad
		}
		fresh, err := o.useTOTPStep(ctx, a.Name, step)
		if err != nil {
			return Principal{}, Account{}, err
		}
		if !fresh {
			return Principal{}, Account{}, Errorf(ErrUnauthorized, "that code was used already: wait for the next one")
		}
	}
	p := Principal{Name: a.Name}
	if !strings.EqualFold(a.Scope, ScopeAll) {
		p.Domain = a.Scope
	}
	return p, a, nil
}

// throttleKeys are the throttle's keys of a sign-in: the client's
// address and, when named, the account.
func throttleKeys(client, name string) []string {
	var k []string
	if client != "" {
		k = append(k, "ip "+client)
	}
	if name != "" && len(name) <= maxCredentialLength {
		k = append(k, "account "+name)
	}
	return k
}

// throttled returns a *ThrottledError when one of keys is locked out.
func (o *Ops) throttled(keys []string) error {
	now := o.now()
	for _, k := range keys {
		if d := o.throttle.check(k, now); d > 0 {
			o.metrics.throttled.Inc()
			return &ThrottledError{Key: k, RetryAfter: d}
		}
	}
	return nil
}

// afterSignIn counts a failed check (an ErrUnauthorized) against every
// key, writing an audit entry for each lock-out it starts, or forgets the
// account key's failures after a success.
func (o *Ops) afterSignIn(keys []string, err error) {
	if err == nil {
		for _, k := range keys {
			if strings.HasPrefix(k, "account ") {
				o.throttle.succeed(k)
			}
		}
		return
	}
	if !errors.Is(err, ErrUnauthorized) {
		return
	}
	now := o.now()
	for _, k := range keys {
		d := o.throttle.fail(k, now)
		if d == 0 {
			continue
		}
		o.metrics.lockouts.Inc()
		kind, name, _ := strings.Cut(k, " ")
		if kind == "ip" {
			kind = "client"
		}
		o.log.Warn("admin: sign-in lock-out", "key", k, "seconds", int(d/time.Second))
		o.record(Principal{Name: "outguard"}, AuditLockout, AuditTarget{Kind: kind, Name: name},
			fmt.Sprintf("%d failed sign-ins within %s", o.throttle.o.Failures, o.throttle.o.Window),
			fmt.Sprintf("refused for %s", d), "")
	}
}

// useTOTPStep records step as the account's last accepted one, in the
// fleet's store when there is one (Options.TOTPSteps), and reports
// whether it was after the last one.
func (o *Ops) useTOTPStep(ctx context.Context, account string, step uint64) (bool, error) {
	if o.opts.TOTPSteps != nil {
		return o.opts.TOTPSteps.Use(ctx, account, step)
	}
	o.accounts.mu.Lock()
	defer o.accounts.mu.Unlock()
	if last, seen := o.accounts.used[account]; seen && step <= last {
		return false, nil
	}
	o.accounts.used[account] = step
	return true, nil
}
