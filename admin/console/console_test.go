package console

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/outguard/outguard/admin/apiv1"
	"github.com/outguard/outguard/admin/internal/admintest"
	"github.com/outguard/outguard/admin/ops"
	"github.com/outguard/outguard/identity"
	"github.com/outguard/outguard/quarantine"
)

// reInline finds inline script and event handler attributes.

func TestConsoleLockFromRowAndReportToggle(t *testing.T) {
	e := newConsoleEnv(t)
	b := e.browser()
	b.signIn(tokAll)
	target := url.Values{"kind": {"identity"}, "domain": {domOut}, "name": {"alice@customer.example"}}
	code, body, _ := b.get("/lock?" + target.Encode() + "&tx=" + e.SpamOut + "&back=%2Flog")
	if code != http.StatusOK || !strings.Contains(body, `name="reason"`) {
		t.Fatalf("confirmation page: got %d", code)
	}
	t.Run("reason required", func(t *testing.T) {
		f := url.Values{"csrf": {b.csrf}, "tx": {e.SpamOut}}
		for k, v := range target {
			f[k] = v
		}
		code, body, _ := b.post("/lock", f)
		if code != http.StatusBadRequest || !strings.Contains(body, "reason is required") || e.LockCount() != 0 {
			t.Errorf("got %d, want 400 asking for a reason and no lock", code)
		}
	})
	f := url.Values{"csrf": {b.csrf}, "tx": {e.SpamOut}, "reason": {"spam run"}, "duration": {"2h"}, "back": {"/log?status=quarantined"}}
	for k, v := range target {
		f[k] = v
	}
	code, _, resp := b.post("/lock", f)
	if code != http.StatusSeeOther || resp.Header.Get("Location") != "/log?status=quarantined" {
		t.Fatalf("got %d to %q, want 303 back to the log", code, resp.Header.Get("Location"))
	}
	l, err := e.Locks.Get(context.Background(), identity.IdentityTarget(domOut, "alice@customer.example"))
	if err != nil || l.Actor != "root" || !strings.Contains(l.Reason, e.SpamOut) || l.Expires.Sub(l.Start) != 2*time.Hour {
		t.Fatalf("got lock %+v (%v), want root's 2h lock naming the message", l, err)
	}
	_, body, _ = b.get("/log?status=quarantined")
	if !strings.Contains(body, "Locked identity alice@customer.example") {
		t.Errorf("no notice after the lock")
	}
	_, body, _ = b.get("/reports?group_by=identity&classification=all&since=24h")
	if !strings.Contains(body, "Locked</span>") {
		t.Errorf("report does not show the lock")
	}
	// The script's toggle: JSON in, JSON out.
	toggle := url.Values{"action": {"unlock"}, "kind": {"identity"}, "domain": {domOut}, "name": {"alice@customer.example"}, "reason": {"cleaned up"}}
	code, body, _ = b.post("/reports/toggle", toggle, "Accept: application/json", "X-CSRF-Token: "+b.csrf, "Origin: "+b.base)
	var res toggleResult
	if err := json.Unmarshal([]byte(body), &res); code != http.StatusOK || err != nil || res.Locked {
		t.Fatalf("unlock toggle: got %d %s, want 200 locked=false", code, body)
	}
	if e.isLocked(identity.KindIdentity, domOut, "alice@customer.example") {
		t.Errorf("still locked after the toggle")
	}
	// Without script: a plain form post redirects back.
	toggle.Set("action", "lock")
	toggle.Set("csrf", b.csrf)
	toggle.Set("back", "/reports?group_by=user")
	code, _, resp = b.post("/reports/toggle", toggle)
	if code != http.StatusSeeOther || resp.Header.Get("Location") != "/reports?group_by=user" || !e.isLocked(identity.KindIdentity, domOut, "alice@customer.example") {
		t.Errorf("form toggle: got %d to %q", code, resp.Header.Get("Location"))
	}
	entries := e.AuditEntries(ops.AuditFilter{})
	if len(entries) != 3 || entries[0].Action != ops.AuditLock || entries[1].Action != ops.AuditUnlock || entries[1].Reason != "cleaned up" || entries[2].Actor != "root" {
		t.Errorf("got audit %+v, want lock, unlock, lock by root", entries)
	}
	_, body, _ = b.get("/audit")
	if !strings.Contains(body, "cleaned up") {
		t.Errorf("audit page lacks the unlock")
	}
}

func TestConsoleReleaseAndDelete(t *testing.T) {
	e := newConsoleEnv(t)
	b := e.browser()
	b.signIn(tokOut)
	code, _, _ := b.post("/log/"+e.SpamOut+"/release", url.Values{"csrf": {b.csrf}, "back": {"/log"}, "reason": {"false positive"}})
	if code != http.StatusSeeOther || e.Deliver.Count() != 1 {
		t.Fatalf("release: got %d and %d deliveries, want 303 and 1", code, e.Deliver.Count())
	}
	code, _, _ = b.post("/log/"+e.SpamOut+"/delete", url.Values{"csrf": {b.csrf}, "back": {"https://evil.example/"}})
	if code != http.StatusSeeOther {
		t.Fatalf("delete: got %d", code)
	}
	if _, err := e.Store.Raw(e.SpamOut, quarantine.Actor{Name: "test"}); err == nil {
		t.Errorf("content still stored after delete")
	}
	code, body, _ := b.post("/log/"+e.SpamOut+"/delete", url.Values{"csrf": {b.csrf}})
	if code != http.StatusGone || !strings.Contains(body, "no longer stored") {
		t.Errorf("second delete: got %d, want 410", code)
	}
	entries := e.AuditEntries(ops.AuditFilter{})
	if len(entries) != 2 || entries[0].Action != ops.AuditDelete || entries[1].Action != ops.AuditRelease || entries[0].Actor != "outtok" {
		t.Errorf("got audit %+v", entries)
	}
}

func TestConsolePages(t *testing.T) {
	e := newConsoleEnv(t)
	b := e.browser()
	b.signIn(tokAll)
	cases := []struct {
		name, path string
		code       int
		want       []string
	}{
		{"overview charts", "/", 200, []string{"<svg class=\"chart\"", "<rect", "alice@customer.example"}},
		{"overview 7d", "/?range=7d", 200, []string{"<svg"}},
		{"overview bad range", "/?range=1y", 400, []string{"range"}},
		{"log filtered to quarantined", "/log?status=quarantined", 200, []string{"Cheap pills", "Your bank"}},
		{"log filter excludes", "/log?status=accepted", 200, []string{"Invoice"}},
		{"log bad status", "/log?status=bogus", 400, []string{"status &#34;bogus&#34;"}},
		{"log paging", "/log?limit=1", 200, []string{"Next page"}},
		{"message view", "/log/" + e.SpamOut, 200, []string{"Buy now!", "builtin:TEST", "Download raw"}},
		{"message not quarantined", "/log/" + e.CleanOut, 200, []string{"not quarantined"}},
		{"message bad id", "/log/nope", 404, nil},
		{"report", "/reports?group_by=identity&classification=rejected&since=24h", 200, []string{"alice@customer.example", "Not locked"}},
		{"report bad group", "/reports?group_by=planet", 400, []string{"Choose a grouping"}},
		{"identity usage", "/locks/identity/" + domOut + "/alice@customer.example", 200, []string{"Usage against thresholds", "spam", "1 / 5"}},
		{"unknown page", "/nope", 404, nil},
		{"identity with a slash", "/locks/identity/" + domOut + "/" + url.PathEscape("a/b c"), 200, []string{"a/b c", "Never locked"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body, _ := b.get(tc.path)
			if code != tc.code {
				t.Fatalf("got %d, want %d", code, tc.code)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
		})
	}
	if _, body, _ := b.get("/log?status=accepted"); strings.Contains(body, "Cheap pills") {
		t.Errorf("status filter let a quarantined message through")
	}
	code, _, resp := b.get("/log/" + e.SpamOut + "/raw")
	if code != 200 || resp.Header.Get("Content-Type") != "message/rfc822" {
		t.Errorf("raw: got %d %q", code, resp.Header.Get("Content-Type"))
	}
}

func TestLocalPath(t *testing.T) {
	cases := []struct{ in, want string }{
		{"/log?status=quarantined", "/log?status=quarantined"},
		{"", "/"},
		{"//evil.example/", "/"},
		{"https://evil.example/", "/"},
		{"/\\evil.example", "/"},
		{"log", "/"},
		{"/ok\r\nSet-Cookie: x", "/"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			if got := localPath(tc.in, "/"); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestIDSegments(t *testing.T) {
	id := quarantine.NewID(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	got := idSegments("spam run (message " + id + ")")
	if len(got) != 3 || got[1].Link != "/log/"+id || got[0].Text != "spam run (message " || got[2].Text != ")" {
		t.Errorf("got %+v", got)
	}
	if got := idSegments("x" + id); len(got) != 1 || got[0].Link != "" {
		t.Errorf("got %+v, want no link inside a longer word", got)
	}
	got = idSegments("botnet (campaign 06H2367D02KXHQP1), message " + id)
	if len(got) != 4 || got[0].Text != "botnet (campaign " || got[1].Link != "/campaigns/06H2367D02KXHQP1" || got[3].Link != "/log/"+id {
		t.Errorf("campaign: got %+v", got)
	}
	if got := idSegments("campaign 06H2367D02KXHQP1X"); len(got) != 1 || got[0].Link != "" {
		t.Errorf("got %+v, want no link for a longer word", got)
	}
}

func FuzzIDSegments(f *testing.F) {
	f.Add("spam run (message 01KQ0000000000000000000000)")
	f.Add("")
	f.Add("<script>01KQ0000000000000000000000</script>")
	f.Add("botnet (campaign 06H2367D02KXHQP1)")
	f.Fuzz(func(t *testing.T, s string) {
		var b strings.Builder
		for _, seg := range idSegments(s) {
			if seg.Link != "" && seg.Link != "/log/"+seg.Text && seg.Link != "/campaigns/"+seg.Text {
				t.Fatalf("link %q for %q", seg.Link, seg.Text)
			}
			b.WriteString(seg.Text)
		}
		if seg := idSegments(s); len(seg) > 0 && !strings.EqualFold(b.String(), s) {
			t.Fatalf("segments %q of %q lose text", b.String(), s)
		}
	})
}

func FuzzLocalPath(f *testing.F) {
	for _, s := range []string{"/log", "//x", "/\\x", "https://x/", "/a?b=c#d", "/%2F%2Fx"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := localPath(s, "/")
		u, err := url.Parse(got)
		if !strings.HasPrefix(got, "/") || strings.HasPrefix(got, "//") || err != nil || u.Host != "" || strings.ContainsAny(got, "\r\n\\") {
			t.Fatalf("localPath(%q) = %q leaves the site", s, got)
		}
	})
}

func BenchmarkConsoleLogPage(b *testing.B) {
	e := admintest.New(b, nil)
	c, err := New(Options{Ops: e.Ops})
	if err != nil {
		b.Fatal(err)
	}
	s, err := c.newSession(context.Background(), ops.Principal{Name: "root"}, newCredential(false, admintest.Hashes()[0], ops.ScopeAll))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		r := httptest.NewRequest(http.MethodGet, "/log?status=quarantined", nil)
		r.AddCookie(&http.Cookie{Name: sessionCookie, Value: s.id})
		w := httptest.NewRecorder()
		c.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("got %d", w.Code)
		}
	}
}

func FuzzLogFilter(f *testing.F) {
	for _, s := range []string{"status=quarantined&verdict=spam", "since=7d&limit=10", "from=2026-03-01&to=2026-03-02", "status=bogus&limit=-1", "since=99999999d", "subject=%3Cscript%3E"} {
		f.Add(s)
	}
	c := &Console{ops: admintest.New(f, nil).Ops}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		_, q, err := c.parseLogFilter(v)
		if err == nil && (q.Limit < 1 || q.Limit > quarantine.MaxLimit) {
			t.Fatalf("limit %d out of range", q.Limit)
		}
		for _, s := range []string{q.User, q.Domain, q.Identity, q.Sender, q.Recipient, q.Subject, q.Cursor} {
			if len(s) > maxFieldLength {
				t.Fatalf("unbounded field of %d bytes", len(s))
			}
		}
	})
}

func TestConsoleConfirmSpamAndReleaseAsNotSpam(t *testing.T) {
	e := newConsoleEnvTeacher(t)
	ctx := context.Background()
	// A quarantined message as the content model judged it.
	rec := admintest.Record(e.Clock.Now().Add(-30*time.Minute), domOut, "webhost1", "carol@customer.example", quarantine.StatusQuarantined, quarantine.VerdictSpam, "Invoice overdue")
	rec.Band, rec.Model = quarantine.BandSpam, "seed-test"
	rec.Reasons = []string{"builtin:CONTENT_MODEL(6.2)", "builtin:CONTENT[w:invoice](0.41)"}
	if err := e.Store.Quarantine(ctx, rec, []byte(admintest.SampleRaw)); err != nil {
		t.Fatal(err)
	}
	page := "/log/" + rec.ID
	b := e.browser()
	b.signIn(tokOut)

	code, body, _ := b.get(page)
	for _, want := range []string{"Release and don't block this kind again</button>", ">Confirm spam</button>", `action="` + page + `/confirm-spam"`,
		`<span class="badge b-spam">`, `<span class="mono">seed-test</span>`, "builtin:CONTENT[w:invoice](0.41)", "not taught to the content model"} {
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("message view (%d) lacks %q", code, want)
		}
	}

	code, _, resp := b.post(page+"/confirm-spam", url.Values{"csrf": {b.csrf}})
	if code != http.StatusSeeOther || resp.Header.Get("Location") != page {
		t.Fatalf("confirm spam: got %d to %q, want 303 back to the message", code, resp.Header.Get("Location"))
	}
	if got := e.teacher.Taught(); len(got) != 1 || got[0] != (admintest.Lesson{ID: rec.ID, Spam: true}) {
		t.Fatalf("got lessons %+v, want the message as spam", got)
	}
	_, body, _ = b.get(page)
	if !strings.Contains(body, "confirmed as spam") || !strings.Contains(body, "score 1.50 → 5.50, model seed-test&#43;1") ||
		!strings.Contains(body, "<dt>Learnt</dt><dd>as spam</dd>") {
		t.Errorf("after confirming: no notice or learnt state in the view")
	}
	if strings.Contains(body, "/confirm-spam") || !strings.Contains(body, "Release and don't block this kind again") {
		t.Errorf("after confirming: want the release button and no second confirm button")
	}
	entries := e.AuditEntries(ops.AuditFilter{})
	if len(entries) != 1 || entries[0].Action != ops.AuditLearn || entries[0].Actor != "outtok" || entries[0].Target.Name != rec.ID ||
		!strings.HasSuffix(entries[0].Detail, "; console") {
		t.Errorf("got audit %+v, want outtok's learn entry from the console", entries)
	}

	// The script's JSON answer is the API's LearnResult.
	code, body, _ = b.post("/log/"+e.SpamOut+"/confirm-spam", url.Values{}, "Accept: application/json", "X-CSRF-Token: "+b.csrf, "Origin: "+b.base)
	var res apiv1.LearnResult
	if err := json.Unmarshal([]byte(body), &res); code != http.StatusOK || err != nil || res.ID != e.SpamOut || res.As != "spam" || res.After != 5.5 {
		t.Errorf("JSON confirm: got %d %s", code, body)
	}

	audits := e.AuditCount()
	for _, tc := range []struct {
		name string
		path string
		form url.Values
		code int
	}{
		{"another domain's message", "/log/" + e.SpamOther + "/confirm-spam", url.Values{"csrf": {b.csrf}}, http.StatusForbidden},
		{"no content kept", "/log/" + e.CleanOut + "/confirm-spam", url.Values{"csrf": {b.csrf}}, http.StatusConflict},
		{"no CSRF token", page + "/confirm-spam", url.Values{}, http.StatusForbidden},
		{"not a log id", "/log/nope/confirm-spam", url.Values{"csrf": {b.csrf}}, http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, _, _ := b.post(tc.path, tc.form); code != tc.code {
				t.Errorf("got %d, want %d", code, tc.code)
			}
		})
	}
	if n := len(e.teacher.Taught()); n != 2 || e.AuditCount() != audits {
		t.Errorf("refused posts taught %d lessons (want 2 in all) or were audited", n)
	}

	// Release as not spam: delivered, and taught as ham.
	code, _, _ = b.post(page+"/release", url.Values{"csrf": {b.csrf}, "back": {"/log?status=quarantined"}, "reason": {"newsletter"}, "learn": {"true"}})
	if code != http.StatusSeeOther || e.Deliver.Count() != 1 {
		t.Fatalf("release: got %d and %d deliveries, want 303 and 1", code, e.Deliver.Count())
	}
	if got := e.teacher.Taught(); len(got) != 3 || got[2] != (admintest.Lesson{ID: rec.ID, Spam: false}) {
		t.Errorf("got lessons %+v, want the release to teach ham", got)
	}
	// Released, the message is no longer in the quarantined filter.
	_, body, _ = b.get("/log?status=quarantined&status=released")
	if !strings.Contains(body, "released to the next hop; the content model learnt it as not spam (score 1.50 → -2.50") {
		t.Errorf("no release notice with what was learnt")
	}
	if !strings.Contains(body, `<div class="sub">learnt ham</div>`) || !strings.Contains(body, `<div class="sub">learnt spam</div>`) {
		t.Errorf("the log does not tell what its messages were taught as")
	}
	_, body, _ = b.get(page)
	if strings.Contains(body, "/release\"") || strings.Contains(body, "/confirm-spam\"") {
		t.Errorf("a released message still offers release or confirm spam")
	}
}

func TestConsoleLogBandColumn(t *testing.T) {
	e := newConsoleEnv(t)
	ctx := context.Background()
	suspect := admintest.Record(e.Clock.Now().Add(-20*time.Minute), domOut, "webhost1", "dave@customer.example", quarantine.StatusAccepted, quarantine.VerdictClean, "Quarterly figures")
	suspect.Band = quarantine.BandSuspect
	refused := admintest.Record(e.Clock.Now().Add(-10*time.Minute), domOut, "webhost1", "erin@customer.example", quarantine.StatusRejected, quarantine.VerdictNone, "Locked sender")
	for _, r := range []*quarantine.Record{suspect, refused} {
		if err := e.Store.AppendWait(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	b := e.browser()
	b.signIn(tokAll)
	code, body, _ := b.get("/log")
	if code != http.StatusOK || !strings.Contains(body, `<th scope="col">Band</th>`) {
		t.Fatalf("got %d without a Band column", code)
	}
	rows := regexp.MustCompile(`(?s)<tr class="st-.*?</tr>`).FindAllString(body, -1)
	bands := map[string]string{}
	reBand := regexp.MustCompile(`<td class="nowrap"[^>]*>(?:<span class="badge b-(\w+)">|(–))`)
	for _, r := range rows {
		for _, subj := range []string{"Quarterly figures", "Locked sender", "Invoice"} {
			if strings.Contains(r, ">"+subj+"<") {
				if m := reBand.FindStringSubmatch(r[strings.Index(r, "badge v-"):]); m != nil {
					bands[subj] = m[1] + m[2]
				}
			}
		}
	}
	want := map[string]string{"Quarterly figures": "suspect", "Locked sender": "–", "Invoice": "clean"}
	for subj, w := range want {
		if bands[subj] != w {
			t.Errorf("row %q: got band %q, want %q", subj, bands[subj], w)
		}
	}
	// A row's release leads to the message page's form, which asks for
	// a reason.
	if !strings.Contains(body, `#release">Release…</a>`) || strings.Contains(body, "Release as not spam") {
		t.Errorf("no release link to the message page's form")
	}
}

func TestConsoleLockFromRowTeachesSpam(t *testing.T) {
	e := newConsoleEnvTeacher(t)
	b := e.browser()
	b.signIn(tokAll)
	_, body, _ := b.get("/log?status=quarantined")
	link := lockLink("identity", domOut, "alice@customer.example", e.SpamOut, "/log?status=quarantined")
	if !strings.Contains(body, strings.ReplaceAll(link, "&", "&amp;")) {
		t.Fatalf("the row's lock link does not carry the message id")
	}
	code, body, _ := b.get(link)
	if code != http.StatusOK || !strings.Contains(body, "the content model will learn as spam") || !strings.Contains(body, `name="tx" value="`+e.SpamOut+`"`) {
		t.Fatalf("lock form: got %d without the message", code)
	}
	f := url.Values{"csrf": {b.csrf}, "kind": {"identity"}, "domain": {domOut}, "name": {"alice@customer.example"},
		"tx": {e.SpamOut}, "reason": {"spam run"}, "back": {"/log"}}
	if code, _, _ := b.post("/lock", f); code != http.StatusSeeOther || !e.isLocked(identity.KindIdentity, domOut, "alice@customer.example") {
		t.Fatalf("lock: got %d", code)
	}
	if got := e.teacher.Taught(); len(got) != 1 || got[0] != (admintest.Lesson{ID: e.SpamOut, Spam: true}) {
		t.Errorf("got lessons %+v, want the row's message as spam", got)
	}
	entries := e.AuditEntries(ops.AuditFilter{Action: ops.AuditLearn})
	if len(entries) != 1 || entries[0].Reason != "locked from this message" || entries[0].Target.Name != e.SpamOut {
		t.Errorf("got learn audit %+v", entries)
	}
	// A lock not taken from a message (the report's toggle) teaches nothing.
	toggle := url.Values{"csrf": {b.csrf}, "action": {"lock"}, "kind": {"user"}, "domain": {domOut}, "name": {"webhost2"}, "reason": {"x"}}
	if code, _, _ := b.post("/reports/toggle", toggle); code != http.StatusSeeOther || len(e.teacher.Taught()) != 1 {
		t.Errorf("toggle: got %d and %d lessons, want 303 and still 1", code, len(e.teacher.Taught()))
	}
}

func TestConsoleCampaigns(t *testing.T) {
	e, f := newConsoleEnvCampaigns(t)
	ctx := context.Background()
	if _, err := e.Locks.Lock(ctx, identity.LockRequest{Target: identity.IdentityTarget(domOut, "carol@customer.example"), Reason: "earlier", Actor: "root"}); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.signIn(tokAll)
	code, body, _ := b.get("/campaigns")
	if code != http.StatusOK || !strings.Contains(body, `href="/campaigns">Campaigns</a>`) && !strings.Contains(body, `aria-current="page">Campaigns`) {
		t.Fatalf("list: got %d, want 200 with the navigation entry", code)
	}
	ia, ic := strings.Index(body, campA), strings.Index(body, campC)
	if ia < 0 || ic < 0 || ia > ic || !strings.Contains(body, "3 campaigns on this page") {
		t.Errorf("list: want the three campaigns, most recently seen first")
	}
	if _, body, _ := b.get("/campaigns?min_identities=3&since=&identity="); !strings.Contains(body, campA) || strings.Contains(body, campB) {
		t.Errorf("filter min_identities=3: want campA only")
	}
	if code, _, _ := b.get("/campaigns?min_identities=many"); code != http.StatusBadRequest {
		t.Errorf("bad filter: got %d, want 400", code)
	}
	code, body, _ = b.get("/campaigns/" + campA)
	for _, want := range []string{"alice@customer.example", "mallory@other.example", "zed@gone.example", "Cheap pills", `href="/log/` + e.SpamOut + `"`,
		`href="/identities/` + domOut + `/alice@customer.example"`, "Lock every identity", "Confirm as spam", "3 now"} {
		if !strings.Contains(body, want) {
			t.Errorf("detail lacks %q", want)
		}
	}
	if code != http.StatusOK {
		t.Fatalf("detail: got %d", code)
	}
	// Markup in an identity is text.
	if _, body, _ := b.get("/campaigns/" + campC); strings.Contains(body, "<img src=x") || !strings.Contains(body, "&lt;img src=x") {
		t.Errorf("an identity's markup is not escaped")
	}
	if code, _, _ := b.get("/campaigns/01KB2X7ZQ0ZZZZZZ"); code != http.StatusNotFound {
		t.Errorf("unknown campaign: got %d, want 404", code)
	}

	// Lock every identity: CSRF and reason first.
	if code, _, _ := b.post("/campaigns/"+campA+"/lock", url.Values{"reason": {"botnet"}}); code != http.StatusForbidden || e.LockCount() != 1 {
		t.Errorf("without CSRF: got %d and %d locks, want 403 and no new lock", code, e.LockCount())
	}
	code, body, _ = b.post("/campaigns/"+campA+"/lock", url.Values{"csrf": {b.csrf}, "duration": {"3h"}})
	if code != http.StatusBadRequest || !strings.Contains(body, "reason is required") || !strings.Contains(body, `value="3h"`) || e.LockCount() != 1 {
		t.Errorf("without reason: got %d, want 400 with the form refilled and no lock", code)
	}
	code, _, resp := b.post("/campaigns/"+campA+"/lock", url.Values{"csrf": {b.csrf}, "reason": {"botnet run"}, "duration": {"3h"}})
	if code != http.StatusSeeOther || resp.Header.Get("Location") != "/campaigns/"+campA {
		t.Fatalf("lock all: got %d to %q", code, resp.Header.Get("Location"))
	}
	for _, id := range []identity.Target{identity.IdentityTarget(domOut, "alice@customer.example"), identity.IdentityTarget(domOther, "mallory@other.example")} {
		l, err := e.Locks.Get(ctx, id)
		if err != nil || !l.Active(e.Clock.Now()) || l.Actor != "root" || !strings.Contains(l.Reason, "botnet run (campaign "+campA+")") || l.Expires.Sub(l.Start) != 3*time.Hour {
			t.Errorf("%s: got %+v (%v), want root's 3h lock naming the campaign", id.Name, l, err)
		}
	}
	_, body, _ = b.get("/campaigns/" + campA)
	if !strings.Contains(body, "Locked 2 identities of campaign "+campA) || !strings.Contains(body, "1 already locked") || !strings.Contains(body, "1 skipped") || !strings.Contains(body, "(1 now)") {
		t.Errorf("no summary of the lock after the redirect: %s", body)
	}

	// Confirm and withdraw.
	if code, _, _ := b.post("/campaigns/"+campA+"/confirm", url.Values{"csrf": {b.csrf}}); code != http.StatusSeeOther || !f.Confirmed(campA) {
		t.Fatalf("confirm: got %d", code)
	}
	_, body, _ = b.get("/campaigns/" + campA)
	if !strings.Contains(body, "Confirmed campaign "+campA) || !strings.Contains(body, "Withdraw confirmation") {
		t.Errorf("detail after confirm lacks the notice or the withdraw button")
	}
	code, body, _ = b.post("/campaigns/"+campA+"/unconfirm", url.Values{"csrf": {b.csrf}}, "Accept: application/json")
	var cj apiv1.Campaign
	if err := json.Unmarshal([]byte(body), &cj); code != http.StatusOK || err != nil || cj.Confirmed || f.Confirmed(campA) {
		t.Errorf("unconfirm (script): got %d %s", code, body)
	}
	entries := e.AuditEntries(ops.AuditFilter{})
	var actions []string
	for _, x := range entries {
		actions = append(actions, x.Action+" "+x.Target.Name)
	}
	if got := strings.Join(actions, ", "); got != "unconfirm "+campA+", confirm "+campA+", lock alice@customer.example, lock mallory@other.example" {
		t.Errorf("got audit %s", got)
	}
	if _, body, _ := b.get("/audit"); !strings.Contains(body, `href="/campaigns/`+campA+`"`) {
		t.Errorf("audit page does not link the campaign")
	}
}

func TestConsoleCampaignsScoped(t *testing.T) {
	e, f := newConsoleEnvCampaigns(t)
	b := e.browser()
	b.signIn(tokOut)
	_, body, _ := b.get("/campaigns")
	if !strings.Contains(body, campA) || !strings.Contains(body, campB) || strings.Contains(body, campC) {
		t.Errorf("scoped list: want campA and campB only")
	}
	_, body, _ = b.get("/campaigns/" + campA)
	if strings.Contains(body, "mallory") || strings.Contains(body, "gone.example") || !strings.Contains(body, "2 identities of other administrative domains not shown") ||
		strings.Contains(body, "Confirm as spam") {
		t.Errorf("scoped detail shows other domains' identities or the confirm button")
	}
	if code, _, _ := b.post("/campaigns/"+campA+"/confirm", url.Values{"csrf": {b.csrf}}); code != http.StatusForbidden || f.Confirmed(campA) {
		t.Errorf("scoped confirm: got %d, want 403", code)
	}
	if code, _, _ := b.get("/campaigns/" + campC); code != http.StatusForbidden {
		t.Errorf("scoped detail of a campaign without its identities: got %d, want 403", code)
	}
	code, _, _ := b.post("/campaigns/"+campA+"/lock", url.Values{"csrf": {b.csrf}, "reason": {"botnet"}})
	if code != http.StatusSeeOther || !e.isLocked(identity.KindIdentity, domOut, "alice@customer.example") || !e.isLocked(identity.KindIdentity, domOut, "carol@customer.example") ||
		e.isLocked(identity.KindIdentity, domOther, "mallory@other.example") {
		t.Errorf("scoped lock all: got %d; want its domain's identities locked, not the others", code)
	}
	_, body, _ = b.get("/campaigns/" + campA)
	if !strings.Contains(body, "Locked 2 identities") || !strings.Contains(body, "2 of other domains left alone") {
		t.Errorf("scoped lock summary missing")
	}
}

func TestConsoleCampaignsOff(t *testing.T) {
	e := newConsoleEnv(t)
	b := e.browser()
	b.signIn(tokAll)
	if code, body, _ := b.get("/campaigns"); code != http.StatusNotImplemented || !strings.Contains(body, "campaign detection is off") {
		t.Errorf("got %d, want 501 saying campaign detection is off", code)
	}
}
