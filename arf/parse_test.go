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
		{file: "arf-identity-topmost.eml"},
		{file: "arf-no-report-type.eml", warning: "without report-type"},
		{file: "arf-forwarded-attachment.eml", headersOnly: true, warning: "forwarded as an attachment"},
		{file: "legacy-jmrp.eml", profile: ProfileJMRP, version: "-", sourceIP: "-", arrival: time.Time{}, rcpt: []string{"victim@hotmail.example"}, warning: "JMRP"},
		{file: "legacy-aol-scomp.eml", profile: ProfileAOLSCOMP, version: "-", sourceIP: "-", arrival: time.Time{}, rcpt: []string{}, warning: "AOL"},
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
		_ = NewResult("fuzz", fb, nil)
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
