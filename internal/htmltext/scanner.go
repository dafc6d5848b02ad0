package htmltext

import "bytes"

// tag names the elements Parse acts on; every other element is tagOther.
type tag uint8

const (
	tagOther tag = iota
	tagA
	tagArea
	tagForm
	tagInput
	tagImg
	tagScript
	tagStyle
	tagTemplate
	tagTd
	tagTh
	tagTitle
	tagBlock // the other elements that end a line (blockNames)
	// Elements whose content the tokenizer reads as raw text (up to their
	// end tag), besides script, style and title.
	tagIframe
	tagNoembed
	tagNoframes
	tagNoscript
	tagPlaintext
	tagTextarea
	tagXmp
)

// blockNames end a line of text when they open or close (title too).
var blockNames = []string{
	"br", "p", "div", "tr", "li", "ul", "ol", "table", "h1", "h2", "h3", "h4", "h5", "h6",
	"blockquote", "pre", "hr", "section", "article", "header", "footer",
}

var tags = func() map[string]tag {
	m := map[string]tag{
		"a": tagA, "area": tagArea, "form": tagForm, "input": tagInput, "img": tagImg,
		"script": tagScript, "style": tagStyle, "template": tagTemplate, "td": tagTd, "th": tagTh,
		"title": tagTitle, "iframe": tagIframe, "noembed": tagNoembed, "noframes": tagNoframes,
		"noscript": tagNoscript, "plaintext": tagPlaintext, "textarea": tagTextarea, "xmp": tagXmp,
	}
	for _, n := range blockNames {
		m[n] = tagBlock
	}
	return m
}()

// longestTag is the longest name in tags.
const longestTag = len("blockquote")

// lookupTag returns the element of a tag name, compared without regard to
// ASCII case (a name holding a NUL byte, which the tokenizer replaces, is
// no element of the table either way).
func lookupTag(name []byte) tag {
	if len(name) > longestTag {
		return tagOther
	}
	var low [longestTag]byte
	for i, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		low[i] = c
	}
	return tags[string(low[:len(name)])]
}

// rawText reports the elements after whose start tag the tokenizer reads
// raw text.
func (t tag) rawText() bool {
	switch t {
	case tagScript, tagStyle, tagTitle, tagIframe, tagNoembed, tagNoframes, tagNoscript,
		tagPlaintext, tagTextarea, tagXmp:
		return true
	}
	return false
}

// rawName is the lower-case name of a raw text element, for its end tag.
func (t tag) rawName() string {
	switch t {
	case tagScript:
		return "script"
	case tagStyle:
		return "style"
	case tagTitle:
		return "title"
	case tagIframe:
		return "iframe"
	case tagNoembed:
		return "noembed"
	case tagNoframes:
		return "noframes"
	case tagNoscript:
		return "noscript"
	case tagTextarea:
		return "textarea"
	case tagXmp:
		return "xmp"
	}
	return ""
}

// Token kinds of the scanner.
type kind uint8

const (
	kindEnd kind = iota // the end of the input, or a tag cut off by it
	kindText
	kindStartTag
	kindSelfClosingTag
	kindEndTag
	kindComment // comments, doctypes, processing instructions: no output
)

// span is a range of the input.
type span struct{ start, end int }

// attrWant is the attribute Parse keeps of an element, if any.
func (t tag) attrWant() string {
	switch t {
	case tagA, tagArea:
		return "href"
	case tagForm:
		return "action"
	case tagInput:
		return "type"
	case tagImg:
		return "alt"
	}
	return ""
}

// scanner splits the input into tokens.
type scanner struct {
	src []byte
	pos int
	// raw is the element whose raw text comes next, or tagOther.
	raw tag

	// The current token.
	kind kind
	data span // text, or the tag name
	// rawData: text not to be decoded (the content of script, style and the
	// like); nul: NUL bytes to be read as U+FFFD (all raw text).
	rawData, nul bool
	name         tag
	// val is the value of the attribute of attrWant, valid if hasVal.
	val    span
	hasVal bool
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\f'
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

func isAlnum(c byte) bool { return isLetter(c) || '0' <= c && c <= '9' }

// skipSpace returns the index of the first byte at or after i that is not
// white space.
func (s *scanner) skipSpace(i int) int {
	for i < len(s.src) && isSpace(s.src[i]) {
		i++
	}
	return i
}

// untilCloseAngle returns the index after the first '>' at or after i, or
// the end of the input.
func (s *scanner) untilCloseAngle(i int) int {
	if i >= len(s.src) {
		return len(s.src)
	}
	if j := bytes.IndexByte(s.src[i:], '>'); j >= 0 {
		return i + j + 1
	}
	return len(s.src)
}

// next reads the next token.
func (s *scanner) next() kind {
	start := s.pos
	s.hasVal = false
	if start >= len(s.src) {
		s.kind = kindEnd
		return s.kind
	}
	if s.raw != tagOther {
		var end int
		switch s.raw {
		case tagPlaintext:
			end, s.rawData = len(s.src), true
		case tagScript:
			end, s.rawData = s.script(start), true
		default:
			end = s.rawUntilEndTag(start, s.raw.rawName())
			s.rawData = s.raw != tagTextarea && s.raw != tagTitle
		}
		s.raw = tagOther
		if end > start {
			s.pos, s.data, s.nul, s.kind = end, span{start, end}, true, kindText
			return s.kind
		}
	}
	s.rawData, s.nul = false, false
	for i := start; ; {
		j := bytes.IndexByte(s.src[i:], '<')
		if j < 0 || i+j+1 >= len(s.src) {
			// Text up to the end ("<" at the very end included).
			return s.text(start, len(s.src))
		}
		lt := i + j
		c := s.src[lt+1]
		if !isLetter(c) && c != '/' && c != '!' && c != '?' {
			i = lt + 1
			continue
		}
		if lt > start {
			return s.text(start, lt)
		}
		switch {
		case isLetter(c):
			return s.tag(lt+1, true)
		case c == '/':
			q := lt + 2
			switch {
			case q >= len(s.src):
				return s.text(lt, len(s.src))
			case s.src[q] == '>':
				s.pos = q + 1
			case isLetter(s.src[q]):
				return s.tag(q, false)
			default:
				s.pos = s.untilCloseAngle(q)
			}
		case c == '!':
			s.pos = s.markupDeclaration(lt + 2)
		default: // '?'
			s.pos = s.untilCloseAngle(lt + 1)
		}
		s.kind = kindComment
		return s.kind
	}
}

func (s *scanner) text(start, end int) kind {
	s.pos, s.data, s.kind = end, span{start, end}, kindText
	return s.kind
}

// markupDeclaration reads "<!" from i, after it: a comment or, for
// anything else (a doctype included), up to the next '>'. It returns where
// the token ends.
func (s *scanner) markupDeclaration(i int) int {
	if len(s.src)-i < 2 {
		return len(s.src)
	}
	if s.src[i] == '-' && s.src[i+1] == '-' {
		return s.comment(i + 2)
	}
	return s.untilCloseAngle(i)
}

// comment reads a comment's content from i, after "<!--", and returns where
// the comment ends: after "-->", "--!>", or a ">" or "->" right at its
// start.
func (s *scanner) comment(i int) int {
	dashes, beginning := 0, true
	for ; i < len(s.src); i++ {
		switch s.src[i] {
		case '-':
			dashes++
			continue
		case '>':
			if dashes >= 2 || beginning {
				return i + 1
			}
		case '!':
			if dashes >= 2 {
				i++
				if i >= len(s.src) {
					return len(s.src)
				}
				switch s.src[i] {
				case '>':
					return i + 1
				case '-':
					dashes, beginning = 1, false
					continue
				}
			}
		}
		dashes, beginning = 0, false
	}
	return len(s.src)
}

// tag reads a start or end tag whose name starts at i. A tag cut off by the
// end of the input ends the input.
func (s *scanner) tag(i int, start bool) kind {
	src := s.src
	n := i
	for i < len(src) && !isSpace(src[i]) && src[i] != '/' && src[i] != '>' {
		i++
	}
	if i >= len(src) {
		return s.cut()
	}
	s.data = span{n, i}
	s.name = lookupTag(src[n:i])
	if isSpace(src[i]) {
		i++
	}
	want := ""
	if start {
		want = s.name.attrWant()
	}
	// The last attribute with a key, for telling "<a href=x/>" (a start
	// tag) from "<a href='x'/>" (self-closing).
	var lastKey, lastVal span
	hasLast := false
	for {
		if i = s.skipSpace(i); i >= len(src) {
			return s.cut()
		}
		if src[i] == '>' {
			i++
			break
		}
		// The key: up to white space, '/', '>' or a '=' other than its
		// first byte.
		k := i
		for i < len(src) {
			c := src[i]
			if c == '=' && i == k {
				i++
				continue
			}
			if c == '=' || isSpace(c) || c == '/' || c == '>' {
				break
			}
			i++
		}
		key := span{k, i}
		// The value.
		val := span{i, i}
		if i = s.skipSpace(i); i >= len(src) {
			return s.cut()
		}
		switch c := src[i]; {
		case c == '/':
			i++
		case c != '=':
		default:
			if i = s.skipSpace(i + 1); i >= len(src) {
				return s.cut()
			}
			switch q := src[i]; q {
			case '>':
			case '\'', '"':
				j := bytes.IndexByte(src[i+1:], q)
				if j < 0 {
					return s.cut()
				}
				val = span{i + 1, i + 1 + j}
				i += j + 2
			default:
				j := i + 1
				for j < len(src) && !isSpace(src[j]) && src[j] != '>' {
					j++
				}
				if j >= len(src) {
					return s.cut()
				}
				val = span{i, j}
				i = j
				if src[j] != '>' {
					i++
				}
			}
		}
		if key.end > key.start {
			if want != "" && !s.hasVal && asciiEqualFold(src[key.start:key.end], want) {
				s.val, s.hasVal = val, true
			}
			lastKey, lastVal, hasLast = key, val, true
		}
	}
	s.pos = i
	if !start {
		s.kind = kindEndTag
		return s.kind
	}
	if s.name.rawText() {
		s.raw = s.name
	}
	s.kind = kindStartTag
	// Self-closing: a '/' right before the '>', unless it ends the
	// unquoted value of the last attribute kept (attributes whose key
	// repeats an earlier one are dropped).
	if src[i-2] == '/' {
		s.kind = kindSelfClosingTag
		if hasLast && lastVal.end == i-1 && !s.repeatedKey(n, lastKey) {
			s.kind = kindStartTag
		}
	}
	return s.kind
}

// repeatedKey reports whether the key at k repeats, without regard to ASCII
// case, the key of an earlier attribute of the tag whose name starts at n.
// It reads the tag's attributes again: it runs only for the rare tag that
// ends in an unquoted value and "/>".
func (s *scanner) repeatedKey(n int, k span) bool {
	src := s.src
	i := n
	for !isSpace(src[i]) && src[i] != '/' && src[i] != '>' {
		i++
	}
	for {
		i = s.skipSpace(i)
		ks := i
		for {
			c := src[i]
			if c == '=' && i == ks {
				i++
				continue
			}
			if c == '=' || isSpace(c) || c == '/' || c == '>' {
				break
			}
			i++
		}
		if ks == k.start {
			return false
		}
		if i > ks && asciiEqualFoldBytes(src[ks:i], src[k.start:k.end]) {
			return true
		}
		// Skip the value, as tag does.
		i = s.skipSpace(i)
		switch src[i] {
		case '/':
			i++
		case '=':
			i = s.skipSpace(i + 1)
			switch q := src[i]; q {
			case '>':
			case '\'', '"':
				i += bytes.IndexByte(src[i+1:], q) + 2
			default:
				for !isSpace(src[i]) && src[i] != '>' {
					i++
				}
				if src[i] != '>' {
					i++
				}
			}
		}
	}
}

// cut ends the input at a tag the input cuts off: the tokenizer drops it
// and returns nothing more.
func (s *scanner) cut() kind {
	s.pos, s.kind = len(s.src), kindEnd
	return s.kind
}

// rawUntilEndTag returns where the raw text from i ends: at "</name"
// followed by white space, '/' or '>', or at the end of the input.
func (s *scanner) rawUntilEndTag(i int, name string) int {
	for {
		j := bytes.IndexByte(s.src[i:], '<')
		if j < 0 {
			return len(s.src)
		}
		lt := i + j
		if lt+1 >= len(s.src) {
			return len(s.src)
		}
		if s.src[lt+1] != '/' {
			i = lt + 1
			continue
		}
		ok, k := s.endTagAt(lt+2, name)
		if ok {
			return lt
		}
		if k >= len(s.src) {
			return len(s.src)
		}
		i = k
	}
}

// endTagAt reports whether name (lower case), without regard to ASCII
// case, and then white space, '/' or '>' are at i; if not, it returns
// where the scan resumes (the first byte that did not match).
func (s *scanner) endTagAt(i int, name string) (bool, int) {
	for k := 0; k < len(name); k++ {
		if i >= len(s.src) {
			return false, i
		}
		c := s.src[i]
		if c != name[k] && c != name[k]-('a'-'A') {
			return false, i
		}
		i++
	}
	if i >= len(s.src) {
		return false, i
	}
	switch s.src[i] {
	case ' ', '\n', '\r', '\t', '\f', '/', '>':
		return true, i
	}
	return false, i
}

// script returns where the content of a script element from i ends,
// following the script data states of the tokenizer (escaped "<!--"
// sections, in which a "<script" opens a section where "</script" does
// not end the element).
func (s *scanner) script(i int) int {
	src := s.src
	n := len(src)
	const (
		data = iota
		escaped
		escapedDash
		escapedDashDash
		doubleEscaped
		doubleEscapedDash
		doubleEscapedDashDash
	)
	state := data
	for i < n {
		c := src[i]
		i++
		switch state {
		case data:
			if c != '<' {
				continue
			}
			if i >= n {
				return n
			}
			switch src[i] {
			case '/':
				ok, k := s.endTagAt(i+1, "script")
				if ok {
					return i - 1
				}
				i = k
			case '!':
				// "<!--" escapes; anything else is read again as data.
				if i+1 >= n {
					return n
				}
				if src[i+1] != '-' {
					i++
					continue
				}
				if i+2 >= n {
					return n
				}
				if src[i+2] != '-' {
					i += 2
					continue
				}
				i += 3
				state = escapedDashDash
			}
		case escaped, escapedDash, escapedDashDash:
			switch {
			case c == '-':
				if state == escaped {
					state = escapedDash
				} else {
					state = escapedDashDash
				}
				continue
			case c == '<':
				if i >= n {
					return n
				}
				switch d := src[i]; {
				case d == '/':
					ok, k := s.endTagAt(i+1, "script")
					if ok {
						return i - 1
					}
					i, state = k, escaped
				case isLetter(d):
					state = escaped
					if ok, k := s.endTagAt(i, "script"); ok {
						i, state = k+1, doubleEscaped
					} else {
						i = k
					}
				default:
					state = data
				}
				continue
			case c == '>' && state == escapedDashDash:
				state = data
				continue
			}
			state = escaped
		case doubleEscaped, doubleEscapedDash, doubleEscapedDashDash:
			switch {
			case c == '-':
				if state == doubleEscaped {
					state = doubleEscapedDash
				} else {
					state = doubleEscapedDashDash
				}
				continue
			case c == '<':
				if i >= n {
					return n
				}
				if src[i] == '/' {
					ok, k := s.endTagAt(i+1, "script")
					if ok {
						i, state = k+1, escaped
					} else {
						i, state = k, doubleEscaped
					}
				} else {
					state = doubleEscaped
				}
				continue
			case c == '>' && state == doubleEscapedDashDash:
				state = data
				continue
			}
			state = doubleEscaped
		}
	}
	return n
}

func asciiEqualFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

func asciiEqualFoldBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		c, d := a[i], b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}
