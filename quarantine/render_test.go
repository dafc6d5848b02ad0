package quarantine

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestRender(t *testing.T) {
	crlf := func(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }
	cases := []struct {
		name      string
		raw       string
		limit     int
		wantType  string
		wantBody  string
		wantTrunc bool
		wantParts int
		header    [2]string // a field that must be present, decoded
	}{
		{
			name:      "plain",
			raw:       sampleRaw,
			wantType:  "text/plain",
			wantBody:  "Buy now!\nhttp://example.com/\n",
			wantParts: 1,
			header:    [2]string{"Subject", "Quarterly numbers"},
		},
		{
			name: "alternative prefers text/plain",
			raw: crlf(`Subject: =?utf-8?q?Caf=C3=A9_offer?=
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary=b1

--b1
Content-Type: text/html; charset=utf-8

<p>HTML version</p>
--b1
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: base64

UGxhaW4gdmVyc2lvbg==
--b1--
`),
			wantType:  "text/plain",
			wantBody:  "Plain version",
			wantParts: 2,
			header:    [2]string{"Subject", "Café offer"},
		},
		{
			name: "html only is stripped to text",
			raw: crlf(`Subject: hi
Content-Type: text/html; charset=iso-8859-1

<html><head><title>t</title><style>p{color:red}</style></head><body>
<script>alert("x")</script><p>Caf` + "\xe9" + ` &amp; <b>cr&egrave;me</b></p><div>line&nbsp;two<br>three</div>
</body></html>
`),
			wantType: "text/html",
			// The text the filter read (internal/htmltext): the title is
			// part of it, block elements end a line.
			wantBody:  "t\nCafé & crème\nline two\nthree",
			wantParts: 1,
		},
		{
			name:      "control and bidi characters removed",
			raw:       "Subject: a\x1b[31mred\r\n\r\nx\x1b[2Jy\u202ez\x07\r\nnext\r\n",
			wantType:  "text/plain",
			wantBody:  "x[2Jyz\nnext\n",
			wantParts: 1,
			header:    [2]string{"Subject", "a[31mred"},
		},
		{
			name:      "capped at the limit on a character boundary",
			raw:       "Subject: x\r\n\r\n" + strings.Repeat("é", 100),
			limit:     11,
			wantType:  "text/plain",
			wantBody:  strings.Repeat("é", 5),
			wantTrunc: true,
			wantParts: 1,
		},
		{
			name: "attachment listed, not rendered",
			raw: crlf(`Content-Type: multipart/mixed; boundary=zz

--zz
Content-Type: text/plain

see attached
--zz
Content-Type: application/octet-stream; name="invoice.exe"
Content-Disposition: attachment; filename="invoice.exe"
Content-Transfer-Encoding: base64

TVqQAAMAAAAEAAAA
--zz--
`),
			wantType:  "text/plain",
			wantBody:  "see attached",
			wantParts: 2,
		},
		{
			name:      "not a message at all",
			raw:       "\x00\x01garbage without header",
			wantType:  "text/plain",
			wantBody:  "garbage without header",
			wantParts: 0,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			limit := tc.limit
			if limit == 0 {
				limit = DefaultRenderLimit
			}
			v := render([]byte(tc.raw), limit)
			if v.BodyType != tc.wantType || v.Body != tc.wantBody || v.Truncated != tc.wantTrunc {
				t.Errorf("got %s %q truncated %v, want %s %q truncated %v", v.BodyType, v.Body, v.Truncated, tc.wantType, tc.wantBody, tc.wantTrunc)
			}
			if len(v.Parts) != tc.wantParts {
				t.Errorf("got parts %+v, want %d", v.Parts, tc.wantParts)
			}
			if tc.header[0] != "" {
				found := false
				for _, h := range v.Header {
					if strings.EqualFold(h.Name, tc.header[0]) && h.Value == tc.header[1] {
						found = true
					}
				}
				if !found {
					t.Errorf("got header %+v, want %s: %q", v.Header, tc.header[0], tc.header[1])
				}
			}
		})
	}
}

func TestShow(t *testing.T) {
	eachBackend(t, func(t *testing.T) {
		s, _ := newTestStore(t, Options{})
		rec := sampleRecord(testBase, StatusQuarantined, VerdictSpam)
		if err := s.Quarantine(context.Background(), rec, []byte(sampleRaw)); err != nil {
			t.Fatal(err)
		}
		v, err := s.Show(rec.ID, Actor{Domain: rec.Domain})
		if err != nil {
			t.Fatal(err)
		}
		if v.Record.ID != rec.ID || v.Body != "Buy now!\nhttp://example.com/\n" || len(v.Header) != 5 {
			t.Errorf("got record %s, body %q, %d header fields; want %s, the text, 5 fields", v.Record.ID, v.Body, len(v.Header), rec.ID)
		}
	})
}

func FuzzRender(f *testing.F) {
	f.Add([]byte(sampleRaw))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n--a--\r\n"))
	f.Add([]byte("Content-Type: text/html\r\n\r\n<script>x</script><p>a&amp;b"))
	f.Add([]byte("Subject: =?x-unknown?q?abc?=\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		v := render(raw, 1000)
		if len(v.Body) > 1000 || !utf8.ValidString(v.Body) {
			t.Errorf("body of %d bytes, valid UTF-8 %v", len(v.Body), utf8.ValidString(v.Body))
		}
		for _, r := range v.Body {
			if r != '\n' && r != '\t' && r < 0x20 {
				t.Fatalf("control character %U in body", r)
			}
		}
		if len(v.Header) > maxRenderHeaders || len(v.Parts) > maxRenderParts {
			t.Errorf("got %d header fields and %d parts", len(v.Header), len(v.Parts))
		}
	})
}
