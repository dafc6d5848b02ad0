package app

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/outguard/outguard/identity"
)

// TestCampaignsInBrowser drives the console's campaign pages in headless
// Chromium against a running outguard whose campaign store saw a
// campaign relayed over SMTP: the list, the campaign's page, lock every
// identity with a reason (then refused over SMTP), confirm. Screenshots
// go to testdata/screenshots.
func TestCampaignsInBrowser(t *testing.T) {
	chrome := chromiumPath(t)
	e := newEnv(t, "", "")
	s := useCampaigns(t, e)
	base := mountConsole(t, e)
	id := sendCampaign(t, e, s, 4)
	dir := screenshotDir(t, "")
	br := newBrowser(t, chrome, 3*time.Minute)
	ctx, do := br.ctx, br.do
	text := br.text

	do("sign in", chromedp.Navigate(base+"/campaigns"), chromedp.WaitVisible(chromedp.ID("name")),
		chromedp.Click(chromedp.CSS("details.login-token summary")), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), consoleToken), chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.CSS("table.data")))
	if h := text("h1"); h != "Campaigns" {
		t.Fatalf("after sign-in: got page %q, want the campaigns asked for", h)
	}
	if nav := text(`nav a[aria-current=page]`); nav != "Campaigns" {
		t.Errorf("navigation marks %q, want Campaigns", nav)
	}
	if row := text("table.data tbody tr"); !strings.Contains(row, id) {
		t.Fatalf("list: first row %q, want campaign %s", row, id)
	}
	do("list shot", shot(dir, "campaigns"))

	do("open", chromedp.Click(chromedp.CSS(`table.data tbody tr a[href="/campaigns/`+id+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action$="/lock"]`)))
	idents := text(`section.card table.data tbody`)
	for _, want := range []string{"bot1", "bot2", "bot3", "bot4", "ghost", "not locked"} {
		if !strings.Contains(idents, want) {
			t.Errorf("campaign page lacks %q in its identities", want)
		}
	}
	if sample := text(`main`); !strings.Contains(sample, "Sample message") || !strings.Contains(sample, "Parcel DE") {
		t.Errorf("campaign page lacks the sample message's record")
	}
	do("detail shot", shot(dir, "campaign"))

	// Lock every identity; the script's confirmation is accepted.
	acceptConfirm := func() {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(window.confirm = () => true, true)`)); err != nil {
			t.Fatal(err)
		}
	}
	acceptConfirm()
	do("lock all", chromedp.SendKeys(chromedp.ID("reason"), "parcel phish botnet"), chromedp.SendKeys(chromedp.ID("duration"), "7d"),
		chromedp.Click(chromedp.CSS(`form[action$="/lock"] button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS(`p.flash`)))
	if f := text("p.flash"); !strings.Contains(f, "Locked 4 identities of campaign "+id) || !strings.Contains(f, "1 skipped") {
		t.Fatalf("after locking: got notice %q", f)
	}
	do("locked shot", shot(dir, "campaign-locked"))
	for _, ident := range []string{"bot1", "bot4"} {
		l, err := e.app.ids.Get(context.Background(), identity.IdentityTarget("out.example.net", ident))
		if err != nil || !l.Active(e.clock.Now()) || l.Actor != "ops" || !strings.Contains(l.Reason, "parcel phish botnet (campaign "+id+")") {
			t.Errorf("%s: lock %+v, %v", ident, l, err)
		}
		if err := e.send("shop@out.example.net", testMessage(ident, "after the lock", "hello")); replyOf(err) == nil || replyOf(err).Code != 550 {
			t.Errorf("%s after the lock: %v, want 550", ident, err)
		}
	}

	acceptConfirm()
	do("confirm", chromedp.Click(chromedp.CSS(`form[action$="/confirm"] button`)), chromedp.WaitVisible(chromedp.CSS(`form[action$="/unconfirm"]`)))
	if c, err := s.Get(id); err != nil || !c.Confirmed || c.ConfirmedBy != "ops" {
		t.Errorf("after confirm: %+v %v", c, err)
	}
	do("confirmed shot", shot(dir, "campaign-confirmed"))
	do("identity link", chromedp.Click(chromedp.CSS(`a[href="/identities/out.example.net/bot1"]`)), chromedp.WaitVisible(chromedp.CSS(`table.data`)))
	if body := text("main"); !strings.Contains(body, "parcel phish botnet") {
		t.Errorf("bot1's profile lacks the campaign lock's reason")
	}
	links, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('main a[href="/campaigns/`+id+`"]').length`))
	if err != nil || links == 0 {
		t.Errorf("bot1's lock page does not link the campaign (%v)", err)
	}
	do("lock page shot", shot(dir, "campaign-member-lock"))
}
