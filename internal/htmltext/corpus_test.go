package htmltext

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outguard/outguard/internal/testutil"
)

// htmlParts returns the HTML parts of a message, decoded, walking
// multiparts with the standard library (a plain walk: what matters here is
// realistic HTML, not the filter's handling of broken MIME). A message
// that does not parse gives its whole body when it looks like HTML.
func htmlParts(raw []byte) [][]byte {
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		if bytes.Contains(bytes.ToLower(raw), []byte("<html")) {
			return [][]byte{raw}
		}
		return nil
	}
	var out [][]byte
	var walk func(h func(string) string, body io.Reader, depth int)
	walk = func(h func(string) string, body io.Reader, depth int) {
		mt, params, _ := mime.ParseMediaType(h("Content-Type"))
		if strings.HasPrefix(mt, "multipart/") && depth < 10 {
			mr := multipart.NewReader(body, params["boundary"])
			for {
				p, err := mr.NextRawPart()
				if err != nil {
					return
				}
				walk(p.Header.Get, p, depth+1)
			}
		}
		b, _ := io.ReadAll(io.LimitReader(body, 4<<20))
		switch strings.ToLower(strings.TrimSpace(h("Content-Transfer-Encoding"))) {
		case "quoted-printable":
			if d, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(b))); err == nil || len(d) > 0 {
				b = d
			}
		case "base64":
			if d, err := io.ReadAll(base64.NewDecoder(base64.StdEncoding, bytes.NewReader(bytes.Join(bytes.Fields(b), nil)))); err == nil || len(d) > 0 {
				b = d
			}
		}
		if mt == "text/html" || (mt == "" || mt == "text/plain") && bytes.Contains(bytes.ToLower(b), []byte("<html")) {
			out = append(out, b)
		}
	}
	walk(m.Header.Get, m.Body, 0)
	return out
}

// TestParseMatchesReferenceOnMail compares Parse with the reference on the
// HTML of the repository's sample mail and, when it is unpacked (see
// filter/train), of the SpamAssassin corpus's messages at odd positions of
// each folder (the training half; the held-out half stays unread).
func TestParseMatchesReferenceOnMail(t *testing.T) {
	var files []string
	for _, pat := range []string{"*/*.eml", "*/*/*.eml", "*/*/*/*.eml"} {
		m, _ := filepath.Glob(filepath.Join("..", "..", "testdata", pat))
		files = append(files, m...)
	}
	files = append(files, testutil.CorpusTrainingHalf(t)...)
	docs := 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range htmlParts(raw) {
			docs++
			if d := sameDoc(Parse(h), refParse(h)); d != "" {
				t.Errorf("%s: %s", f, d)
			}
		}
	}
	t.Logf("%d HTML documents of %d messages compared", docs, len(files))
	if docs == 0 {
		t.Fatal("no HTML found")
	}
}
