package console

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/outguard/outguard/admin/internal/admintest"
	"github.com/outguard/outguard/admin/ops"
	"github.com/outguard/outguard/internal/passwd"
	"github.com/pquerna/otp/totp"
)

const (
	alicePassword = "correct horse battery staple"
	// aliceTOTP is a 20-byte base32 secret.
	aliceTOTP = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
)

// newAccountsEnv is the console with a throttle of failures within 10
// minutes and two accounts: alice (all domains, TOTP) and bob (domOther,
// no TOTP).
func newAccountsEnv(t *testing.T, failures int) *consoleEnv {
	t.Helper()
	h, err := passwd.Hash(alicePassword)
	if err != nil {
		t.Fatal(err)
	}
	return newConsoleEnvWith(t, nil, func(e *admintest.Env) {
		e.Opts.Throttle = ops.ThrottleOptions{Failures: failures, Window: 10 * time.Minute, Lockout: time.Minute, MaxLockout: 10 * time.Minute}
		e.Opts.Accounts = []ops.Account{
			{Name: "alice", PasswordHash: h, TOTPSecret: aliceTOTP, Scope: ops.ScopeAll},
			{Name: "bob", PasswordHash: h, Scope: domOther},
		}
	})
}

// formValue loads the sign-in page and returns its form value.
func (b *browser) formValue() string {
	b.t.Helper()
	code, body, _ := b.get("/login")
	m := reForm.FindStringSubmatch(body)
	if code != http.StatusOK || m == nil {
		b.t.Fatalf("GET /login: got %d without a form value", code)
	}
	return m[1]
}

func (b *browser) signInWith(fields url.Values) (int, string, *http.Response) {
	b.t.Helper()
	fields.Set("form", b.formValue())
	fields.Set("next", "/")
	return b.post("/login", fields)
}

func code(t *testing.T, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCode(aliceTOTP, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConsoleAccountSignIn(t *testing.T) {
	e := newAccountsEnv(t, 100)
	b := e.browser()
	now := e.Clock.Now()
	for _, f := range []url.Values{
		{"name": {"alice"}, "password": {"wrong"}, "code": {code(t, now)}},
		{"name": {"alice"}, "password": {alicePassword}},
		{"name": {"alice"}, "password": {alicePassword}, "code": {code(t, now.Add(-2*time.Minute))}},
	} {
		if st, body, _ := b.signInWith(f); st != http.StatusUnauthorized || !strings.Contains(body, "not valid") {
			t.Fatalf("sign-in %v: got %d, want 401 with a message", f, st)
		}
	}
	// A code of the previous step is accepted (skew of one step).
	c := code(t, now.Add(-30*time.Second))
	if st, _, resp := b.signInWith(url.Values{"name": {"alice"}, "password": {alicePassword}, "code": {c}}); st != http.StatusSeeOther {
		t.Fatalf("sign-in with the right code: got %d %v, want 303", st, resp.Header)
	}
	st, body, _ := b.get("/")
	if st != http.StatusOK || !strings.Contains(body, "alice") || !strings.Contains(body, "all domains") {
		t.Fatalf("overview after sign-in: got %d, want 200 naming alice and all domains", st)
	}
	// The same code again, from another browser, is a replay.
	if st, body, _ := e.browser().signInWith(url.Values{"name": {"alice"}, "password": {alicePassword}, "code": {c}}); st != http.StatusUnauthorized {
		t.Fatalf("replayed code: got %d, want 401: %s", st, body)
	}
	// bob has no second factor and sees his domain only.
	bb := e.browser()
	if st, _, _ := bb.signInWith(url.Values{"name": {"bob"}, "password": {alicePassword}}); st != http.StatusSeeOther {
		t.Fatalf("bob: got %d, want 303", st)
	}
	if st, body, _ := bb.get("/"); st != http.StatusOK || !strings.Contains(body, domOther) {
		t.Fatalf("bob's overview: got %d, want 200 naming %s", st, domOther)
	}
	// Tokens still sign in to the console.
	e.browser().signIn(tokAll)
	// A reload that removes bob ends his session.
	if err := e.Ops.SetAccounts(e.Opts.Accounts[:1]); err != nil {
		t.Fatal(err)
	}
	if st, _, resp := bb.get("/"); st != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
		t.Fatalf("bob after his account was removed: got %d, want 303 to /login", st)
	}
}

func TestConsoleSignInThrottle(t *testing.T) {
	e := newAccountsEnv(t, 3)
	b := e.browser()
	for i := range 3 {
		if st, _, _ := b.signInWith(url.Values{"token": {"wrong-token"}}); st != http.StatusUnauthorized {
			t.Fatalf("wrong token %d: got %d, want 401", i+1, st)
		}
	}
	// Locked out: even the right token is refused unchecked.
	st, body, resp := b.signInWith(url.Values{"token": {tokAll}})
	if st != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "60" || !strings.Contains(body, "Too many failed sign-ins") {
		t.Fatalf("after 3 failures: got %d Retry-After %q, want 429 with Retry-After 60", st, resp.Header.Get("Retry-After"))
	}
	// The API's bearer tokens are refused from that client as well.
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/api/v1/locks", nil)
	req.Header.Set("Authorization", "Bearer "+tokAll)
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusTooManyRequests || r2.Header.Get("Retry-After") == "" {
		t.Fatalf("API during the lock-out: got %d Retry-After %q, want 429 with Retry-After", r2.StatusCode, r2.Header.Get("Retry-After"))
	}
	got := e.AuditEntries(ops.AuditFilter{Action: ops.AuditLockout})
	if len(got) != 1 || got[0].Target.Kind != "client" || got[0].Target.Name != "127.0.0.1" {
		t.Fatalf("audit: got %+v, want one lock-out of client 127.0.0.1", got)
	}
	if n := counterValue(t, e, "outguard_admin_sign_in_lockouts_total"); n != 1 {
		t.Fatalf("lockouts metric: got %v, want 1", n)
	}
	e.Clock.Advance(61 * time.Second)
	b.signIn(tokAll)
	// The next lock-out of the same client lasts twice as long.
	c := e.browser()
	for range 3 {
		c.signInWith(url.Values{"token": {"wrong-token"}})
	}
	if _, _, resp := c.signInWith(url.Values{"token": {tokAll}}); resp.Header.Get("Retry-After") != "120" {
		t.Fatalf("second lock-out: Retry-After %q, want 120", resp.Header.Get("Retry-After"))
	}
}

func TestAPIBearerThrottle(t *testing.T) {
	e := newAccountsEnv(t, 3)
	for i := range 3 {
		if st, _ := e.Do(http.MethodGet, "/api/v1/locks", "wrong-token", nil); st != http.StatusUnauthorized {
			t.Fatalf("wrong bearer %d: got %d, want 401", i+1, st)
		}
	}
	if st, body := e.Do(http.MethodGet, "/api/v1/locks", tokAll, nil); st != http.StatusTooManyRequests || !strings.Contains(string(body), "too_many_requests") {
		t.Fatalf("after 3 wrong bearer tokens: got %d %s, want 429 too_many_requests", st, body)
	}
	e.Clock.Advance(time.Minute)
	if st, _ := e.Do(http.MethodGet, "/api/v1/locks", tokAll, nil); st != http.StatusOK {
		t.Fatalf("after the lock-out: got %d, want 200", st)
	}
}

// An account is locked out whatever the client: guesses spread over many
// addresses still stop.
func TestSignInThrottlePerAccount(t *testing.T) {
	e := newAccountsEnv(t, 3)
	ctx := context.Background()
	for _, ip := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"} {
		if _, _, err := e.Ops.SignInAccount(ctx, "bob", "guess", "", ip); !errors.Is(err, ops.ErrUnauthorized) {
			t.Fatalf("guess from %s: got %v, want ErrUnauthorized", ip, err)
		}
	}
	_, _, err := e.Ops.SignInAccount(ctx, "bob", alicePassword, "", "192.0.2.4")
	var te *ops.ThrottledError
	if !errors.As(err, &te) || te.Key != "account bob" {
		t.Fatalf("right password after 3 guesses: got %v, want a lock-out of account bob", err)
	}
	got := e.AuditEntries(ops.AuditFilter{Action: ops.AuditLockout})
	if len(got) != 1 || got[0].Target.Kind != "account" || got[0].Target.Name != "bob" {
		t.Fatalf("audit: got %+v, want one lock-out of account bob", got)
	}
}

func counterValue(t *testing.T, e *consoleEnv, name string) float64 {
	t.Helper()
	mf, err := e.Reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range mf {
		if f.GetName() == name {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
