package arf

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

var fixedNow = time.Date(2026, 11, 3, 9, 14, 9, 0, time.UTC)

func testGenerator(t testing.TB, maxOrig int) *Generator {
	t.Helper()
	g, err := NewGenerator(GeneratorOptions{
		From:             "outguard@mta.out.example.net",
		To:               []string{"abuse@out.example.net"},
		ReportingMTA:     "mta.out.example.net",
		Version:          "1.2.3",
		MaxOriginalBytes: maxOrig,
		Now:              func() time.Time { return fixedNow },
		MessageID:        func() string { return "arf.0001@mta.out.example.net" },
		Boundary:         func() string { return "outguard-arf-boundary" },
	})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

const asciiOriginal = "Received: from web01.customer.example ([192.0.2.10])\r\n" +
	"\tby mta.out.example.net with ESMTPSA; Tue, 03 Nov 2026 09:14:07 +0000\r\n" +
	"X-AuthUser: alice@customer.example\r\n" +
	"X-Outguard-Trace: tr-7f3a9c0d5e\r\n" +
	"From: \"PayPaI Support\" <service@paypal-secure.example>\r\n" +
	"To: victim@mailbox.example, other@mailbox.example\r\n" +
	"Subject: Your account is suspended\r\n" +
	"Date: Tue, 03 Nov 2026 10:14:01 +0100\r\n" +
	"Message-ID: <20261103091401.4411@web01.customer.example>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: text/plain; charset=us-ascii\r\n" +
	"\r\n" +
	"Verify your account now: http://paypal-secure.example/login\r\n"

var utf8Original = strings.NewReplacer(
	"Subject: Your account is suspended", "Subject: =?utf-8?q?Ihr_Konto_wurde_gesperrt_=E2=80=93_s=C3=B6fort_pr=C3=BCfen?=",
	"charset=us-ascii", "charset=utf-8\r\nContent-Transfer-Encoding: 8bit",
	"Verify your account now", "Bestätigen Sie Ihr Konto jetzt, sonst wird es gelöscht",
).Replace(asciiOriginal)

func testIncident(verdict, original string) Incident {
	return Incident{
		TxID:       "01JC0FFEE0000000000000000",
		User:       "webhosting-7",
		Domain:     "out.example.net",
		Identity:   "alice@customer.example",
		Verdict:    verdict,
		Score:      17.5,
		Reasons:    []string{"builtin:PHISH_BRAND_LOOKALIKE", "rspamd:BAYES_SPAM"},
		MailFrom:   "bounce@customer.example",
		RcptTo:     []string{"victim@mailbox.example", "other@mailbox.example"},
		Arrival:    time.Date(2026, 11, 3, 9, 14, 7, 0, time.UTC),
		SourceIP:   netip.MustParseAddr("192.0.2.10"),
		SourcePort: 51234,
		Original:   []byte(original),
	}
}

func TestGenerateGolden(t *testing.T) {
	tests := []struct {
		name        string
		verdict     string
		original    string
		maxOrig     int
		ftype       string
		headersOnly bool
		cte         string
	}{
		{"spam-whole", "spam", asciiOriginal, 0, "abuse", false, "7bit"},
		{"phishing-8bit", "phishing", utf8Original, 0, "fraud", false, "8bit"},
		{"virus-headers-only", "virus", utf8Original, 200, "virus", true, "7bit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inc := testIncident(tt.verdict, tt.original)
			raw, err := testGenerator(t, tt.maxOrig).Generate(inc)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "golden-"+tt.name+".eml")
			if *update {
				if err := os.WriteFile(golden, raw, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./arf -run TestGenerateGolden -update to create it)", err)
			}
			if !bytes.Equal(raw, want) {
				t.Errorf("output differs from %s (rerun with -update if the change is intended):\ngot:\n%s", golden, raw)
			}
			// Parse the golden file back, with both parsers.
			checkOwnParser(t, want, inc, tt.ftype, tt.headersOnly)
			checkGoMessage(t, want, inc, tt.ftype, tt.headersOnly, tt.cte)
		})
	}
}

func checkOwnParser(t *testing.T, raw []byte, inc Incident, ftype string, headersOnly bool) {
	t.Helper()
	fb, err := Parse(bytes.NewReader(raw), ParseOptions{})
	if err != nil {
		t.Fatalf("own parser: %v", err)
	}
	if len(fb.Warnings) != 0 {
		t.Errorf("own parser: got warnings %q, want none", fb.Warnings)
	}
	eq := func(what string, got, want any) {
		t.Helper()
		if g, w := toString(got), toString(want); g != w {
			t.Errorf("own parser %s: got %s, want %s", what, g, w)
		}
	}
	eq("profile", fb.Profile, ProfileARF)
	eq("feedback type", fb.FeedbackType, ftype)
	eq("version", fb.Version, "1")
	eq("user agent", fb.UserAgent, "outguard/1.2.3")
	eq("original mail from", fb.OriginalMailFrom, inc.MailFrom)
	eq("original rcpt to", fb.OriginalRcptTo, inc.RcptTo)
	eq("arrival date", fb.ArrivalDate.UTC(), inc.Arrival)
	eq("source ip", fb.SourceIP, inc.SourceIP)
	eq("source port", fb.SourcePort, inc.SourcePort)
	eq("reporting mta", fb.ReportingMTA, "dns; mta.out.example.net")
	eq("reported domain", fb.ReportedDomain, []string{"paypal-secure.example"})
	eq("authentication results", fb.AuthenticationResults, "mta.out.example.net; auth=pass smtp.auth=webhosting-7")
	eq("incidents", fb.Incidents, 1)
	eq("identity", fb.Identity, inc.Identity)
	eq("trace token", fb.TraceToken, "tr-7f3a9c0d5e")
	eq("message id", fb.MessageID, "20261103091401.4411@web01.customer.example")
	eq("headers only", fb.OriginalHeadersOnly, headersOnly)
	seen := map[string]int{}
	for _, f := range fb.Fields {
		seen[strings.ToLower(f.Name)]++
	}
	for name, n := range seen {
		if n > 1 && name != "original-rcpt-to" && name != "reported-domain" && name != "reported-uri" {
			t.Errorf("field %s appears %d times, want at most once", name, n)
		}
	}
}

func toString(v any) string {
	switch v := v.(type) {
	case time.Time:
		return v.Format(time.RFC3339Nano)
	case []string:
		return "[" + strings.Join(v, " ") + "]"
	}
	return strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(fmtAny(v), "\n", " "), "  ", " "))
}

func checkGoMessage(t *testing.T, raw []byte, inc Incident, ftype string, headersOnly bool, cte string) {
	t.Helper()
	e, err := message.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("go-message: %v", err)
	}
	mt, params, err := e.Header.ContentType()
	if err != nil || mt != "multipart/report" || params["report-type"] != "feedback-report" {
		t.Fatalf("go-message content type: got %s %v %v, want multipart/report report-type=feedback-report", mt, params, err)
	}
	mh := mail.Header{Header: e.Header}
	subj, err := mh.Subject()
	if err != nil {
		t.Errorf("go-message subject: %v", err)
	}
	if want := "[outguard] " + strings.ToLower(inc.Verdict) + " report: "; !strings.HasPrefix(subj, want) {
		t.Errorf("go-message subject: got %q, want prefix %q", subj, want)
	}
	if got := e.Header.Get("Auto-Submitted"); got != "auto-generated" {
		t.Errorf("Auto-Submitted: got %q, want auto-generated", got)
	}
	mr := e.MultipartReader()
	var types []string
	for i := 0; ; i++ {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("go-message part %d: %v", i+1, err)
		}
		pt, _, _ := p.Header.ContentType()
		types = append(types, pt)
		body, err := io.ReadAll(p.Body)
		if err != nil {
			t.Fatalf("go-message part %d body: %v", i+1, err)
		}
		switch i {
		case 0:
			for _, want := range []string{inc.User, inc.Domain, inc.Identity, inc.TxID, "outguard quarantine show " + inc.TxID, "outguard lock identity", "17.50"} {
				if !strings.Contains(string(body), want) {
					t.Errorf("human-readable part: missing %q", want)
				}
			}
			if headersOnly && !strings.Contains(string(body), "only its header is attached") {
				t.Errorf("human-readable part does not say only the header is attached")
			}
		case 1:
			if got := p.Header.Get("Content-Transfer-Encoding"); got != "7bit" {
				t.Errorf("feedback-report CTE: got %q, want 7bit", got)
			}
			h, err := textproto.ReadHeader(newBufReader(body))
			if err != nil {
				t.Fatalf("go-message feedback-report fields: %v", err)
			}
			want := map[string][]string{
				"Feedback-Type":          {ftype},
				"User-Agent":             {"outguard/1.2.3"},
				"Version":                {"1"},
				"Original-Mail-From":     {"<" + inc.MailFrom + ">"},
				"Original-Rcpt-To":       {"<victim@mailbox.example>", "<other@mailbox.example>"},
				"Arrival-Date":           {"Tue, 03 Nov 2026 09:14:07 +0000"},
				"Reporting-Mta":          {"dns; mta.out.example.net"},
				"Source-Ip":              {"192.0.2.10"},
				"Source-Port":            {"51234"},
				"Authentication-Results": {"mta.out.example.net; auth=pass smtp.auth=webhosting-7"},
				"Reported-Domain":        {"paypal-secure.example"},
			}
			for k, v := range want {
				got := h.Values(k)
				slices.Sort(got)
				vv := slices.Clone(v)
				slices.Sort(vv)
				if !slices.Equal(got, vv) {
					t.Errorf("go-message field %s: got %q, want %q", k, got, vv)
				}
			}
		case 2:
			if got := p.Header.Get("Content-Transfer-Encoding"); got != cte {
				t.Errorf("original part CTE: got %q, want %q", got, cte)
			}
			want := inc.Original
			if headersOnly {
				want, _ = splitHeader(inc.Original)
			}
			if !bytes.Equal(body, want) {
				t.Errorf("original part: got\n%q\nwant\n%q", body, want)
			}
		}
	}
	wantTypes := []string{"text/plain", "message/feedback-report", "message/rfc822"}
	if headersOnly {
		wantTypes[2] = "text/rfc822-headers"
	}
	if !slices.Equal(types, wantTypes) {
		t.Errorf("parts: got %q, want %q", types, wantTypes)
	}
}

func TestGenerateErrors(t *testing.T) {
	g := testGenerator(t, 0)
	if _, err := g.Generate(testIncident("clean", asciiOriginal)); !errors.Is(err, ErrNotReportable) {
		t.Errorf("clean verdict: got %v, want %v", err, ErrNotReportable)
	}
	collide := testIncident("spam", asciiOriginal+"--outguard-arf-boundary\r\n")
	if _, err := g.Generate(collide); !errors.Is(err, ErrBoundary) {
		t.Errorf("boundary in original: got %v, want %v", err, ErrBoundary)
	}
	g2, _ := NewGenerator(GeneratorOptions{From: "o@x.example", ReportingMTA: "x.example"})
	if _, err := g2.Generate(testIncident("spam", asciiOriginal)); !errors.Is(err, ErrNoRecipient) {
		t.Errorf("no recipient: got %v, want %v", err, ErrNoRecipient)
	}
	if _, err := NewGenerator(GeneratorOptions{From: "not an address", ReportingMTA: "x"}); err == nil {
		t.Errorf("bad From: got no error, want one")
	}
	// The default boundary generator avoids a colliding boundary.
	raw, err := g2.Generate(Incident{Verdict: "spam", To: []string{"a@b.example"}, Original: []byte(asciiOriginal)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(bytes.NewReader(raw), ParseOptions{}); err != nil {
		t.Errorf("parsing a report with defaults: %v", err)
	}
}

func TestGenerateNonASCII(t *testing.T) {
	inc := testIncident("spam", utf8Original)
	inc.Identity = "jürgen@kunde.example"
	inc.MailFrom = "bounce@büro.example"
	raw, err := testGenerator(t, 0).Generate(inc)
	if err != nil {
		t.Fatal(err)
	}
	// Everything outside part 3 must be 7bit.
	i := bytes.Index(raw, []byte("Content-Type: message/rfc822"))
	if i < 0 {
		t.Fatal("no message/rfc822 part")
	}
	if j := slices.IndexFunc(raw[:i], func(c byte) bool { return c >= 0x80 }); j >= 0 {
		t.Errorf("8bit byte at %d outside the original part", j)
	}
	fb, err := Parse(bytes.NewReader(raw), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fb.OriginalMailFrom, inc.MailFrom; got != want {
		t.Errorf("non-ASCII Original-Mail-From: got %q, want %q", got, want)
	}
	e, err := message.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	subj, _ := (&mail.Header{Header: e.Header}).Subject()
	if want := "[outguard] spam report: Ihr Konto wurde gesperrt – söfort prüfen"; subj != want {
		t.Errorf("subject: got %q, want %q", subj, want)
	}
}

func BenchmarkGenerate(b *testing.B) {
	g := testGenerator(b, 0)
	inc := testIncident("spam", asciiOriginal+strings.Repeat("spam spam spam spam spam spam spam\r\n", 2000))
	b.SetBytes(int64(len(inc.Original)))
	for b.Loop() {
		if _, err := g.Generate(inc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	raw, err := os.ReadFile("testdata/arf-standard.eml")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := Parse(bytes.NewReader(raw), ParseOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
