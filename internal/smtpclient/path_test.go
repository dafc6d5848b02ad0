package smtpclient

import (
	"strings"
	"testing"
)

func TestWirePath(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", "<>"},
		{"a@example.com", "<a@example.com>"},
		{"first.last+tag@example.com", "<first.last+tag@example.com>"},
		{"a b@example.com", `<"a b"@example.com>`},
		{"a..b@example.com", `<"a..b"@example.com>`},
		{".a@example.com", `<".a"@example.com>`},
		{"a.@example.com", `<"a."@example.com>`},
		{`a"b@example.com`, `<"a\"b"@example.com>`},
		{`a\b@example.com`, `<"a\\b"@example.com>`},
		{"a@b@example.com", `<"a@b"@example.com>`},
		{"jörg@example.com", "<jörg@example.com>"},
		{"postmaster", "<postmaster>"},
		{"@example.com", `<""@example.com>`},
		{"a@[IPv6:2001:db8::1]", "<a@[IPv6:2001:db8::1]>"},
	}
	for _, tc := range cases {
		got, err := Path(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("Path(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"a\r\n@example.com", "a\x00@example.com", "a>@example.com", "<a@example.com", "a@exa mple.com", "a@example.com\"", "\xff@example.com"} {
		if got, err := Path(bad); err == nil {
			t.Errorf("Path(%q) = %q, want an error", bad, got)
		}
	}
}

// FuzzWirePath checks that whatever go-smtp hands the session, the path
// outguard writes is one RFC 5321 path that reads back as the same
// address, with nothing after it on the command line.
func FuzzWirePath(f *testing.F) {
	for _, s := range []string{"", "a@example.com", "bounce> AUTH=<ceo@victim.example>@out.example.net", "x NOTIFY=NEVER@example.org", `a"b\c@d`, "a@b@c", "jörg@example.com", "a\r\n.@x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		p, err := Path(addr)
		if err != nil {
			return
		}
		got, rest, ok := readPath(p)
		if !ok || rest != "" {
			t.Fatalf("Path(%q) = %q: not one path (rest %q)", addr, p, rest)
		}
		if got != addr {
			t.Fatalf("Path(%q) = %q reads back as %q", addr, p, got)
		}
		for i := 0; i < len(p); i++ {
			if c := p[i]; c < ' ' || c == 0x7f {
				t.Fatalf("Path(%q) = %q holds control octet %#x", addr, p, c)
			}
		}
	})
}

// readPath reads one RFC 5321 path from the start of s ("<>" or
// "<" local-part "@" domain ">", local-part a Dot-string or a
// Quoted-string) and returns the address with the local part unquoted and
// what follows the path. Domains here are whatever has no white space,
// quote, backslash or angle bracket.
func readPath(s string) (addr, rest string, ok bool) {
	if strings.HasPrefix(s, "<>") {
		return "", s[2:], true
	}
	if !strings.HasPrefix(s, "<") {
		return "", s, false
	}
	s = s[1:]
	var local strings.Builder
	if strings.HasPrefix(s, `"`) {
		i := 1
		for {
			if i >= len(s) {
				return "", s, false
			}
			c := s[i]
			if c == '"' {
				i++
				break
			}
			if c == '\\' {
				i++
				if i >= len(s) {
					return "", s, false
				}
				c = s[i]
			}
			local.WriteByte(c)
			i++
		}
		s = s[i:]
	} else {
		i := strings.IndexAny(s, "@>")
		if i < 0 {
			return "", s, false
		}
		if !isDotString(s[:i]) {
			return "", s, false
		}
		local.WriteString(s[:i])
		s = s[i:]
	}
	end := strings.IndexByte(s, '>')
	if end < 0 || strings.ContainsAny(s[:end], " \t\"\\<") {
		return "", s, false
	}
	return local.String() + s[:end], s[end+1:], true
}
