package campaign

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	_ "github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/mail"
	"golang.org/x/net/html"
)

// parsed is what a caller hands to Compute, taken from a real message the
// way the pipeline will: the decoded subject, the text of the inline parts
// (HTML turned into text), the recipients' local parts and display names,
// and the digests of the attachments.
type parsed struct {
	name string
	in   Input
}

func parseMessage(t testing.TB, path string) parsed {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	mr, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil && mr == nil {
		t.Fatalf("%s: %v", path, err)
	}
	var in Input
	in.Subject, _ = mr.Header.Subject()
	for _, field := range []string{"To", "Cc"} {
		addrs, _ := mr.Header.AddressList(field)
		for _, a := range addrs {
			in.PerRecipient = append(in.PerRecipient, a.Name)
			if at := strings.LastIndexByte(a.Address, '@'); at > 0 {
				in.PerRecipient = append(in.PerRecipient, a.Address[:at])
			}
		}
	}
	var plain, htmlText strings.Builder
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			break
		}
		body, _ := io.ReadAll(io.LimitReader(p.Body, 1<<20))
		switch h := p.Header.(type) {
		case *mail.InlineHeader:
			ct, _, _ := h.ContentType()
			switch ct {
			case "text/plain":
				plain.Write(body)
				plain.WriteByte('\n')
			case "text/html":
				htmlText.WriteString(htmlToText(body))
				htmlText.WriteByte('\n')
			}
		case *mail.AttachmentHeader:
			in.Attachments = append(in.Attachments, AttachmentDigest(body))
		}
	}
	in.Text = plain.String()
	if in.Text == "" {
		in.Text = htmlText.String()
	}
	return parsed{name: filepath.Base(path), in: in}
}

// htmlToText keeps the text nodes and link targets of an HTML part, as the
// pipeline's HTML-to-text step does.
func htmlToText(b []byte) string {
	z := html.NewTokenizer(bytes.NewReader(b))
	var out strings.Builder
	skip := 0
	for {
		switch z.Next() {
		case html.ErrorToken:
			return out.String()
		case html.StartTagToken, html.SelfClosingTagToken:
			name, attr := z.TagName()
			if s := string(name); s == "script" || s == "style" {
				skip++
			}
			for attr {
				var k, v []byte
				k, v, attr = z.TagAttr()
				if string(k) == "href" {
					out.WriteString(" " + string(v) + " ")
				}
			}
			out.WriteByte(' ')
		case html.EndTagToken:
			if name, _ := z.TagName(); string(name) == "script" || string(name) == "style" {
				skip = max(skip-1, 0)
			}
			out.WriteByte(' ')
		case html.TextToken:
			if skip == 0 {
				out.Write(z.Text())
			}
		}
	}
}

// hamCorpus returns every ordinary message under the repository's
// testdata/ham and testdata/modern/ham, parsed.
func hamCorpus(t testing.TB) []parsed {
	t.Helper()
	var paths []string
	for _, dir := range []string{"../testdata/ham", "../testdata/modern/ham"} {
		m, err := filepath.Glob(filepath.Join(dir, "*.eml"))
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, m...)
	}
	sort.Strings(paths)
	if len(paths) < 30 {
		t.Fatalf("found %d ham messages, want at least 30", len(paths))
	}
	out := make([]parsed, 0, len(paths))
	for _, p := range paths {
		out = append(out, parseMessage(t, p))
	}
	return out
}
