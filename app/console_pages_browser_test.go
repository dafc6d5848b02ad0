package app

import (
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/outguard/outguard/admin/ops"
	"github.com/outguard/outguard/identity"
)

// pageShot saves a full-page screenshot of the current page at desktop
// width and on an emulated phone (390 px, mobile viewport, touch).
func pageShot(dir, name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for _, v := range []struct {
			suffix string
			w, h   int64
			mobile bool
		}{{"1280", 1280, 900, false}, {"390", 390, 844, true}} {
			var opts []chromedp.EmulateViewportOption
			if v.mobile {
				opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch)
			}
			if _, err := chromedp.EmulateViewport(v.w, v.h, opts...)(ctx, t); err != nil {
				return err
			}
			if _, err := chromedp.Sleep(150*time.Millisecond)(ctx, t); err != nil {
				return err
			}
			buf, err := chromedp.FullScreenshot(100)(ctx, t)
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dir, name+"-"+v.suffix+".png"), buf, 0o644); err != nil {
				return err
			}
		}
		_, err := chromedp.EmulateViewport(1280, 900)(ctx, t)
		return err
	})
}

// TestConsolePagesInBrowser: from the log, bulk-lock two identities with
// one reason; their rows get the locked badge; the identity link opens
// the profile with its chart and lock; the CSV export, fetched in the
// signed-in session, has the log's rows; on a phone the log is a list of
// cards that does not scroll sideways. Screenshots go to
// screenshotDir(t, "pages").
func TestConsolePagesInBrowser(t *testing.T) {
	chrome := chromiumPath(t)
	e := newEnv(t, "", "")
	base := mountConsole(t, e)
	seedTraffic(t, e)
	dir := screenshotDir(t, "pages")
	br := newBrowser(t, chrome, 3*time.Minute)
	ctx, do := br.ctx, br.do
	eval := func(what, js string) any {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[any](js))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}

	do("sign in", chromedp.Navigate(base+"/log?status=quarantined"), chromedp.WaitVisible(chromedp.ID("name")),
		chromedp.Click(chromedp.CSS("details.login-token summary")), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), consoleToken), chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.CSS("table.log")))

	// Select web42's and web3's rows and lock their identities.
	sel := `table.log tbody tr:has(a.identity[href$="/web42"]) input[name=id], table.log tbody tr:has(a.identity[href$="/web3"]) input[name=id]`
	n := eval("select rows", `(() => { const b = document.querySelectorAll('`+sel+`'); b.forEach(c => c.click()); window.confirm = () => true; return b.length })()`)
	if n.(float64) != 4 {
		t.Fatalf("selected %v rows, want web42's 3 and web3's 1", n)
	}
	if label := eval("button", `document.getElementById("bulk-submit").textContent`); label != "Apply to 4 selected" {
		t.Errorf("bulk button says %q, want the count of the selection", label)
	}
	if hidden := eval("duration", `document.getElementById("bulk-duration").closest("label").hidden`); hidden != true {
		t.Error("the lock duration shows for a release")
	}
	do("bulk lock", chromedp.SetValue(chromedp.ID("bulk-action"), "lock"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("bulk-action").dispatchEvent(new Event("change", {bubbles: true}))`),
		chromedp.WaitVisible(chromedp.ID("bulk-duration")), chromedp.SendKeys(chromedp.ID("bulk-reason"), "spam wave of Monday"),
		chromedp.SetValue(chromedp.ID("bulk-duration"), "24h"), chromedp.Click(chromedp.ID("bulk-submit")), chromedp.WaitVisible(chromedp.CSS("p.flash")))
	flash, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("p.flash")))
	if !strings.Contains(flash, "Locked 2 identities") {
		t.Fatalf("after the bulk lock: notice %q", flash)
	}
	for _, id := range []string{"web42", "web3"} {
		l, err := e.app.ids.Get(context.Background(), identity.IdentityTarget("out.example.net", id))
		if err != nil || !l.Active(e.clock.Now()) || l.Reason != "spam wave of Monday" || l.Expires.Sub(l.Start) != 24*time.Hour {
			t.Errorf("%s after the bulk lock: %+v, %v", id, l, err)
		}
	}
	entries, err := e.app.ops.Audit(context.Background(), ops.Principal{Name: "ops"}, ops.AuditFilter{Action: ops.AuditLock})
	if err != nil || len(entries) != 2 {
		t.Fatalf("audit: %d lock entries (%v), want 2", len(entries), err)
	}
	for _, a := range entries {
		if a.Reason != "spam wave of Monday" || a.Actor != "ops" {
			t.Errorf("audit entry %+v: want ops's lock with the shared reason", a)
		}
	}
	badges := eval("badges", `document.querySelectorAll('table.log tbody tr:has(a.identity[href$="/web42"]) .locked-badge').length`)
	if badges.(float64) != 3 {
		t.Errorf("web42's rows carry %v locked badges, want 3", badges)
	}
	if wide := eval("desktop width", `(() => { const w = document.querySelector('.log-wrap'); return w.scrollWidth <= w.clientWidth })()`); wide != true {
		t.Error("log at 1280 px: the table scrolls sideways")
	}
	do("log shot", pageShot(dir, "log"))

	// On a phone, the log is a card list that does not scroll sideways.
	do("phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateTouch), chromedp.Sleep(150*time.Millisecond))
	cards := eval("cards", `(() => { const tr = document.querySelector('table.log tbody tr'); const w = document.querySelector('.log-wrap');
		return getComputedStyle(tr).display + " " + (w.scrollWidth <= w.clientWidth) + " " + (document.documentElement.scrollWidth <= 390) })()`)
	if cards != "block true true" {
		t.Errorf("log at 390 px: got %q (row display, no sideways scroll in the list, none on the page), want %q", cards, "block true true")
	}
	do("desktop", chromedp.EmulateViewport(1280, 900))

	// The identity link opens the profile.
	do("profile", chromedp.Click(chromedp.CSS(`table.log tbody a.identity[href$="/web42"]`)), chromedp.WaitVisible(chromedp.ID("identity-chart")))
	h1, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("h1")))
	if !strings.Contains(h1, "web42") || !strings.Contains(h1, "locked") {
		t.Errorf("profile heading %q, want web42 locked", h1)
	}
	bars := eval("bars", `document.querySelectorAll('#identity-chart rect.c-spam').length`)
	if bars.(float64) < 1 {
		t.Errorf("profile chart: %v spam bars, want web42's spam", bars)
	}
	body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
	for _, w := range []string{"spam wave of Monday", "Unlock", "Top recipient domains", "Usage against thresholds"} {
		if !strings.Contains(body, w) {
			t.Errorf("profile lacks %q", w)
		}
	}
	do("profile shot", pageShot(dir, "identity"))

	// An automatic lock's profile shows the counts that led to it.
	do("automatic lock", chromedp.Navigate(base+"/identities/out.example.net/spammer"), chromedp.WaitVisible(chromedp.ID("identity-chart")))
	body, _ = chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
	if !strings.Contains(body, "Counts that led to the lock") || !strings.Contains(body, "automatic") {
		t.Errorf("spammer's profile lacks the counts that led to its automatic lock:\n%s", body)
	}
	if links := eval("evidence", `document.querySelectorAll('ul.evidence a[href^="/log/"]').length`); links.(float64) != 5 {
		t.Errorf("evidence: %v links to messages, want spammer's 5", links)
	}
	do("automatic lock shot", pageShot(dir, "identity-autolock"))
	do("profile on a phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateTouch), chromedp.Sleep(150*time.Millisecond))
	if fits := eval("profile width", `document.documentElement.scrollWidth <= 390`); fits != true {
		t.Error("identity profile at 390 px: the page scrolls sideways")
	}
	do("desktop again", chromedp.EmulateViewport(1280, 900))

	// The export of the log's search, fetched in the session.
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`fetch("/log.csv?status=quarantined").then(r => r.text())`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("fetching the CSV export: %v", err)
	}
	rows, err := csv.NewReader(strings.NewReader(text)).ReadAll()
	if err != nil || len(rows) < 2 {
		t.Fatalf("CSV: %d rows, %v", len(rows), err)
	}
	if rows[0][0] != "time" || rows[0][8] != "identity" {
		t.Errorf("CSV header %q", rows[0])
	}
	do("log again", chromedp.Navigate(base+"/log?status=quarantined&limit=200"), chromedp.WaitVisible(chromedp.CSS("table.log")))
	onPage := eval("rows on the page", `document.querySelectorAll('table.log tbody input[name=id]').length`)
	web42 := 0
	for _, r := range rows[1:] {
		if r[2] != "quarantined" {
			t.Errorf("CSV row of status %q under the quarantined filter", r[2])
		}
		if r[8] == "web42" {
			web42++
		}
	}
	if float64(len(rows)-1) != onPage.(float64) || web42 != 3 {
		t.Errorf("CSV: %d rows (%d of web42), want the page's %v (3 of web42)", len(rows)-1, web42, onPage)
	}
}
