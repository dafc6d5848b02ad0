// Package htmltext turns HTML into the text a reader sees, for the filter
// (which also takes the links and password fields) and for the quarantine
// view. It is the one HTML-to-text converter in outguard.
//
// Parse reads the input once, in place: it splits it into tokens exactly as
// golang.org/x/net/html's Tokenizer does (the tests compare the two, see
// scanner.go), decodes character references and text as it writes the
// output, and reads attributes only of the few elements whose attributes it
// keeps. It allocates the strings it returns and little else.
package htmltext

import (
	"bytes"
	"sync"
	"unicode"
	"unicode/utf8"
)

// maxLinkText bounds the visible text kept per HTML link.
const maxLinkText = 512

// Link is one link target and its visible text (empty for area and form
// targets).
type Link struct {
	Href, Text string
}

// Doc is what Parse finds in an HTML document.
type Doc struct {
	// Text is the document as text: tags dropped, script, style and
	// template contents skipped, block elements as line breaks, runs of
	// white space collapsed, entities decoded, image alt text kept.
	Text string
	// Links are the targets of a, area and form elements, in order.
	Links []Link
	// PasswordForm reports a password input.
	PasswordForm bool
}

// Text returns the text of an HTML document (Doc.Text).
func Text(b []byte) string { return Parse(b).Text }

// parser holds the buffers of one Parse, pooled between calls.
type parser struct {
	out, link textWriter
	scratch   []byte
}

var parsers = sync.Pool{New: func() any { return new(parser) }}

// maxPooled bounds the buffers a pooled parser keeps.
const maxPooled = 256 << 10

// Parse converts HTML to text and collects links and password fields. It
// is linear in the input and keeps no tree, and malformed markup still
// yields text.
func Parse(b []byte) Doc {
	p := parsers.Get().(*parser)
	defer func() {
		if cap(p.out.b) > maxPooled || cap(p.link.b) > maxPooled || cap(p.scratch) > maxPooled {
			return
		}
		p.out.reset()
		p.link.reset()
		parsers.Put(p)
	}()
	var doc Doc
	out, linkText := &p.out, &p.link
	out.reset()
	linkText.reset()
	s := scanner{src: b}
	skip := 0 // inside script, style or template
	inLink := false
	var href string
	endLink := func() {
		if inLink {
			doc.Links = append(doc.Links, Link{Href: href, Text: string(bytes.TrimSpace(linkText.b))})
		}
		inLink = false
		linkText.reset()
	}
	for {
		switch s.next() {
		case kindEnd:
			endLink()
			doc.Text = string(bytes.TrimSpace(out.b))
			return doc
		case kindText:
			if skip > 0 {
				continue
			}
			t := b[s.data.start:s.data.end]
			out.text(t, s.rawData, s.nul, false)
			if inLink && len(linkText.b) < maxLinkText {
				linkText.text(t, s.rawData, s.nul, false)
			}
		case kindEndTag:
			switch s.name {
			case tagScript, tagStyle, tagTemplate:
				if skip > 0 {
					skip--
				}
			case tagA:
				endLink()
			case tagBlock, tagTitle:
				out.newline(false)
			case tagTd, tagTh:
				out.newline(true)
			}
		case kindStartTag, kindSelfClosingTag:
			switch s.name {
			case tagScript, tagStyle, tagTemplate:
				if s.kind == kindStartTag {
					skip++
				}
			case tagA, tagArea:
				if s.name == tagA {
					endLink()
				}
				if s.hasVal {
					if h := p.attr(b, s.val); h != "" {
						if s.name == tagA && s.kind == kindStartTag {
							inLink, href = true, h
						} else {
							doc.Links = append(doc.Links, Link{Href: h})
						}
					}
				}
			case tagForm:
				if s.hasVal {
					if a := p.attr(b, s.val); a != "" {
						doc.Links = append(doc.Links, Link{Href: a})
					}
				}
			case tagInput:
				if s.hasVal && !doc.PasswordForm {
					p.scratch = unescapeAttr(p.scratch[:0], b[s.val.start:s.val.end])
					if bytes.EqualFold(bytes.TrimSpace(p.scratch), []byte("password")) {
						doc.PasswordForm = true
					}
				}
			case tagImg:
				// Alt text stands in for the image in the text version.
				if s.hasVal && s.val.end > s.val.start && skip == 0 {
					alt := b[s.val.start:s.val.end]
					out.text(alt, false, true, true)
					if inLink && len(linkText.b) < maxLinkText {
						linkText.text(alt, false, true, true)
					}
				}
			case tagBlock, tagTitle:
				out.newline(false)
			}
		}
	}
}

// attr returns an attribute value decoded and trimmed, as a new string.
func (p *parser) attr(src []byte, v span) string {
	p.scratch = unescapeAttr(p.scratch[:0], src[v.start:v.end])
	t := bytes.TrimSpace(p.scratch)
	if len(t) == 0 {
		return ""
	}
	return string(t)
}

// unescapeAttr appends an attribute value to dst as the tokenizer reads
// it: NUL as U+FFFD, CR LF and CR as LF, character references decoded.
func unescapeAttr(dst, v []byte) []byte {
	for i := 0; i < len(v); {
		c := v[i]
		switch c {
		case 0:
			dst = append(dst, "\uFFFD"...)
			i++
		case '\r':
			dst = append(dst, '\n')
			i++
			if i < len(v) && v[i] == '\n' {
				i++
			}
		case '&':
			var n int
			dst, n = appendEntity(dst, v[i:], true)
			i += n
		default:
			dst = append(dst, c)
			i++
		}
	}
	return dst
}

// textWriter collapses runs of white space the way a browser renders
// them.
type textWriter struct {
	b     []byte
	space bool // a space is pending
	ent   []byte
}

func (w *textWriter) reset() {
	w.b = w.b[:0]
	w.space = false
}

// text writes text of the input: NUL bytes as U+FFFD if nul, character
// references decoded unless raw (as in an attribute value if attr).
// Line ends need no conversion: CR and LF are both white space.
func (w *textWriter) text(t []byte, raw, nul, attr bool) {
	for i := 0; i < len(t); {
		c := t[i]
		if c < utf8.RuneSelf {
			switch {
			case c == 0 && nul:
				w.rune(utf8.RuneError)
				i++
				continue
			case c == '&' && !raw:
				var n int
				w.ent, n = appendEntity(w.ent[:0], t[i:], attr)
				for _, r := range string(w.ent) {
					w.rune(r)
				}
				i += n
				continue
			case asciiSpace[c]:
				w.space = true
			default:
				if w.space {
					w.pendingSpace()
				}
				w.b = append(w.b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(t[i:])
		i += size
		w.rune(r)
	}
}

// asciiSpace holds the ASCII characters unicode.IsSpace reports.
var asciiSpace = [utf8.RuneSelf]bool{'\t': true, '\n': true, '\v': true, '\f': true, '\r': true, ' ': true}

func (w *textWriter) rune(r rune) {
	if r < utf8.RuneSelf {
		if asciiSpace[r] {
			w.space = true
			return
		}
	} else if unicode.IsSpace(r) {
		w.space = true
		return
	}
	if w.space {
		w.pendingSpace()
	}
	w.b = utf8.AppendRune(w.b, r)
}

// pendingSpace writes the pending space before a character, unless the
// text starts here or a line or a space ends it.
func (w *textWriter) pendingSpace() {
	w.space = false
	if n := len(w.b); n > 0 && w.b[n-1] != '\n' && w.b[n-1] != ' ' {
		w.b = append(w.b, ' ')
	}
}

// newline ends the current line, or adds a cell separator.
func (w *textWriter) newline(cell bool) {
	w.space = false
	if len(w.b) == 0 {
		return
	}
	last := w.b[len(w.b)-1]
	if cell {
		if last != ' ' && last != '\n' {
			w.b = append(w.b, ' ')
		}
		return
	}
	if last != '\n' {
		w.b = append(w.b, '\n')
	}
}
