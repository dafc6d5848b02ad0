package app

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/outguard/outguard/internal/testutil"
)

// TestNotifyPreviewInBrowser: the identity profile's "notify" action opens
// the customer notice's preview with its send form, at 1280 and 390 px
// (screenshots in screenshotDir(t, "pages")), and the page fits a phone.
func TestNotifyPreviewInBrowser(t *testing.T) {
	chrome := chromiumPath(t)
	relay := testutil.StartNextHop(t)
	e := newEnv(t, customerNotice, "  relay: {address: \""+relay.Addr+"\"}\n")
	base := mountConsole(t, e)
	const dom, ident = "out.example.net", "alice@customer.example"
	profile := base + "/identities/" + dom + "/" + url.PathEscape(ident)
	cc := signInConsole(t, base)
	lockForm := url.Values{"csrf": {cc.csrf("/")}, "kind": {"identity"}, "domain": {dom}, "name": {ident},
		"reason": {"spam run"}, "duration": {"2h"}, "back": {"/locks"}}
	if code, body := cc.post("/lock", lockForm); code != 200 {
		t.Fatalf("lock: got %d %s", code, body)
	}
	dir := screenshotDir(t, "pages")
	br := newBrowser(t, chrome, 2*time.Minute)
	ctx, do := br.ctx, br.do
	do("sign in", chromedp.Navigate(profile), chromedp.WaitVisible(chromedp.ID("name")),
		chromedp.Click(chromedp.CSS("details.login-token summary")), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), consoleToken), chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.ID("notify-link")))
	do("preview", chromedp.Click(chromedp.ID("notify-link")), chromedp.WaitVisible(chromedp.ID("notify-form")))
	body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
	for _, w := range []string{"Your mail account alice@customer.example is paused", "Reason: spam run", "Send the notice"} {
		if !strings.Contains(body, w) {
			t.Errorf("the preview lacks %q:\n%s", w, body)
		}
	}
	do("preview shot", pageShot(dir, "notify-preview"))
	do("phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateTouch), chromedp.Sleep(150*time.Millisecond))
	fits, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= 390`))
	if err != nil || !fits {
		t.Errorf("the preview at 390 px scrolls sideways (%v)", err)
	}
}
