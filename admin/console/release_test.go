package console

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/outguard/outguard/admin/ops"
)

// TestConsoleReleaseAsksForAReason: the message page's release form asks
// for a reason, which goes in the audit entry; a release without one
// (the log page's row button) delivers nothing and goes to the form.
// "Release" teaches nothing; "release and don't block this kind again"
// teaches the content model that the message is ham.
func TestConsoleReleaseAsksForAReason(t *testing.T) {
	e := newConsoleEnvTeacher(t)
	b := e.browser()
	b.signIn(tokOut)
	page := "/log/" + e.SpamOut

	_, body, _ := b.get(page)
	for _, want := range []string{`id="release"`, `name="reason" required`, `name="learn" value="false">Release</button>`,
		`name="learn" value="true"`, "Release and don't block this kind again"} {
		if !strings.Contains(body, want) {
			t.Errorf("message page lacks %q", want)
		}
	}

	code, _, resp := b.post(page+"/release", url.Values{"csrf": {b.csrf}, "reason": {"  "}})
	if code != http.StatusSeeOther || resp.Header.Get("Location") != page+"#release" || e.Deliver.Count() != 0 || e.AuditCount() != 0 {
		t.Fatalf("release without a reason: got %d to %q, %d deliveries, %d audit entries; want 303 to the form, nothing done",
			code, resp.Header.Get("Location"), e.Deliver.Count(), e.AuditCount())
	}
	_, body, _ = b.get(page)
	if !strings.Contains(body, "Say why you release message") {
		t.Errorf("no notice asking for a reason")
	}
	// A reason of two lines is refused by the operations layer.
	if code, _, _ := b.post(page+"/release", url.Values{"csrf": {b.csrf}, "reason": {"a\nb"}}); code != http.StatusBadRequest || e.Deliver.Count() != 0 {
		t.Errorf("two-line reason: got %d, %d deliveries; want 400 and none", code, e.Deliver.Count())
	}
	// No CSRF token: refused.
	if code, _, _ := b.post(page+"/release", url.Values{"reason": {"x"}, "learn": {"true"}}); code != http.StatusForbidden || e.Deliver.Count() != 0 {
		t.Errorf("no CSRF token: got %d, want 403", code)
	}

	code, _, _ = b.post(page+"/release", url.Values{"csrf": {b.csrf}, "reason": {"customer's invoice, ticket 4711"}, "learn": {"true"}})
	if code != http.StatusSeeOther || e.Deliver.Count() != 1 {
		t.Fatalf("release: got %d, %d deliveries; want 303 and 1", code, e.Deliver.Count())
	}
	if got := e.teacher.Taught(); len(got) != 1 || got[0].Spam {
		t.Errorf("got lessons %+v, want the message learnt as ham", got)
	}
	entries := e.AuditEntries(ops.AuditFilter{})
	// newest first
	if len(entries) != 2 || entries[1].Action != ops.AuditRelease || entries[1].Reason != "customer's invoice, ticket 4711" ||
		entries[1].Detail != "and learn as ham; console" || entries[0].Action != ops.AuditLearn {
		t.Errorf("got audit %+v, want the release with its reason, then the lesson", entries)
	} // The message view shows the release as recorded on the log record.
	_, body, _ = b.get(page)
	for _, want := range []string{"<dt>Released</dt>", "reason: <q class=\"break\">customer&#39;s invoice, ticket 4711</q>", "; learnt as ham</dd>"} {
		if !strings.Contains(body, want) {
			t.Errorf("message view after the release lacks %q", want)
		}
	}
}

// TestConsoleReleaseWithoutLearning: the plain Release button teaches the
// content model nothing.
func TestConsoleReleaseWithoutLearning(t *testing.T) {
	e := newConsoleEnvTeacher(t)
	b := e.browser()
	b.signIn(tokOut)
	code, _, _ := b.post("/log/"+e.SpamOut+"/release", url.Values{"csrf": {b.csrf}, "reason": {"one-off"}, "learn": {"false"}})
	if code != http.StatusSeeOther || e.Deliver.Count() != 1 {
		t.Fatalf("release: got %d, %d deliveries; want 303 and 1", code, e.Deliver.Count())
	}
	if got := e.teacher.Taught(); len(got) != 0 {
		t.Errorf("got lessons %+v, want none", got)
	}
	entries := e.AuditEntries(ops.AuditFilter{})
	if len(entries) != 1 || entries[0].Reason != "one-off" || entries[0].Detail != "console" {
		t.Errorf("got audit %+v, want one release entry with its reason", entries)
	}
	_, body, _ := b.get("/log/" + e.SpamOut)
	if !strings.Contains(body, "reason: <q class=\"break\">one-off</q>; not learnt</dd>") {
		t.Errorf("message view after the release lacks its reason and \"not learnt\"")
	}
}

// TestConsoleReportLockDuration: the reports page's lock takes a
// duration, checked by the operations layer as the lock form's is.
func TestConsoleReportLockDuration(t *testing.T) {
	e := newConsoleEnv(t)
	b := e.browser()
	b.signIn(tokAll)
	_, body, _ := b.get("/reports?group_by=user&classification=all&since=30d")
	if !strings.Contains(body, `name="duration" list="report-durations"`) || !strings.Contains(body, `<datalist id="report-durations">`) {
		t.Fatalf("reports page has no duration control")
	}
	form := url.Values{"csrf": {b.csrf}, "action": {"lock"}, "kind": {"user"}, "domain": {domOut}, "name": {"webhost2"}, "reason": {"spam run"}, "duration": {"forever"}, "back": {"/reports"}}
	code, _, resp := b.post("/reports/toggle", form)
	if code != http.StatusSeeOther || e.AuditCount() != 0 {
		t.Fatalf("bad duration: got %d, %d audit entries; want 303 back with an error, nothing locked", code, e.AuditCount())
	}
	if _, body, _ = b.get(resp.Header.Get("Location")); !strings.Contains(body, "forever") {
		t.Errorf("no error naming the bad duration")
	}
	form.Set("duration", "2h")
	code, body, _ = b.post("/reports/toggle", form, "Accept: application/json", "X-CSRF-Token: "+b.csrf, "Origin: "+b.base)
	if code != http.StatusOK || !strings.Contains(body, "until ") {
		t.Fatalf("lock for 2h: got %d %s", code, body)
	}
	entries := e.AuditEntries(ops.AuditFilter{})
	if len(entries) != 1 || entries[0].Action != ops.AuditLock || !strings.Contains(entries[0].Detail, "2h") {
		t.Errorf("got audit %+v, want a lock for 2h", entries)
	}
}
