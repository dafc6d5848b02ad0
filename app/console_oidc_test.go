package app

import (
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/outguard/outguard/internal/testutil"
)

// oidcPeople are the persons the test provider signs in.
var (
	oidcDesk     = map[string]any{"sub": "u-100", "email": "ana@example.org", "email_verified": true, "groups": []string{"staff", "abuse-desk"}}
	oidcReseller = map[string]any{"sub": "u-200", "email": "reseller@example.org", "email_verified": true}
	oidcStranger = map[string]any{"sub": "u-300", "email": "mallory@example.org", "email_verified": true, "groups": []string{"staff"}}
	// oidcUnverified claims the reseller's address without the provider
	// having verified it.
	oidcUnverified = map[string]any{"sub": "u-400", "email": "reseller@example.org", "email_verified": false}
)

// oidcAdmin is the admin section the OIDC tests start with: the test
// provider's sign-in, with a placeholder callback until the admin
// listener's port is known.
const oidcAdmin = `admin:
  address: "127.0.0.1:0"
  sign_in_throttle: {failures: FAILURES}
  oidc:
    name: Test IdP
    issuer: ISSUER
    client_id: outguard-console
    client_secret_file: SECRET_FILE
    redirect_url: REDIRECT
    scopes: [openid, email, groups]
    grants:
      - {group: abuse-desk, scope: all}
      - {email: reseller@example.org, scope: out.example.net}
`

// newOIDCEnv starts outguard with admin.oidc pointing at a test provider
// and sign_in_throttle.failures set to failures; the callback URL is set
// by a reload once the admin listener's port is known.
func newOIDCEnv(t *testing.T, failures string) (*env, *oidcProvider, string) {
	t.Helper()
	nh := testutil.StartNextHop(t)
	e := &env{t: t, nh: nh, path: testConfig(t, nh.Addr, pipelineExtra), clock: &clock{t: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)}}
	prov := newOIDCProvider(t, e.clock.Now)
	secretFile := filepath.Join(t.TempDir(), "oidc.secret")
	if err := os.WriteFile(secretFile, []byte(prov.secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(e.path)
	admin := strings.NewReplacer("FAILURES", failures, "ISSUER", prov.issuer, "SECRET_FILE", secretFile).Replace(oidcAdmin)
	write := func(redirect string) {
		y := strings.Replace(string(b), "admin: {address: \"127.0.0.1:0\"}\n", strings.Replace(admin, "REDIRECT", redirect, 1), 1)
		if err := os.WriteFile(e.path, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("http://127.0.0.1:1/login/oidc/callback")
	e.logOut = &logBuffer{}
	e.start()
	base := "http://" + e.app.AdminAddr().String()
	prov.redirect = base + "/login/oidc/callback"
	write(prov.redirect)
	if err := e.app.ReloadFromFile(); err != nil {
		t.Fatal(err)
	}
	return e, prov, base
}

// logged returns the daemon's log lines with message msg.
func logged(t *testing.T, e *env, msg string) []map[string]any {
	t.Helper()
	l := e.logOut.(*logBuffer)
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// oidcBrowser is a cookie-keeping HTTP client that follows no redirect,
// so that each step of the sign-in is seen.
type oidcBrowser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newOIDCBrowser(t *testing.T, base string) *oidcBrowser {
	jar, _ := cookiejar.New(nil)
	return &oidcBrowser{t: t, base: base, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *oidcBrowser) get(u string) (*http.Response, string) {
	b.t.Helper()
	if strings.HasPrefix(u, "/") {
		u = b.base + u
	}
	resp, err := b.c.Get(u)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

var oidcApproveRE = regexp.MustCompile(`<a id="approve" href="([^"]+)">`)

var oidcButtonRE = regexp.MustCompile(`<a class="[^"]*sso[^"]*" href="([^"]+)">Sign in with Test IdP</a>`)

// toCallback clicks "Sign in with Test IdP" on the sign-in page reached
// from next, follows the console's redirect to the provider (checking
// that it asks for a code with PKCE S256, a state and a nonce) and
// returns the callback URL the provider redirects back to.
func (b *oidcBrowser) toCallback(next string) *url.URL {
	b.t.Helper()
	resp, _ := b.get(next)
	if resp.StatusCode != http.StatusSeeOther {
		b.t.Fatalf("%s without a session: got %d, want 303 to the sign-in page", next, resp.StatusCode)
	}
	_, body := b.get(resp.Header.Get("Location"))
	m := oidcButtonRE.FindStringSubmatch(body)
	if m == nil {
		b.t.Fatalf("no \"Sign in with Test IdP\" button on the sign-in page:\n%s", body)
	}
	resp, body = b.get(html.UnescapeString(m[1]))
	if resp.StatusCode != http.StatusSeeOther {
		b.t.Fatalf("start: got %d %s, want 303 to the provider", resp.StatusCode, body)
	}
	auth, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		b.t.Fatal(err)
	}
	q := auth.Query()
	if q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 || len(q.Get("state")) < 32 || len(q.Get("nonce")) < 32 {
		b.t.Fatalf("authorization request %s lacks PKCE S256, state or nonce", auth)
	}
	resp, body = b.get(auth.String())
	m = oidcApproveRE.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		b.t.Fatalf("provider's authorize: got %d %s, want its page", resp.StatusCode, body)
	}
	resp, body = b.get(auth.Scheme + "://" + auth.Host + html.UnescapeString(m[1]))
	if resp.StatusCode != http.StatusFound {
		b.t.Fatalf("provider's authorize: got %d %s", resp.StatusCode, body)
	}
	cb, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		b.t.Fatal(err)
	}
	return cb
}

// signedIn reports whether the browser has a console session: /locks
// answers 200 instead of a redirect to the sign-in page.
func (b *oidcBrowser) signedIn() (bool, string) {
	resp, body := b.get("/locks")
	return resp.StatusCode == http.StatusOK, body
}

// TestConsoleOIDCSignIn signs in over HTTP through the test provider: a
// person of the abuse-desk group gets every domain, uses the console (a
// lock, audited under their address), a person granted by verified email
// gets that grant's domain, and a reload without admin.oidc ends the
// sessions and removes the button.
func TestConsoleOIDCSignIn(t *testing.T) {
	e, prov, base := newOIDCEnv(t, "5")
	prov.signIn(oidcDesk)
	b := newOIDCBrowser(t, base)
	cb := b.toCallback("/locks?kind=identity")
	resp, body := b.get(cb.String())
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `http-equiv="refresh" content="0;url=/locks?kind=identity"`) || !strings.Contains(body, "ana@example.org") {
		t.Fatalf("callback: got %d, want 200 and a page going on to /locks?kind=identity:\n%s", resp.StatusCode, body)
	}
	ok, body := b.signedIn()
	if !ok || !strings.Contains(body, "ana@example.org") || !strings.Contains(body, "all domains") {
		t.Fatalf("after sign-in /locks: signed in %v, want ana@example.org (all domains):\n%s", ok, body)
	}
	csrf := csrfField.FindStringSubmatch(body)
	if csrf == nil {
		t.Fatal("no CSRF token on /locks")
	}
	resp, err := b.c.PostForm(base+"/lock", url.Values{"csrf": {html.UnescapeString(csrf[1])}, "kind": {"identity"}, "domain": {"out.example.net"},
		"name": {"web9"}, "reason": {"spam run"}, "duration": {"1h"}, "back": {"/locks"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("lock: got %d, want 303", resp.StatusCode)
	}
	if l := logged(t, e, "admin console: signed in"); len(l) != 1 || l[0]["actor"] != "ana@example.org" || l[0]["method"] != "oidc" || l[0]["issuer"] != prov.issuer {
		t.Errorf("sign-in log lines: got %v, want one for ana@example.org, method oidc", l)
	}
	if _, body := b.get("/audit"); !regexp.MustCompile(`(?s)ana@example\.org.*web9`).MatchString(body) {
		t.Fatalf("the audit trail does not show ana@example.org locking web9:\n%s", body)
	}

	prov.signIn(oidcReseller)
	r := newOIDCBrowser(t, base)
	if resp, body := r.get(r.toCallback("/").String()); resp.StatusCode != http.StatusOK {
		t.Fatalf("reseller callback: got %d %s", resp.StatusCode, body)
	}
	if ok, body := r.signedIn(); !ok || !strings.Contains(body, "reseller@example.org <small>(out.example.net)") {
		t.Fatalf("reseller: signed in %v, want the scope out.example.net:\n%s", ok, body)
	}

	// A reload without admin.oidc ends both sessions.
	y, _ := os.ReadFile(e.path)
	cut := strings.Index(string(y), "  oidc:\n")
	if err := os.WriteFile(e.path, append(y[:cut:cut], y[strings.Index(string(y), "      - {email: reseller@example.org, scope: out.example.net}\n")+len("      - {email: reseller@example.org, scope: out.example.net}\n"):]...), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.app.ReloadFromFile(); err != nil {
		t.Fatal(err)
	}
	for _, x := range []*oidcBrowser{b, r} {
		if ok, _ := x.signedIn(); ok {
			t.Fatal("a session signed in through OIDC outlived the reload that removed admin.oidc")
		}
	}
	if _, body := b.get("/login"); strings.Contains(body, "Sign in with Test IdP") {
		t.Fatal("the sign-in page still offers the removed OIDC sign-in")
	}
	if resp, _ := b.get("/login/oidc"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("/login/oidc without admin.oidc: got %d, want 404", resp.StatusCode)
	}
}

// TestConsoleOIDCRefusals: every forged, stale or foreign answer is
// refused with a page that says why, and leaves no session.
func TestConsoleOIDCRefusals(t *testing.T) {
	e, prov, base := newOIDCEnv(t, "1000")
	for _, tc := range []struct {
		name   string
		person map[string]any
		tamper func(map[string]any)
		// callback changes the callback URL, or the browser it is sent
		// from, before it is sent.
		callback func(b *oidcBrowser, u *url.URL) *oidcBrowser
		status   int
		want     string
	}{
		{name: "tampered state", callback: func(b *oidcBrowser, u *url.URL) *oidcBrowser {
			q := u.Query()
			q.Set("state", strings.ToUpper(q.Get("state")))
			u.RawQuery = q.Encode()
			return b
		}, status: http.StatusBadRequest, want: "does not belong to the sign-in this browser started"},
		{name: "another browser", callback: func(b *oidcBrowser, u *url.URL) *oidcBrowser {
			return newOIDCBrowser(t, base)
		}, status: http.StatusBadRequest, want: "started in another browser"},
		{name: "cancelled at the provider", callback: func(b *oidcBrowser, u *url.URL) *oidcBrowser {
			u.RawQuery = url.Values{"error": {"access_denied"}, "error_description": {"the user cancelled"}, "state": {u.Query().Get("state")}}.Encode()
			return b
		}, status: http.StatusUnauthorized, want: "Test IdP did not sign you in (access_denied)"},
		{name: "foreign error", callback: func(b *oidcBrowser, u *url.URL) *oidcBrowser {
			u.RawQuery = url.Values{"error": {"access_denied"}, "state": {"not-this-browsers"}}.Encode()
			return b
		}, status: http.StatusBadRequest, want: "does not belong to the sign-in this browser started"},
		{name: "wrong nonce", tamper: func(c map[string]any) { c["nonce"] = "an-older-nonce" }, status: http.StatusUnauthorized, want: "its nonce differs"},
		{name: "wrong audience", tamper: func(c map[string]any) { c["aud"] = "another-client" }, status: http.StatusUnauthorized, want: "expected audience"},
		{name: "expired", tamper: func(c map[string]any) {
			c["iat"] = c["iat"].(int64) - 3600
			c["exp"] = c["iat"].(int64) + 60
		}, status: http.StatusUnauthorized, want: "token is expired"},
		{name: "wrong issuer", tamper: func(c map[string]any) { c["iss"] = "https://idp.evil.example" }, status: http.StatusUnauthorized, want: "different provider"},
		{name: "no subject", tamper: func(c map[string]any) { delete(c, "sub") }, status: http.StatusUnauthorized, want: "names nobody"},
		{name: "unknown person", person: oidcStranger, status: http.StatusForbidden, want: "signed you in as mallory@example.org, but this console admits you through no grant"},
		{name: "unverified email", person: oidcUnverified, status: http.StatusForbidden, want: "as oidc:u-400, but this console admits you through no grant"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			person := tc.person
			if person == nil {
				person = oidcDesk
			}
			prov.signIn(person)
			prov.setTamper(tc.tamper)
			defer prov.setTamper(nil)
			b := newOIDCBrowser(t, base)
			cb := b.toCallback("/")
			from := b
			if tc.callback != nil {
				from = tc.callback(b, cb)
			}
			resp, body := from.get(cb.String())
			if resp.StatusCode != tc.status || !strings.Contains(html.UnescapeString(body), tc.want) {
				t.Fatalf("got %d, want %d and a page saying %q:\n%s", resp.StatusCode, tc.status, tc.want, body)
			}
			if !strings.Contains(body, `<form method="post" action="/login">`) {
				t.Errorf("the refusal is not the sign-in page:\n%s", body)
			}
			for _, x := range []*oidcBrowser{b, from} {
				if ok, _ := x.signedIn(); ok {
					t.Fatal("refused, yet the browser has a session")
				}
			}
		})
	}

	var stranger bool
	for _, l := range logged(t, e, "admin console: OIDC sign-in refused") {
		stranger = stranger || (l["reason"] == "no grant matches" && strings.HasPrefix(l["person"].(string), "mallory@example.org"))
	}
	if !stranger {
		t.Error("no log line for the refused mallory@example.org")
	}
	if l := logged(t, e, "admin console: signed in"); len(l) != 0 {
		t.Errorf("refused sign-ins logged as signed in: %v", l)
	}

	// A signed ID token from a key the provider does not publish.
	t.Run("foreign key", func(t *testing.T) {
		prov.signIn(oidcDesk)
		prov.mu.Lock()
		prov.otherKey = true
		prov.mu.Unlock()
		defer func() { prov.mu.Lock(); prov.otherKey = false; prov.mu.Unlock() }()
		b := newOIDCBrowser(t, base)
		resp, body := b.get(b.toCallback("/").String())
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "failed to verify signature") {
			t.Fatalf("got %d, want 401 and a signature failure:\n%s", resp.StatusCode, body)
		}
	})

	// The same answer twice: the pending sign-in was used up.
	t.Run("replayed callback", func(t *testing.T) {
		prov.signIn(oidcDesk)
		b := newOIDCBrowser(t, base)
		cb := b.toCallback("/")
		if resp, body := b.get(cb.String()); resp.StatusCode != http.StatusOK {
			t.Fatalf("first: got %d %s", resp.StatusCode, body)
		}
		if resp, body := b.get(cb.String()); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("replay: got %d %s, want 400", resp.StatusCode, body)
		}
	})
}

// TestConsoleOIDCProviderDown: an unreachable provider does not stop the
// daemon; the button answers with a page saying so, and accounts still
// sign in.
func TestConsoleOIDCProviderDown(t *testing.T) {
	_, prov, base := newOIDCEnv(t, "5")
	prov.srv.Close()
	b := newOIDCBrowser(t, base)
	resp, body := b.get("/login/oidc?next=%2F")
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "Test IdP cannot be reached just now") || !strings.Contains(body, `action="/login"`) {
		t.Fatalf("provider down: got %d, want 502 and the sign-in page saying so:\n%s", resp.StatusCode, body)
	}
}

// TestConsoleOIDCThrottled: refused answers count against the client's
// address as wrong passwords do; once locked out, even a good answer gets
// 429 with Retry-After.
func TestConsoleOIDCThrottled(t *testing.T) {
	_, prov, base := newOIDCEnv(t, "2")
	prov.signIn(oidcStranger)
	for i := 0; i < 2; i++ {
		b := newOIDCBrowser(t, base)
		if resp, _ := b.get(b.toCallback("/").String()); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("stranger %d: got %d, want 403", i, resp.StatusCode)
		}
	}
	prov.signIn(oidcDesk)
	b := newOIDCBrowser(t, base)
	resp, body := b.get(b.toCallback("/").String())
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "Too many failed sign-ins") {
		t.Fatalf("after two refusals: got %d (Retry-After %q), want 429:\n%s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if ok, _ := b.signedIn(); ok {
		t.Fatal("a locked-out client got a session")
	}
}
