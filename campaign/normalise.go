package campaign

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds on the work of one fingerprint, whatever the message holds.
const (
	// MaxTextBytes is how much of the subject and body text is read. A
	// campaign states its business early; the rest of a huge body adds
	// time, not evidence.
	MaxTextBytes = 256 << 10
	// maxWordBytes is the longest word kept whole (in bytes of its
	// lower-cased UTF-8 form); longer words are cut, which keeps one
	// word's hash input bounded.
	maxWordBytes = 64
	// maxPathSegment is the longest URL path segment kept; longer ones are
	// per-recipient tokens far more often than words.
	maxPathSegment = 24
	// maxPerRecipientBytes bounds the per-recipient words read (each
	// string is cut to 1 KiB as well): a message to thousands of
	// recipients still costs bounded work before its text is read.
	maxPerRecipientBytes = 64 << 10
)

// scanner turns text into the normalised word sequence of docs/campaigns.md:
// lower-cased words, numbers and digit-bearing tokens dropped, e-mail
// addresses dropped, URLs reduced to host and short path segments, and the
// caller's per-recipient words dropped. It emits each word into a reused
// buffer, so the fingerprint path allocates nothing per word.
type scanner struct {
	skip  wordSet
	buf   []byte
	links int
}

// wordSet holds the hashes of per-recipient words: linear search while it
// is small, a map past that.
type wordSet struct {
	small []uint64
	m     map[uint64]struct{}
}

func (s *wordSet) add(h uint64) {
	if s.m != nil {
		s.m[h] = struct{}{}
		return
	}
	for _, v := range s.small {
		if v == h {
			return
		}
	}
	if len(s.small) < 32 {
		s.small = append(s.small, h)
		return
	}
	s.m = make(map[uint64]struct{}, 64)
	for _, v := range s.small {
		s.m[v] = struct{}{}
	}
	s.m[h] = struct{}{}
}

func (s *wordSet) has(h uint64) bool {
	if s.m != nil {
		_, ok := s.m[h]
		return ok
	}
	for _, v := range s.small {
		if v == h {
			return true
		}
	}
	return false
}

// setPerRecipient hashes the words of the caller's per-recipient strings
// (local parts, display names) with the same splitting as the text, so that
// "john.smith" drops both "john" and "smith".
func (sc *scanner) setPerRecipient(words []string) {
	sc.skip = wordSet{small: sc.skip.small[:0]}
	budget := maxPerRecipientBytes
	for _, w := range words {
		if len(w) > 1024 {
			w = w[:1024]
		}
		if budget -= len(w); budget < 0 {
			break
		}
		sc.splitWords(w, func(word []byte) { sc.skip.add(hashBytes(word)) })
	}
}

// scan normalises text and calls emit with each kept word and its
// hashBytes hash. The slice passed to emit is only valid during the call.
func (sc *scanner) scan(text string, emit func(word []byte, h uint64)) {
	if len(text) > MaxTextBytes {
		text = text[:MaxTextBytes]
	}
	for len(text) > 0 {
		// Skip white space, then take one white-space separated token.
		i := 0
		for i < len(text) {
			r, n := decodeRune(text[i:])
			if !isSpace(r) {
				break
			}
			i += n
		}
		text = text[i:]
		j := 0
		for j < len(text) {
			r, n := decodeRune(text[j:])
			if isSpace(r) {
				break
			}
			j += n
		}
		tok := text[:j]
		text = text[j:]
		if tok == "" {
			continue
		}
		sc.token(tok, emit)
	}
}

func decodeRune(s string) (rune, int) {
	if s[0] < utf8.RuneSelf {
		return rune(s[0]), 1
	}
	return utf8.DecodeRuneInString(s)
}

func isSpace(r rune) bool {
	if r < utf8.RuneSelf {
		return r == ' ' || '\t' <= r && r <= '\r'
	}
	return unicode.IsSpace(r)
}

// token handles one white-space separated token.
func (sc *scanner) token(tok string, emit func(word []byte, h uint64)) {
	tok = strings.TrimFunc(tok, func(r rune) bool {
		return r == '<' || r == '>' || r == '(' || r == ')' || r == '[' || r == ']' ||
			r == '"' || r == '\'' || r == ',' || r == ';' || r == '.' || r == ':' || r == '!' || r == '?'
	})
	if tok == "" {
		return
	}
	if host, rest, ok := linkParts(tok); ok {
		sc.links++
		sc.link(host, rest, emit)
		return
	}
	if strings.IndexByte(tok, '@') >= 0 {
		// An address, a mailto: or a handle: per recipient or per sender,
		// never part of a template.
		return
	}
	sc.splitWords(tok, func(w []byte) {
		h := hashBytes(w)
		if sc.skip.has(h) {
			return
		}
		emit(w, h)
	})
}

// linkParts recognises http(s):// and www. links and returns the host and
// what follows it.
func linkParts(tok string) (host, rest string, ok bool) {
	var s string
	switch {
	case hasPrefixFold(tok, "https://"):
		s = tok[len("https://"):]
	case hasPrefixFold(tok, "http://"):
		s = tok[len("http://"):]
	case hasPrefixFold(tok, "www."):
		s = tok
	default:
		return "", "", false
	}
	end := strings.IndexAny(s, "/?#")
	if end < 0 {
		end = len(s)
	}
	host, rest = s[:end], s[end:]
	if at := strings.LastIndexByte(host, '@'); at >= 0 {
		host = host[at+1:]
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	if host == "" {
		return "", "", false
	}
	return host, rest, true
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// link emits one word for a URL: "host/segment/segment" with the query,
// the fragment, the port, and every path segment that holds a digit or is
// longer than maxPathSegment left out. Host labels with a digit become
// "#", so per-recipient subdomains fold together.
func (sc *scanner) link(host, rest string, emit func(word []byte, h uint64)) {
	b := sc.buf[:0]
	for k, label := range strings.Split(host, ".") {
		if k > 0 {
			b = append(b, '.')
		}
		if strings.IndexFunc(label, unicode.IsDigit) >= 0 {
			b = append(b, '#')
			continue
		}
		b = appendLower(b, label)
	}
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		rest = rest[:i]
	}
	for seg := range strings.SplitSeq(rest, "/") {
		if seg == "" || len(seg) > maxPathSegment || strings.IndexFunc(seg, unicode.IsDigit) >= 0 {
			continue
		}
		b = append(b, '/')
		b = appendLower(b, seg)
	}
	if len(b) > 4*maxWordBytes {
		b = b[:4*maxWordBytes]
	}
	sc.buf = b
	emit(b, hashBytes(b))
}

func appendLower(b []byte, s string) []byte {
	for _, r := range s {
		b = utf8.AppendRune(b, unicode.ToLower(r))
	}
	return b
}

// splitWords splits s into runs of letters and digits, drops every run that
// holds a digit, lower-cases the rest and calls fn with each. Runes of
// scripts written without spaces (Han, Hiragana, Katakana, Thai) are words
// of their own, so that shingles work for them too.
func (sc *scanner) splitWords(s string, fn func(word []byte)) {
	b := sc.buf[:0]
	digit := false
	flush := func() {
		if len(b) > 0 && !digit {
			fn(b)
		}
		b = b[:0]
		digit = false
	}
	for _, r := range s {
		if r < utf8.RuneSelf {
			// ASCII fast path: the common case needs no table look-ups.
			switch {
			case 'a' <= r && r <= 'z':
				if len(b) < maxWordBytes {
					b = append(b, byte(r))
				}
			case 'A' <= r && r <= 'Z':
				if len(b) < maxWordBytes {
					b = append(b, byte(r)+'a'-'A')
				}
			case '0' <= r && r <= '9':
				digit = true
			default:
				flush()
			}
			continue
		}
		switch {
		case (unicode.IsLetter(r) || unicode.IsMark(r)) && unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Thai):
			flush()
			b = utf8.AppendRune(b, r)
			flush()
		case unicode.IsLetter(r) || unicode.IsMark(r):
			if len(b) < maxWordBytes {
				b = utf8.AppendRune(b, unicode.ToLower(r))
			}
		case unicode.IsDigit(r):
			digit = true
		default:
			flush()
		}
	}
	flush()
	sc.buf = b
}

// Normalise returns the normalised words of text, as the fingerprint sees
// them, with the words of perRecipient dropped. It is meant for tests,
// debugging and the documentation; Compute does the same work without
// building strings.
func Normalise(text string, perRecipient []string) []string {
	var sc scanner
	sc.setPerRecipient(perRecipient)
	var out []string
	sc.scan(text, func(w []byte, _ uint64) { out = append(out, string(w)) })
	return out
}

// ownText returns text without its quoted part: lines whose first
// non-blank character is '>', and everything from a reply attribution or
// an original-message separator on. quoted reports that something was
// left out; text without quotes is returned as it is, without copying.
func ownText(text string) (own string, quoted bool) {
	var b strings.Builder
	pos := 0
	for rest := text; len(rest) > 0; {
		line, after, _ := strings.Cut(rest, "\n")
		t := strings.TrimLeft(line, " \t")
		switch {
		case strings.HasPrefix(t, ">"):
			if !quoted {
				quoted = true
				b.WriteString(text[:pos])
			}
		case isReplySeparator(t):
			if !quoted {
				b.WriteString(text[:pos])
			}
			return b.String(), true
		case quoted:
			b.WriteString(line)
			b.WriteByte('\n')
		}
		pos += len(line) + 1
		rest = after
	}
	if !quoted {
		return text, false
	}
	return b.String(), true
}

// replyEndings end the attribution line mail programs put above a quoted
// message, in the languages of testdata/modern/ham and a few more.
var replyEndings = []string{
	"wrote:", "writes:", "schrieb:", "a écrit :", "a écrit:", "escribió:", "ha scritto:",
	"schreef:", "napisał(a):", "написал:", "написала:", "написал(а):", "escreveu:", "skrev:",
	"kirjoitti:", "yazdı:", "napsal(a):",
}

// isReplySeparator recognises "On ... wrote:" attribution lines and
// "-----Original Message-----" separators (t has no leading blanks).
func isReplySeparator(t string) bool {
	t = strings.TrimRight(t, " \t\r")
	if len(t) > 300 {
		return false
	}
	if strings.HasPrefix(t, "-----") {
		l := strings.ToLower(t)
		return strings.Contains(l, "original message") || strings.Contains(l, "ursprüngliche nachricht") ||
			strings.Contains(l, "message d'origine") || strings.Contains(l, "mensaje original")
	}
	if !strings.HasSuffix(t, ":") {
		return false
	}
	l := strings.ToLower(t)
	for _, e := range replyEndings {
		if strings.HasSuffix(l, e) {
			return true
		}
	}
	// German and Dutch name the writer after the verb: "Am ... schrieb
	// Anna Weber:", "Op ... schreef Anna:".
	return strings.HasPrefix(l, "am ") && strings.Contains(l, " schrieb ") ||
		strings.HasPrefix(l, "op ") && strings.Contains(l, " schreef ")
}
