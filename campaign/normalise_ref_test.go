package campaign

import (
	"math/bits"
	"strings"
	"unicode"
	"unicode/utf8"
)

// refScanner is the word scanner as it was before the byte-wise one of
// normalise.go (rune by rune, closures per word): the reference the
// differential test and fuzz target hold the scanner to.
type refScanner struct {
	skip  wordSet
	buf   []byte
	links int
}

// setPerRecipient hashes the words of the caller's per-recipient strings
// (local parts, display names) with the same splitting as the text, so that
// "john.smith" drops both "john" and "smith".
func (sc *refScanner) setPerRecipient(words []string) {
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
func (sc *refScanner) scan(text string, emit func(word []byte, h uint64)) {
	if len(text) > MaxTextBytes {
		text = text[:MaxTextBytes]
	}
	for len(text) > 0 {
		// Skip white space, then take one white-space separated token.
		i := 0
		for i < len(text) {
			r, n := refDecodeRune(text[i:])
			if !refIsSpace(r) {
				break
			}
			i += n
		}
		text = text[i:]
		j := 0
		for j < len(text) {
			r, n := refDecodeRune(text[j:])
			if refIsSpace(r) {
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

// token handles one white-space separated token.
func (sc *refScanner) token(tok string, emit func(word []byte, h uint64)) {
	tok = strings.TrimFunc(tok, func(r rune) bool {
		return r == '<' || r == '>' || r == '(' || r == ')' || r == '[' || r == ']' ||
			r == '"' || r == '\'' || r == ',' || r == ';' || r == '.' || r == ':' || r == '!' || r == '?'
	})
	if tok == "" {
		return
	}
	if host, rest, ok := refLinkParts(tok); ok {
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

// link emits one word for a URL: "host/segment/segment" with the query,
// the fragment, the port, and every path segment that holds a digit or is
// longer than maxPathSegment left out. Host labels with a digit become
// "#", so per-recipient subdomains fold together.
func (sc *refScanner) link(host, rest string, emit func(word []byte, h uint64)) {
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

// splitWords splits s into runs of letters and digits, drops every run that
// holds a digit, lower-cases the rest and calls fn with each. Runes of
// scripts written without spaces (Han, Hiragana, Katakana, Thai) are words
// of their own, so that shingles work for them too.
func (sc *refScanner) splitWords(s string, fn func(word []byte)) {
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

func refDecodeRune(s string) (rune, int) {
	if s[0] < utf8.RuneSelf {
		return rune(s[0]), 1
	}
	return utf8.DecodeRuneInString(s)
}

func refIsSpace(r rune) bool {
	if r < utf8.RuneSelf {
		return r == ' ' || '\t' <= r && r <= '\r'
	}
	return unicode.IsSpace(r)
}

// linkParts recognises http(s):// and www. links and returns the host and
// what follows it.
func refLinkParts(tok string) (host, rest string, ok bool) {
	var s string
	switch {
	case refHasPrefixFold(tok, "https://"):
		s = tok[len("https://"):]
	case refHasPrefixFold(tok, "http://"):
		s = tok[len("http://"):]
	case refHasPrefixFold(tok, "www."):
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

func refHasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// refNormalise is Normalise with refScanner, the words with their hashes.
func refNormalise(text string, perRecipient []string) (words []string, hashes []uint64, links int) {
	var sc refScanner
	sc.setPerRecipient(perRecipient)
	sc.scan(text, func(w []byte, h uint64) {
		words = append(words, string(w))
		hashes = append(hashes, h)
	})
	return words, hashes, sc.links
}

// refCompute is Compute as it was before the byte-wise scanner and the
// doubled shingle window: refNormalise's hashes, the window indexed modulo
// ShingleWords.
func refCompute(in Input) Fingerprint {
	text := in.Text
	if room := MaxTextBytes - min(len(in.Subject), MaxTextBytes); len(text) > room {
		text = text[:room]
	}
	own, quoted := refOwnText(text)
	f := refRun(in.Subject, own, in.PerRecipient)
	if quoted && !f.HasSig {
		if g := refRun(in.Subject, text, in.PerRecipient); g.HasSig || g.HasExact {
			f = g
			f.Quoted = true
		}
	}
	if len(in.Attachments) > 0 {
		n := min(len(in.Attachments), MaxAttachments)
		f.Attachments = append([]Digest(nil), in.Attachments[:n]...)
	}
	return f
}

func refRun(subject, text string, per []string) Fingerprint {
	_, hs, links := refNormalise(subject, per)
	_, ht, lt := refNormalise(text, per)
	var c computer
	c.exact = 0xcbf29ce484222325
	for i := range c.sig {
		c.sig[i] = ^uint64(0)
	}
	var window [ShingleWords]uint64
	n := 0
	for _, h := range append(hs, ht...) {
		c.exact = (c.exact ^ h) * 0x100000001b3
		window[n%ShingleWords] = h
		n++
		if n < ShingleWords {
			continue
		}
		x := uint64(0x736869676c65)
		for k := range ShingleWords {
			x = bits.RotateLeft64(x, 23) ^ window[(n+k)%ShingleWords]
			x *= 0x9e3779b97f4a7c15
		}
		x = mix64(x)
		b := x % NumHashes
		if v := x / NumHashes; v < c.sig[b] {
			c.sig[b] = v
		}
	}
	var f Fingerprint
	f.Words = n
	switch {
	case n-ShingleWords+1 >= MinShingles && c.densify():
		f.HasSig = true
		for i, v := range c.sig {
			f.Sig[i] = uint16(v)
		}
	case n > 0 && links+lt > 0:
		f.HasExact = true
		f.Exact = mix64(c.exact ^ uint64(n))
	}
	return f
}

// ownText returns text without its quoted part: lines whose first
// non-blank character is '>', and everything from a reply attribution or
// an original-message separator on. quoted reports that something was
// left out; text without quotes is returned as it is, without copying.
func refOwnText(text string) (own string, quoted bool) {
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
		case refIsReplySeparator(t):
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

// isReplySeparator recognises "On ... wrote:" attribution lines and
// "-----Original Message-----" separators (t has no leading blanks).
func refIsReplySeparator(t string) bool {
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
