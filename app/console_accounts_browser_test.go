package app

import (
	"context"
	"os"
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
// desktop and phone width go to OUTGUARD_SCREENS (default
// ../testdata/screenshots).
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
	dir := os.Getenv("OUTGUARD_SCREENS")
	if dir == "" {
		dir = "../testdata/screenshots"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	good, err := totp.GenerateCode(secret, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	// A code two steps away is outside the accepted skew.
	wrong, _ := totp.GenerateCode(secret, e.clock.Now().Add(-2*time.Minute))
	if wrong == good {
		wrong = "000000"
	}

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chrome), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	ctx, cancelT := context.WithTimeout(bctx, 2*time.Minute)
	defer cancelT()
	do := func(step string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, steps...); err != nil {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			page, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
			t.Fatalf("%s: %v\nat %s:\n%s", step, err, loc, page)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
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
