package filter

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// textURLRE finds URLs in plain text: an explicit scheme, or a bare
// "www." host.
var textURLRE = regexp.MustCompile(`(?i)\b(?:(?:https?|ftp)://|www\.)[^\s<>"'\x60{}|^\[\]]+`)

func (w *walker) urlsInText(s string) {
	// URLs contain no white space, so the expression only runs on the few
	// words that can hold one: those of strings.Fields holding "://" or
	// "www." in any case. The marks are found first, with the standard
	// library's vectorised searches, and then the word around each: text
	// without a link is never read a rune at a time.
	colon, www := -2, -2 // the next marks at or after from; -2 not looked for yet, -1 none
	for from := 0; from < len(s); {
		if colon != -1 && colon < from {
			if colon = strings.Index(s[from:], "://"); colon >= 0 {
				colon += from
			}
		}
		if www != -1 && www < from {
			www = indexWWW(s, from)
		}
		k := colon
		if k < 0 || www >= 0 && www < k {
			k = www
		}
		if k < 0 {
			return
		}
		start, end := wordStart(s, from, k), wordEnd(s, k)
		w.urlsInWord(s[start:end])
		from = end
	}
}

// indexWWW returns the index of the first "www." at or after from, the
// letters in any case, or -1.
func indexWWW(s string, from int) int {
	for i := from + 3; i < len(s); {
		j := strings.IndexByte(s[i:], '.')
		if j < 0 {
			return -1
		}
		i += j
		if s[i-3]|0x20 == 'w' && s[i-2]|0x20 == 'w' && s[i-1]|0x20 == 'w' {
			return i - 3
		}
		i++
	}
	return -1
}

// wordStart returns where the word holding s[k] starts: after the last
// white space rune before k, and not before from (the start of s or the
// end of a word, a rune boundary). k is an ASCII byte, so a rune boundary
// too, and reading runes backwards from a boundary finds the runes that
// reading forwards does: every byte that does not continue a rune starts
// one.
func wordStart(s string, from, k int) int {
	for k > from {
		c := s[k-1]
		if c < utf8.RuneSelf {
			if asciiSpace[c] {
				return k
			}
			k--
			continue
		}
		r, size := utf8.DecodeLastRuneInString(s[from:k])
		if unicode.IsSpace(r) {
			return k
		}
		k -= size
	}
	return k
}

// wordEnd returns where the word holding s[k] ends: at the next white
// space rune, or the end of s.
func wordEnd(s string, k int) int {
	for k < len(s) {
		c := s[k]
		if c < utf8.RuneSelf {
			if asciiSpace[c] {
				return k
			}
			k++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[k:])
		if unicode.IsSpace(r) {
			return k
		}
		k += size
	}
	return k
}

// asciiSpace marks the ASCII characters unicode.IsSpace reports.
var asciiSpace = [utf8.RuneSelf]bool{'\t': true, '\n': true, '\v': true, '\f': true, '\r': true, ' ': true}

// urlsInWord adds the URLs of one word of text.
func (w *walker) urlsInWord(word string) {
	for i, n := 0, 0; n <= w.lim.MaxURLs; n++ {
		start, end := nextTextURL(word, i)
		if start < 0 {
			return
		}
		w.addURL(trimURLTail(word[start:end]), "", false)
		i = end
	}
}

// nextTextURL finds the first match of textURLRE in s at or after i,
// without the expression: at a word boundary (the byte before is not an
// ASCII letter, digit or underscore), "http://", "https://", "ftp://" or
// "www." in any case, then at least one byte that is not white space or
// one of <>"'`{}|^[]. It returns -1, -1 when there is none.
func nextTextURL(s string, i int) (start, end int) {
	for ; i < len(s); i++ {
		if i > 0 && isASCIIWordByte(s[i-1]) {
			continue
		}
		var n int
		switch s[i] | 0x20 {
		case 'h':
			n = prefixFold(s[i:], "https://")
			if n == 0 {
				n = prefixFold(s[i:], "http://")
			}
		case 'f':
			n = prefixFold(s[i:], "ftp://")
		case 'w':
			n = prefixFold(s[i:], "www.")
		}
		if n == 0 {
			continue
		}
		e := i + n
		for e < len(s) && !urlStop[s[e]] {
			e++
		}
		if e > i+n {
			return i, e
		}
	}
	return -1, -1
}

// prefixFold returns len(p) when s starts with p, ASCII letters compared
// in any case (p is lower case), else 0.
func prefixFold(s, p string) int {
	if len(s) < len(p) {
		return 0
	}
	for j := 0; j < len(p); j++ {
		c := s[j]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != p[j] {
			return 0
		}
	}
	return len(p)
}

func isASCIIWordByte(c byte) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c|0x20 && c|0x20 <= 'z'
}

// urlStop marks the bytes that end a URL in text: the white space of \s
// and <>"'`{}|^[].
var urlStop = func() (t [256]bool) {
	for _, c := range []byte(" \t\n\f\r<>\"'`{}|^[]") {
		t[c] = true
	}
	return t
}()

// trimURLTail drops punctuation that ends a sentence rather than the URL,
// and a closing parenthesis without its opening one.
func trimURLTail(u string) string {
	for len(u) > 0 {
		c := u[len(u)-1]
		switch {
		case strings.IndexByte(".,;:!?'\"*", c) >= 0:
			u = u[:len(u)-1]
		case c == ')' && strings.Count(u, "(") < strings.Count(u, ")"):
			u = u[:len(u)-1]
		default:
			return u
		}
	}
	return u
}

// addURL records a link once. Links that go nowhere outside the message
// (mailto:, cid:, anchors, relative paths) are skipped.
func (w *walker) addURL(raw, text string, href bool) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return
	}
	lower := strings.ToLower(raw)
	hasScheme := strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://") ||
		strings.HasPrefix(lower, "ftp://") || strings.HasPrefix(lower, "//")
	if !hasScheme && !strings.HasPrefix(lower, "www.") {
		return
	}
	key := raw + "\x00" + text
	if w.seen[key] {
		return
	}
	if len(w.m.URLs) >= w.lim.MaxURLs {
		w.defect(fmt.Sprintf("more than %d URLs: rest ignored", w.lim.MaxURLs))
		return
	}
	w.seen[key] = true
	host, userinfo := urlAuthority(raw)
	w.m.URLs = append(w.m.URLs, URL{Raw: raw, Host: host, Userinfo: userinfo, Text: text, Href: href})
}

// urlAuthority returns the lower-case host and the userinfo of a URL. It
// parses leniently, the way browsers do (a backslash ends the authority
// like a slash), because phishing URLs are often not valid RFC 3986.
func urlAuthority(raw string) (host, userinfo string) {
	s := raw
	if i := strings.Index(s, "//"); i >= 0 && i <= 6 {
		s = s[i+2:]
	}
	if i := strings.IndexAny(s, "/\\?#"); i >= 0 {
		s = s[:i]
	}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		userinfo, s = s[:i], s[i+1:]
	}
	if strings.HasPrefix(s, "[") {
		if j := strings.IndexByte(s, ']'); j > 0 {
			return strings.ToLower(s[1:j]), userinfo
		}
	}
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSuffix(strings.ToLower(s), "."), userinfo
}

// mayBeIP reports whether netip.ParseAddr could accept s, so that the
// names that cannot be addresses skip it (its error allocates): without
// a colon, only digits and dots make an IPv4 address.
func mayBeIP(s string) bool {
	if strings.IndexByte(s, ':') >= 0 {
		return true
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '.' && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// isIPHost reports whether a URL host is an IP literal, including the
// decimal and hexadecimal forms browsers accept (http://3232235777/).
func isIPHost(h string) bool {
	if h == "" {
		return false
	}
	if mayBeIP(h) {
		if _, err := netip.ParseAddr(h); err == nil {
			return true
		}
	}
	if strings.HasPrefix(h, "0x") && len(h) > 2 {
		return strings.Trim(h[2:], "0123456789abcdef.x") == ""
	}
	return strings.Trim(h, "0123456789") == "" && len(h) >= 8
}
