package app

import (
	"bytes"
	"encoding/json"
	"html"
	"io"
	"mime"
	"net/http"
	"net/mail"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/outguard/outguard/admin/apiv1"
	"github.com/outguard/outguard/admin/ops"
	"github.com/outguard/outguard/internal/testutil"
)

var previewField = regexp.MustCompile(`name="preview" value="([^"]*)"`)

// TestNotifyAction sends an identity's customer notice from its profile
// over HTTP, in the console (with CSRF, after the preview) and through
// the API, and checks that each request reaches a real go-smtp relay
// through the notify outbox, is audited with its reason, and that the
// refusals say why: not locked, no contact, no notice for the domain,
// another domain's token, a preview gone stale, no CSRF token.
func TestNotifyAction(t *testing.T) {
	relay := testutil.StartNextHop(t)
	e := newEnv(t, customerNotice, "  relay: {address: \""+relay.Addr+"\"}\n")
	// A second domain, without a customer notice.
	b, err := os.ReadFile(e.path)
	if err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(string(b), "admin: {address:", "  - name: plain.example\n    users:\n      - name: plainuser\n        password_hash: \""+trialHash+"\"\nadmin: {address:", 1)
	if err := os.WriteFile(e.path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	e.restart()
	base := mountConsole(t, e)
	all, _ := bcrypt.GenerateFromPassword([]byte(consoleToken), bcrypt.MinCost)
	scoped, _ := bcrypt.GenerateFromPassword([]byte("plain-token"), bcrypt.MinCost)
	if err := e.app.ops.SetTokens([]ops.Token{{Name: "ops", Hash: string(all), Scope: ops.ScopeAll},
		{Name: "plain-desk", Hash: string(scoped), Scope: "plain.example"}}); err != nil {
		t.Fatal(err)
	}
	cc := signInConsole(t, base)
	const dom, ident = "out.example.net", "alice@customer.example"
	profile := "/identities/" + dom + "/" + url.PathEscape(ident)

	// Not locked yet: the profile offers no send, the preview refuses.
	_, page := cc.get(profile)
	if strings.Contains(page, `id="notify-link"`) || !strings.Contains(page, "it can be sent while the identity is locked") {
		t.Errorf("profile of an unlocked identity: want no notify button, and why")
	}
	_, page = cc.get(profile + "/notify")
	if strings.Contains(page, `id="notify-form"`) || !strings.Contains(page, "is not locked, and the notice tells the customer of a lock") {
		t.Errorf("preview of an unlocked identity: want no send form, and why")
	}

	lockForm := url.Values{"csrf": {cc.csrf("/")}, "kind": {"identity"}, "domain": {dom}, "name": {ident},
		"reason": {"spam run"}, "duration": {"2h"}, "back": {"/locks"}}
	if code, body := cc.post("/lock", lockForm); code != http.StatusOK {
		t.Fatalf("lock: got %d %s", code, body)
	}
	drain := func(want int) []testutil.Delivery {
		t.Helper()
		relay.WaitDeliveries(want, 20*time.Second)
		for {
			n, err := e.app.notifier.Pending()
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		got := relay.Received()
		if len(got) != want {
			t.Fatalf("relay got %d mails, want %d", len(got), want)
		}
		return got
	}
	drain(1) // the lock's own notice

	// The console: the profile links to the preview, which has the form.
	_, page = cc.get(profile)
	if !strings.Contains(page, `id="notify-link" href="`+html.EscapeString(profile)+`/notify"`) {
		t.Errorf("profile of a locked identity lacks the notify action")
	}
	_, page = cc.get(profile + "/notify")
	m := previewField.FindStringSubmatch(page)
	cs := csrfField.FindStringSubmatch(page)
	if m == nil || cs == nil || !strings.Contains(page, "Your mail account "+ident+" is paused") || !strings.Contains(page, "<strong class=\"break\">"+ident+"</strong>") {
		t.Fatalf("preview lacks the notice, its recipient or the send form:\n%s", page)
	}
	digest, csrf := html.UnescapeString(m[1]), html.UnescapeString(cs[1])
	send := url.Values{"csrf": {csrf}, "preview": {digest}, "reason": {"customer asked again, ticket 4712"}}
	refusals := []struct {
		name string
		form url.Values
		code int
	}{
		{"no CSRF token", url.Values{"preview": {digest}, "reason": {"x"}}, http.StatusForbidden},
		{"no reason", url.Values{"csrf": {csrf}, "preview": {digest}}, http.StatusBadRequest},
		{"no preview", url.Values{"csrf": {csrf}, "reason": {"x"}}, http.StatusBadRequest},
		{"stale preview", url.Values{"csrf": {csrf}, "preview": {"0123456789abcdef01234567"}, "reason": {"x"}}, http.StatusConflict},
	}
	for _, r := range refusals {
		if code, _ := cc.post(profile+"/notify", r.form); code != r.code {
			t.Errorf("%s: got %d, want %d", r.name, code, r.code)
		}
	}
	if code, body := cc.post(profile+"/notify", send); code != http.StatusOK || !strings.Contains(body, "Customer notice to "+ident+" queued for sending.") {
		t.Fatalf("send from the console: got %d, want the profile with the notice\n%s", code, body)
	}
	got := drain(2)
	checkNotice(t, got[1], ident)
	if got[1].Data != nil && bytes.Equal(messageID(t, got[0]), messageID(t, got[1])) {
		t.Errorf("the notify action's mail reuses the lock notice's Message-ID %s", messageID(t, got[0]))
	}

	// The API: preview, then send quoting it.
	api := func(method, path, token, body string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, base+"/api/v1"+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	path := "/identities/" + dom + "/" + url.PathEscape(ident) + "/notice"
	code, body := api("GET", path, consoleToken, "")
	var pv apiv1.Notice
	if err := json.Unmarshal(body, &pv); code != http.StatusOK || err != nil || pv.To != ident || pv.Sample || pv.Digest != digest {
		t.Fatalf("API preview: got %d %s, want the notice with the console's digest %s", code, body, digest)
	}
	code, body = api("POST", path, consoleToken, `{"reason": "second reminder", "preview": "`+pv.Digest+`"}`)
	var sent apiv1.Notice
	if err := json.Unmarshal(body, &sent); code != http.StatusAccepted || err != nil || !sent.Queued || sent.To != ident {
		t.Fatalf("API send: got %d %s, want 202 queued to %s", code, body, ident)
	}
	got = drain(3)
	checkNotice(t, got[2], ident)

	apiRefusals := []struct {
		name, path, token, body string
		code                    int
		says                    string
	}{
		{"not locked", "/identities/" + dom + "/bob%40customer.example/notice", consoleToken, `{"reason": "x"}`, http.StatusConflict, "is not locked"},
		{"no contact", "/identities/" + dom + "/web42/notice", consoleToken, `{"reason": "x"}`, http.StatusConflict, "no contact for identity web42"},
		{"no notice for the domain", "/identities/plain.example/carol%40plain.example/notice", consoleToken, `{"reason": "x"}`, http.StatusNotFound, "no customer notice is configured"},
		{"another domain's token", path, "plain-token", `{"reason": "x"}`, http.StatusForbidden, "another administrative domain"},
		{"no reason", path, consoleToken, `{}`, http.StatusBadRequest, "reason is required"},
	}
	// web42 is locked, but is not an email address.
	if code, body := cc.post("/lock", url.Values{"csrf": {cc.csrf("/")}, "kind": {"identity"}, "domain": {dom}, "name": {"web42"},
		"reason": {"spam"}, "duration": {"2h"}, "back": {"/locks"}}); code != http.StatusOK {
		t.Fatalf("lock web42: got %d %s", code, body)
	}
	drain(3) // web42's lock sends nothing: no address
	for _, r := range apiRefusals {
		code, body := api("POST", r.path, r.token, r.body)
		if code != r.code || !strings.Contains(string(body), r.says) {
			t.Errorf("%s: got %d %s, want %d saying %q", r.name, code, body, r.code, r.says)
		}
	}
	drain(3)

	entries, err := e.app.ops.Audit(t.Context(), ops.Principal{Name: "ops"}, ops.AuditFilter{Action: ops.AuditNotify})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[1].Reason != "customer asked again, ticket 4712" || entries[1].Detail != "customer notice to "+ident+"; console" ||
		entries[0].Reason != "second reminder" || entries[0].Target.Name != ident || entries[0].Actor != "ops" {
		t.Errorf("audit: got %+v, want the console's and the API's notify entries with their reasons", entries)
	}
}

// checkNotice checks that d is the customer notice mailed to ident.
func checkNotice(t *testing.T, d testutil.Delivery, ident string) {
	t.Helper()
	if len(d.Rcpts) != 1 || d.Rcpts[0] != ident || d.From != "" {
		t.Errorf("envelope: from %q to %q, want <> to %s", d.From, d.Rcpts, ident)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(d.Data))
	if err != nil {
		t.Fatal(err)
	}
	subject, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if subject != "Your mail account "+ident+" is paused" || msg.Header.Get("Auto-Submitted") != "auto-generated" {
		t.Errorf("notice header: subject %q, %v", subject, msg.Header)
	}
}

func messageID(t *testing.T, d testutil.Delivery) []byte {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(d.Data))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(msg.Header.Get("Message-ID"))
}
