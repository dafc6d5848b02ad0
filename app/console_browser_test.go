package app

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/outguard/outguard/admin/console"
	"github.com/outguard/outguard/admin/ops"
	"github.com/outguard/outguard/identity"
	"golang.org/x/crypto/bcrypt"
)

const consoleToken = "console-browser-token"

// chromiumPath finds headless Chromium, skipping the test (or failing it
// under OUTGUARD_REQUIRE_EXTERNAL) when there is none.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Getenv("OUTGUARD_REQUIRE_EXTERNAL") != "" {
		t.Fatal("chromium not found and OUTGUARD_REQUIRE_EXTERNAL is set: apt-get install -y chromium chromium-driver")
	}
	t.Skip("SKIPPED: chromium not found (apt-get install -y chromium chromium-driver); set OUTGUARD_REQUIRE_EXTERNAL to make this a failure")
	return ""
}

// mountConsole gives the running App a token and, unless the App already
// serves one, a console at "/" of its admin listener.
func mountConsole(t *testing.T, e *env) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(consoleToken), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.app.ops.SetTokens([]ops.Token{{Name: "ops", Hash: string(h), Scope: ops.ScopeAll}}); err != nil {
		t.Fatal(err)
	}
	mux := e.app.admin.Handler().(*http.ServeMux)
	if _, pattern := mux.Handler(httptest.NewRequest(http.MethodGet, "/login", nil)); pattern == "" {
		c, err := console.New(console.Options{Ops: e.app.ops})
		if err != nil {
			t.Fatal(err)
		}
		e.app.admin.Handle("/", c)
	}
	return "http://" + e.app.AdminAddr().String()
}

// seedTraffic relays a few hours of mail over SMTP: clean mail of several
// identities, spam of web42, and five spam of spammer (locked
// automatically).
func seedTraffic(t *testing.T, e *env) {
	t.Helper()
	for round := 0; round < 6; round++ {
		for i := 0; i <= round%3+1; i++ {
			ident := fmt.Sprintf("web%d", i+1)
			if err := e.send("shop@out.example.net", testMessage(ident, fmt.Sprintf("Order %d-%d confirmation", round, i), "Thanks for your order.")); err != nil {
				t.Fatalf("clean mail: %v", err)
			}
		}
		if round%2 == 0 {
			if err := e.send("shop@out.example.net", testMessage("web42", fmt.Sprintf("Cheap pills %d", round), gtube)); replyOf(err) == nil || replyOf(err).Code != 550 {
				t.Fatalf("spam of web42: got %v, want 550", err)
			}
		}
		e.clock.Advance(25 * time.Minute)
	}
	if err := e.send("shop@out.example.net", testMessage("web3", `<script>alert(1)</script><img src=x onerror=alert(2)>`, gtube)); replyOf(err) == nil {
		t.Fatalf("markup spam: got %v, want a refusal", err)
	}
	for i := 0; i < 5; i++ {
		e.send("shop@out.example.net", testMessage("spammer", fmt.Sprintf("Win a prize %d", i), gtube))
		e.clock.Advance(time.Minute)
	}
	e.flush()
	if _, err := e.app.ids.Get(context.Background(), identity.IdentityTarget("out.example.net", "spammer")); err != nil {
		t.Fatalf("spammer not locked automatically: %v", err)
	}
}

// shot saves a full-page screenshot of the current page at desktop and
// phone width.
func shot(dir, name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for _, v := range []struct {
			suffix string
			w, h   int64
		}{{"1280", 1280, 900}, {"390", 390, 844}} {
			if _, err := chromedp.EmulateViewport(v.w, v.h)(ctx, t); err != nil {
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

func TestConsoleInBrowser(t *testing.T) {
	chrome := chromiumPath(t)
	e := newEnv(t, "", "")
	base := mountConsole(t, e)
	seedTraffic(t, e)
	dir := screenshotDir(t, "")

	br := newBrowser(t, chrome, 3*time.Minute)
	ctx, do := br.ctx, br.do
	text := br.text
	location := func() string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	// Sign in.
	do("sign-in page", chromedp.Navigate(base+"/log"), chromedp.WaitVisible(chromedp.ID("name")), shot(dir, "login"),
		chromedp.Click(chromedp.CSS("details.login-token summary")), chromedp.WaitVisible(chromedp.ID("token")))
	do("sign in", chromedp.SendKeys(chromedp.ID("token"), consoleToken), chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.CSS("form.filters")))
	if h := text("h1"); h != "Outgoing log" {
		t.Fatalf("after sign-in: got page %q, want the log asked for", h)
	}

	// Overview with its charts.
	do("overview", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("svg.chart")), shot(dir, "overview"))
	bars, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("svg.chart rect[class^=c-]").length`))
	if err != nil || bars < 5 {
		t.Errorf("overview: got %d chart bars (%v), want the seeded traffic", bars, err)
	}

	// Filter the log to quarantined mail.
	do("filter", chromedp.Navigate(base+"/log"), chromedp.WaitVisible(chromedp.CSS("form.filters")),
		chromedp.Click(chromedp.CSS(`input[name=status][value=quarantined]`)),
		// Mark the unfiltered page so that the wait below sees the new one.
		chromedp.SetAttributeValue(chromedp.CSS("body"), "data-old", "1"),
		chromedp.Click(chromedp.CSS(`form.filters button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`body:not([data-old]) table.log`)))
	statuses, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("table.log tbody tr td:nth-child(9)")).map(td => td.textContent.trim())`))
	if err != nil || len(statuses) < 4 {
		t.Fatalf("quarantined filter: got %d rows (%v), want the seeded spam", len(statuses), err)
	}
	for _, s := range statuses {
		if !strings.Contains(s, "quarantined") {
			t.Errorf("quarantined filter: got a row with status %q", s)
		}
	}
	if loc := location(); !strings.Contains(loc, "status=quarantined") {
		t.Errorf("filter not in the URL: %s", loc)
	}
	markup, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`Array.from(document.querySelectorAll("td.subject")).some(td => td.textContent.includes("<script>alert(1)</script>")) && document.querySelectorAll("td.subject img, td.subject script").length === 0`))
	if err != nil || !markup {
		t.Errorf("the subject with markup is not shown as text (%v)", err)
	}
	do("log shot", shot(dir, "log"))

	// Add an identity rule with the rule builder.
	do("add rule", chromedp.WaitNotVisible(chromedp.ID("f-identity")), chromedp.SetValue(chromedp.ID("add-rule-field"), "identity"),
		chromedp.Click(chromedp.CSS(".add-rule button")), chromedp.WaitVisible(chromedp.ID("f-identity")),
		chromedp.SendKeys(chromedp.ID("f-identity"), "web42"), shot(dir, "log-rules"),
		chromedp.SetAttributeValue(chromedp.CSS("body"), "data-old", "1"),
		chromedp.Click(chromedp.CSS(`form.filters button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`body:not([data-old]) table.log`)))
	idents, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("table.log tbody tr td:nth-child(5)")).map(td => td.textContent.trim())`))
	if err != nil || len(idents) != 3 {
		t.Fatalf("identity rule: got %q (%v), want web42's 3 spam", idents, err)
	}
	for _, s := range idents {
		if s != "web42" {
			t.Errorf("identity rule: got a row of %q", s)
		}
	}

	// View one message.
	logURL := location()
	do("message", chromedp.Click(chromedp.CSS(`table.log tbody tr td:nth-child(3) a`)), chromedp.WaitVisible(chromedp.CSS(`pre.body`)), shot(dir, "message"),
		chromedp.Navigate(logURL), chromedp.WaitVisible(chromedp.CSS(`table.log`)))

	// Lock web42 from its row, with a reason.
	web42 := `table.log tbody tr:has(a[href*="kind=identity"][href*="name=web42"])`
	do("row menu", chromedp.Click(chromedp.CSS(web42+" summary")), chromedp.WaitVisible(chromedp.CSS(web42+` a[href*="kind=identity"]`)), shot(dir, "log-menu"))
	do("lock link", chromedp.Click(chromedp.CSS(web42+` a[href*="kind=identity"]`)), chromedp.WaitVisible(chromedp.ID("reason")),
		shot(dir, "lock-form"))
	do("lock", chromedp.SendKeys(chromedp.ID("reason"), "spam run seen in the log"), chromedp.SendKeys(chromedp.ID("duration"), "2h"),
		chromedp.Click(chromedp.CSS(`form[action="/lock"] button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS(`p.flash`)))
	if f := text("p.flash"); !strings.Contains(f, "Locked identity web42") {
		t.Fatalf("after locking: got notice %q", f)
	}
	if loc := location(); !strings.Contains(loc, "status=quarantined") {
		t.Errorf("after locking: got %s, want back to the filtered log", loc)
	}
	l, err := e.app.ids.Get(context.Background(), identity.IdentityTarget("out.example.net", "web42"))
	if err != nil || !l.Active(e.clock.Now()) || l.Actor != "ops" || !strings.Contains(l.Reason, "spam run seen in the log") {
		t.Fatalf("lock after the form: %+v, %v", l, err)
	}

	// Refused over SMTP.
	if err := e.send("shop@out.example.net", testMessage("web42", "after the lock", "hello")); replyOf(err) == nil || replyOf(err).Code/100 != 5 {
		t.Errorf("web42 after the lock: got %v, want a permanent refusal", err)
	}

	// Locked in the report; unlock it with the in-place toggle.
	row := `tr:has(input[name=name][value="web42"])`
	do("report", chromedp.Navigate(base+"/reports?group_by=identity&classification=all&since=24h"), chromedp.WaitVisible(chromedp.CSS(row)))
	if s := text(row + " .lock-state"); !strings.Contains(s, "Locked") || strings.Contains(s, "Not") {
		t.Fatalf("report: web42 shows %q, want Locked", s)
	}
	do("report shot", shot(dir, "reports"))
	do("toggle", chromedp.SendKeys(chromedp.CSS(row+" input[name=reason]"), "false positive, customer fixed"),
		chromedp.Click(chromedp.CSS(row+" button[type=submit]")))
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector('tr:has(input[name=name][value="web42"]) .toggle-msg').textContent.includes("Unlocked")`,
		chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("waiting for the toggle: %v; row says %q", err, text(row))
	}
	if s := text(row + " .lock-state"); !strings.Contains(s, "Not locked") {
		t.Errorf("after the toggle: row shows %q, want Not locked", s)
	}
	if loc := location(); !strings.Contains(loc, "/reports?") {
		t.Errorf("the toggle left the page: %s", loc)
	}
	do("toggled shot", shot(dir, "reports-toggled"))
	if l, _ := e.app.ids.Get(context.Background(), identity.IdentityTarget("out.example.net", "web42")); l.Active(e.clock.Now()) {
		t.Errorf("web42 still locked after the toggle")
	}
	if err := e.send("shop@out.example.net", testMessage("web42", "after the unlock", "hello")); err != nil {
		t.Errorf("web42 after the unlock: %v", err)
	}

	// Locks, a lock's detail with its evidence, and the audit trail.
	do("locks", chromedp.Navigate(base+"/locks"), chromedp.WaitVisible(chromedp.CSS(`table.data`)), shot(dir, "locks"))
	do("lock detail", chromedp.Navigate(base+"/locks/identity/out.example.net/spammer"), chromedp.WaitVisible(chromedp.CSS(`table.data`)), shot(dir, "lock-detail"))
	do("usage", chromedp.Navigate(base+"/locks/identity/out.example.net/web3"), chromedp.WaitVisible(chromedp.CSS(`meter`)), shot(dir, "usage"))
	do("back to the lock", chromedp.Navigate(base+"/locks/identity/out.example.net/spammer"), chromedp.WaitVisible(chromedp.CSS(`table.data`)))
	evidence, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('a[href^="/log/"]').length`))
	if err != nil || evidence < 5 {
		t.Errorf("lock detail: got %d links to transactions (%v), want the 5 of the evidence", evidence, err)
	}
	do("audit", chromedp.Navigate(base+"/audit"), chromedp.WaitVisible(chromedp.CSS(`table.data`)), shot(dir, "audit"))
	audit := text(`table.data tbody`)
	for _, want := range []string{"unlock", "false positive, customer fixed", "lock", "spam run seen in the log", "ops"} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit page lacks %q", want)
		}
	}
}
