package app

import (
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/outguard/outguard/admin/apiv1"
)

// consoleAt is one request to the console at base, with the session
// cookie's value given by hand (no cookie jar: which node gets which
// cookie is the test's business) and redirects not followed.
func consoleAt(t *testing.T, base, method, path, session string, form url.Values) (int, string, *http.Response) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if session != "" {
		req.AddCookie(&http.Cookie{Name: "outguard_session", Value: session})
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp
}

// consoleSignIn signs in to the console at base with the token and
// returns the session cookie's value.
func consoleSignIn(t *testing.T, base, token string) string {
	t.Helper()
	_, page, resp := consoleAt(t, base, "GET", "/login", "", nil)
	m := formField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no sign-in form in %s", page)
	}
	var loginCookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "outguard_login" {
			loginCookie = c
		}
	}
	if loginCookie == nil {
		t.Fatal("the sign-in page set no form cookie")
	}
	req, _ := http.NewRequest("POST", base+"/login", strings.NewReader(url.Values{"form": {html.UnescapeString(m[1])}, "token": {token}, "next": {"/audit"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(loginCookie)
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "outguard_session" && c.Value != "" {
			return c.Value
		}
	}
	t.Fatalf("sign in: got %d and no session cookie", resp.StatusCode)
	return ""
}

// signedIn reports whether the console at base serves its audit page to
// the session (rather than sending it to sign in), and returns the page.
func signedIn(t *testing.T, base, session string) (bool, string) {
	t.Helper()
	code, page, resp := consoleAt(t, base, "GET", "/audit", session, nil)
	if code == http.StatusSeeOther && strings.HasPrefix(resp.Header.Get("Location"), "/login") {
		return false, page
	}
	if code != http.StatusOK || !strings.Contains(page, "<h1>Audit trail</h1>") {
		t.Fatalf("audit page: got %d %s", code, page)
	}
	return true, page
}

// TestFleetAuditShared: a lock made through node A's API is in node B's
// audit trail, through its API and its console, naming node A; a change
// through node B's console is in node A's.
func TestFleetAuditShared(t *testing.T) {
	f := startFleet(t)
	code, body := f.api(t, 0, "POST", "/api/v1/locks", `{"kind":"user","name":"trial","reason":"compromised account"}`)
	if code != 200 && code != 201 {
		t.Fatalf("lock through node A: %d %s", code, body)
	}
	code, body = f.api(t, 1, "GET", "/api/v1/audit?action=lock", "")
	if code != 200 {
		t.Fatalf("audit through node B: %d %s", code, body)
	}
	var list apiv1.AuditList
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Entries) != 1 {
		t.Fatalf("node B's audit trail has %d lock entries, want node A's one: %s", len(list.Entries), body)
	}
	if e := list.Entries[0]; e.Node != "node-a" || e.Actor != "ops" || e.Target.Name != "trial" || e.Reason != "compromised account" {
		t.Errorf("node B lists %+v, want node A's lock of trial by ops", e)
	}
	// Node B's console lists it too, naming node A.
	base := func(i int) string { return "http://" + f.nodes[i].AdminAddr().String() }
	sess := consoleSignIn(t, base(1), "trial-token")
	ok, page := signedIn(t, base(1), sess)
	if !ok || !strings.Contains(page, "compromised account") || !strings.Contains(page, "on node-a") {
		t.Errorf("node B's console audit page lacks node A's lock:\n%s", page)
	}
	// An unlock through node B's console is in node A's trail.
	csrf := csrfField.FindStringSubmatch(page)
	if csrf == nil {
		t.Fatal("no CSRF token on the audit page")
	}
	code, _, _ = consoleAt(t, base(1), "POST", "/unlock", sess, url.Values{"csrf": {html.UnescapeString(csrf[1])},
		"kind": {"user"}, "domain": {"out.example.net"}, "name": {"trial"}, "reason": {"password changed"}})
	if code != http.StatusSeeOther {
		t.Fatalf("unlock through node B's console: got %d", code)
	}
	code, body = f.api(t, 0, "GET", "/api/v1/audit?action=unlock", "")
	if code != 200 || !strings.Contains(body, `"node":"node-b"`) || !strings.Contains(body, "password changed") {
		t.Errorf("node A's audit trail lacks node B's unlock: %d %s", code, body)
	}
}

// TestFleetConsoleSessionShared: a console session signed in on node A
// works on node B, a change made on B leaves its notice for the next page
// on A, and signing out on B ends the session on A too.
func TestFleetConsoleSessionShared(t *testing.T) {
	f := startFleet(t)
	base := func(i int) string { return "http://" + f.nodes[i].AdminAddr().String() }
	sess := consoleSignIn(t, base(0), "trial-token")
	if ok, _ := signedIn(t, base(0), sess); !ok {
		t.Fatal("the session does not work on node A, where it was signed in")
	}
	ok, page := signedIn(t, base(1), sess)
	if !ok {
		t.Fatal("the session signed in on node A does not work on node B")
	}
	if ok, _ := signedIn(t, base(1), sess+"x"); ok {
		t.Fatal("node B takes a made-up session")
	}
	// A change through node B with the session's CSRF token; its notice
	// shows on the next page, on node C.
	csrf := html.UnescapeString(csrfField.FindStringSubmatch(page)[1])
	code, _, _ := consoleAt(t, base(1), "POST", "/lock", sess, url.Values{"csrf": {csrf},
		"kind": {"user"}, "domain": {"out.example.net"}, "name": {"trial"}, "reason": {"bulk mail"}, "back": {"/locks"}})
	if code != http.StatusSeeOther {
		t.Fatalf("lock through node B's console: got %d", code)
	}
	code, page, _ = consoleAt(t, base(2), "GET", "/locks", sess, nil)
	if code != http.StatusOK || !strings.Contains(page, "Locked user trial") {
		t.Errorf("node C does not show the notice of the lock made on node B: %d", code)
	}
	// Signing out on node B ends the session on node A (the cookie sent
	// by hand: B's answer deleted it from a browser).
	code, _, _ = consoleAt(t, base(1), "POST", "/logout", sess, url.Values{"csrf": {csrf}})
	if code != http.StatusSeeOther {
		t.Fatalf("sign out on node B: got %d", code)
	}
	for i := range f.nodes {
		if ok, _ := signedIn(t, base(i), sess); ok {
			t.Errorf("node %c still takes the session signed out on node B", 'A'+i)
		}
	}
}

// TestFleetChangedTokenEndsSessionsEverywhere: when a reload on node B
// changes the token's scope, the first request through B with a session
// of that token ends every session of it, also those signed in on nodes A
// and C, whose configuration still has the old token.
func TestFleetChangedTokenEndsSessionsEverywhere(t *testing.T) {
	f := startFleet(t)
	base := func(i int) string { return "http://" + f.nodes[i].AdminAddr().String() }
	onA := consoleSignIn(t, base(0), "trial-token")
	onC := consoleSignIn(t, base(2), "trial-token")
	for _, s := range []string{onA, onC} {
		if ok, _ := signedIn(t, base(1), s); !ok {
			t.Fatal("a session does not work on node B before the reload")
		}
	}
	path := f.nodes[1].opts.ConfigPath
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(string(b), `hash: "`+trialTokenHash+`", scope: all}`, `hash: "`+trialTokenHash+`", scope: out.example.net}`, 1)
	if y == string(b) {
		t.Fatal("no token to change in the configuration")
	}
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.nodes[1].ReloadFromFile(); err != nil {
		t.Fatal(err)
	}
	if ok, _ := signedIn(t, base(1), onA); ok {
		t.Fatal("node B takes a session of the token whose scope its reload changed")
	}
	if ok, _ := signedIn(t, base(2), onC); ok {
		t.Error("node C still takes its own session of the changed token")
	}
	if ok, _ := signedIn(t, base(0), onA); ok {
		t.Error("node A still takes the session of the changed token")
	}
	// Signing in again through node C (old configuration) works.
	if ok, _ := signedIn(t, base(2), consoleSignIn(t, base(2), "trial-token")); !ok {
		t.Error("a new sign-in on node C does not work")
	}
}
