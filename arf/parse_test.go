package arf

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func parseFile(t *testing.T, name string, opts ParseOptions) (*Feedback, error) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return Parse(bytes.NewReader(b), opts)
}

func TestParseTolerates(t *testing.T) {
	arrival := time.Date(2026, 11, 3, 9, 14, 7, 0, time.UTC)
	tests := []struct {
		file        string
		profile     string
		ftype       string
		version     string
		sourceIP    string
		arrival     time.Time
		rcpt        []string
		identity    string
		trace       string
		messageID   string
		headersOnly bool
		noOriginal  bool
		warning     string // a substring of one warning; "" means no warnings at all
	}{
		{file: "arf-standard.eml", warning: ""},
		{file: "arf-rfc822-headers.eml", headersOnly: true, warning: ""},
		{file: "arf-rfc822-header-misspelt.eml", headersOnly: true, warning: "misspelt type text/rfc822-header"},
		{file: "arf-no-original.eml", noOriginal: true, identity: "-", trace: "-", messageID: "-", warning: "part 3 missing"},
		{file: "arf-redacted-placeholder.eml", noOriginal: true, identity: "-", trace: "-", messageID: "-", warning: "placeholder"},
		{file: "arf-base64.eml", warning: "Content-Transfer-Encoding base64"},
		{file: "arf-quoted-printable.eml", warning: "Content-Transfer-Encoding quoted-printable"},
		{file: "arf-8bit-original.eml", warning: ""},
		{file: "arf-old-version-folded.eml", version: "0.1", warning: "Received-Date used"},
		{file: "arf-missing-version.eml", version: "-", warning: "Version missing"},
		{file: "arf-unknown-type.eml", ftype: "x-complaint-bulk", warning: "unregistered feedback type"},
		{file: "arf-ipv6-literal.eml", sourceIP: "2001:db8::25"},
		{file: "arf-ipv4-bracketed.eml"},
		{file: "arf-ipv4-mapped.eml"},
		{file: "arf-obsolete-zone-pdt.eml"},
		{file: "arf-military-zone.eml", warning: "no usable time zone"},
		{file: "arf-gmt-comment.eml"},
		{file: "arf-redacted-addresses.eml", rcpt: []string{"redacted"}, identity: "-"},
		{file: "arf-identity-in-body-only.eml", identity: "-", trace: "-"},
		{file: "arf-identity-ambiguous.eml", identity: "-", warning: WarnIdentityAmbiguous},
		{file: "arf-identity-repeated-equal.eml", warning: ""},
		{file: "arf-original-oversized-field.eml", warning: WarnOversizedFieldSkipped},
		{file: "arf-no-report-type.eml", warning: "without report-type"},
		{file: "arf-forwarded-attachment.eml", headersOnly: true, warning: "forwarded as an attachment"},
		{file: "legacy-jmrp.eml", profile: ProfileJMRP, version: "-", arrival: time.Time{}, rcpt: []string{"victim@hotmail.example"}, warning: "JMRP"},
		{file: "legacy-aol-scomp.eml", profile: ProfileAOLSCOMP, version: "-", sourceIP: "-", arrival: time.Time{}, rcpt: []string{}, warning: "AOL"},
		{file: "legacy-aol-scomp-xloop.eml", profile: ProfileAOLSCOMP, version: "-", sourceIP: "-", arrival: time.Time{}, rcpt: []string{}, warning: "AOL"},
		{file: "legacy-aol-scomp-oversized.eml", profile: ProfileAOLSCOMP, version: "-", sourceIP: "-", arrival: time.Time{}, rcpt: []string{}, warning: WarnOversizedFieldSkipped},
	}
	orDefault := func(got, want, def string) string {
		switch want {
		case "":
			return def
		case "-":
			return ""
		}
		return want
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			fb, err := parseFile(t, tt.file, ParseOptions{})
			if err != nil {
				t.Fatalf("Parse: got error %v, want none", err)
			}
			check := func(what, got, want string) {
				t.Helper()
				if got != want {
					t.Errorf("%s: got %q, want %q", what, got, want)
				}
			}
			check("profile", fb.Profile, orDefault(fb.Profile, tt.profile, ProfileARF))
			check("feedback type", fb.FeedbackType, orDefault(fb.FeedbackType, tt.ftype, "abuse"))
			check("version", fb.Version, orDefault(fb.Version, tt.version, "1"))
			ip := ""
			if fb.SourceIP.IsValid() {
				ip = fb.SourceIP.String()
			}
			check("source ip", ip, orDefault(ip, tt.sourceIP, "198.51.100.25"))
			check("identity", fb.Identity, orDefault(fb.Identity, tt.identity, "alice@customer.example"))
			check("trace token", fb.TraceToken, orDefault(fb.TraceToken, tt.trace, "tr-7f3a9c0d5e"))
			check("message id", fb.MessageID, orDefault(fb.MessageID, tt.messageID, "20261103091401.4411@shop.example.org"))
			wantArrival := arrival
			if strings.HasPrefix(tt.file, "legacy-") {
				wantArrival = tt.arrival
			}
			if !fb.ArrivalDate.Equal(wantArrival) {
				t.Errorf("arrival date: got %v, want %v", fb.ArrivalDate, wantArrival)
			}
			wantRcpt := tt.rcpt
			if wantRcpt == nil {
				wantRcpt = []string{"victim@mailbox.example"}
			}
			if !slices.Equal(fb.OriginalRcptTo, wantRcpt) && !(len(fb.OriginalRcptTo) == 0 && len(wantRcpt) == 0) {
				t.Errorf("original rcpt to: got %q, want %q", fb.OriginalRcptTo, wantRcpt)
			}
			if got := fb.HasOriginal; got == tt.noOriginal {
				t.Errorf("has original: got %v, want %v", got, !tt.noOriginal)
			}
			if fb.OriginalHeadersOnly != tt.headersOnly {
				t.Errorf("headers only: got %v, want %v", fb.OriginalHeadersOnly, tt.headersOnly)
			}
			if tt.warning == "" {
				if len(fb.Warnings) != 0 && !strings.HasPrefix(tt.file, "arf-ip") && !strings.Contains(tt.file, "zone") && tt.file != "arf-gmt-comment.eml" {
					t.Errorf("warnings: got %q, want none", fb.Warnings)
				}
			} else if !slices.ContainsFunc(fb.Warnings, func(w string) bool { return strings.Contains(w, tt.warning) }) {
				t.Errorf("warnings: got %q, want one containing %q", fb.Warnings, tt.warning)
			}
		})
	}
}

func TestParseFields(t *testing.T) {
	fb, err := parseFile(t, "arf-old-version-folded.eml", ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fb.OriginalMailFrom, "newsletter@shop.example.org"; got != want {
		t.Errorf("folded Original-Mail-From: got %q, want %q", got, want)
	}
	if got, want := fb.ReportedDomain, []string{"shop.example.org"}; !slices.Equal(got, want) {
		t.Errorf("Reported-Domain: got %q, want %q", got, want)
	}
	if !slices.Contains(fb.Fields, Field{Name: "X-Mailbox-Complaint-Id", Value: "5d41402abc4b2a76"}) {
		t.Errorf("extension field: got fields %q, want X-Mailbox-Complaint-Id kept", fb.Fields)
	}
	if got, want := fb.UserAgent, "SomeGenerator/0.1"; got != want {
		t.Errorf("upper-case USER-AGENT: got %q, want %q", got, want)
	}

	fb, err = parseFile(t, "arf-standard.eml", ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fb.SourcePort, 41234; got != want {
		t.Errorf("source port: got %d, want %d", got, want)
	}
	if got, want := fb.ReportedURI, []string{"http://deals.shop.example.org/?id=123"}; !slices.Equal(got, want) {
		t.Errorf("reported uri: got %q, want %q", got, want)
	}
	if got, want := fb.AuthenticationResults, "mx.mailbox.example; spf=pass smtp.mailfrom=shop.example.org"; got != want {
		t.Errorf("authentication results: got %q, want %q", got, want)
	}
	if got, want := fb.Header.Get("Subject"), "Last chance: 90% off everything"; got != want {
		t.Errorf("original subject via Header: got %q, want %q", got, want)
	}
	if got, want := fb.Incidents, 1; got != want {
		t.Errorf("incidents: got %d, want %d", got, want)
	}

	// A different identity header is honoured.
	b, _ := os.ReadFile("testdata/arf-standard.eml")
	b = bytes.ReplaceAll(b, []byte("X-AuthUser: alice"), []byte("X-Customer-Login: carol"))
	fb, err = Parse(bytes.NewReader(b), ParseOptions{IdentityHeader: "x-customer-login"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fb.Identity, "carol@customer.example"; got != want {
		t.Errorf("configured identity header: got %q, want %q", got, want)
	}
}

func TestParseRefuses(t *testing.T) {
	tests := []struct {
		file string
		want error
	}{
		{"refuse-dsn.eml", ErrNotARF},
		{"refuse-plain.eml", ErrNotARF},
		{"refuse-forward-not-report.eml", ErrNotARF},
		{"refuse-no-feedback-part.eml", ErrNoFeedbackReport},
		{"refuse-missing-feedback-type.eml", ErrMissingFeedbackType},
		{"refuse-conflicting-dates.eml", ErrConflictingDates},
		{"refuse-no-boundary.eml", ErrUnreadable},
		{"refuse-report-oversized-field.eml", ErrLimitExceeded},
		{"refuse-xloop-scomp-not-mixed.eml", ErrNotARF},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			fb, err := parseFile(t, tt.file, ParseOptions{})
			if !errors.Is(err, tt.want) {
				t.Fatalf("got error %v, want %v", err, tt.want)
			}
			if fb != nil {
				t.Errorf("got feedback %+v, want nil", fb)
			}
			if got := ErrorCode(err); got != tt.want.Error() {
				t.Errorf("ErrorCode: got %q, want %q", got, tt.want.Error())
			}
		})
	}
}

// TestParseAttributionWarnings checks the warnings that change what a
// complaint can be attributed to: they are codes, exactly.
func TestParseAttributionWarnings(t *testing.T) {
	tests := []struct {
		file     string
		identity string
		want     []string // codes that must be among the warnings
		wantNot  []string // codes that must not
	}{
		{"arf-standard.eml", "alice@customer.example", nil, []string{WarnOversizedFieldSkipped, WarnIdentityAmbiguous}},
		{"arf-identity-ambiguous.eml", "", []string{WarnIdentityAmbiguous}, []string{WarnOversizedFieldSkipped}},
		{"arf-identity-repeated-equal.eml", "alice@customer.example", nil, []string{WarnIdentityAmbiguous}},
		{"arf-original-oversized-field.eml", "alice@customer.example", []string{WarnOversizedFieldSkipped}, []string{WarnIdentityAmbiguous}},
		{"legacy-aol-scomp-oversized.eml", "alice@customer.example", []string{WarnOversizedFieldSkipped}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			fb, err := parseFile(t, tt.file, ParseOptions{})
			if err != nil {
				t.Fatalf("Parse: got error %v, want none", err)
			}
			if fb.Identity != tt.identity {
				t.Errorf("identity: got %q, want %q", fb.Identity, tt.identity)
			}
			for _, w := range tt.want {
				if !slices.Contains(fb.Warnings, w) {
					t.Errorf("warnings: got %q, want %q among them", fb.Warnings, w)
				}
			}
			for _, w := range tt.wantNot {
				if slices.Contains(fb.Warnings, w) {
					t.Errorf("warnings: got %q, want no %q", fb.Warnings, w)
				}
			}
			// Attribution goes on past a skipped field: the trace token
			// and Message-ID below the padding are read.
			if fb.TraceToken != "tr-7f3a9c0d5e" || fb.MessageID != "20261103091401.4411@shop.example.org" {
				t.Errorf("trace %q, message id %q: want both read", fb.TraceToken, fb.MessageID)
			}
		})
	}
}

// TestParseOversizedFieldPlace puts one field of 3 KiB (over a MaxFieldBytes
// of 2 KiB) in each place of a report: only the original's is skipped.
func TestParseOversizedFieldPlace(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "arf-standard.eml"))
	if err != nil {
		t.Fatal(err)
	}
	big := "X-Big: " + strings.Repeat("b", 3<<10) + "\r\n"
	tests := []struct {
		name   string
		anchor string // big goes just before this text
		want   error
	}{
		{"report header", "Subject: Abuse report", ErrLimitExceeded},
		{"text part header", "Content-Type: text/plain; charset=\"US-ASCII\"", ErrLimitExceeded},
		{"feedback-report part", "User-Agent: MailboxFBL/2.4", ErrLimitExceeded},
		{"original header", "X-AuthUser: alice@customer.example", nil},
		{"original header, last field", "\r\nBuy now", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := string(raw)
			i := strings.Index(in, tt.anchor)
			if i < 0 {
				t.Fatalf("anchor %q not in the report", tt.anchor)
			}
			in = in[:i] + big + in[i:]
			fb, err := Parse(strings.NewReader(in), ParseOptions{MaxFieldBytes: 2 << 10})
			if !errors.Is(err, tt.want) {
				t.Fatalf("got error %v, want %v", err, tt.want)
			}
			if tt.want != nil {
				return
			}
			if !slices.Contains(fb.Warnings, WarnOversizedFieldSkipped) {
				t.Errorf("warnings: got %q, want %q", fb.Warnings, WarnOversizedFieldSkipped)
			}
			if fb.Identity != "alice@customer.example" {
				t.Errorf("identity: got %q, want alice@customer.example", fb.Identity)
			}
		})
	}
}

func TestParseJMRPSubjectIP(t *testing.T) {
	fb, err := parseFile(t, "legacy-jmrp.eml", ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := fb.SourceIP.String(); got != "198.51.100.25" {
		t.Errorf("source ip: got %s, want 198.51.100.25 from the Subject", got)
	}
	tests := []struct {
		subject string
		raw     string
		ok      bool
	}{
		{"complaint about message from 198.51.100.25", "198.51.100.25", true},
		{"Complaint About Message From [2001:db8::7]", "[2001:db8::7]", true},
		{"FW: complaint about message from  192.0.2.9 (hotmail)", "192.0.2.9", true},
		{"complaint about message from", "", false},
		{"your newsletter", "", false},
	}
	for _, tt := range tests {
		raw, ok := jmrpSourceIP(tt.subject)
		if raw != tt.raw || ok != tt.ok {
			t.Errorf("jmrpSourceIP(%q): got %q %v, want %q %v", tt.subject, raw, ok, tt.raw, tt.ok)
		}
	}
}

func TestParseReportFrom(t *testing.T) {
	for file, want := range map[string]string{
		"arf-standard.eml":           "fbl@feedback.mailbox.example",
		"legacy-jmrp.eml":            "staff@hotmail.com",
		"legacy-aol-scomp-xloop.eml": "tos-notify@complaints.portal.example",
	} {
		fb, err := parseFile(t, file, ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if fb.From != want {
			t.Errorf("%s: From: got %q, want %q", file, fb.From, want)
		}
	}
}

// hostile builds inputs that must be refused with ErrLimitExceeded.
func TestParseHostile(t *testing.T) {
	head := "From: x@example.com\r\nMIME-Version: 1.0\r\n"
	deep := func(n int) string {
		var b strings.Builder
		b.WriteString(head)
		for i := range n {
			fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i)
		}
		b.WriteString("Content-Type: text/plain\r\n\r\nhi\r\n")
		return b.String()
	}
	manyParts := func(n int) string {
		var b strings.Builder
		b.WriteString(head + "Content-Type: multipart/report; report-type=feedback-report; boundary=\"p\"\r\n\r\n")
		for range n {
			b.WriteString("--p\r\nContent-Type: text/plain\r\n\r\nx\r\n")
		}
		b.WriteString("--p--\r\n")
		return b.String()
	}
	giantField := head + "Subject: " + strings.Repeat("A", 200<<10) + "\r\n\r\nbody\r\n"
	giantFolded := head + "Subject: x" + strings.Repeat("\r\n A", 40<<10) + "\r\n\r\nbody\r\n"
	manyFields := head + strings.Repeat("X-F: v\r\n", 5000) + "\r\nbody\r\n"
	nestedMessages := func(n int) string {
		s := "From: a@b.example\r\nContent-Type: text/plain\r\n\r\nx\r\n"
		for i := range n {
			s = fmt.Sprintf("%sContent-Type: multipart/mixed; boundary=\"m%d\"\r\n\r\n--m%d\r\nContent-Type: message/rfc822\r\n\r\n%s\r\n--m%d--\r\n", head, i, i, s, i)
		}
		return s
	}
	tests := []struct {
		name  string
		input string
		opts  ParseOptions
	}{
		{"deep multipart nesting", deep(50), ParseOptions{}},
		{"huge part count", manyParts(5000), ParseOptions{}},
		{"giant field", giantField, ParseOptions{}},
		{"giant folded field", giantFolded, ParseOptions{}},
		{"too many fields", manyFields, ParseOptions{}},
		{"input over MaxBytes", manyParts(10), ParseOptions{MaxBytes: 100}},
		{"nested forwarded messages", nestedMessages(20), ParseOptions{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.input), tt.opts)
			if !errors.Is(err, ErrLimitExceeded) {
				t.Fatalf("got error %v, want %v", err, ErrLimitExceeded)
			}
		})
	}
}

func TestParseDate(t *testing.T) {
	tests := []struct {
		in      string
		want    string // RFC 3339
		unknown bool
	}{
		{"Tue, 03 Nov 2026 09:14:07 +0000", "2026-11-03T09:14:07Z", false},
		{"3 Nov 2026 04:14:07 EST", "2026-11-03T09:14:07Z", false},
		{"Tue, 3 Nov 2026 05:14:07 EDT", "2026-11-03T09:14:07Z", false},
		{"Tue, 3 Nov 2026 03:14:07 CST", "2026-11-03T09:14:07Z", false},
		{"Tue, 3 Nov 2026 04:14:07 CDT", "2026-11-03T09:14:07Z", false},
		{"Tue, 3 Nov 2026 02:14:07 MST", "2026-11-03T09:14:07Z", false},
		{"Tue, 3 Nov 2026 03:14:07 MDT", "2026-11-03T09:14:07Z", false},
		{"Tue, 3 Nov 2026 01:14:07 PST", "2026-11-03T09:14:07Z", false},
		{"Tue, 3 Nov 2026 02:14:07 PDT", "2026-11-03T09:14:07Z", false},
		{"Tue, 3 Nov 2026 09:14:07 UT", "2026-11-03T09:14:07Z", false},
		{"Tue, 3 Nov 2026 09:14:07 GMT", "2026-11-03T09:14:07Z", false},
		{"Tue, 3 Nov 2026 09:14:07 Z", "2026-11-03T09:14:07Z", false},
		{"Tue, 3 Nov 2026 09:14:07 A", "2026-11-03T09:14:07Z", true},
		{"Tue, 3 Nov 2026 09:14:07 -0000", "2026-11-03T09:14:07Z", true},
		{"3 Nov 26 09:14 +0100", "2026-11-03T08:14:00Z", false},
		{"3 Nov 99 09:14:07 +0000", "1999-11-03T09:14:07Z", false},
		{"Tue, 03 Nov 2026 09:14:07 +0000 (UTC)", "2026-11-03T09:14:07Z", false},
		{"2026-11-03T10:14:07+01:00", "2026-11-03T09:14:07Z", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, unknown, err := ParseDate(tt.in)
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if s := got.UTC().Format(time.RFC3339); s != tt.want {
				t.Errorf("got %s, want %s", s, tt.want)
			}
			if unknown != tt.unknown {
				t.Errorf("unknown zone: got %v, want %v", unknown, tt.unknown)
			}
		})
	}
	for _, bad := range []string{"", "yesterday", "31 Feb 2026 10:00:00 +0000", "3 Nov 2026 25:00:00 +0000"} {
		if _, _, err := ParseDate(bad); err == nil {
			t.Errorf("ParseDate(%q): got no error, want one", bad)
		}
	}
}

func TestParseSourceIP(t *testing.T) {
	tests := map[string]string{
		"192.0.2.1":                   "192.0.2.1",
		"[192.0.2.1]":                 "192.0.2.1",
		"[IPv6:2001:db8::1]":          "2001:db8::1",
		"[ipv6:2001:DB8:0:0:0:0:0:1]": "2001:db8::1",
		"2001:0db8::0001":             "2001:db8::1",
		"::ffff:192.0.2.1":            "192.0.2.1",
		"192.0.2.1 (mx.example)":      "192.0.2.1",
	}
	for in, want := range tests {
		a, err := ParseSourceIP(in)
		if err != nil {
			t.Errorf("ParseSourceIP(%q): got error %v, want %s", in, err, want)
			continue
		}
		if a.String() != want {
			t.Errorf("ParseSourceIP(%q): got %s, want %s", in, a, want)
		}
	}
	if _, err := ParseSourceIP("mx.example"); err == nil {
		t.Errorf("ParseSourceIP(host name): got no error, want one")
	}
}

func TestIsRedacted(t *testing.T) {
	for s, want := range map[string]bool{
		"redacted": true, "[REDACTED]": true, "xxxxx@example.com": true, "***@example.com": true,
		"": true, "alice@example.com": false, "x@example.com": false, "max@example.com": false,
	} {
		if got := IsRedacted(s); got != want {
			t.Errorf("IsRedacted(%q): got %v, want %v", s, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.eml")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("Content-Type: multipart/report; boundary=x\r\n\r\n--x\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\n--x--"))
	f.Fuzz(func(t *testing.T, b []byte) {
		opts := ParseOptions{MaxBytes: 1 << 20}
		fb, err := Parse(bytes.NewReader(b), opts)
		if err != nil {
			if fb != nil {
				t.Fatalf("got feedback and error %v", err)
			}
			if ErrorCode(err) == "" {
				t.Fatalf("error %v has no code", err)
			}
			return
		}
		if fb.FeedbackType == "" {
			t.Fatalf("accepted a report without feedback type")
		}
		if fb.SourceIP.IsValid() && fb.SourceIP.String() != fb.SourceIP.Unmap().String() {
			t.Fatalf("source ip %s not canonical", fb.SourceIP)
		}
		if fb.Identity != "" && slices.Contains(fb.Warnings, WarnIdentityAmbiguous) {
			t.Fatalf("identity %q despite %s", fb.Identity, WarnIdentityAmbiguous)
		}
		_ = NewResult("fuzz", fb, nil)
	})
}

// FuzzParseOriginal puts fuzzed bytes as the complained-about original into
// an RFC 5965 report, an AOL scomp complaint and a JMRP complaint (whose
// Subject is fuzzed too). An original cannot make a report unreadable:
// its oversized fields are skipped, so the RFC 5965 report is accepted
// whenever the original leaves the MIME structure alone; and the identity
// is one of the identity header's values, or none when they differ.
func FuzzParseOriginal(f *testing.F) {
	for _, name := range []string{"arf-standard.eml", "arf-identity-ambiguous.eml", "legacy-aol-scomp-xloop.eml"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		i := bytes.Index(b, []byte("Return-Path: <newsletter"))
		f.Add(b[i:], "complaint about message from 198.51.100.25")
	}
	f.Add([]byte("X-AuthUser: a\r\nX-AuthUser: A\r\nX-Long: "+strings.Repeat("x", 600)+"\r\n\r\nbody"), "complaint about message from [::1]")
	f.Add([]byte("X-AuthUser: a\nX-AuthUser: b\n\tfolded\n"), "Complaint about message from x")
	const boundary = "fuzz-b0undary"
	opts := ParseOptions{MaxBytes: 1 << 20, MaxFieldBytes: 256}
	f.Fuzz(func(t *testing.T, orig []byte, subject string) {
		if len(orig) > 256<<10 || strings.ContainsAny(subject, "\r\n") {
			return
		}
		wrappers := []struct {
			name, head string
		}{
			{"arf", "From: fbl@mailbox.example\r\nContent-Type: multipart/report; report-type=feedback-report; boundary=" + boundary + "\r\n\r\n" +
				"--" + boundary + "\r\nContent-Type: text/plain\r\n\r\ncomplaint\r\n" +
				"--" + boundary + "\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: F/1\r\nVersion: 1\r\n\r\n"},
			{"scomp", "From: tos@portal.example\r\nX-Loop: scomp\r\nContent-Type: multipart/mixed; boundary=" + boundary + "\r\n\r\n" +
				"--" + boundary + "\r\nContent-Type: text/plain\r\n\r\n\r\n"},
			{"jmrp", "From: staff@hotmail.com\r\nSubject: " + subject + "\r\nContent-Type: multipart/mixed; boundary=" + boundary + "\r\n\r\n" +
				"--" + boundary + "\r\nContent-Type: text/plain\r\n\r\njunk mail complaint\r\n"},
		}
		for _, w := range wrappers {
			in := w.head + "--" + boundary + "\r\nContent-Type: message/rfc822\r\n\r\n" + string(orig) + "\r\n--" + boundary + "--\r\n"
			fb, err := Parse(strings.NewReader(in), opts)
			if err != nil {
				if fb != nil {
					t.Fatalf("%s: got feedback and error %v", w.name, err)
				}
				structural := bytes.Contains(orig, []byte(boundary)) || bytes.Count(orig, []byte("\n")) >= DefaultMaxFields
				if w.name == "arf" && !structural {
					t.Fatalf("%s: an original that leaves the MIME structure alone made the report fail: %v", w.name, err)
				}
				continue
			}
			if fb.Identity != "" {
				if slices.Contains(fb.Warnings, WarnIdentityAmbiguous) {
					t.Fatalf("%s: identity %q despite %s", w.name, fb.Identity, WarnIdentityAmbiguous)
				}
				flat := strings.ToLower(strings.Join(strings.Fields(string(orig)), " "))
				if !strings.Contains(flat, strings.ToLower(fb.Identity)) {
					t.Fatalf("%s: identity %q not in the original", w.name, fb.Identity)
				}
			}
			if w.name == "jmrp" && fb.Profile == ProfileJMRP && fb.SourceIP.IsValid() && !strings.Contains(strings.Join(strings.Fields(strings.ToLower(subject)), " "), "complaint about message from") {
				t.Fatalf("jmrp: source ip %s without the Subject naming one", fb.SourceIP)
			}
			_ = NewResult("fuzz", fb, nil)
			if w.name != "arf" {
				continue
			}
			// first and last take one occurrence: never ambiguous, and
			// the identity is in the original; only names one only when
			// first and last agree on it.
			picked := map[Occurrence]string{}
			for _, occ := range []Occurrence{OccurrenceFirst, OccurrenceLast} {
				o := opts
				o.IdentityOccurrence = occ
				fo, err := Parse(strings.NewReader(in), o)
				if err != nil {
					t.Fatalf("%s: %v with occurrence %s, none with only", w.name, err, occ)
				}
				if slices.Contains(fo.Warnings, WarnIdentityAmbiguous) {
					t.Fatalf("%s: %s with occurrence %s", w.name, WarnIdentityAmbiguous, occ)
				}
				picked[occ] = fo.Identity
			}
			if fb.Identity != "" && (!strings.EqualFold(fb.Identity, picked[OccurrenceFirst]) || !strings.EqualFold(fb.Identity, picked[OccurrenceLast])) {
				t.Fatalf("%s: only names %q, first %q, last %q", w.name, fb.Identity, picked[OccurrenceFirst], picked[OccurrenceLast])
			}
		}
	})
}

// BenchmarkParseLarge parses a report whose part 3 is a 6 MiB base64
// original: time and memory grow linearly with the input.
func BenchmarkParseLarge(b *testing.B) {
	raw, err := os.ReadFile("testdata/arf-base64.eml")
	if err != nil {
		b.Fatal(err)
	}
	i := bytes.LastIndex(raw, []byte("\n--fbl_b0undary_1--"))
	line := []byte("QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\n")
	big := append(append(append([]byte(nil), raw[:i]...), bytes.Repeat(line, (6<<20)/len(line))...), raw[i:]...)
	b.SetBytes(int64(len(big)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(bytes.NewReader(big), ParseOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
