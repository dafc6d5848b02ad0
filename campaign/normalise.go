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
	bloom uint64 // bit h%64 set for every h in skip
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
	sc.bloom = 0
	budget := maxPerRecipientBytes
	for _, w := range words {
		if len(w) > 1024 {
			w = w[:1024]
		}
		if budget -= len(w); budget < 0 {
			break
		}
		sc.splitWords(w, nil)
	}
}

// scan normalises text and calls emit with each kept word and its
// hashBytes hash. The slice passed to emit is only valid during the call.
//
// It reads the text a byte at a time and decodes only the bytes of
// multi-byte runes; a token of ASCII bytes (the common case) is split into
// words without decoding at all. computer.scan is the same walk for the
// fingerprint, without building the words.
func (sc *scanner) scan(text string, emit func(word []byte, h uint64)) {
	if len(text) > MaxTextBytes {
		text = text[:MaxTextBytes]
	}
	for i := 0; i < len(text); {
		// Skip white space, then take one white-space separated token.
		if c := text[i]; c < utf8.RuneSelf {
			if asciiSpace[c] {
				i++
				continue
			}
		} else if r, n := utf8.DecodeRuneInString(text[i:]); unicode.IsSpace(r) {
			i += n
			continue
		}
		end, ascii, at := tokenEnd(text, i)
		sc.token(text[i:end], ascii, at, emit)
		i = end
	}
}

// tokenEnd returns where the white-space separated token starting at
// text[i] (not white space) ends, whether it is all ASCII and whether it
// holds an '@'.
func tokenEnd(text string, i int) (end int, ascii, at bool) {
	ascii = true
	for i < len(text) {
		c := text[i]
		if c < utf8.RuneSelf {
			if asciiSpace[c] {
				break
			}
			at = at || c == '@'
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(text[i:])
		if unicode.IsSpace(r) {
			break
		}
		ascii = false
		i += n
	}
	return i, ascii, at
}

// asciiSpace marks the ASCII characters unicode.IsSpace reports.
var asciiSpace = [utf8.RuneSelf]bool{'\t': true, '\n': true, '\v': true, '\f': true, '\r': true, ' ': true}

// trimmed marks the characters a token loses at either end: brackets,
// quotes and punctuation around words and links.
var trimmed = [utf8.RuneSelf]bool{
	'<': true, '>': true, '(': true, ')': true, '[': true, ']': true, '"': true, '\'': true,
	',': true, ';': true, '.': true, ':': true, '!': true, '?': true,
}

// token handles one white-space separated token; ascii says it is all
// ASCII, at that it holds an '@'.
func (sc *scanner) token(tok string, ascii, at bool, emit func(word []byte, h uint64)) {
	// Every trimmed character is ASCII, and no byte of a multi-byte rune
	// is, so trimming bytes is trimming runes.
	for len(tok) > 0 && tok[0] < utf8.RuneSelf && trimmed[tok[0]] {
		tok = tok[1:]
	}
	for len(tok) > 0 && tok[len(tok)-1] < utf8.RuneSelf && trimmed[tok[len(tok)-1]] {
		tok = tok[:len(tok)-1]
	}
	if tok == "" {
		return
	}
	// Only the ASCII letters fold to h and w: a link starts with one.
	if c := tok[0] | 0x20; c == 'h' || c == 'w' {
		if host, rest, ok := linkParts(tok); ok {
			sc.links++
			sc.link(host, rest, emit)
			return
		}
	}
	if at {
		// An address, a mailto: or a handle: per recipient or per sender,
		// never part of a template.
		return
	}
	if ascii {
		sc.splitASCII(tok, emit)
		return
	}
	sc.splitWords(tok, emit)
}

// linkParts recognises http(s):// and www. links and returns the host and
// what follows it; tok is not empty.
func linkParts(tok string) (host, rest string, ok bool) {
	var s string
	// Only the ASCII letters fold to h and w: a link starts with one.
	switch tok[0] | 0x20 {
	case 'h':
		switch {
		case hasPrefixFold(tok, "https://"):
			s = tok[len("https://"):]
		case hasPrefixFold(tok, "http://"):
			s = tok[len("http://"):]
		default:
			return "", "", false
		}
	case 'w':
		if !hasPrefixFold(tok, "www.") {
			return "", "", false
		}
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
	first := true
	for label := range strings.SplitSeq(host, ".") {
		if !first {
			b = append(b, '.')
		}
		first = false
		if hasDigit(label) {
			b = append(b, '#')
			continue
		}
		b = appendLowerBytes(b, label)
	}
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		rest = rest[:i]
	}
	for seg := range strings.SplitSeq(rest, "/") {
		if seg == "" || len(seg) > maxPathSegment || hasDigit(seg) {
			continue
		}
		b = append(b, '/')
		b = appendLowerBytes(b, seg)
	}
	if len(b) > 4*maxWordBytes {
		b = b[:4*maxWordBytes]
	}
	sc.buf = b
	emit(b, hashBytes(b))
}

// hasDigit reports whether s holds a rune unicode.IsDigit accepts,
// reading ASCII bytes without decoding them.
func hasDigit(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return strings.IndexFunc(s[i:], unicode.IsDigit) >= 0
		}
		if '0' <= c && c <= '9' {
			return true
		}
	}
	return false
}

// appendLowerBytes is appendLower reading ASCII bytes without decoding
// them.
func appendLowerBytes(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return appendLower(b, s[i:])
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}

// appendLower appends s lower-cased, rune by rune.
func appendLower(b []byte, s string) []byte {
	for _, r := range s {
		b = utf8.AppendRune(b, unicode.ToLower(r))
	}
	return b
}

// splitWords splits s into runs of letters and digits, drops every run that
// holds a digit, lower-cases the rest and passes each to sc.word with
// emit. Runes of scripts written without spaces (Han, Hiragana, Katakana,
// Thai) are words of their own, so that shingles work for them too.
func (sc *scanner) splitWords(s string, emit func(word []byte, h uint64)) {
	b := sc.buf[:0]
	h := fnvOffset
	digit := false
	for _, r := range s {
		if r < utf8.RuneSelf {
			// ASCII fast path: the common case needs no table look-ups.
			switch {
			case 'a' <= r && r <= 'z':
				if len(b) < maxWordBytes {
					b = append(b, byte(r))
					h = (h ^ uint64(r)) * fnvPrime
				}
			case 'A' <= r && r <= 'Z':
				if len(b) < maxWordBytes {
					b = append(b, byte(r)+'a'-'A')
					h = (h ^ uint64(r+'a'-'A')) * fnvPrime
				}
			case '0' <= r && r <= '9':
				digit = true
			default:
				sc.word(b, h, digit, emit)
				b, h, digit = b[:0], fnvOffset, false
			}
			continue
		}
		switch {
		case (unicode.IsLetter(r) || unicode.IsMark(r)) && unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Thai):
			sc.word(b, h, digit, emit)
			b = utf8.AppendRune(b[:0], r)
			sc.word(b, fnvBytes(fnvOffset, b), false, emit)
			b, h, digit = b[:0], fnvOffset, false
		case unicode.IsLetter(r) || unicode.IsMark(r):
			if len(b) < maxWordBytes {
				n := len(b)
				b = utf8.AppendRune(b, unicode.ToLower(r))
				h = fnvBytes(h, b[n:])
			}
		case unicode.IsDigit(r):
			digit = true
		default:
			sc.word(b, h, digit, emit)
			b, h, digit = b[:0], fnvOffset, false
		}
	}
	sc.word(b, h, digit, emit)
	sc.buf = b
}

// splitASCII is splitWords for a string of ASCII bytes.
func (sc *scanner) splitASCII(s string, emit func(word []byte, h uint64)) {
	b := sc.buf[:0]
	h := fnvOffset
	digit := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z':
			if len(b) < maxWordBytes {
				b = append(b, c)
				h = (h ^ uint64(c)) * fnvPrime
			}
		case 'A' <= c && c <= 'Z':
			if len(b) < maxWordBytes {
				c += 'a' - 'A'
				b = append(b, c)
				h = (h ^ uint64(c)) * fnvPrime
			}
		case '0' <= c && c <= '9':
			digit = true
		default:
			sc.word(b, h, digit, emit)
			b, h, digit = b[:0], fnvOffset, false
		}
	}
	sc.word(b, h, digit, emit)
	sc.buf = b
}

// word takes one word of splitWords, with the FNV-1a hash of its bytes
// (hashBytes before mix64): nothing when it is empty or held a digit, a
// per-recipient word when emit is nil, else the word for emit unless it
// is a per-recipient one.
func (sc *scanner) word(b []byte, fnv uint64, digit bool, emit func(word []byte, h uint64)) {
	if len(b) == 0 || digit {
		return
	}
	h := mix64(fnv)
	if emit == nil {
		sc.skip.add(h)
		sc.bloom |= 1 << (h % 64)
		return
	}
	if !sc.perRecipient(h) {
		emit(b, h)
	}
}

// perRecipient reports whether h is the hash of a per-recipient word. One
// bit of a 64-bit Bloom filter answers most words without a search.
func (sc *scanner) perRecipient(h uint64) bool {
	return sc.bloom&(1<<(h%64)) != 0 && sc.skip.has(h)
}

// Byte classes of computer.scan.
const (
	byteOther  = iota // ASCII punctuation and controls: they end a word
	byteLetter        // A-Z, a-z
	byteDigit         // 0-9
	byteSpace         // ASCII white space: it ends the token
	byteSlow          // '@' and the bytes of multi-byte runes: the general path
)

var byteClass = func() (t [256]uint8) {
	for c := range 256 {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
			t[c] = byteLetter
		case '0' <= c && c <= '9':
			t[c] = byteDigit
		case c < utf8.RuneSelf && asciiSpace[c]:
			t[c] = byteSpace
		case c == '@' || c >= utf8.RuneSelf:
			t[c] = byteSlow
		}
	}
	return t
}()

// maxPending is the most words of one token computer.scan holds back
// until it knows the token is not an address; a token with more takes the
// general path.
const maxPending = 16

// scan is scanner.scan for the fingerprint, without building the words:
// it feeds each kept word's hash to c.word. Tokens of ASCII letters,
// digits and punctuation (the bulk of any text) are split into words in
// the same pass that finds their end, their words held back until the
// token ends without an '@'; a token with an '@', a byte of a multi-byte
// rune, more than maxPending words, or that may be a link, is handed to
// scanner.token as scan does.
func (c *computer) scan(text string) {
	sc := &c.sc
	if len(text) > MaxTextBytes {
		text = text[:MaxTextBytes]
	}
	var pending [maxPending]uint64
	for i := 0; i < len(text); {
		class := byteClass[text[i]]
		if class == byteSpace {
			i++
			continue
		}
		if text[i] >= utf8.RuneSelf {
			if r, n := utf8.DecodeRuneInString(text[i:]); unicode.IsSpace(r) {
				i += n
				continue
			}
		}
		start := i
		if class != byteSlow && !maybeLink(text, i) {
			np, h, n, digit, ok := 0, fnvOffset, 0, false, true
		token:
			for ; i < len(text); i++ {
				b := text[i]
				switch byteClass[b] {
				case byteLetter:
					if n < maxWordBytes {
						// b|0x20 lower-cases an ASCII letter.
						h = (h ^ uint64(b|0x20)) * fnvPrime
						n++
					}
				case byteDigit:
					digit = true
				case byteOther:
					if n > 0 && !digit {
						if np == len(pending) {
							ok = false
							break token
						}
						pending[np] = h
						np++
					}
					h, n, digit = fnvOffset, 0, false
				case byteSpace:
					break token
				default:
					ok = false
					break token
				}
			}
			if ok && n > 0 && !digit {
				if ok = np < len(pending); ok {
					pending[np] = h
					np++
				}
			}
			if ok {
				for _, h := range pending[:np] {
					if h = mix64(h); !sc.perRecipient(h) {
						c.word(nil, h)
					}
				}
				continue
			}
		}
		end, ascii, at := tokenEnd(text, start)
		sc.token(text[start:end], ascii, at, c.word)
		i = end
	}
}

// maybeLink reports whether the token starting at text[i] may be a link:
// whether, past the characters token trims, it starts with "http" or
// "www." in any case. It may say yes to a token that is none, never no to
// one that is.
func maybeLink(text string, i int) bool {
	// Most tokens start with none of h, w or a trimmed character.
	return linkStart[text[i]] && maybeLinkTrimmed(text, i)
}

// linkStart marks h, w and the characters token trims.
var linkStart = func() (t [256]bool) {
	for c := range utf8.RuneSelf {
		t[c] = trimmed[c] || c|0x20 == 'h' || c|0x20 == 'w'
	}
	return t
}()

// maybeLinkTrimmed is maybeLink past its first test.
func maybeLinkTrimmed(text string, i int) bool {
	for i < len(text) && text[i] < utf8.RuneSelf && trimmed[text[i]] {
		i++
	}
	if len(text)-i < 4 {
		return false
	}
	switch text[i] | 0x20 {
	case 'h':
		return text[i+1]|0x20 == 't' && text[i+2]|0x20 == 't' && text[i+3]|0x20 == 'p'
	case 'w':
		return text[i+1]|0x20 == 'w' && text[i+2]|0x20 == 'w' && text[i+3] == '.'
	}
	return false
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
		t := line
		for len(t) > 0 && (t[0] == ' ' || t[0] == '\t') {
			t = t[1:]
		}
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
	for len(t) > 0 && (t[len(t)-1] == ' ' || t[len(t)-1] == '\t' || t[len(t)-1] == '\r') {
		t = t[:len(t)-1]
	}
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
