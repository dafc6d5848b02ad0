package smtpclient

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// go-smtp's server hands its session envelope addresses with a quoted
// local part already unquoted: `"a b"@example.net` arrives as
// `a b@example.net`. Written back as it came, such an address would end
// the path early on the next command line and add parameters of the
// sender's choosing (`MAIL FROM:<"x> AUTH=<ceo@victim.example>"@example.net>`).
// Every address outguard writes to the wire goes through Path, which
// quotes the local part again where RFC 5321 §4.1.2 requires it.

// ErrBadAddress is an address that no SMTP path can carry: it holds a
// control character (CR, LF, NUL...), an angle bracket, or bytes that are
// not UTF-8.
var ErrBadAddress = errors.New("address cannot be written as an SMTP path")

// CheckAddress reports whether addr (as go-smtp parsed it) can be
// written as a path: no control characters, no '<' or '>', valid UTF-8.
func CheckAddress(addr string) error {
	if !utf8.ValidString(addr) {
		return ErrBadAddress
	}
	for i := 0; i < len(addr); i++ {
		c := addr[i]
		if c < ' ' || c == 0x7f || c == '<' || c == '>' {
			return ErrBadAddress
		}
	}
	return nil
}

// Path returns addr as an RFC 5321 path, angle brackets included,
// with the local part quoted when it is not a Dot-string. The empty
// address is the null reverse path "<>". The local part is everything
// before the last '@'.
func Path(addr string) (string, error) {
	if err := CheckAddress(addr); err != nil {
		return "", err
	}
	if addr == "" {
		return "<>", nil
	}
	local, domain := addr, ""
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		local, domain = addr[:i], addr[i:]
	}
	if strings.ContainsAny(domain, " \t\"\\") {
		// go-smtp ends the domain at white space; a quote or backslash
		// there has no meaning in a domain or address literal.
		return "", ErrBadAddress
	}
	var b strings.Builder
	b.Grow(len(addr) + 4)
	b.WriteByte('<')
	if isDotString(local) {
		b.WriteString(local)
	} else {
		b.WriteByte('"')
		for i := 0; i < len(local); i++ {
			// quoted-pairSMTP (RFC 5321 §4.1.2): '"' and '\' are escaped,
			// every other octet (printable ASCII or UTF-8, RFC 6531 §3.3)
			// is qtextSMTP.
			if c := local[i]; c == '"' || c == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(local[i])
		}
		b.WriteByte('"')
	}
	b.WriteString(domain)
	b.WriteByte('>')
	return b.String(), nil
}

// isDotString reports whether s is a Dot-string (RFC 5321 §4.1.2): atoms
// of atext separated by single dots, with UTF-8 allowed in atext as
// RFC 6531 §3.3 extends it.
func isDotString(s string) bool {
	if s == "" {
		return false
	}
	prevDot := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '.' {
			if prevDot {
				return false
			}
			prevDot = true
			continue
		}
		prevDot = false
		if !isAtext(c) {
			return false
		}
	}
	return !prevDot
}

func isAtext(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c >= 0x80:
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}
