package filter

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

// att is one part of a test message.
type att struct {
	ctype    string // e.g. "application/pdf"
	name     string // file name; "" for inline text
	body     []byte
	encoding string // "base64" (default for attachments), "quoted-printable", "" (8bit)
}

// buildMessage writes a multipart/mixed message with the given header
// lines and parts, or a single-part one when there is one inline part.
func buildMessage(headers string, parts ...att) []byte {
	var b bytes.Buffer
	b.WriteString(strings.TrimRight(headers, "\r\n") + "\r\n")
	b.WriteString("MIME-Version: 1.0\r\n")
	if len(parts) == 1 && parts[0].name == "" {
		writePart(&b, parts[0])
		return b.Bytes()
	}
	const boundary = "b0undary-test-1"
	fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=%q\r\n\r\nThis is a MIME message.\r\n", boundary)
	for _, p := range parts {
		fmt.Fprintf(&b, "--%s\r\n", boundary)
		writePart(&b, p)
	}
	fmt.Fprintf(&b, "--%s--\r\n", boundary)
	return b.Bytes()
}

func writePart(b *bytes.Buffer, p att) {
	ct := p.ctype
	if ct == "" {
		ct = "text/plain; charset=utf-8"
	}
	fmt.Fprintf(b, "Content-Type: %s\r\n", ct)
	enc := p.encoding
	if p.name != "" {
		fmt.Fprintf(b, "Content-Disposition: attachment; filename=%q\r\n", p.name)
		if enc == "" {
			enc = "base64"
		}
	}
	switch enc {
	case "base64":
		b.WriteString("Content-Transfer-Encoding: base64\r\n\r\n")
		s := base64.StdEncoding.EncodeToString(p.body)
		for len(s) > 76 {
			b.WriteString(s[:76] + "\r\n")
			s = s[76:]
		}
		b.WriteString(s + "\r\n")
	case "quoted-printable":
		b.WriteString("Content-Transfer-Encoding: quoted-printable\r\n\r\n")
		b.Write(p.body)
		b.WriteString("\r\n")
	default:
		b.WriteString("\r\n")
		b.Write(p.body)
		b.WriteString("\r\n")
	}
}

// makeZip builds a zip archive of name/content pairs.
func makeZip(t testing.TB, files ...string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for i := 0; i+1 < len(files); i += 2 {
		w, err := zw.Create(files[i])
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(files[i+1]))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

const stdHeaders = "From: Alice Example <alice@example.com>\r\nTo: bob@example.org\r\nSubject: test\r\nDate: Mon, 02 Nov 2026 10:00:00 +0000\r\nMessage-ID: <test-1@example.com>"

func mustParse(t testing.TB, raw []byte) *Message {
	t.Helper()
	m, err := ParseBytes(raw, Limits{})
	if err != nil {
		t.Fatalf("ParseBytes: %v", err)
	}
	return m
}

func textPart(s string) att { return att{body: []byte(s)} }
