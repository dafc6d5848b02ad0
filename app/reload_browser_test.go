package app

import (
	"context"
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

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chrome), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.UserDataDir(t.TempDir()),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	ctx, cancel := context.WithTimeout(bctx, 2*time.Minute)
	defer cancel()
	do := func(step string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			page, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
			t.Fatalf("%s: %v\n%s", step, err, page)
		}
	}

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
