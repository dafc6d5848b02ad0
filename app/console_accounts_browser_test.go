package app

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/outguard/outguard/admin/ops"
	"github.com/outguard/outguard/internal/passwd"
	"github.com/pquerna/otp/totp"
)

// TestConsoleAccountInBrowser signs in to the console with a named
// account, its password and a TOTP code computed here, in headless
// Chromium; a wrong code is refused. Screenshots of the sign-in page at
// desktop and phone width go to screenshotDir(t, "accounts").
func TestConsoleAccountInBrowser(t *testing.T) {
	chrome := chromiumPath(t)
	const (
		password = "browser account password"
		secret   = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	)
	e := newEnv(t, "", "")
	base := mountConsole(t, e)
	h, err := passwd.Hash(password)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.app.ops.SetAccounts([]ops.Account{{Name: "alice", PasswordHash: h, TOTPSecret: secret, Scope: ops.ScopeAll}}); err != nil {
		t.Fatal(err)
	}
	dir := screenshotDir(t, "accounts")
	good, err := totp.GenerateCode(secret, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	// A code two steps away is outside the accepted skew.
	wrong, _ := totp.GenerateCode(secret, e.clock.Now().Add(-2*time.Minute))
	if wrong == good {
		wrong = "000000"
	}

	br := newBrowser(t, chrome, 2*time.Minute)
	do := br.do
	text := br.text
	fill := func(code string, then ...chromedp.Action[chromedp.Void]) []chromedp.Action[chromedp.Void] {
		return append([]chromedp.Action[chromedp.Void]{
			chromedp.Clear(chromedp.ID("name")), chromedp.SendKeys(chromedp.ID("name"), "alice"),
			chromedp.SendKeys(chromedp.ID("password"), password),
			chromedp.SendKeys(chromedp.ID("code"), code),
			chromedp.Submit(chromedp.ID("code"))}, then...)
	}

	do("sign-in page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("name")), shot(dir, "login"))
	do("token option", chromedp.Click(chromedp.CSS("details.login-token summary")), chromedp.WaitVisible(chromedp.ID("token")),
		shot(dir, "login-token"), chromedp.Navigate(base+"/login"), chromedp.WaitVisible(chromedp.ID("name")))
	do("wrong code", fill(wrong, chromedp.WaitVisible(chromedp.CSS(".flash-error")), shot(dir, "login-refused"))...)
	if msg := text(".flash-error"); !strings.Contains(msg, "not valid") {
		t.Fatalf("wrong code: got %q, want a refusal", msg)
	}
	do("right code", fill(good, chromedp.WaitVisible(chromedp.CSS("svg.chart")))...)
	if h := text("h1"); h != "Overview" {
		t.Fatalf("after sign-in: got page %q, want the overview", h)
	}
	if who := text("header"); !strings.Contains(who, "alice") {
		t.Fatalf("header %q does not name alice", who)
	}
}
