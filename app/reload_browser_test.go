package app

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/bcrypt"

	"github.com/outguard/outguard/internal/testutil"
)

// TestReloadNotFromAnotherSiteInBrowser signs an admin in to the console
// in headless Chromium, then opens another site's page that posts to
// /-/reload three ways: fetch without CORS (cookies included), fetch with
// the token in Authorization (needs a preflight), and a form submitted
// with the token as a field. None reloads: a token added to the file stays
// unknown.
func TestReloadNotFromAnotherSiteInBrowser(t *testing.T) {
	chrome := chromiumPath(t)
	nh := testutil.StartNextHop(t)
	path := testConfig(t, nh.Addr, "")
	rewrite(t, path, defaultAdminLine, adminWithTokens(t, ""))
	a := startApp(t, path)
	base := "http://" + a.AdminAddr().String()
	h, err := bcrypt.GenerateFromPassword([]byte("new-token"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	rewrite(t, path, "  tokens:\n", "  tokens:\n    - {name: added, hash: \""+string(h)+"\", scope: all}\n")

	// The attacker's page is on localhost, the admin listener on
	// 127.0.0.1: another site for the browser.
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>cat pictures</title>
<form id="f" method="POST" action="%[1]s/-/reload"><input name="token" value="trial-token"></form>
<script>
Promise.allSettled([
  fetch("%[1]s/-/reload", {method: "POST", mode: "no-cors", credentials: "include", body: "x"}),
  fetch("%[1]s/-/reload", {method: "POST", credentials: "include", headers: {"Authorization": "Bearer trial-token"}}),
]).then(() => document.getElementById("f").submit());
</script>`, base)
	}))
	t.Cleanup(attacker.Close)
	_, port, _ := net.SplitHostPort(attacker.Listener.Addr().String())

	br := newBrowser(t, chrome, 2*time.Minute)
	ctx, do := br.ctx, br.do

	do("sign in", chromedp.Navigate(base+"/log"), chromedp.WaitVisible(chromedp.ID("name")),
		chromedp.Click(chromedp.CSS("details.login-token summary")), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), "trial-token"), chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.CSS("form.filters")))
	// The form's answer is shown in a <pre>, which the attacker's page
	// lacks.
	do("another site's page", chromedp.Navigate("http://localhost:"+port+"/"), chromedp.WaitVisible(chromedp.CSS("pre")))
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	answer, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("pre")))
	if err != nil {
		t.Fatal(err)
	}
	if loc != base+"/-/reload" || !strings.Contains(answer, "cross_origin") {
		t.Errorf("the form's answer at %s: %q, want the cross-origin refusal", loc, answer)
	}
	if tokenWorks(t, a, "new-token") {
		t.Fatal("another site's page reloaded the configuration")
	}
}
