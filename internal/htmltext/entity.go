package htmltext

import (
	"unicode/utf8"

	"golang.org/x/net/html"
)

// Character references ("&amp;", "&#169;", "&#xA9;"), decoded as
// golang.org/x/net/html does.

// c1Replacements are the characters that numeric references to 0x80-0x9F
// stand for: those of windows-1252 (TestNumericReferences checks them).
var c1Replacements = [32]rune{
	'\u20AC', '\u0081', '\u201A', '\u0192', '\u201E', '\u2026', '\u2020', '\u2021',
	'\u02C6', '\u2030', '\u0160', '\u2039', '\u0152', '\u008D', '\u017D', '\u008F',
	'\u0090', '\u2018', '\u2019', '\u201C', '\u201D', '\u2022', '\u2013', '\u2014',
	'\u02DC', '\u2122', '\u0161', '\u203A', '\u0153', '\u009D', '\u017E', '\u0178',
}

// commonEntities are the named references of everyday mail, decoded
// without a lookup in the full table. Each is a whole name of the full
// table (TestCommonEntities checks them).
var commonEntities = map[string]string{
	"amp;": "&", "amp": "&", "lt;": "<", "lt": "<", "gt;": ">", "gt": ">",
	"quot;": "\"", "quot": "\"", "apos;": "'", "nbsp;": "\u00A0", "nbsp": "\u00A0",
	"copy;": "\u00A9", "copy": "\u00A9", "reg;": "\u00AE", "reg": "\u00AE", "trade;": "\u2122",
	"hellip;": "\u2026", "mdash;": "\u2014", "ndash;": "\u2013", "lsquo;": "\u2018",
	"rsquo;": "\u2019", "ldquo;": "\u201C", "rdquo;": "\u201D", "bull;": "\u2022",
	"middot;": "\u00B7", "middot": "\u00B7", "zwnj;": "\u200C", "zwj;": "\u200D", "shy;": "\u00AD",
	"shy": "\u00AD", "euro;": "\u20AC", "laquo;": "\u00AB", "raquo;": "\u00BB",
	"times;": "\u00D7", "eacute;": "\u00E9", "eacute": "\u00E9",
}

// appendEntity decodes the character reference at the start of s (which
// starts with '&') onto dst, and returns dst and the number of bytes of s
// read. What is no reference is a literal '&'. In an attribute value
// (attr), a name without ';' followed by '=' is no reference, and a name
// is a reference only whole, not by its longest known prefix.
func appendEntity(dst, s []byte, attr bool) ([]byte, int) {
	if len(s) <= 1 {
		return append(dst, '&'), 1
	}
	if s[1] == '#' {
		return appendNumeric(dst, s)
	}
	i := 1
	for i < len(s) {
		c := s[i]
		i++
		if isAlnum(c) {
			continue
		}
		if c != ';' {
			i--
		}
		break
	}
	name := s[1:i]
	if len(name) == 0 {
		return append(dst, '&'), 1
	}
	semi := name[len(name)-1] == ';'
	if attr && !semi && i < len(s) && s[i] == '=' {
		return append(dst, '&'), 1
	}
	if v, ok := commonEntities[string(name)]; ok {
		return append(dst, v...), i
	}
	// The rest of the table: golang.org/x/net/html's. Outside attributes, its answer for the name alone
	// is the answer in place (the name ends the reference). In an
	// attribute only a whole name counts: a longest-prefix match or no
	// match leaves the name's last byte last, which no whole name's value
	// does but that of "semi;".
	r := html.UnescapeString("&" + string(name))
	if attr && string(name) != "semi;" && r[len(r)-1] == name[len(name)-1] {
		return append(dst, '&'), 1
	}
	return append(dst, r...), i
}

// appendNumeric decodes a numeric reference ("&#...;" or "&#x...;").
func appendNumeric(dst, s []byte) ([]byte, int) {
	if len(s) <= 2 {
		return append(dst, '&'), 1
	}
	i := 2
	hex := false
	if s[i] == 'x' || s[i] == 'X' {
		hex = true
		i++
	}
	i0 := i
	x := rune(0)
	for ; i < len(s); i++ {
		c := s[i]
		var d rune
		switch {
		case '0' <= c && c <= '9':
			d = rune(c - '0')
		case hex && 'a' <= c && c <= 'f':
			d = rune(c-'a') + 10
		case hex && 'A' <= c && c <= 'F':
			d = rune(c-'A') + 10
		default:
			goto done
		}
		if x <= utf8.MaxRune {
			if hex {
				x = 16*x + d
			} else {
				x = 10*x + d
			}
		}
	}
done:
	if i == i0 {
		return append(dst, '&'), 1
	}
	if i < len(s) && s[i] == ';' {
		i++
	}
	switch {
	case 0x80 <= x && x <= 0x9F:
		x = c1Replacements[x-0x80]
	case x == 0 || 0xD800 <= x && x <= 0xDFFF || x > utf8.MaxRune:
		x = utf8.RuneError
	}
	return utf8.AppendRune(dst, x), i
}
