package app

import (
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

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
