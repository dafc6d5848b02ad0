package console

import (
	"encoding/csv"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/outguard/outguard/admin/ops"
	"github.com/outguard/outguard/feedback"
	"github.com/outguard/outguard/identity"
)

const alice = "alice@customer.example"

// TestIdentityPage: the profile shows the chart, the usage, the
// recipient domains and the complaints; its lock form locks (with the
// reason and duration) and its unlock form unlocks; another domain's
// token is refused.
func TestIdentityPage(t *testing.T) {
	e := newConsoleEnv(t)
	e.Feedback.List = []feedback.Result{{ID: "fb1", Domain: domOut, Identity: alice, Reporter: "big-isp", TxID: e.SpamOut, Counted: true}}
	b := e.browser()
	b.signIn(tokOut)
	page := identityURL(domOut, alice)
	code, body, _ := b.get(page)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d", page, code)
	}
	for _, w := range []string{`id="identity-chart"`, `class="c-spam"`, "1 message in the period", "1 / 5", "example.org",
		"big-isp", "/log/" + e.SpamOut, "webhost1", `id="lock-form"`, "Never locked"} {
		if !strings.Contains(body, w) {
			t.Errorf("profile lacks %q", w)
		}
	}
	if code, _, _ := b.get(page + "?since=7d"); code != http.StatusOK {
		t.Errorf("7 days: %d", code)
	}
	if code, _, _ := b.get(page + "?since=1y"); code != http.StatusBadRequest {
		t.Errorf("a year: %d, want 400", code)
	}
	code, _, resp := b.post("/lock", url.Values{"csrf": {b.csrf}, "kind": {"identity"}, "domain": {domOut}, "name": {alice},
		"reason": {"spam run"}, "duration": {"7d"}, "back": {page}})
	if code != http.StatusSeeOther || resp.Header.Get("Location") != page {
		t.Fatalf("lock: %d to %q, want 303 to the profile", code, resp.Header.Get("Location"))
	}
	_, body, _ = b.get(page)
	for _, w := range []string{`id="unlock-form"`, "spam run", "locked"} {
		if !strings.Contains(body, w) {
			t.Errorf("locked profile lacks %q", w)
		}
	}
	b.post("/unlock", url.Values{"csrf": {b.csrf}, "kind": {"identity"}, "domain": {domOut}, "name": {alice}, "reason": {"cleaned"}, "back": {page}})
	if e.isLocked(identity.KindIdentity, domOut, alice) {
		t.Error("still locked after the profile's unlock")
	}

	o := e.browser()
	o.signIn(tokOther)
	if code, body, _ := o.get(page); code != http.StatusForbidden || strings.Contains(body, "identity-chart") || strings.Contains(body, "big-isp") {
		t.Errorf("another domain's token: %d, want 403 without the profile", code)
	}
}

// TestLinksToIdentityPage: the log, the locks, the reports and the lock
// form name identities with links to their profile.
func TestLinksToIdentityPage(t *testing.T) {
	e := newConsoleEnv(t)
	b := e.browser()
	b.signIn(tokAll)
	b.post("/lock", url.Values{"csrf": {b.csrf}, "kind": {"identity"}, "domain": {domOut}, "name": {alice}, "reason": {"spam"}})
	link := `href="` + identityURL(domOut, alice) + `"`
	for _, p := range []string{"/log", "/log/" + e.SpamOut, "/locks", "/locks/identity/" + domOut + "/" + alice,
		"/reports?group_by=identity&classification=rejected&since=24h", "/", "/audit"} {
		if _, body, _ := b.get(p); !strings.Contains(body, link) {
			t.Errorf("%s lacks a link to the identity's profile", p)
		}
	}
}

// TestLogPageRows: identity and subject are links, a locked identity
// has a badge, addresses break only after their @, and the log filters
// by Message-ID and client IP.
func TestLogPageRows(t *testing.T) {
	e := newConsoleEnv(t)
	b := e.browser()
	b.signIn(tokAll)
	_, body, _ := b.get("/log")
	if strings.Contains(body, "locked-badge") {
		t.Error("a badge before any lock")
	}
	for _, w := range []string{`<a href="/log/` + e.SpamOut + `">Cheap pills</a>`, `alice@<wbr>customer.example`, `bob@<wbr>example.org`} {
		if !strings.Contains(body, w) {
			t.Errorf("log lacks %q", w)
		}
	}
	b.post("/lock", url.Values{"csrf": {b.csrf}, "kind": {"identity"}, "domain": {domOut}, "name": {alice}, "reason": {"spam"}})
	_, body, _ = b.get("/log")
	if strings.Count(body, "locked-badge") != 1 || !strings.Contains(body, "is-locked") {
		t.Errorf("want one locked badge, got %d", strings.Count(body, "locked-badge"))
	}
	_, body, _ = b.get("/log?message_id=" + url.QueryEscape("<Invoice@customer.example>"))
	if !strings.Contains(body, "Invoice") || strings.Contains(body, "Cheap pills") {
		t.Error("Message-ID filter: want only the invoice")
	}
	if _, body, _ = b.get("/log?client_ip=192.0.2.99"); !strings.Contains(body, "No message matches") {
		t.Error("client IP filter: another address matched")
	}
	if _, body, _ = b.get("/log?client_ip=192.0.2.10"); !strings.Contains(body, "Cheap pills") {
		t.Error("client IP filter: the address did not match")
	}
	if code, _, _ := b.get("/log?client_ip=999.1"); code != http.StatusBadRequest {
		t.Errorf("bad client IP: %d, want 400", code)
	}
}

// TestLogBulk: bulk actions need the CSRF token and a reason, act through
// the operations layer (scope, one audit entry per item naming the
// reason).
func TestLogBulk(t *testing.T) {
	e := newConsoleEnv(t)
	b := e.browser()
	b.signIn(tokOut)
	form := url.Values{"action": {"lock"}, "id": {e.SpamOut, e.CleanOut, e.SpamOther}, "reason": {"spam wave"}, "duration": {"24h"}, "back": {"/log"}}
	if code, _, _ := b.post("/log/bulk", form); code != http.StatusForbidden {
		t.Fatalf("without CSRF: %d, want 403", code)
	}
	noReason := url.Values{"csrf": {b.csrf}, "action": {"lock"}, "id": {e.SpamOut}}
	if code, _, _ := b.post("/log/bulk", noReason); code != http.StatusSeeOther || e.isLocked(identity.KindIdentity, domOut, alice) {
		t.Fatalf("without reason: %d; want a redirect and no lock", code)
	}
	audit0 := e.AuditCount()
	form.Set("csrf", b.csrf)
	if code, _, _ := b.post("/log/bulk", form); code != http.StatusSeeOther {
		t.Fatalf("bulk lock: %d", code)
	}
	if !e.isLocked(identity.KindIdentity, domOut, alice) || !e.isLocked(identity.KindIdentity, domOut, "bob@customer.example") ||
		e.isLocked(identity.KindIdentity, domOther, "mallory@other.example") {
		t.Error("want alice and bob locked, mallory (another domain) not")
	}
	_, body, _ := b.get("/log")
	if !strings.Contains(body, "Locked 2 identities") || !strings.Contains(body, "Failed") {
		t.Errorf("flash: want 2 locked and one failure")
	}
	entries := e.AuditEntries(ops.AuditFilter{})
	if len(entries)-audit0 != 2 {
		t.Fatalf("%d audit entries, want 2", len(entries)-audit0)
	}
	for _, a := range entries[:2] {
		if a.Action != ops.AuditLock || a.Reason != "spam wave" || !strings.Contains(a.Detail, "console") {
			t.Errorf("audit entry %+v: want a console lock naming the reason", a)
		}
	}
	rel := url.Values{"csrf": {b.csrf}, "action": {"release"}, "id": {e.SpamOut}, "reason": {"false positive"}}
	if code, _, _ := b.post("/log/bulk", rel); code != http.StatusSeeOther || e.Deliver.Count() != 1 {
		t.Fatalf("bulk release: %d, %d delivered", code, e.Deliver.Count())
	}
	if a := e.AuditEntries(ops.AuditFilter{})[0]; a.Action != ops.AuditRelease || a.Reason != "false positive" {
		t.Errorf("release audit %+v", a)
	}
}

// TestLogCSV: the export has a header row, one row per match of the same
// rules, quotes what needs it, defuses formulas and keeps to the scope.
func TestLogCSV(t *testing.T) {
	e := newConsoleEnv(t)
	b := e.browser()
	b.signIn(tokOut)
	code, body, resp := b.get("/log.csv")
	if code != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("GET /log.csv: %d %q", code, resp.Header.Get("Content-Type"))
	}
	if !strings.HasSuffix(body, "\r\n") {
		t.Error("CSV lines do not end in CRLF (RFC 4180)")
	}
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || strings.Join(rows[0], ",") != strings.Join(csvHeader, ",") {
		t.Fatalf("rows %q: want the header and DomOut's two messages", rows)
	}
	ids := map[string]bool{rows[1][1]: true, rows[2][1]: true}
	if !ids[e.SpamOut] || !ids[e.CleanOut] || strings.Contains(body, "mallory") {
		t.Errorf("rows %q: want DomOut's messages only", rows)
	}
	_, body, _ = b.get("/log.csv?status=quarantined")
	rows, _ = csv.NewReader(strings.NewReader(body)).ReadAll()
	if len(rows) != 2 || rows[1][1] != e.SpamOut || rows[1][11] != "Cheap pills" || rows[1][13] != "192.0.2.10" {
		t.Errorf("filtered rows %q", rows)
	}
	if code, _, _ := b.get("/log.csv?client_ip=nope"); code != http.StatusBadRequest {
		t.Errorf("bad filter: %d, want 400", code)
	}
}

func TestCSVRowQuoting(t *testing.T) {
	e := newConsoleEnv(t)
	rec, err := e.Store.Get(e.SpamOut)
	if err != nil {
		t.Fatal(err)
	}
	rec.Subject = `=HYPERLINK("http://x"), "quoted"`
	var sb strings.Builder
	w := csv.NewWriter(&sb)
	w.Write(csvRow(rec))
	w.Flush()
	if !strings.Contains(sb.String(), `"'=HYPERLINK(""http://x""), ""quoted"""`) {
		t.Errorf("row %s: want the formula defused and the quotes doubled", sb.String())
	}
}

func TestNiceMaxDividesInFour(t *testing.T) {
	for _, v := range []int64{0, 1, 4, 5, 9, 13, 17, 21, 41, 99, 101, 333, 4999, 123456} {
		top := niceMax(v)
		if top < v || top%4 != 0 || top > 2*v+8 {
			t.Errorf("niceMax(%d) = %d: want a multiple of 4, at least %[1]d, not far above", v, top)
		}
	}
}
