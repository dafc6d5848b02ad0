package app

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/outguard/outguard/admin/apiv1"
	"github.com/outguard/outguard/internal/testutil"
	"github.com/outguard/outguard/quarantine"
)

// feedbackEnv starts an env whose loopback listener takes feedback, with
// arfExtra (lines of the arf section, indented two spaces) added.
func feedbackEnv(t *testing.T, arfExtra string) *env {
	t.Helper()
	return feedbackEnvWith(t, arfExtra, "")
}

// feedbackEnvWith is feedbackEnv with extra configuration (top-level
// lines) added.
func feedbackEnvWith(t *testing.T, arfExtra, extra string) *env {
	t.Helper()
	e := newEnv(t, "", extra)
	b, err := os.ReadFile(e.path)
	if err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(string(b), "allow_insecure_auth: true}", "allow_insecure_auth: true, feedback: true}", 1)
	y = strings.Replace(y, "  retry: {initial: 1s, max: 2s}\n", "  retry: {initial: 1s, max: 2s}\n"+arfExtra, 1)
	if err := os.WriteFile(e.path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	e.withAdminToken(t) // restarts with the new file
	return e
}

// fblReport is an ARF report from a mailbox provider's feedback loop; n
// varies its text so that reports about the same original differ.
func fblReport(from string, n int, original string) string {
	return "From: " + from + "\r\nTo: fbl@outguard.test\r\nSubject: complaint " + fmt.Sprint(n) + "\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/report; report-type=feedback-report; boundary=zz\r\n\r\n" +
		"--zz\r\nContent-Type: text/plain\r\n\r\nA user complained (case " + fmt.Sprint(n) + ").\r\n" +
		"--zz\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: MailboxFBL/1\r\nVersion: 1\r\n\r\n" +
		"--zz\r\nContent-Type: message/rfc822\r\n\r\n" + original + "\r\n--zz--\r\n"
}

// forgedOriginal is a message outguard never relayed that names ident in
// the identity header.
func forgedOriginal(ident string, n int) string {
	return fmt.Sprintf("X-AuthUser: %s\r\nFrom: shop@out.example.net\r\nTo: victim@mailbox.example\r\nSubject: forged %d\r\n"+
		"Message-ID: <forged.%d@elsewhere.example>\r\nDate: Sat, 28 Nov 2026 09:00:00 +0000\r\n\r\nbuy now\r\n", ident, n, n)
}

// sendReport delivers a report to the feedback address without AUTH and
// returns the final error.
func (e *env) sendReport(envFrom, report string) error {
	e.t.Helper()
	c, err := smtp.Dial(e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	defer c.Close()
	return c.SendMail(envFrom, []string{"fbl@outguard.test"}, strings.NewReader(report))
}

// locked reports whether the identity of out.example.net is locked.
func (e *env) locked(ident string) bool {
	_, ok := e.app.ids.CheckIdentity("out.example.net", ident)
	return ok
}

// feedbackList lists stored reports through the admin API.
func (e *env) feedbackList(t *testing.T, query string) []apiv1.FeedbackResult {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+e.app.AdminAddr().String()+"/api/v1/feedback?"+query, nil)
	req.Header.Set("Authorization", "Bearer trial-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /api/v1/feedback: status %d: %s", resp.StatusCode, b)
	}
	var l apiv1.FeedbackList
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatal(err)
	}
	return l.Reports
}

// relayOne relays one message of ident and returns it as the mailbox
// provider received it (outguard's Received removed).
func (e *env) relayOne(ident, subject string) []byte {
	e.t.Helper()
	before := len(e.mail())
	if err := e.send("shop@out.example.net", testMessage(ident, subject, "Minutes of the "+subject+" meeting.")); err != nil {
		e.t.Fatal(err)
	}
	got := e.mail()
	if len(got) != before+1 {
		e.t.Fatalf("relayed %d, want %d", len(got), before+1)
	}
	e.flush()
	orig, _ := testutil.StripReceived(got[len(got)-1].Data)
	return orig
}

// TestForgedComplaintsDoNotLock sends three forged reports over SMTP (no
// AUTH), each quoting an "original" outguard never relayed that names
// innocent1 in the identity header. None may lock innocent1: from an
// unlisted sender they are only stored; from an allow-listed reporter they
// count only when that reporter opts in to identity-header attribution.
func TestForgedComplaintsDoNotLock(t *testing.T) {
	tests := []struct {
		name       string
		reporters  string
		wantLock   bool
		reporter   string
		notCounted string
	}{
		{"unlisted sender", "  reporters: [{name: fbl, networks: [192.0.2.0/24]}]\n", false, "", "unlisted-reporter"},
		{"no reporters configured", "", false, "", "unlisted-reporter"},
		{"allow-listed reporter, identity header not opted in", "  reporters: [{name: fbl, networks: [127.0.0.0/8]}]\n", false, "fbl", "identity-header-only"},
		{"allow-listed reporter that opts in", "  reporters: [{name: fbl, networks: [127.0.0.0/8], count_identity_header: true}]\n", true, "fbl", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := feedbackEnv(t, tt.reporters)
			e.relayOne("innocent1", "real mail") // the identity exists
			for i := range 3 {
				if err := e.sendReport("fbl@mailbox.example", fblReport("fbl@mailbox.example", i, forgedOriginal("innocent1", i))); err != nil {
					t.Fatalf("report %d: %v, want 250 (stored)", i, err)
				}
			}
			if got := e.locked("innocent1"); got != tt.wantLock {
				t.Fatalf("innocent1 locked: got %v, want %v", got, tt.wantLock)
			}
			list := e.feedbackList(t, "")
			if len(list) != 3 {
				t.Fatalf("stored reports: got %d, want 3 (shown for review)", len(list))
			}
			for _, r := range list {
				if r.Attribution != "identity-header" || r.Identity != "innocent1" || r.Reporter != tt.reporter ||
					r.NotCounted != tt.notCounted || r.Counted != (tt.notCounted == "") {
					t.Errorf("report %s: attribution %s identity %q reporter %q counted %v not_counted %q; want identity-header innocent1 %q %q",
						r.ID, r.Attribution, r.Identity, r.Reporter, r.Counted, r.NotCounted, tt.reporter, tt.notCounted)
				}
			}
		})
	}
}

// TestComplaintIdentityFromLog quotes a real Message-ID three times, in
// reports that differ and that name another identity: the complaint is
// about the logged transaction's identity, and counts once.
func TestComplaintIdentityFromLog(t *testing.T) {
	// The complaints below would teach the content model their originals,
	// which look alike: keep it out of the way.
	e := feedbackEnv(t, "  reporters: [{name: fbl, networks: [127.0.0.0/8]}]\n"+
		"filter: {engines: {builtin: {content_model: {learn_from_feedback: false}}}}\n")
	orig := e.relayOne("innocent1", "weekly news")
	// The provider's copy without the identity header or trace header,
	// and with another user's name put in: only the Message-ID remains to
	// find the transaction.
	quoted := string(orig)
	quoted = strings.Replace(quoted, "X-AuthUser: innocent1\r\n", "X-AuthUser: innocent2\r\n", 1)
	if i := strings.Index(quoted, "X-Outguard-Trace:"); i >= 0 {
		j := strings.Index(quoted[i:], "\r\n")
		quoted = quoted[:i] + quoted[i+j+2:]
	}
	for i := range 3 {
		if err := e.sendReport("fbl@mailbox.example", fblReport("fbl@mailbox.example", i, quoted)); err != nil {
			t.Fatalf("report %d: %v", i, err)
		}
	}
	if e.locked("innocent1") || e.locked("innocent2") {
		t.Fatalf("locked after one complaint quoted three times: innocent1 %v innocent2 %v", e.locked("innocent1"), e.locked("innocent2"))
	}
	list := e.feedbackList(t, "")
	if len(list) != 3 {
		t.Fatalf("stored reports: got %d, want 3", len(list))
	}
	counted := 0
	for _, r := range list {
		if r.Attribution != "message-id" || r.Identity != "innocent1" || r.TxID == "" {
			t.Errorf("report %s: attribution %s identity %q tx %q; want message-id, innocent1 from the log", r.ID, r.Attribution, r.Identity, r.TxID)
		}
		if r.Counted {
			counted++
		} else if !r.Duplicate || r.NotCounted != "duplicate" {
			t.Errorf("report %s: not counted with %q duplicate %v; want duplicate", r.ID, r.NotCounted, r.Duplicate)
		}
	}
	if counted != 1 {
		t.Errorf("counted complaints: got %d, want 1", counted)
	}
	if got := e.feedbackList(t, "counted=true"); len(got) != 1 {
		t.Errorf("counted=true lists %d, want 1", len(got))
	}
	e.flush()
	page, _ := e.app.store.Search(quarantine.Query{Identity: "innocent1"})
	total := 0
	for _, r := range page.Records {
		total += r.Complaints
	}
	if total != 1 {
		t.Errorf("log records carry %d complaints, want 1", total)
	}

	// Two more messages, one complaint each: three complaints about three
	// messages reach the threshold (3 by default), and lock.
	for i := range 2 {
		if e.locked("innocent1") {
			t.Fatalf("locked after %d complaints", i+1)
		}
		o := e.relayOne("innocent1", []string{"orchard", "library"}[i])
		if err := e.sendReport("fbl@mailbox.example", fblReport("fbl@mailbox.example", 10+i, string(o))); err != nil {
			t.Fatal(err)
		}
	}
	if !e.locked("innocent1") {
		t.Errorf("innocent1 not locked after 3 complaints about 3 messages")
	}
}

// TestComplaintAboutRefusedMail quotes a quarantined message: outguard
// never relayed it, so the complaint is not attributed to it.
func TestComplaintAboutRefusedMail(t *testing.T) {
	e := feedbackEnv(t, "  reporters: [{name: fbl, networks: [127.0.0.0/8]}]\n")
	msg := testMessage("innocent1", "blocked", gtube)
	if err := e.send("shop@out.example.net", msg); replyOf(err) == nil || replyOf(err).Code != 550 {
		t.Fatalf("spam: %v, want 550", err)
	}
	e.flush()
	noIdentity := strings.Replace(msg, "X-AuthUser: innocent1\r\n", "", 1)
	if err := e.sendReport("fbl@mailbox.example", fblReport("fbl@mailbox.example", 1, noIdentity)); err != nil {
		t.Fatal(err)
	}
	list := e.feedbackList(t, "")
	if len(list) != 1 || list[0].Attribution != "none" || list[0].Counted {
		t.Fatalf("complaint about refused mail: %+v; want not attributed, not counted", list)
	}
}

// TestSameReportTwice sends one report three times over SMTP: stored once,
// the copies answered 250 and counted as duplicates.
func TestSameReportTwiceOverSMTP(t *testing.T) {
	e := feedbackEnv(t, "  reporters: [{name: fbl, networks: [127.0.0.0/8], count_identity_header: true}]\n")
	e.relayOne("innocent1", "news")
	report := fblReport("fbl@mailbox.example", 1, forgedOriginal("innocent1", 1))
	for i := range 3 {
		if err := e.sendReport("fbl@mailbox.example", report); err != nil {
			t.Fatalf("copy %d: %v", i, err)
		}
	}
	if e.locked("innocent1") {
		t.Fatalf("one report sent three times locked innocent1")
	}
	if list := e.feedbackList(t, ""); len(list) != 1 || !list[0].Counted {
		t.Fatalf("stored: %+v; want the one report, counted", list)
	}
	m := counterValue(t, e.app, "outguard_feedback_complaints_total", map[string]string{"outcome": "duplicate"})
	if m != 2 {
		t.Errorf("outguard_feedback_complaints_total{outcome=duplicate}: got %v, want 2", m)
	}
}

// TestFeedbackCLIDuplicate ingests one file three times with the CLI: the
// first counts, the others say duplicate, innocent1 stays unlocked.
func TestFeedbackCLIDuplicate(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI")
	}
	bin := buildCLI(t)
	e := feedbackEnv(t, "  reporters: [{name: mailbox, domains: [mailbox.example], count_identity_header: true}]\n")
	orig := e.relayOne("innocent1", "news")
	file := filepath.Join(t.TempDir(), "complaint.eml")
	if err := os.WriteFile(file, []byte(fblReport("fbl@mailbox.example", 1, string(orig))), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, int) {
		t.Helper()
		out, errs, code := runCLIBinary(t, bin, "http://"+e.app.AdminAddr().String(), args...)
		return out + errs, code
	}
	out, code := run("feedback", "ingest", file)
	if code != 0 || !strings.Contains(out, "complaint counted") {
		t.Fatalf("first ingest: exit %d, %q; want the complaint counted", code, out)
	}
	for i := range 2 {
		out, code = run("feedback", "ingest", file)
		if code != 0 || !strings.Contains(out, "duplicate") {
			t.Fatalf("ingest %d: exit %d, %q; want duplicate", i+2, code, out)
		}
	}
	out, code = run("feedback", "ingest", "--json", file)
	var res apiv1.FeedbackResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 || !res.Duplicate || res.DuplicateOf == "" || res.Counted {
		t.Fatalf("--json ingest: exit %d, %q; want duplicate with duplicate_of", code, out)
	}
	if e.locked("innocent1") {
		t.Fatalf("one file ingested four times locked innocent1")
	}
	out, code = run("feedback", "list")
	if code != 0 || strings.Count(out, "\n") != 1 || !strings.Contains(out, "mailbox") {
		t.Errorf("feedback list: exit %d, %q; want one report from mailbox", code, out)
	}
	// An upload from a sender no reporter names is stored, not counted.
	other := filepath.Join(t.TempDir(), "other.eml")
	os.WriteFile(other, []byte(fblReport("someone@elsewhere.example", 2, string(orig))), 0o600)
	out, _ = run("feedback", "ingest", other)
	if !strings.Contains(out, "not counted: unlisted-reporter") {
		t.Errorf("upload from an unlisted sender: %q; want not counted: unlisted-reporter", out)
	}
}

// TestFeedbackSizeLimit sends a report over arf.parse_max_bytes to the
// feedback listener: 552 5.3.4, at RCPT when SIZE says so, else after DATA,
// and the session goes on.
func TestFeedbackSizeLimit(t *testing.T) {
	e := feedbackEnv(t, "  parse_max_bytes: 65536\n")
	big := fblReport("fbl@mailbox.example", 1, forgedOriginal("innocent1", 1)+strings.Repeat("padding line of the original\r\n", 3000))
	c, err := smtp.Dial(e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Declared: refused before the data is sent.
	if err := c.Mail("fbl@mailbox.example", &smtp.MailOptions{Size: int64(len(big))}); err != nil {
		t.Fatal(err)
	}
	err = c.Rcpt("fbl@outguard.test", nil)
	if r := replyOf(err); r == nil || r.Code != 552 || r.EnhancedCode != (smtp.EnhancedCode{5, 3, 4}) {
		t.Fatalf("RCPT with SIZE %d: %v, want 552 5.3.4", len(big), err)
	}
	if err := c.Reset(); err != nil {
		t.Fatal(err)
	}
	// Undeclared: refused after DATA.
	if err := c.Mail("fbl@mailbox.example", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("fbl@outguard.test", nil); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, big)
	err = w.Close()
	if r := replyOf(err); r == nil || r.Code != 552 || r.EnhancedCode != (smtp.EnhancedCode{5, 3, 4}) {
		t.Fatalf("DATA of %d bytes: %v, want 552 5.3.4", len(big), err)
	}
	// The same session still takes a report of the right size.
	if err := c.Mail("fbl@mailbox.example", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("fbl@outguard.test", nil); err != nil {
		t.Fatal(err)
	}
	w, _ = c.Data()
	io.WriteString(w, fblReport("fbl@mailbox.example", 2, forgedOriginal("innocent1", 2)))
	if err := w.Close(); err != nil {
		t.Fatalf("small report after the big one: %v", err)
	}
	if n := len(e.feedbackList(t, "")); n != 1 {
		t.Errorf("stored %d reports, want 1 (the big one refused)", n)
	}
}

// TestFeedbackRetention stores a report, lets arf.feedback_retention pass
// and runs retention: the report and its duplicate index are gone.
func TestFeedbackRetention(t *testing.T) {
	e := feedbackEnv(t, "  feedback_retention: 30d\n")
	report := fblReport("fbl@mailbox.example", 1, forgedOriginal("innocent1", 1))
	if err := e.sendReport("fbl@mailbox.example", report); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(29 * 24 * time.Hour)
	if err := e.sendReport("fbl@mailbox.example", fblReport("fbl@mailbox.example", 2, forgedOriginal("innocent1", 2))); err != nil {
		t.Fatal(err)
	}
	e.app.pipeline.feedback.PruneNow()
	if n := len(e.feedbackList(t, "")); n != 2 {
		t.Fatalf("within retention: %d reports, want 2", n)
	}
	e.clock.Advance(2 * 24 * time.Hour)
	e.app.pipeline.feedback.PruneNow()
	list := e.feedbackList(t, "")
	if len(list) != 1 || !strings.Contains(list[0].File, "smtp:") {
		t.Fatalf("after 31 days: %+v, want only the newer report", list)
	}
	if m := counterValue(t, e.app, "outguard_feedback_pruned_total", nil); m != 1 {
		t.Errorf("outguard_feedback_pruned_total: got %v, want 1", m)
	}
	// The pruned report's index went with it: the same report is new again.
	res, err := e.app.pipeline.feedback.Ingest(t.Context(), []byte(report), "again")
	if err != nil || res.Duplicate || res.ID == "" {
		t.Errorf("the pruned report again: %+v, %v; want stored, not a duplicate", res, err)
	}
}

// counterValue reads a counter of the app's registry with the given labels
// (nil: the only series).
func counterValue(t *testing.T, a *App, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := a.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue series
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}
