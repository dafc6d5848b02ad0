package htmltext

import (
	"bytes"
	"strings"
	"unicode"

	"golang.org/x/net/html"
)

// blockTags end a line of text when they open or close.
var refBlockTags = map[string]bool{
	"br": true, "p": true, "div": true, "tr": true, "li": true, "ul": true, "ol": true,
	"table": true, "h1": true, "h2": true, "h3": true, "h4": true, "h5": true, "h6": true,
	"blockquote": true, "pre": true, "hr": true, "title": true, "section": true,
	"article": true, "header": true, "footer": true,
}

// refParse is the converter this package had before its own scanner (on
// golang.org/x/net/html's tokenizer), kept as the reference the tests
// compare Parse with. It converts HTML to text and collects links and password fields.
// It uses the tokenizer rather than the tree builder: it is linear in the
// input and keeps no tree, and malformed markup still yields text.
func refParse(b []byte) Doc {
	var doc Doc
	var out refWriter
	z := html.NewTokenizer(bytes.NewReader(b))
	skip := 0 // inside script or style
	inLink := false
	var href string
	var linkText refWriter
	endLink := func() {
		if inLink {
			doc.Links = append(doc.Links, Link{Href: href, Text: strings.TrimSpace(linkText.String())})
		}
		inLink = false
		linkText.Reset()
	}
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			endLink()
			doc.Text = strings.TrimSpace(out.String())
			return doc
		case html.TextToken:
			if skip > 0 {
				continue
			}
			t := z.Text()
			out.write(t)
			if inLink && linkText.Len() < maxLinkText {
				linkText.write(t)
			}
		case html.StartTagToken, html.SelfClosingTagToken, html.EndTagToken:
			nameB, hasAttr := z.TagName()
			name := string(nameB)
			if tt == html.EndTagToken {
				switch name {
				case "script", "style", "template":
					if skip > 0 {
						skip--
					}
				case "a":
					endLink()
				}
				if refBlockTags[name] || name == "td" || name == "th" {
					out.newline(name == "td" || name == "th")
				}
				continue
			}
			attrs := map[string]string{}
			for hasAttr {
				var k, v []byte
				k, v, hasAttr = z.TagAttr()
				key := string(k)
				if _, dup := attrs[key]; !dup {
					attrs[key] = string(v)
				}
			}
			switch name {
			case "script", "style", "template":
				if tt == html.StartTagToken {
					skip++
				}
			case "a", "area":
				if name == "a" {
					endLink()
				}
				if h := strings.TrimSpace(attrs["href"]); h != "" {
					if name == "a" && tt == html.StartTagToken {
						inLink, href = true, h
					} else {
						doc.Links = append(doc.Links, Link{Href: h})
					}
				}
			case "form":
				if a := strings.TrimSpace(attrs["action"]); a != "" {
					doc.Links = append(doc.Links, Link{Href: a})
				}
			case "input":
				if strings.EqualFold(strings.TrimSpace(attrs["type"]), "password") {
					doc.PasswordForm = true
				}
			case "img":
				// Alt text stands in for the image in the text version.
				if alt := attrs["alt"]; alt != "" && skip == 0 {
					out.write([]byte(alt))
					if inLink && linkText.Len() < maxLinkText {
						linkText.write([]byte(alt))
					}
				}
			}
			if refBlockTags[name] {
				out.newline(false)
			}
		}
	}
}

// refWriter collapses runs of white space the way a browser renders
// them.
type refWriter struct {
	strings.Builder
	space bool // a space is pending
}

func (w *refWriter) write(b []byte) {
	for _, r := range string(b) {
		if unicode.IsSpace(r) {
			w.space = true
			continue
		}
		if w.space && w.Len() > 0 {
			last := w.String()[w.Len()-1]
			if last != '\n' && last != ' ' {
				w.WriteByte(' ')
			}
		}
		w.space = false
		w.WriteRune(r)
	}
}

// newline ends the current line, or adds a cell separator.
func (w *refWriter) newline(cell bool) {
	w.space = false
	if w.Len() == 0 {
		return
	}
	last := w.String()[w.Len()-1]
	if cell {
		if last != ' ' && last != '\n' {
			w.WriteByte(' ')
		}
		return
	}
	if last != '\n' {
		w.WriteByte('\n')
	}
}

func (w *refWriter) Reset() {
	w.Builder.Reset()
	w.space = false
}
