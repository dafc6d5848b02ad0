package console

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/outguard/outguard/admin/internal/admintest"
	"github.com/outguard/outguard/admin/ops"
	"github.com/outguard/outguard/identity"
	"github.com/outguard/outguard/quarantine"
)

func TestConsoleRequiresSession(t *testing.T) {
	e, _ := newConsoleEnvCampaigns(t)
	b := e.browser()
	pages := []string{"/", "/log", "/log?status=quarantined", "/log/" + e.SpamOut, "/log/" + e.SpamOut + "/raw",
		"/reports", "/locks", "/locks/identity/" + domOut + "/alice@customer.example", "/audit",
		"/lock?kind=identity&domain=" + domOut + "&name=alice@customer.example", "/no-such-page",
		"/campaigns", "/campaigns/" + campA}
	for _, p := range pages {
		t.Run("GET "+p, func(t *testing.T) {
			code, body, resp := b.get(p)
			if code != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login?next=") {
				t.Errorf("got %d to %q, want 303 to /login", code, resp.Header.Get("Location"))
			}
			if strings.Contains(body, "Cheap pills") || strings.Contains(body, "alice@") {
				t.Errorf("got data in the redirect body: %q", body)
			}
		})
	}
	actions := []struct {
		path string
		form url.Values
	}{
		{"/lock", url.Values{"kind": {"identity"}, "domain": {domOut}, "name": {"alice@customer.example"}, "reason": {"x"}}},
		{"/unlock", url.Values{"kind": {"identity"}, "domain": {domOut}, "name": {"alice@customer.example"}, "reason": {"x"}}},
		{"/reports/toggle", url.Values{"action": {"lock"}, "kind": {"user"}, "domain": {domOut}, "name": {"webhost1"}, "reason": {"x"}}},
		{"/log/" + e.SpamOut + "/release", nil},
		{"/log/" + e.SpamOut + "/delete", nil},
		{"/log/" + e.SpamOut + "/confirm-spam", nil},
		{"/campaigns/" + campA + "/lock", url.Values{"reason": {"x"}}},
		{"/campaigns/" + campA + "/confirm", nil},
		{"/campaigns/" + campA + "/unconfirm", nil},
		{"/logout", nil},
	}
	for _, a := range actions {
		t.Run("POST "+a.path, func(t *testing.T) {
			if code, _, _ := b.post(a.path, a.form); code != http.StatusUnauthorized {
				t.Errorf("got %d, want 401", code)
			}
		})
	}
	if n := e.LockCount(); n != 0 {
		t.Errorf("got %d locks, want 0", n)
	}
	if n := e.AuditCount(); n != 0 {
		t.Errorf("got %d audit entries, want 0", n)
	}
	if n := e.Deliver.Count(); n != 0 {
		t.Errorf("got %d releases, want 0", n)
	}
}

func TestConsoleSignIn(t *testing.T) {
	e := newConsoleEnv(t)
	t.Run("wrong token", func(t *testing.T) {
		b := e.browser()
		_, body, _ := b.get("/login")
		form := reForm.FindStringSubmatch(body)[1]
		code, body, resp := b.post("/login", url.Values{"form": {form}, "token": {"not-a-token"}})
		if code != http.StatusUnauthorized || !strings.Contains(body, "not valid") {
			t.Errorf("got %d, want 401 with a message", code)
		}
		for _, c := range resp.Cookies() {
			if c.Name == sessionCookie && c.Value != "" {
				t.Errorf("got a session cookie for a wrong token")
			}
		}
	})
	t.Run("forged form", func(t *testing.T) {
		b := e.browser()
		code, _, _ := b.post("/login", url.Values{"form": {"guess"}, "token": {tokAll}})
		if code != http.StatusForbidden {
			t.Errorf("got %d, want 403 without the sign-in form's cookie", code)
		}
		if e.console.sessions.(*memSessions).len() != 0 {
			t.Errorf("got a session from a forged sign-in")
		}
	})
	t.Run("cross-site origin", func(t *testing.T) {
		b := e.browser()
		_, body, _ := b.get("/login")
		form := reForm.FindStringSubmatch(body)[1]
		code, _, _ := b.post("/login", url.Values{"form": {form}, "token": {tokAll}}, "Origin: https://evil.example")
		if code != http.StatusForbidden {
			t.Errorf("got %d, want 403", code)
		}
	})
	t.Run("good token sets a strict HttpOnly cookie", func(t *testing.T) {
		b := e.browser()
		_, body, _ := b.get("/login")
		form := reForm.FindStringSubmatch(body)[1]
		_, _, resp := b.post("/login", url.Values{"form": {form}, "token": {tokAll}, "next": {"//evil.example/x"}})
		if loc := resp.Header.Get("Location"); loc != "/" {
			t.Errorf("got redirect to %q, want / for a foreign next", loc)
		}
		var got *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Name == sessionCookie {
				got = c
			}
		}
		if got == nil || !got.HttpOnly || got.SameSite != http.SameSiteStrictMode || got.Secure || len(got.Value) < 40 {
			t.Fatalf("got cookie %+v, want HttpOnly, SameSite=Strict, not Secure over HTTP, a long random id", got)
		}
		code, body, _ := b.get("/")
		if code != http.StatusOK || !strings.Contains(body, "root") {
			t.Errorf("got %d, want 200 naming the signed-in token", code)
		}
		code, _, resp = b.post("/logout", url.Values{"csrf": {b.csrf}})
		if code != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
			t.Errorf("logout: got %d", code)
		}
		if code, _, _ := b.get("/"); code != http.StatusSeeOther {
			t.Errorf("after logout: got %d, want 303 to sign-in", code)
		}
	})
	t.Run("Secure under TLS", func(t *testing.T) {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "https://console.example/", nil)
		r.TLS = &tls.ConnectionState{}
		setCookie(w, r, sessionCookie, "v", 0)
		if c := w.Result().Cookies()[0]; !c.Secure || !c.HttpOnly {
			t.Errorf("got %+v, want Secure and HttpOnly", c)
		}
	})
}

func TestConsoleSessionEnds(t *testing.T) {
	e := newConsoleEnv(t)
	t.Run("idle expiry", func(t *testing.T) {
		b := e.browser()
		b.signIn(tokAll)
		e.Clock.Advance(DefaultSessionIdle + time.Minute)
		if code, _, _ := b.get("/log"); code != http.StatusSeeOther {
			t.Errorf("got %d, want 303 to sign-in after the idle timeout", code)
		}
	})
	t.Run("token removed by a reload", func(t *testing.T) {
		b := e.browser()
		b.signIn(tokOut)
		h := admintest.Hashes()
		if err := e.Ops.SetTokens([]ops.Token{{Name: "root", Hash: h[0], Scope: ops.ScopeAll}}); err != nil {
			t.Fatal(err)
		}
		if code, _, _ := b.get("/log"); code != http.StatusSeeOther {
			t.Errorf("got %d, want 303 to sign-in once the token is gone", code)
		}
	})
}

func TestConsoleCSRF(t *testing.T) {
	e, f := newConsoleEnvCampaigns(t)
	b := e.browser()
	b.signIn(tokAll)
	lock := func(csrf string) url.Values {
		v := url.Values{"kind": {"identity"}, "domain": {domOut}, "name": {"alice@customer.example"}, "reason": {"spam run"}}
		if csrf != "" {
			v.Set("csrf", csrf)
		}
		return v
	}
	cases := []struct {
		name    string
		path    string
		form    url.Values
		headers []string
	}{
		{"lock without token", "/lock", lock(""), nil},
		{"lock with a wrong token", "/lock", lock("wrong-" + b.csrf), nil},
		{"lock with another session's token", "/lock", lock(strings.Repeat("A", len(b.csrf))), nil},
		{"lock from another origin", "/lock", lock(b.csrf), []string{"Origin: https://evil.example"}},
		{"lock from a cross-site fetch", "/lock", lock(b.csrf), []string{"Sec-Fetch-Site: cross-site"}},
		{"toggle without token", "/reports/toggle", url.Values{"action": {"lock"}, "kind": {"user"}, "domain": {domOut}, "name": {"webhost1"}, "reason": {"x"}}, []string{"Accept: application/json"}},
		{"toggle with a wrong header", "/reports/toggle", url.Values{"action": {"lock"}, "kind": {"user"}, "domain": {domOut}, "name": {"webhost1"}, "reason": {"x"}}, []string{"X-CSRF-Token: nope"}},
		{"release without token", "/log/" + e.SpamOut + "/release", url.Values{}, nil},
		{"delete with a wrong token", "/log/" + e.SpamOut + "/delete", url.Values{"csrf": {"x"}}, nil},
		{"confirm spam without token", "/log/" + e.SpamOut + "/confirm-spam", url.Values{}, nil},
		{"confirm spam from another origin", "/log/" + e.SpamOut + "/confirm-spam", url.Values{"csrf": {b.csrf}}, []string{"Origin: https://evil.example"}},
		{"lock a campaign without token", "/campaigns/" + campA + "/lock", url.Values{"reason": {"x"}}, nil},
		{"lock a campaign from another origin", "/campaigns/" + campA + "/lock", url.Values{"reason": {"x"}, "csrf": {b.csrf}}, []string{"Origin: https://evil.example"}},
		{"confirm a campaign with a wrong token", "/campaigns/" + campA + "/confirm", url.Values{"csrf": {"x"}}, nil},
		{"unconfirm a campaign without token", "/campaigns/" + campA + "/unconfirm", url.Values{}, nil},
		{"logout without token", "/logout", url.Values{}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if code, _, _ := b.post(tc.path, tc.form, tc.headers...); code != http.StatusForbidden {
				t.Errorf("got %d, want 403", code)
			}
		})
	}
	if n := e.LockCount(); n != 0 {
		t.Errorf("got %d locks after refused posts, want 0", n)
	}
	if n := e.AuditCount(); n != 0 {
		t.Errorf("got %d audit entries after refused posts, want 0", n)
	}
	if n := e.Deliver.Count(); n != 0 {
		t.Errorf("got %d releases after refused posts, want 0", n)
	}
	if _, err := e.Store.Raw(e.SpamOut, quarantine.Actor{Name: "test"}); err != nil {
		t.Errorf("quarantined content gone after a refused delete: %v", err)
	}
	if f.Confirmed(campA) {
		t.Errorf("campaign confirmed by a refused post")
	}
	// Still signed in (the refused logout did nothing), and the right
	// token with a same-origin Origin works.
	code, _, resp := b.post("/lock", lock(b.csrf), "Origin: "+b.base)
	if code != http.StatusSeeOther || !e.isLocked(identity.KindIdentity, domOut, "alice@customer.example") {
		t.Fatalf("got %d (Location %q), want 303 and the identity locked", code, resp.Header.Get("Location"))
	}
}

func TestConsoleDomainScope(t *testing.T) {
	e := newConsoleEnv(t)
	if _, err := e.Locks.Lock(context.Background(), identity.LockRequest{Target: identity.IdentityTarget(domOther, "mallory@other.example"), Reason: "other's lock", Actor: "root"}); err != nil {
		t.Fatal(err)
	}
	e.Audit().Record(ops.AuditEntry{At: e.Clock.Now(), Actor: "root", Scope: ops.ScopeAll, Action: ops.AuditLock, Target: ops.AuditTarget{Kind: "identity", Domain: domOther, Name: "mallory@other.example"}, Reason: "other's lock"})
	b := e.browser()
	b.signIn(tokOut)
	pages := []string{"/", "/log", "/log?domain=" + domOther, "/reports?group_by=identity&classification=all", "/reports?group_by=domain&classification=all", "/locks", "/locks?domain=" + domOther, "/audit", "/audit?domain=" + domOther}
	for _, p := range pages {
		t.Run("list "+p, func(t *testing.T) {
			code, body, _ := b.get(p)
			if code != http.StatusOK {
				t.Fatalf("got %d, want 200", code)
			}
			for _, leak := range []string{domOther, "mallory", "Your bank", e.SpamOther} {
				if strings.Contains(body, leak) {
					t.Errorf("got %q on a page of a token scoped to %s", leak, domOut)
				}
			}
		})
	}
	if _, body, _ := b.get("/log"); !strings.Contains(body, "Cheap pills") {
		t.Errorf("own domain's message missing from the log")
	}
	forbidden := []string{"/log/" + e.SpamOther, "/log/" + e.SpamOther + "/raw", "/locks/identity/" + domOther + "/mallory@other.example",
		"/lock?kind=identity&domain=" + domOther + "&name=mallory@other.example"}
	for _, p := range forbidden {
		t.Run("object "+p, func(t *testing.T) {
			code, body, _ := b.get(p)
			if code != http.StatusForbidden || strings.Contains(body, "Your bank") {
				t.Errorf("got %d, want 403 without the object", code)
			}
		})
	}
	posts := []struct {
		path string
		form url.Values
	}{
		{"/lock", url.Values{"kind": {"identity"}, "domain": {domOther}, "name": {"x@other.example"}, "reason": {"r"}}},
		{"/lock", url.Values{"kind": {"user"}, "name": {"otheruser"}, "reason": {"r"}}},
		{"/unlock", url.Values{"kind": {"identity"}, "domain": {domOther}, "name": {"mallory@other.example"}, "reason": {"r"}}},
		{"/log/" + e.SpamOther + "/release", url.Values{}},
		{"/log/" + e.SpamOther + "/delete", url.Values{}},
	}
	audits := e.AuditCount()
	for _, p := range posts {
		t.Run("POST "+p.path, func(t *testing.T) {
			p.form.Set("csrf", b.csrf)
			if code, _, _ := b.post(p.path, p.form); code != http.StatusForbidden {
				t.Errorf("got %d, want 403", code)
			}
		})
	}
	if !e.isLocked(identity.KindIdentity, domOther, "mallory@other.example") || e.LockCount() != 1 || e.AuditCount() != audits || e.Deliver.Count() != 0 {
		t.Errorf("a refused post changed something")
	}
}

func TestConsoleEscapesMarkup(t *testing.T) {
	e := newConsoleEnv(t)
	ctx := context.Background()
	evil := `<script>alert(1)</script><img src=x onerror=alert(2)>`
	ident := `"><svg onload=alert(3)>@customer.example`
	rec := admintest.Record(e.Clock.Now().Add(-10*time.Minute), domOut, "webhost1", ident, quarantine.StatusQuarantined, quarantine.VerdictSpam, evil)
	rec.Sender = `x"><b>sender</b>@customer.example`
	raw := "From: <img src=x onerror=alert(4)>\r\nSubject: " + evil + "\r\nContent-Type: text/html\r\n\r\n<p>hi</p><script>alert(5)</script>\r\n"
	if err := e.Store.Quarantine(ctx, rec, []byte(raw)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Locks.Lock(ctx, identity.LockRequest{Target: identity.IdentityTarget(domOut, ident), Reason: evil, Actor: "root"}); err != nil {
		t.Fatal(err)
	}
	e.Audit().Record(ops.AuditEntry{At: e.Clock.Now(), Actor: "root", Scope: ops.ScopeAll, Action: ops.AuditLock, Target: ops.AuditTarget{Kind: "identity", Domain: domOut, Name: ident}, Reason: evil})
	b := e.browser()
	b.signIn(tokAll)
	pages := []string{"/", "/log", "/log?subject=" + url.QueryEscape("<script>"), "/log/" + rec.ID, "/reports?group_by=identity&classification=all",
		"/reports?group_by=sender&classification=all", "/locks", "/locks/identity/" + domOut + "/" + url.PathEscape(ident), "/audit",
		"/lock?" + url.Values{"kind": {"identity"}, "domain": {domOut}, "name": {ident}, "back": {"/log"}}.Encode()}
	raws := []string{"<script>alert", "<img src=x", "<svg onload", "<b>sender", "onerror=alert(2)>"}
	for _, p := range pages {
		t.Run(p, func(t *testing.T) {
			code, body, _ := b.get(p)
			if code != http.StatusOK {
				t.Fatalf("got %d, want 200", code)
			}
			for _, r := range raws {
				if strings.Contains(body, r) {
					t.Errorf("got unescaped %q in the page", r)
				}
			}
		})
	}
	_, body, _ := b.get("/log/" + rec.ID)
	if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;") {
		t.Errorf("the subject is not shown as text")
	}
}

var reInline = regexp.MustCompile(`(?i)<script(\s[^>]*)?>[^<]|<script>|\son[a-z]+\s*=|javascript:`)

func TestConsoleHeadersAndNoInlineScript(t *testing.T) {
	e, _ := newConsoleEnvCampaigns(t)
	b := e.browser()
	b.signIn(tokAll)
	for _, p := range []string{"/login", "/", "/log", "/log/" + e.SpamOut, "/reports", "/locks", "/audit", "/locks/identity/" + domOut + "/alice@customer.example",
		"/campaigns", "/campaigns/" + campA} {
		t.Run(p, func(t *testing.T) {
			code, body, resp := b.get(p)
			if code != http.StatusOK && !(p == "/login" && code == http.StatusSeeOther) {
				t.Fatalf("got %d", code)
			}
			csp := resp.Header.Get("Content-Security-Policy")
			if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "default-src 'none'") {
				t.Errorf("got CSP %q, want one forbidding inline script", csp)
			}
			if resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("missing framing or sniffing headers")
			}
			if m := reInline.FindString(body); m != "" {
				t.Errorf("got inline script %q", m)
			}
			if regexp.MustCompile(`(src|href|action)="(https?:)?//`).MatchString(body) {
				t.Errorf("page refers to an external resource")
			}
		})
	}
	for _, p := range []string{"/static/console.css", "/static/console.js"} {
		code, _, resp := b.get(p)
		if code != http.StatusOK || resp.Header.Get("Content-Type") == "" {
			t.Errorf("%s: got %d", p, code)
		}
	}
}
