package app

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/outguard/outguard/internal/testutil"
	"github.com/outguard/outguard/quarantine"
)

// TestConsoleActionsInBrowser: in headless Chromium, the message view
// shows why each rule matched (the hit's markup as text), a message is
// released with a reason, and the customer notice of a lock is
// previewed. Screenshots at 1280 and 390 px go to the folder of
// screenshotDir(t, "actions").
func TestConsoleActionsInBrowser(t *testing.T) {
	chrome := chromiumPath(t)
	relay := testutil.StartNextHop(t)
	e := newEnv(t, strings.Replace(customerNotice, "to: identity", "to: abuse-desk@out.example.net", 1),
		"  relay: {address: \""+relay.Addr+"\"}\n"+whyRules)
	base := mountConsole(t, e)
	body := "Dear customer,\r\nplease do the Wire Transfer now <script>alert('x')</script> thanks.\r\n"
	if err := e.send("shop@out.example.net", testMessage("alice@customer.example", "Invoice <b>42</b>", body)); replyOf(err) == nil || replyOf(err).Code != 550 {
		t.Fatalf("got %v, want 550", err)
	}
	e.flush()
	res, err := e.app.store.Search(quarantine.Query{Identity: "alice@customer.example"})
	if err != nil || len(res.Records) != 1 {
		t.Fatalf("got %d records (%v)", len(res.Records), err)
	}
	id := res.Records[0].ID
	dir := screenshotDir(t, "actions")

	br := newBrowser(t, chrome, 3*time.Minute)
	ctx, do := br.ctx, br.do
	eval := func(js string) bool {
		t.Helper()
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return ok
	}

	do("sign in", chromedp.Navigate(base+"/log/"+id), chromedp.WaitVisible(chromedp.ID("name")),
		chromedp.Click(chromedp.CSS("details.login-token summary")), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), consoleToken), chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.CSS(".reasons .why")), shot(dir, "message-why"))
	if !eval(`Array.from(document.querySelectorAll(".why mark")).some(m => m.textContent === "<script>alert('x')</script>") && document.querySelectorAll(".why script").length === 0`) {
		t.Errorf("the rule hit with markup is not shown as text")
	}

	// Release with a reason: the browser refuses the form without one.
	do("release form", chromedp.ScrollIntoView(chromedp.ID("release")), shot(dir, "release-form"))
	if eval(`document.getElementById("release-reason").checkValidity()`) {
		t.Errorf("an empty reason passes the form's check")
	}
	do("release", chromedp.SendKeys(chromedp.ID("release-reason"), "invoice of a real customer, ticket 4711"),
		chromedp.Click(chromedp.CSS(`#release button[value=false]`)), chromedp.WaitVisible(chromedp.CSS(`p.flash`)))
	if msg, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("p.flash"))); !strings.Contains(msg, "released to the next hop") {
		t.Errorf("after release: notice %q", msg)
	}
	if n := len(e.nh.Received()); n != 1 {
		t.Errorf("next hop got %d messages, want the released one", n)
	}
	do("released shot", shot(dir, "message-released"))

	// Lock the identity, then preview its customer notice.
	lockForm := base + "/lock?" + url.Values{"kind": {"identity"}, "domain": {"out.example.net"}, "name": {"alice@customer.example"}}.Encode()
	do("lock", chromedp.Navigate(lockForm), chromedp.WaitVisible(chromedp.ID("reason")),
		chromedp.SendKeys(chromedp.ID("reason"), "spam <b>run</b>"), chromedp.SendKeys(chromedp.ID("duration"), "2h"),
		chromedp.Click(chromedp.CSS(`form[action="/lock"] button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS(`p.flash`)))
	do("notice", chromedp.Navigate(base+"/locks/identity/out.example.net/"+url.PathEscape("alice@customer.example")),
		chromedp.Click(chromedp.CSS(`a[href$="/notice"]`)), chromedp.WaitVisible(chromedp.CSS(`pre.notice-body`)), shot(dir, "notice-preview"))
	if !eval(`document.querySelector("pre.notice-body").textContent.includes("Reason: spam <b>run</b>")`) {
		t.Errorf("the preview does not show the lock's reason as text")
	}
	// The relay also gets the ARF report of the blocked message.
	notices := 0
	for _, d := range relay.WaitDeliveries(2, 20*time.Second) {
		if len(d.Rcpts) == 1 && d.Rcpts[0] == "abuse-desk@out.example.net" {
			notices++
		}
	}
	if notices != 1 {
		t.Errorf("relay got %d notices, want 1 to the abuse desk", notices)
	}
}
