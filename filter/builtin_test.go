package filter

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func scanBuiltin(t *testing.T, opts BuiltinOptions, raw []byte, env Envelope) Verdict {
	t.Helper()
	// These tests are about rules and heuristics; the content model has
	// its own (builtin_content_test.go).
	opts.Content.Disabled = true
	b, err := NewBuiltin(opts)
	if err != nil {
		t.Fatalf("NewBuiltin: %v", err)
	}
	m := mustParse(t, raw)
	m.Envelope = env
	v, err := b.Scan(context.Background(), m)
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return v
}

func htmlPart(s string) att { return att{ctype: "text/html; charset=utf-8", body: []byte(s)} }

func TestBuiltinSignals(t *testing.T) {
	protected := BuiltinOptions{ProtectedDomains: []string{"paypal.com", "examplebank.co.uk"}}
	fromAlice := func(extra string) string {
		return "From: Alice <alice@shop.example>\r\nTo: bob@example.org\r\nSubject: hi\r\n" + extra
	}
	for _, tc := range []struct {
		name      string
		opts      BuiltinOptions
		raw       []byte
		env       Envelope
		wantClass Class
		want      []string // reasons that must be present
		notWant   []string // reasons that must be absent
	}{
		{
			name:      "clean text",
			raw:       buildMessage(stdHeaders, textPart("Lunch at noon? The usual place.")),
			wantClass: Clean,
		},
		{
			name:      "GTUBE in body",
			raw:       buildMessage(stdHeaders, textPart("test "+string(gtube))),
			wantClass: Spam, want: []string{"builtin:GTUBE(1000)"},
		},
		{
			name:      "GTUBE in quoted-printable HTML",
			raw:       buildMessage(stdHeaders, att{ctype: "text/html", encoding: "quoted-printable", body: []byte("<p>" + strings.Replace(string(gtube), "*", "=2A", 2) + "</p>")}),
			wantClass: Spam, want: []string{"builtin:GTUBE(1000)"},
		},
		{
			name:      "EICAR as base64 attachment",
			raw:       buildMessage(stdHeaders, textPart("file"), att{ctype: "application/octet-stream", name: "eicar.com.txt", body: eicar}),
			wantClass: Virus, want: []string{"builtin:EICAR(1000)"},
		},
		{
			name:      "EICAR inside a zip",
			raw:       buildMessage(stdHeaders, textPart("file"), att{ctype: "application/zip", name: "test.zip", body: makeZip(t, "eicar.txt", string(eicar))}),
			wantClass: Virus, want: []string{"builtin:EICAR(1000)"},
		},
		{
			name:      "EICAR inside a zip inside a zip",
			raw:       buildMessage(stdHeaders, textPart("file"), att{ctype: "application/zip", name: "outer.zip", body: makeZip(t, "inner.zip", string(makeZip(t, "eicar.txt", string(eicar))))}),
			wantClass: Virus, want: []string{"builtin:EICAR(1000)"},
		},
		{
			name:      "zero-width space inside a subject word",
			raw:       buildMessage("From: a@shop.example\r\nTo: b@example.org\r\nSubject: =?utf-8?q?Your_pass=E2=80=8Bword_expires?=", textPart("Renew it today.")),
			wantClass: Clean, want: []string{"builtin:OBFUSCATED_WORDS(3)"},
		},
		{
			name:      "Cyrillic look-alike inside a body word",
			raw:       buildMessage(stdHeaders, textPart("Sign in to your Micr\u043esoft account.")),
			wantClass: Clean, want: []string{"builtin:OBFUSCATED_WORDS(3)"},
		},
		{
			name:      "Russian and English words side by side are not obfuscation",
			raw:       buildMessage(stdHeaders, textPart("\u041f\u0440\u0438\u0432\u0435\u0442, see the Outlook invite. \u0421\u043f\u0430\u0441\u0438\u0431\u043e!")),
			wantClass: Clean, notWant: []string{"builtin:OBFUSCATED_WORDS(3)"},
		},
		{
			name:      "executable attachment",
			raw:       buildMessage(stdHeaders, textPart("run this"), att{ctype: "application/octet-stream", name: "setup.exe", body: []byte("x")}),
			wantClass: Virus, want: []string{"builtin:EXECUTABLE_ATTACHMENT(100)"},
		},
		{
			name:      "script with trailing dot",
			raw:       buildMessage(stdHeaders, textPart("run this"), att{ctype: "text/plain", name: "update.vbs.", body: []byte("x")}),
			wantClass: Virus, want: []string{"builtin:EXECUTABLE_ATTACHMENT(100)"},
		},
		{
			name:      "PE content under an innocent name",
			raw:       buildMessage(stdHeaders, textPart("pic"), att{ctype: "image/jpeg", name: "photo.jpg", body: fakePE()}),
			wantClass: Virus, want: []string{"builtin:EXECUTABLE_ATTACHMENT(100)"},
		},
		{
			name:      "double extension",
			raw:       buildMessage(stdHeaders, textPart("invoice"), att{ctype: "application/pdf", name: "invoice.pdf.exe", body: []byte("x")}),
			wantClass: Virus, want: []string{"builtin:DOUBLE_EXTENSION(100)"}, notWant: []string{"builtin:EXECUTABLE_ATTACHMENT(100)"},
		},
		{
			name:      "macro-enabled workbook",
			raw:       buildMessage(stdHeaders, textPart("numbers"), att{ctype: "application/vnd.ms-excel.sheet.macroEnabled.12", name: "Q3.xlsm", body: []byte("x")}),
			wantClass: Virus, want: []string{"builtin:MACRO_ATTACHMENT(100)"},
		},
		{
			name:      "docx carrying a VBA project",
			raw:       buildMessage(stdHeaders, textPart("doc"), att{ctype: "application/vnd.openxmlformats-officedocument.wordprocessingml.document", name: "letter.docx", body: makeZip(t, "word/document.xml", "<w/>", "word/vbaProject.bin", "x")}),
			wantClass: Virus, want: []string{"builtin:MACRO_ATTACHMENT(100)"},
		},
		{
			name:      "archive holding an executable",
			raw:       buildMessage(stdHeaders, textPart("docs"), att{ctype: "application/zip", name: "docs.zip", body: makeZip(t, "scan.pdf", "%PDF", "scan.js", "x")}),
			wantClass: Virus, want: []string{"builtin:ARCHIVED_EXECUTABLE(100)"},
		},
		{
			name:      "dangerous attachment class is configurable",
			opts:      BuiltinOptions{DangerousAttachmentClass: Spam},
			raw:       buildMessage(stdHeaders, textPart("run this"), att{ctype: "application/octet-stream", name: "setup.exe", body: []byte("x")}),
			wantClass: Spam, want: []string{"builtin:EXECUTABLE_ATTACHMENT(100)"},
		},
		{
			name:      "disabled heuristic does not fire",
			opts:      BuiltinOptions{Disabled: []string{RuleExecutableAttachment}},
			raw:       buildMessage(stdHeaders, textPart("run this"), att{ctype: "application/octet-stream", name: "setup.exe", body: []byte("x")}),
			wantClass: Clean, notWant: []string{"builtin:EXECUTABLE_ATTACHMENT(100)"},
		},
		{
			name:      "ordinary attachments are clean",
			raw:       buildMessage(stdHeaders, textPart("files"), att{ctype: "application/pdf", name: "offer.pdf", body: []byte("%PDF")}, att{ctype: "application/zip", name: "pdfs.zip", body: makeZip(t, "a.pdf", "%PDF", "b.docx", "x")}),
			wantClass: Clean,
		},
		{
			name:      "link shows a protected domain, goes elsewhere",
			opts:      protected,
			raw:       buildMessage(stdHeaders, htmlPart(`<a href="https://login.evil.example/pp">https://www.paypal.com/signin</a>`)),
			wantClass: Phishing, want: []string{"builtin:LINK_PROTECTED_MISMATCH(100)"},
		},
		{
			name:      "link mismatch alone is weak",
			raw:       buildMessage(stdHeaders, htmlPart(`<a href="https://click.mailer.example/t/1">www.shop.example</a>`)),
			wantClass: Clean, want: []string{"builtin:LINK_MISMATCH(2.5)"},
		},
		{
			name:      "link to a subdomain of the shown domain is fine",
			raw:       buildMessage(stdHeaders, htmlPart(`<a href="https://www.shop.example/x">shop.example</a>`)),
			wantClass: Clean, notWant: []string{"builtin:LINK_MISMATCH(2.5)"},
		},
		{
			name:      "link text that is not a domain",
			raw:       buildMessage(stdHeaders, htmlPart(`<a href="https://click.mailer.example/t/1">Unsubscribe</a> <a href="https://x.example/">report.pdf</a>`)),
			wantClass: Clean, notWant: []string{"builtin:LINK_MISMATCH(2.5)"},
		},
		{
			name:      "userinfo hides a domain",
			raw:       buildMessage(stdHeaders, textPart("Log in: http://paypal.com@evil.example/login")),
			wantClass: Phishing, want: []string{"builtin:URL_USERINFO_DOMAIN(100)"},
		},
		{
			name:      "plain userinfo is weak",
			raw:       buildMessage(stdHeaders, textPart("ftp://anonymous@files.example/pub/")),
			wantClass: Clean, want: []string{"builtin:URL_USERINFO(2)"},
		},
		{
			name:      "public IP literal URL is weak",
			raw:       buildMessage(stdHeaders, textPart("http://203.0.113.7/login.php")),
			wantClass: Clean, want: []string{"builtin:URL_IP_LITERAL(2.5)"},
		},
		{
			name:      "private IP literal URL is not flagged",
			raw:       buildMessage(stdHeaders, textPart("The wiki is at http://10.1.2.3/wiki")),
			wantClass: Clean, notWant: []string{"builtin:URL_IP_LITERAL(2.5)"},
		},
		{
			name:      "IP literal plus mismatch plus userinfo reach the phishing threshold",
			raw:       buildMessage(stdHeaders, htmlPart(`<a href="http://203.0.113.7/x">www.bank.example</a> http://user@files.example/`)),
			wantClass: Phishing, want: []string{"builtin:URL_IP_LITERAL(2.5)", "builtin:LINK_MISMATCH(2.5)", "builtin:URL_USERINFO(2)"},
		},
		{
			name:      "homoglyph lookalike (Cyrillic a)",
			opts:      protected,
			raw:       buildMessage(stdHeaders, textPart("https://pаypal.com/verify")),
			wantClass: Phishing, want: []string{"builtin:LOOKALIKE_DOMAIN(100)"},
		},
		{
			name:      "punycode lookalike",
			opts:      protected,
			raw:       buildMessage(stdHeaders, textPart("https://xn--pypal-4ve.com/verify")),
			wantClass: Phishing, want: []string{"builtin:LOOKALIKE_DOMAIN(100)"},
		},
		{
			name:      "digit swap lookalike",
			opts:      protected,
			raw:       buildMessage(stdHeaders, textPart("https://paypa1.com/verify")),
			wantClass: Phishing, want: []string{"builtin:LOOKALIKE_DOMAIN(100)"},
		},
		{
			name:      "one typo lookalike",
			opts:      protected,
			raw:       buildMessage(stdHeaders, textPart("https://www.paypall.com/verify")),
			wantClass: Phishing, want: []string{"builtin:LOOKALIKE_DOMAIN(100)"},
		},
		{
			name:      "lookalike in the From header",
			opts:      protected,
			raw:       buildMessage("From: Service <service@examp1ebank.co.uk>\r\nTo: x@example.org\r\nSubject: account", textPart("Please call us.")),
			wantClass: Phishing, want: []string{"builtin:LOOKALIKE_DOMAIN(100)"},
		},
		{
			name:      "brand inside another domain",
			opts:      protected,
			raw:       buildMessage(stdHeaders, textPart("https://paypal.com.secure-login.example/ and more")),
			wantClass: Phishing, want: []string{"builtin:BRAND_IN_DOMAIN(100)"},
		},
		{
			name:      "brand as a hyphenated word",
			opts:      protected,
			raw:       buildMessage(stdHeaders, textPart("https://paypal-support.example/")),
			wantClass: Phishing, want: []string{"builtin:BRAND_IN_DOMAIN(100)"},
		},
		{
			name:      "the protected domain itself is fine",
			opts:      protected,
			raw:       buildMessage(stdHeaders, htmlPart(`Pay with <a href="https://www.paypal.com/checkout">www.paypal.com</a>, see https://developer.paypal.com/`)),
			wantClass: Clean,
		},
		{
			name:      "the brand's name under another suffix is its own",
			opts:      protected,
			raw:       buildMessage(stdHeaders, textPart("Pay me at https://paypal.me/shopowner or https://www.paypal.de/")),
			wantClass: Clean,
		},
		{
			name:      "brand's look-alike under another suffix",
			opts:      protected,
			raw:       buildMessage(stdHeaders, textPart("https://paypa1.me/verify")),
			wantClass: Phishing, want: []string{"builtin:LOOKALIKE_DOMAIN(100)"},
		},
		{
			name:      "unrelated domains are fine",
			opts:      protected,
			raw:       buildMessage(stdHeaders, textPart("https://paypoint.example/ https://www.example.com/ https://pal.example/ https://bank.example/")),
			wantClass: Clean,
		},
		{
			name:      "HTML attachment with a password form",
			raw:       buildMessage(stdHeaders, textPart("statement attached"), att{ctype: "text/html", name: "statement.html", body: []byte(`<form action="https://x.example/p"><input name=u><input type="password" name=p></form>`)}),
			wantClass: Phishing, want: []string{"builtin:HTML_ATTACHMENT_PASSWORD_FORM(100)"},
		},
		{
			name:      "password form in the body is weak",
			raw:       buildMessage(stdHeaders, htmlPart(`<form><input type=password></form>`)),
			wantClass: Clean, want: []string{"builtin:HTML_PASSWORD_FORM(4)"},
		},
		{
			name:      "From domain outside the allowed domains",
			raw:       buildMessage(fromAlice(""), textPart("hello")),
			env:       Envelope{AllowedSenderDomains: []string{"customer.example"}},
			wantClass: Clean, want: []string{"builtin:FROM_DOMAIN_NOT_ALLOWED(4)"},
		},
		{
			name:      "From subdomain of an allowed domain",
			raw:       buildMessage(fromAlice(""), textPart("hello")),
			env:       Envelope{AllowedSenderDomains: []string{"example", "shop.example"}},
			wantClass: Clean, notWant: []string{"builtin:FROM_DOMAIN_NOT_ALLOWED(4)"},
		},
		{
			name:      "envelope and header sender differ",
			raw:       buildMessage(fromAlice(""), textPart("hello")),
			env:       Envelope{MailFrom: "bounce@other.example"},
			wantClass: Clean, want: []string{"builtin:ENVELOPE_FROM_MISMATCH(1)"},
		},
		{
			name:      "envelope sender in a subdomain of the header domain",
			raw:       buildMessage(fromAlice(""), textPart("hello")),
			env:       Envelope{MailFrom: "bounces@mail.shop.example"},
			wantClass: Clean, notWant: []string{"builtin:ENVELOPE_FROM_MISMATCH(1)"},
		},
		{
			name:      "mass recipients",
			opts:      BuiltinOptions{MassRecipients: 3},
			raw:       buildMessage(stdHeaders, textPart("hello all")),
			env:       Envelope{Rcpts: []string{"a@x.example", "b@x.example", "c@x.example"}},
			wantClass: Clean, want: []string{"builtin:MASS_RECIPIENTS(3)"},
		},
		{
			name:      "outbound signals add up to spam",
			opts:      BuiltinOptions{MassRecipients: 2},
			raw:       buildMessage(fromAlice(""), textPart("hello")),
			env:       Envelope{MailFrom: "x@other.example", Rcpts: []string{"a@x.example", "b@x.example"}, AllowedSenderDomains: []string{"customer.example"}},
			wantClass: Spam, want: []string{"builtin:FROM_DOMAIN_NOT_ALLOWED(4)", "builtin:ENVELOPE_FROM_MISMATCH(1)", "builtin:MASS_RECIPIENTS(3)"},
		},
		{
			name:      "score override",
			opts:      BuiltinOptions{Scores: map[string]float64{RuleLinkMismatch: 6}},
			raw:       buildMessage(stdHeaders, htmlPart(`<a href="https://click.mailer.example/t/1">www.shop.example</a>`)),
			wantClass: Phishing, want: []string{"builtin:LINK_MISMATCH(6)"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := scanBuiltin(t, tc.opts, tc.raw, tc.env)
			if v.Class != tc.wantClass {
				t.Errorf("got class %v (reasons %q), want %v", v.Class, v.Reasons, tc.wantClass)
			}
			for _, r := range tc.want {
				if !slices.Contains(v.Reasons, r) {
					t.Errorf("got reasons %q, want %q among them", v.Reasons, r)
				}
			}
			for _, r := range tc.notWant {
				if slices.Contains(v.Reasons, r) {
					t.Errorf("got reasons %q, want no %q", v.Reasons, r)
				}
			}
		})
	}
}

func TestBuiltinRules(t *testing.T) {
	raw := buildMessage("From: a@shop.example\r\nTo: b@example.org\r\nSubject: =?utf-8?q?Gro=C3=9Fe_Rabatte?=\r\nX-Mailer: BulkBlaster 3",
		htmlPart(`<p>Buy CHEAP watches today</p><a href="https://deals.example/promo?id=7">Shop now</a>`))
	for _, tc := range []struct {
		name string
		rule Rule
		want bool
	}{
		{"body substring ignores case", Rule{Target: TargetBody, Pattern: "cheap watches"}, true},
		{"body substring misses", Rule{Target: TargetBody, Pattern: "cheap pills"}, false},
		{"body regex", Rule{Target: TargetBody, Regex: true, Pattern: `(?i)buy\s+cheap`}, true},
		{"body regex is case-sensitive as written", Rule{Target: TargetBody, Regex: true, Pattern: `buy cheap`}, false},
		{"decoded subject header", Rule{Target: TargetHeader, Header: "Subject", Pattern: "große rabatte"}, true},
		{"named header regex", Rule{Target: TargetHeader, Header: "X-Mailer", Regex: true, Pattern: `^BulkBlaster \d+$`}, true},
		{"absent header", Rule{Target: TargetHeader, Header: "X-Other", Pattern: "x"}, false},
		{"any header line", Rule{Target: TargetHeader, Regex: true, Pattern: `(?m)^X-Mailer: Bulk`}, true},
		{"url substring", Rule{Target: TargetURL, Pattern: "deals.example/promo"}, true},
		{"url regex misses", Rule{Target: TargetURL, Regex: true, Pattern: `\.ru/`}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.rule.Name, tc.rule.Score = "R", 1.5
			v := scanBuiltin(t, BuiltinOptions{Rules: []Rule{tc.rule}}, raw, Envelope{})
			got := slices.Contains(v.Reasons, "builtin:R(1.5)")
			if got != tc.want {
				t.Errorf("got fired %v (reasons %q), want %v", got, v.Reasons, tc.want)
			}
		})
	}
}

func TestBuiltinThresholds(t *testing.T) {
	raw := buildMessage(stdHeaders, textPart("win a prize now, claim your prize"))
	rules := []Rule{
		{Name: "PRIZE", Target: TargetBody, Pattern: "prize", Score: 3},
		{Name: "CLAIM", Target: TargetBody, Pattern: "claim your", Score: 2.5, Category: Phishing},
		{Name: "HAM", Target: TargetBody, Pattern: "lunch", Score: -10},
	}
	for _, tc := range []struct {
		name string
		opts BuiltinOptions
		want Class
	}{
		{"default threshold reached", BuiltinOptions{Rules: rules}, Spam},
		{"higher threshold", BuiltinOptions{Rules: rules, SpamThreshold: 6}, Clean},
		{"phishing category counts separately", BuiltinOptions{Rules: rules, SpamThreshold: 10, PhishingThreshold: 2.5}, Phishing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := scanBuiltin(t, tc.opts, raw, Envelope{})
			if v.Class != tc.want {
				t.Errorf("got %v (score %v, reasons %q), want %v", v.Class, v.Score, v.Reasons, tc.want)
			}
			if v.Score != 5.5 {
				t.Errorf("got score %v, want 5.5", v.Score)
			}
		})
	}
}

func TestNewBuiltinErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts BuiltinOptions
		want string
	}{
		{"bad regex", BuiltinOptions{Rules: []Rule{{Name: "X", Regex: true, Pattern: "("}}}, "rules[0] (X)"},
		{"missing pattern", BuiltinOptions{Rules: []Rule{{Name: "X"}}}, "pattern are required"},
		{"duplicate rule", BuiltinOptions{Rules: []Rule{{Name: "X", Pattern: "a"}, {Name: "X", Pattern: "b"}}}, "duplicate"},
		{"virus category", BuiltinOptions{Rules: []Rule{{Name: "X", Pattern: "a", Category: Virus}}}, "category"},
		{"unknown score", BuiltinOptions{Scores: map[string]float64{"NOPE": 1}}, "NOPE"},
		{"unknown disabled", BuiltinOptions{Disabled: []string{"NOPE"}}, "NOPE"},
		{"bad protected domain", BuiltinOptions{ProtectedDomains: []string{"paypal"}}, "paypal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewBuiltin(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}

func TestLookalikeHelpers(t *testing.T) {
	for _, tc := range []struct{ a, b string }{
		{"pаypаl", "paypal"}, {"paypa1", "paypal"}, {"rnicrosoft", "microsoft"}, {"pay-pal", "paypal"}, {"pàypal", "paypal"},
	} {
		if skeleton(tc.a) != skeleton(tc.b) {
			t.Errorf("skeleton(%q) = %q, skeleton(%q) = %q, want equal", tc.a, skeleton(tc.a), tc.b, skeleton(tc.b))
		}
	}
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"paypal", "paypal", 0}, {"paypal", "paypall", 1}, {"paypal", "papyal", 1}, {"paypal", "pyapla", 2}, {"", "abc", 3},
	} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q): got %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

// fakePE returns the start of a minimal Windows executable.
func fakePE() []byte {
	b := make([]byte, 0x100)
	b[0], b[1] = 'M', 'Z'
	b[0x3c] = 0x80
	copy(b[0x80:], "PE\x00\x00")
	return b
}

// TestConfigKnowsEverySignal keeps config.BuiltinSignals (which config, a
// leaf package, cannot take from here) in step with the heuristics.
func TestConfigKnowsEverySignal(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "config", "filter.go"))
	if err != nil {
		t.Skipf("config source not found: %v", err)
	}
	i := strings.Index(string(src), "var BuiltinSignals")
	if i < 0 {
		t.Fatal("config/filter.go has no BuiltinSignals")
	}
	list := string(src[i:])
	list = list[:strings.Index(list, "}")]
	for name := range DefaultScores() {
		if !strings.Contains(list, `"`+name+`"`) {
			t.Errorf("config.BuiltinSignals lacks %q", name)
		}
	}
	if got, want := strings.Count(list, `"`)/2, len(DefaultScores()); got != want {
		t.Errorf("got %d names in config.BuiltinSignals, want %d", got, want)
	}
}
