package filter

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/outguard/outguard/internal/testutil"
)

func TestParseMessage(t *testing.T) {
	zipInZip := makeZip(t, "docs/inner.zip", string(makeZip(t, "setup.exe", "MZ")), "readme.txt", "hello")
	for _, tc := range []struct {
		name  string
		raw   []byte
		check func(t *testing.T, m *Message)
	}{
		{
			name: "quoted-printable utf-8",
			raw:  buildMessage(stdHeaders, att{ctype: "text/plain; charset=utf-8", encoding: "quoted-printable", body: []byte("caf=C3=A9 au l=\r\nait")}),
			check: func(t *testing.T, m *Message) {
				if got, want := m.BodyText, "café au lait"; got != want {
					t.Errorf("got body %q, want %q", got, want)
				}
			},
		},
		{
			name: "latin-1 charset",
			raw:  buildMessage(stdHeaders, att{ctype: "text/plain; charset=iso-8859-1", body: []byte("Gr\xfc\xdfe aus M\xfcnchen")}),
			check: func(t *testing.T, m *Message) {
				if got, want := m.BodyText, "Grüße aus München"; got != want {
					t.Errorf("got body %q, want %q", got, want)
				}
			},
		},
		{
			name: "koi8-r charset in base64",
			raw:  buildMessage(stdHeaders, att{ctype: "text/plain; charset=koi8-r", encoding: "base64", body: []byte("\xf0\xd2\xc9\xd7\xc5\xd4")}),
			check: func(t *testing.T, m *Message) {
				if got, want := m.BodyText, "Привет"; got != want {
					t.Errorf("got body %q, want %q", got, want)
				}
			},
		},
		{
			name: "unknown charset is a defect, text kept",
			raw:  buildMessage(stdHeaders, att{ctype: "text/plain; charset=x-no-such", body: []byte("plain words")}),
			check: func(t *testing.T, m *Message) {
				if !strings.Contains(m.BodyText, "plain words") {
					t.Errorf("got body %q, want the raw text kept", m.BodyText)
				}
				if len(m.Defects) == 0 {
					t.Errorf("got no defect, want the unknown charset noted")
				}
			},
		},
		{
			name: "base64 attachment",
			raw:  buildMessage(stdHeaders, textPart("see attached"), att{ctype: "application/pdf", name: "report.pdf", body: []byte("%PDF-1.4 fake")}),
			check: func(t *testing.T, m *Message) {
				a := m.Attachments()
				if len(a) != 1 {
					t.Fatalf("got %d attachments, want 1", len(a))
				}
				if a[0].Filename != "report.pdf" || string(a[0].Data) != "%PDF-1.4 fake" || a[0].ContentType != "application/pdf" || a[0].Path != "2" {
					t.Errorf("got %+v, want report.pdf decoded at path 2", a[0])
				}
				if m.BodyText != "see attached" {
					t.Errorf("got body %q, want only the inline text", m.BodyText)
				}
			},
		},
		{
			name: "RFC 2231 file name",
			raw: []byte(stdHeaders + "\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: application/pdf\r\n" +
				"Content-Disposition: attachment; filename*=utf-8''r%C3%A9sum%C3%A9.pdf\r\n\r\nx\r\n--b--\r\n"),
			check: func(t *testing.T, m *Message) {
				if got := m.Parts[0].Filename; got != "résumé.pdf" {
					t.Errorf("got filename %q, want résumé.pdf", got)
				}
			},
		},
		{
			name: "RFC 2047 name parameter",
			raw: []byte(stdHeaders + "\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n" +
				"Content-Type: application/octet-stream; name=\"=?utf-8?B?aW52b2ljZS5leGU=?=\"\r\n\r\nx\r\n--b--\r\n"),
			check: func(t *testing.T, m *Message) {
				if got := m.Parts[0].Filename; got != "invoice.exe" {
					t.Errorf("got filename %q, want invoice.exe", got)
				}
			},
		},
		{
			name: "malformed Content-Type still yields the name",
			raw: []byte(stdHeaders + "\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n" +
				"Content-Type: application/octet-stream; name=evil.exe; name=other.txt; ;;\r\n\r\nx\r\n--b--\r\n"),
			check: func(t *testing.T, m *Message) {
				if got := m.Parts[0].Filename; got != "evil.exe" {
					t.Errorf("got filename %q, want evil.exe", got)
				}
			},
		},
		{
			name: "HTML text, links and password form",
			raw: buildMessage(stdHeaders, att{ctype: "text/html; charset=utf-8", body: []byte(`<html><head><style>p{color:red}</style>
<script>var x = "http://script.example/";</script></head><body><p>Hello&nbsp;<b>world</b></p>
<a href="https://track.example.net/c?u=1">www.shop.example.com</a><div>Visit https://plain.example.org/page.</div>
<form action="https://collect.example/steal"><input type="password" name="pw"></form></body></html>`)}),
			check: func(t *testing.T, m *Message) {
				p := m.Parts[0]
				if !p.HTML || !p.PasswordForm {
					t.Errorf("got HTML %v PasswordForm %v, want both", p.HTML, p.PasswordForm)
				}
				if strings.Contains(m.BodyText, "color") || strings.Contains(m.BodyText, "script.example") {
					t.Errorf("got body %q, want style and script skipped", m.BodyText)
				}
				if !strings.Contains(m.BodyText, "Hello world") {
					t.Errorf("got body %q, want the visible text", m.BodyText)
				}
				want := []URL{
					{Raw: "https://track.example.net/c?u=1", Host: "track.example.net", Text: "www.shop.example.com", Href: true},
					{Raw: "https://collect.example/steal", Host: "collect.example", Href: true},
				}
				for _, w := range want {
					if !slices.Contains(m.URLs, w) {
						t.Errorf("got URLs %+v, want %+v among them", m.URLs, w)
					}
				}
				if !slices.ContainsFunc(m.URLs, func(u URL) bool { return u.Raw == "https://plain.example.org/page" }) {
					t.Errorf("got URLs %+v, want the URL in the text without its full stop", m.URLs)
				}
			},
		},
		{
			name: "attached message is walked",
			raw: []byte(stdHeaders + "\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nforwarded\r\n--b\r\n" +
				"Content-Type: message/rfc822\r\n\r\nFrom: x@example.net\r\nSubject: inner\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\n" +
				"Content-Type: text/plain\r\n\r\ninner text http://inner.example/\r\n--c\r\nContent-Type: application/octet-stream; name=a.bin\r\n\r\nzz\r\n--c--\r\n--b--\r\n"),
			check: func(t *testing.T, m *Message) {
				if len(m.Parts) != 3 {
					t.Fatalf("got %d parts, want 3", len(m.Parts))
				}
				if got := m.Parts[2].Path; got != "2.1.2" {
					t.Errorf("got path %q, want 2.1.2", got)
				}
				if !strings.Contains(m.BodyText, "inner text") {
					t.Errorf("got body %q, want the inner text", m.BodyText)
				}
				if len(m.URLs) != 1 || m.URLs[0].Host != "inner.example" {
					t.Errorf("got URLs %+v, want the inner URL", m.URLs)
				}
			},
		},
		{
			name: "zip listing with nested archive",
			raw:  buildMessage(stdHeaders, textPart("files"), att{ctype: "application/zip", name: "files.zip", body: zipInZip}),
			check: func(t *testing.T, m *Message) {
				var names []string
				for _, e := range m.Parts[1].Archive {
					names = append(names, e.Name)
				}
				want := []string{"docs/inner.zip", "docs/inner.zip/setup.exe", "readme.txt"}
				if !slices.Equal(names, want) {
					t.Errorf("got entries %q, want %q", names, want)
				}
			},
		},
		{
			name: "truncated zip is a defect",
			raw:  buildMessage(stdHeaders, att{ctype: "application/zip", name: "broken.zip", body: zipInZip[:40]}),
			check: func(t *testing.T, m *Message) {
				if len(m.Defects) == 0 || !strings.Contains(m.Defects[0], "archive") {
					t.Errorf("got defects %q, want an archive defect", m.Defects)
				}
			},
		},
		{
			name: "mbox From line is skipped",
			raw:  []byte("From alice@example.com Mon Nov  2 10:00:00 2026\n" + stdHeaders + "\r\n\r\nbody\r\n"),
			check: func(t *testing.T, m *Message) {
				if got := m.Header.Get("Subject"); got != "test" {
					t.Errorf("got subject %q, want test", got)
				}
			},
		},
		{
			name: "garbage header still yields text",
			raw:  []byte("this is not a header line\r\nXJS body words\r\n"),
			check: func(t *testing.T, m *Message) {
				if len(m.Defects) == 0 {
					t.Errorf("got no defect, want the header noted")
				}
				if !strings.Contains(m.BodyText, "body words") {
					t.Errorf("got body %q, want the raw text", m.BodyText)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.check(t, mustParse(t, tc.raw))
		})
	}
}

func TestParseLimits(t *testing.T) {
	nested := func(depth int) []byte {
		var b strings.Builder
		b.WriteString(stdHeaders + "\r\n")
		for i := 0; i < depth; i++ {
			fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i)
		}
		b.WriteString("Content-Type: text/plain\r\n\r\ndeep\r\n")
		for i := depth - 1; i >= 0; i-- {
			fmt.Fprintf(&b, "--b%d--\r\n", i)
		}
		return []byte(b.String())
	}
	many := func(n int) []byte {
		parts := make([]att, n)
		for i := range parts {
			parts[i] = att{ctype: "application/octet-stream", name: fmt.Sprintf("f%d.bin", i), body: []byte("x")}
		}
		return buildMessage(stdHeaders, parts...)
	}
	big := bytes.Repeat([]byte("0123456789"), 1000)
	for _, tc := range []struct {
		name       string
		raw        []byte
		lim        Limits
		wantParts  int
		wantDefect string
	}{
		{"depth within limit", nested(3), Limits{MaxDepth: 5}, 1, ""},
		{"depth over limit", nested(8), Limits{MaxDepth: 5}, 0, "nesting deeper than 5"},
		{"parts over limit", many(20), Limits{MaxParts: 5}, 5, "more than 5 parts"},
		{"part truncated", buildMessage(stdHeaders, att{ctype: "application/octet-stream", name: "a.bin", body: big}), Limits{MaxPartBytes: 100}, 1, "truncated"},
		{"total truncated", buildMessage(stdHeaders, att{ctype: "application/octet-stream", name: "a.bin", body: big}, att{ctype: "application/octet-stream", name: "b.bin", body: big}), Limits{MaxPartBytes: 8000, MaxDecodedBytes: 12000}, 2, "message decodes to more than 12000"},
		{"urls over limit", buildMessage(stdHeaders, textPart("http://a.example/ http://b.example/ http://c.example/")), Limits{MaxURLs: 2}, 1, "more than 2 URLs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseBytes(tc.raw, tc.lim)
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Parts) != tc.wantParts {
				t.Errorf("got %d parts, want %d", len(m.Parts), tc.wantParts)
			}
			got := strings.Join(m.Defects, "; ")
			if tc.wantDefect == "" && got != "" {
				t.Errorf("got defects %q, want none", got)
			}
			if !strings.Contains(got, tc.wantDefect) {
				t.Errorf("got defects %q, want one containing %q", got, tc.wantDefect)
			}
			var kept int64
			for _, p := range m.Parts {
				kept += int64(len(p.Data))
				if p.Truncated && p.Size <= int64(len(p.Data)) {
					t.Errorf("part %s: got size %d for %d bytes kept, want the full size", p.Path, p.Size, len(p.Data))
				}
			}
			if lim := tc.lim.withDefaults(); kept > lim.MaxDecodedBytes {
				t.Errorf("got %d decoded bytes kept, want at most %d", kept, lim.MaxDecodedBytes)
			}
		})
	}
}

func TestZipLimits(t *testing.T) {
	files := []string{}
	for i := 0; i < 50; i++ {
		files = append(files, fmt.Sprintf("f%02d.txt", i), strings.Repeat("a", 1000))
	}
	z := makeZip(t, files...)
	var defects, gaps []string
	entries := listZip(z, Limits{MaxArchiveEntries: 10, MaxArchiveBytes: 2500, MaxArchiveDepth: 1}, func(s string) { defects = append(defects, s) },
		func(l, e string) { gaps = append(gaps, l+" "+e) })
	if len(entries) != 10 {
		t.Errorf("got %d entries, want 10", len(entries))
	}
	// Each entry is 1000 bytes, less than the head read past the budget.
	var read int
	for _, e := range entries {
		read += len(e.Data)
	}
	if read != 10*1000 {
		t.Errorf("got %d bytes read, want every entry's 1000", read)
	}
	if len(defects) != 1 {
		t.Errorf("got defects %q, want one about the entry limit", defects)
	}
	if !slices.Equal(gaps, []string{"max_archive_entries f10.txt"}) {
		t.Errorf("got gaps %q, want the entry limit at f10.txt", gaps)
	}
}

func TestURLAuthority(t *testing.T) {
	for _, tc := range []struct {
		raw, host, userinfo string
	}{
		{"http://paypal.com@evil.example/login", "evil.example", "paypal.com"},
		{"https://User:Pw@Host.Example:8443/x", "host.example", "User:Pw"},
		{"http://[2001:db8::1]:80/", "2001:db8::1", ""},
		{"http://evil.example\\@paypal.com/", "evil.example", ""},
		{"www.example.com/path", "www.example.com", ""},
		{"https://example.com./", "example.com", ""},
	} {
		t.Run(tc.raw, func(t *testing.T) {
			h, u := urlAuthority(tc.raw)
			if h != tc.host || u != tc.userinfo {
				t.Errorf("got host %q userinfo %q, want %q %q", h, u, tc.host, tc.userinfo)
			}
		})
	}
}

func TestTrimURLTail(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"http://a.example/x.", "http://a.example/x"},
		{"http://a.example/wiki/Foo_(bar)", "http://a.example/wiki/Foo_(bar)"},
		{"http://a.example/x)", "http://a.example/x"},
		{"http://a.example/?q=1,", "http://a.example/?q=1"},
	} {
		if got := trimURLTail(tc.in); got != tc.want {
			t.Errorf("trimURLTail(%q): got %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzParseMessage(f *testing.F) {
	f.Add(buildMessage(stdHeaders, textPart("hello http://example.com/")))
	f.Add(buildMessage(stdHeaders, att{ctype: "text/html", body: []byte(`<a href="http://x.example/">y.example</a><input type=password>`)}))
	f.Add(buildMessage(stdHeaders, textPart("a"), att{ctype: "application/zip", name: "a.zip", body: makeZip(f, "a.exe", "MZ", "b.zip", string(makeZip(f, "c.txt", "c")))}))
	f.Add([]byte("From: a\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: message/rfc822\r\n\r\nSubject: y\r\n\r\nz\r\n--x--\r\n"))
	f.Add([]byte("Content-Type: text/plain; charset=utf-7\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=ZZ=\r\n"))
	f.Add([]byte("From x\n\n"))
	f.Add(testutil.NestedMessage("Subject: deep", 9, testutil.Leaf{Type: "application/zip", Name: "a.zip", Body: testutil.EncryptedZip("b.exe", []byte("MZ"))}))
	f.Add(testutil.ManyParts("Subject: many", 25, testutil.Leaf{Type: "application/zip", Name: "n.zip", Body: testutil.NestedZip(5, "c.txt", []byte("c"))}))
	for _, dir := range []string{"ham", "spam"} {
		files, _ := filepath.Glob(filepath.Join("..", "testdata", dir, "*.eml"))
		for _, file := range files {
			if b, err := os.ReadFile(file); err == nil {
				f.Add(b)
			}
		}
	}
	lim := Limits{MaxDepth: 5, MaxParts: 20, MaxPartBytes: 1 << 16, MaxDecodedBytes: 1 << 18, MaxArchiveEntries: 20, MaxArchiveBytes: 1 << 16, MaxURLs: 50}
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := ParseBytes(raw, lim)
		if err != nil {
			t.Fatalf("ParseBytes on memory failed: %v", err)
		}
		if len(m.Parts) > lim.MaxParts+1 {
			t.Fatalf("got %d parts, limit %d", len(m.Parts), lim.MaxParts)
		}
		var kept int64
		for _, p := range m.Parts {
			kept += int64(len(p.Data))
			if int64(len(p.Data)) > lim.MaxPartBytes {
				t.Fatalf("part keeps %d bytes, limit %d", len(p.Data), lim.MaxPartBytes)
			}
			if len(p.Archive) > lim.MaxArchiveEntries {
				t.Fatalf("archive lists %d entries, limit %d", len(p.Archive), lim.MaxArchiveEntries)
			}
		}
		if kept > lim.MaxDecodedBytes {
			t.Fatalf("message keeps %d bytes, limit %d", kept, lim.MaxDecodedBytes)
		}
		if len(m.URLs) > lim.MaxURLs {
			t.Fatalf("got %d URLs, limit %d", len(m.URLs), lim.MaxURLs)
		}
		// One gap at most per limit and kind.
		if n := len(gapLimits) * len(gapKindNames); len(m.Gaps) > n {
			t.Fatalf("got %d gaps, at most %d expected", len(m.Gaps), n)
		}
		for _, d := range m.Defects {
			if strings.Contains(d, "rest skipped") && len(m.Gaps) == 0 {
				t.Fatalf("defect %q without a gap: content passed unscanned unflagged", d)
			}
		}
		b, _ := NewBuiltin(BuiltinOptions{ProtectedDomains: []string{"paypal.com"}})
		if _, err := b.Scan(t.Context(), m); err != nil {
			t.Fatalf("builtin scan: %v", err)
		}
	})
}
