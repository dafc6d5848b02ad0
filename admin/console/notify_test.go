package console

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/outguard/outguard/admin/internal/admintest"
	"github.com/outguard/outguard/admin/ops"
	"github.com/outguard/outguard/identity"
)

var previewDigest = regexp.MustCompile(`name="preview" value="([^"]*)"`)

// TestConsoleNotifyAction: the identity profile's notify action previews
// the customer notice (escaped), sends exactly what was previewed with a
// reason, and refuses another domain's administrator.
func TestConsoleNotifyAction(t *testing.T) {
	n := &admintest.Notices{}
	e := newConsoleEnvWith(t, nil, func(e *admintest.Env) { e.Opts.Notices, e.Opts.NoticeOutbox = n, n })
	const ident = "alice@customer.example"
	if _, err := e.Locks.Lock(context.Background(), identity.LockRequest{Target: identity.IdentityTarget(domOut, ident),
		Reason: "kit <script>alert(1)</script>", Actor: "root"}); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.signIn(tokOut)
	profile := identityURL(domOut, ident)
	_, body, _ := b.get(profile)
	if !strings.Contains(body, `id="notify-link" href="`+html.EscapeString(profile)+`/notify"`) {
		t.Errorf("profile lacks the notify action")
	}
	code, body, _ := b.get(profile + "/notify")
	if code != http.StatusOK || strings.Contains(body, "<script>alert(1)") || !strings.Contains(body, "Reason: kit &lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Fatalf("preview: got %d, want the notice with the reason escaped:\n%s", code, body)
	}
	m := previewDigest.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("preview has no send form")
	}
	code, _, resp := b.post(profile+"/notify", url.Values{"csrf": {b.csrf}, "preview": {html.UnescapeString(m[1])}, "reason": {"reminder"}})
	if code != http.StatusSeeOther || resp.Header.Get("Location") != profile || len(n.Queued()) != 1 {
		t.Fatalf("send: got %d to %q, %d queued; want 303 to the profile and one notice", code, resp.Header.Get("Location"), len(n.Queued()))
	}
	_, body, _ = b.get(profile)
	if !strings.Contains(body, "Customer notice to "+ident+" queued for sending.") {
		t.Errorf("no notice after the send")
	}
	entries := e.AuditEntries(ops.AuditFilter{Action: ops.AuditNotify})
	if len(entries) != 1 || entries[0].Reason != "reminder" || entries[0].Actor != "outtok" {
		t.Errorf("audit: %+v, want one notify entry by outtok with the reason", entries)
	}
	if _, body, _ := b.get("/audit"); !strings.Contains(body, `<option value="notify"`) {
		t.Errorf("the audit page offers no notify filter")
	}

	// Another domain's administrator sees neither the preview nor the send.
	o := e.browser()
	o.signIn(tokOther)
	if code, _, _ := o.get(profile + "/notify"); code != http.StatusForbidden {
		t.Errorf("preview by another domain: got %d, want 403", code)
	}
	if code, _, _ := o.post(profile+"/notify", url.Values{"csrf": {o.csrf}, "preview": {m[1]}, "reason": {"x"}}); code != http.StatusForbidden || len(n.Queued()) != 1 {
		t.Errorf("send by another domain: got %d, %d queued; want 403 and nothing more", code, len(n.Queued()))
	}
}
