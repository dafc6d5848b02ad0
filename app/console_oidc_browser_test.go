package app

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestConsoleOIDCInBrowser signs in to the console in headless Chromium
// through the test OpenID Connect provider, which the browser sees as
// another site (localhost against the console's 127.0.0.1), as a real
// provider is: a "Signed in" page goes on to the page first asked for,
// and that navigation carries the SameSite=Strict session cookie. A person no grant admits is refused
// with a page that says so. Screenshots at desktop and phone width go to
// screenshotDir(t, "oidc").
func TestConsoleOIDCInBrowser(t *testing.T) {
	chrome := chromiumPath(t)
	e, prov, base := newOIDCEnv(t, "5")
	dir := screenshotDir(t, "oidc")
	br := newBrowser(t, chrome, 2*time.Minute)
	do, text := br.do, br.text

	// The page first asked for answers 204 No Content, so that the
	// browser stays on the "Signed in" page that goes on to it at once,
	// and notes whether that navigation carried the session cookie.
	held := make(chan bool, 1)
	e.app.admin.Handle("GET /held", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := r.Cookie("outguard_session")
		select {
		case held <- err == nil:
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	}))

	prov.signIn(oidcDesk)
	do("sign-in page", chromedp.Navigate(base+"/login?next=%2Fheld"), chromedp.WaitVisible(chromedp.CSS("a.sso")), shot(dir, "login"))
	if b := text("a.sso"); b != "Sign in with Test IdP" {
		t.Fatalf("button: got %q, want \"Sign in with Test IdP\"", b)
	}
	do("to the provider", chromedp.Click(chromedp.CSS("a.sso")), chromedp.WaitVisible(chromedp.ID("approve")))
	do("back signed in", chromedp.Click(chromedp.ID("approve")), chromedp.WaitVisible(chromedp.CSS("body.page-signedin")))
	select {
	case withSession := <-held:
		if !withSession {
			t.Fatal("the \"Signed in\" page went on to the page asked for without the session cookie")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the \"Signed in\" page did not go on to the page asked for")
	}
	do("the signed-in page", shot(dir, "signed-in-continue"), chromedp.Navigate(base+"/locks"), chromedp.WaitVisible(chromedp.CSS("body.page-locks")), shot(dir, "signed-in"))
	if h := text("h1"); h != "Locks" {
		t.Fatalf("after sign-in: got page %q, want Locks", h)
	}
	if who := text("header"); !strings.Contains(who, "ana@example.org") || !strings.Contains(who, "all domains") {
		t.Fatalf("header %q does not name ana@example.org (all domains)", who)
	}
	do("sign out", chromedp.Click(chromedp.CSS("form.signout button")), chromedp.WaitVisible(chromedp.CSS("a.sso")))

	prov.signIn(oidcStranger)
	do("a stranger at the provider", chromedp.Click(chromedp.CSS("a.sso")), chromedp.WaitVisible(chromedp.ID("approve")))
	do("a stranger refused", chromedp.Click(chromedp.ID("approve")), chromedp.WaitVisible(chromedp.CSS(".flash-error")), shot(dir, "refused"))
	if msg := text(".flash-error"); !strings.Contains(msg, "mallory@example.org, but this console admits you through no grant") {
		t.Fatalf("stranger: got %q, want a refusal naming the person", msg)
	}
	if _, err := chromedp.Run(br.ctx, chromedp.WaitVisible(chromedp.CSS("body.page-login"))); err != nil {
		t.Fatal(err)
	}
}
