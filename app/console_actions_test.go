package app

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"io"
	"mime"
	"net/http"
	"net/http/cookiejar"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/outguard/outguard/identity"
	"github.com/outguard/outguard/internal/notify"
	"github.com/outguard/outguard/internal/testutil"
	"github.com/outguard/outguard/quarantine"
)

// consoleClient is a browser without a browser: a cookie jar, signed in
// to the console at base with the token of mountConsole.
type consoleClient struct {
	t    *testing.T
	base string
	c    *http.Client
}

var (
	formField = regexp.MustCompile(`name="form" value="([^"]*)"`)
	csrfField = regexp.MustCompile(`name="csrf" value="([^"]*)"`)
)

func signInConsole(t *testing.T, base string) *consoleClient {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	cc := &consoleClient{t: t, base: base, c: &http.Client{Jar: jar}}
	_, body := cc.get("/login")
	m := formField.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no sign-in form in %s", body)
	}
	code, body := cc.post("/login", url.Values{"form": {html.UnescapeString(m[1])}, "token": {consoleToken}, "next": {"/"}})
	if code != http.StatusOK {
		t.Fatalf("sign in: got %d %s", code, body)
	}
	return cc
}

func (cc *consoleClient) get(path string) (int, string) {
	cc.t.Helper()
	resp, err := cc.c.Get(cc.base + path)
	if err != nil {
		cc.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (cc *consoleClient) post(path string, form url.Values) (int, string) {
	cc.t.Helper()
	resp, err := cc.c.PostForm(cc.base+path, form)
	if err != nil {
		cc.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// csrf is the CSRF token of the page at path.
func (cc *consoleClient) csrf(path string) string {
	cc.t.Helper()
	_, body := cc.get(path)
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		cc.t.Fatalf("no CSRF token on %s", path)
	}
	return html.UnescapeString(m[1])
}

// whyRules are operator rules whose hits contain markup.
const whyRules = `filter:
  engines:
    builtin:
      rules:
        - {name: SCRIPT_TAG, target: body, match: regex, pattern: '<script>[^<]*</script>', score: 6}
        - {name: WIRE, target: body, pattern: 'wire transfer', score: 1}
`

// TestConsoleWhyItMatched: a message quarantined over SMTP for rule hits
// shows, under each rule reason, the rule's text and an excerpt of the
// message around the match, escaped: a hit containing <script> is text.
func TestConsoleWhyItMatched(t *testing.T) {
	e := newEnv(t, "", whyRules)
	base := mountConsole(t, e)
	body := "Dear customer,\r\nplease do the Wire Transfer now <script>alert('x')</script> thanks.\r\n"
	if err := e.send("shop@out.example.net", testMessage("web7", "Invoice", body)); replyOf(err) == nil || replyOf(err).Code != 550 {
		t.Fatalf("got %v, want 550", err)
	}
	e.flush()
	res, err := e.app.store.Search(quarantine.Query{Identity: "web7"})
	if err != nil || len(res.Records) != 1 {
		t.Fatalf("got %d log records (%v), want 1", len(res.Records), err)
	}
	cc := signInConsole(t, base)
	code, page := cc.get("/log/" + res.Records[0].ID)
	if code != http.StatusOK {
		t.Fatalf("message view: got %d", code)
	}
	for _, want := range []string{
		`builtin:SCRIPT_TAG(6)</span><div class="why">`,
		`expression <code>&lt;script&gt;[^&lt;]*&lt;/script&gt;</code> in body:`,
		`<mark>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;</mark>`,
		`text <code>wire transfer</code> in body:`,
		`please do the <mark>Wire Transfer</mark> now &lt;script&gt;`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("message view lacks %q", want)
		}
	}
	if strings.Contains(page, "<script>alert") {
		t.Errorf("the hit's markup is in the page unescaped")
	}
}

// customerNotice is a domain's customer notice for the tests.
const customerNotice = `    customer_notice:
      to: identity
      subject: "Your mail account {identity} is paused"
      body: |
        Hello,

        we paused outgoing mail of {identity} ({domain}) at {locked_at}, {until}.
        Reason: {reason}
        Quote {lock_id} when you reply.
`

// TestCustomerNoticeOnLock: a lock of an identity, taken in the console
// over HTTP, sends exactly one customer notice through the notify outbox
// to a real SMTP relay, to the identity's address, with the rendered
// text; the console's preview shows the same text.
func TestCustomerNoticeOnLock(t *testing.T) {
	relay := testutil.StartNextHop(t)
	e := newEnv(t, customerNotice, "  relay: {address: \""+relay.Addr+"\"}\n")
	base := mountConsole(t, e)
	cc := signInConsole(t, base)
	const ident = "alice@customer.example"
	form := url.Values{"csrf": {cc.csrf("/")}, "kind": {"identity"}, "domain": {"out.example.net"}, "name": {ident},
		"reason": {"spam <b>run</b>, ticket 4711"}, "duration": {"2h"}, "back": {"/locks"}}
	if code, body := cc.post("/lock", form); code != http.StatusOK {
		t.Fatalf("lock: got %d %s", code, body)
	}
	got := relay.WaitDeliveries(1, 20*time.Second)
	if len(got) != 1 {
		t.Fatalf("relay got %d mails, want 1", len(got))
	}
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
	if got = relay.Received(); len(got) != 1 {
		t.Fatalf("relay got %d mails once the outbox is empty, want exactly 1", len(got))
	}
	d := got[0]
	if len(d.Rcpts) != 1 || d.Rcpts[0] != ident || d.From != "" {
		t.Errorf("envelope: from %q to %q, want <> to %s", d.From, d.Rcpts, ident)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(d.Data))
	if err != nil {
		t.Fatal(err)
	}
	subject, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	bodyBytes, _ := io.ReadAll(msg.Body)
	body := strings.ReplaceAll(string(bodyBytes), "\r\n", "\n")
	if subject != "Your mail account "+ident+" is paused" || msg.Header.Get("Auto-Submitted") != "auto-generated" ||
		!strings.HasPrefix(msg.Header.Get("Content-Type"), "text/plain") {
		t.Errorf("header: subject %q, %v", subject, msg.Header)
	}
	l, err := e.app.ids.Get(context.Background(), identity.IdentityTarget("out.example.net", ident))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("Hello,\n\nwe paused outgoing mail of %s (out.example.net) at %s, %s.\nReason: spam <b>run</b>, ticket 4711\nQuote %s when you reply.\n",
		ident, l.Start.UTC().Format(time.RFC3339), l.Expires.UTC().Format(time.RFC3339), notify.LockID(l.Target, l.Start))
	if !strings.HasPrefix(body, want) {
		t.Errorf("body:\n%s\nwant:\n%s", body, want)
	}

	// The preview renders the same text, escaped.
	code, page := cc.get("/locks/identity/out.example.net/" + url.PathEscape(ident) + "/notice")
	if code != http.StatusOK {
		t.Fatalf("preview: got %d %s", code, page)
	}
	for _, s := range []string{html.EscapeString(strings.TrimSuffix(want, "\n")), "<dd class=\"break\">" + html.EscapeString(subject) + "</dd>", "<dd class=\"break\">" + ident + "</dd>"} {
		if !strings.Contains(page, s) {
			t.Errorf("preview lacks %q", s)
		}
	}
	// A user lock sends no customer notice; a domain without a notice
	// has no preview.
	if code, _ := cc.get("/locks/user/out.example.net/trial/notice"); code != http.StatusBadRequest {
		t.Errorf("preview of a user: got %d, want 400", code)
	}
}
