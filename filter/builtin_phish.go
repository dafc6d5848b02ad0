package filter

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"unicode"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
	"golang.org/x/text/unicode/norm"
)

// protectedDomain is a domain whose lookalikes mean phishing.
type protectedDomain struct {
	domain string // "paypal.com"
	label  string // "paypal": the brand
	skel   string // skeleton of label
}

func newProtectedDomain(d string) (protectedDomain, error) {
	d = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(d), "."))
	if a, err := idna.Lookup.ToASCII(d); err == nil {
		d = a
	}
	reg, err := publicsuffix.EffectiveTLDPlusOne(d)
	if err != nil || !strings.Contains(d, ".") {
		return protectedDomain{}, fmt.Errorf("protected_domains: %q is not a registrable domain name like paypal.com", d)
	}
	label := strings.SplitN(reg, ".", 2)[0]
	return protectedDomain{domain: d, label: label, skel: skeleton(label)}, nil
}

// registrable returns the registrable domain of a host ("mail.example.co.uk"
// gives "example.co.uk"), or the host itself when there is none.
func registrable(host string) string {
	if r, err := publicsuffix.EffectiveTLDPlusOne(host); err == nil {
		return r
	}
	return host
}

// confusables maps characters that render like an ASCII letter to it.
// Letters with diacritics are handled by decomposition in skeleton.
var confusables = map[rune]rune{
	// Cyrillic
	'а': 'a', 'е': 'e', 'ё': 'e', 'о': 'o', 'р': 'p', 'с': 'c', 'у': 'y', 'х': 'x',
	'ѕ': 's', 'і': 'i', 'ї': 'i', 'ј': 'j', 'ԁ': 'd', 'һ': 'h', 'ԛ': 'q', 'ԝ': 'w',
	'ӏ': 'l', 'к': 'k', 'ո': 'n', 'ս': 'u',
	// Greek
	'α': 'a', 'ο': 'o', 'ρ': 'p', 'ν': 'v', 'ι': 'i', 'κ': 'k', 'τ': 't', 'υ': 'u',
	'χ': 'x', 'ε': 'e',
	// Latin look-alikes
	'ı': 'i', 'ɡ': 'g', 'ɑ': 'a', 'ʟ': 'l',
}

// skeleton reduces a domain label to a form in which look-alike spellings
// coincide: confusable letters mapped to ASCII, diacritics and hyphens
// dropped, and the classic swaps (0/o, 1/l/i, rn/m, vv/w) unified.
func skeleton(label string) string {
	var b strings.Builder
	for _, r := range norm.NFKD.String(label) {
		if unicode.Is(unicode.Mn, r) || r == '-' {
			continue
		}
		if c, ok := confusables[unicode.ToLower(r)]; ok {
			r = c
		}
		r = unicode.ToLower(r)
		switch r {
		case '0':
			r = 'o'
		case '1', 'i':
			r = 'l'
		}
		b.WriteRune(r)
	}
	s := b.String()
	s = strings.ReplaceAll(s, "rn", "m")
	s = strings.ReplaceAll(s, "vv", "w")
	return s
}

// editDistance is the optimal string alignment distance (Levenshtein
// plus adjacent transpositions) between a and b, counting runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

// minEditLabel is the shortest brand for which an edit distance of one
// counts as a lookalike; shorter brands have too many innocent neighbours.
const minEditLabel = 5

// minBrandLabel is the shortest brand looked for inside other domains.
const minBrandLabel = 4

// isProtected reports whether host is a protected domain or below one.
func (b *Builtin) isProtected(host string) bool {
	for _, p := range b.protected {
		if host == p.domain || strings.HasSuffix(host, "."+p.domain) {
			return true
		}
	}
	return false
}

// lookalike classifies a host against the protected domains: "" when it
// is unrelated or protected itself, else the rule that fired.
func (b *Builtin) lookalike(host string) string {
	if host == "" || len(b.protected) == 0 || b.isProtected(host) || isIPHost(host) {
		return ""
	}
	reg := registrable(host)
	label := strings.SplitN(reg, ".", 2)[0]
	uniLabel := label
	if u, err := idna.ToUnicode(label); err == nil {
		uniLabel = u
	}
	if len(label) > 63 {
		return ""
	}
	skel := skeleton(uniLabel)
	for _, p := range b.protected {
		if label == p.label {
			// The brand's own name under another suffix (paypal.me,
			// amazon.de): brands register their name widely, so this is
			// far more often the brand than a phisher.
			continue
		}
		if skel == p.skel {
			return RuleLookalikeDomain
		}
		if len(p.label) >= minEditLabel && abs(len(skel)-len(p.skel)) <= 1 && editDistance(skel, p.skel) == 1 {
			return RuleLookalikeDomain
		}
		if len(p.label) >= minBrandLabel && containsBrand(host, p.label) {
			return RuleBrandInDomain
		}
	}
	return ""
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// containsBrand reports whether brand is a whole label of host or a
// hyphen-separated word in one ("paypal.example.net",
// "secure-paypal-login.com").
func containsBrand(host, brand string) bool {
	for rest := host; ; {
		l, more, found := strings.Cut(rest, ".")
		if l == brand {
			return true
		}
		for words := l; ; {
			w, next, hyphen := strings.Cut(words, "-")
			if w == brand {
				return true
			}
			if !hyphen {
				break
			}
			words = next
		}
		if !found {
			return false
		}
		rest = more
	}
}

// domainTextRE matches link text that shows a URL or bare domain.
var domainTextRE = regexp.MustCompile(`(?i)^(?:(?:https?|ftp)://)?(?:[^@/\s]+@)?((?:[a-z0-9\p{L}](?:[a-z0-9\p{L}-]*[a-z0-9\p{L}])?\.)+[a-z\p{L}][a-z0-9\p{L}-]*[a-z0-9\p{L}])\.?(?::\d+)?(?:[/?#]\S*)?$`)

// shownDomain returns the host a link's text displays, or "".
func shownDomain(text string) string {
	text = strings.TrimSpace(text)
	if text == "" || len(text) > 512 || strings.ContainsAny(text, " \t\n") {
		return ""
	}
	m := domainTextRE.FindStringSubmatch(text)
	if m == nil {
		return ""
	}
	h := strings.ToLower(m[1])
	// Only names under a real top-level domain count, so that "file.pdf"
	// or "v2.3" are not taken for domains.
	if !knownTLD(h[strings.LastIndexByte(h, '.')+1:]) {
		return ""
	}
	return h
}

// knownTLD reports whether tld is in the public suffix list's ICANN
// section, or is one of the names reserved for examples and tests (RFC
// 2606), which behave like real ones here so that documentation examples
// work as expected.
func knownTLD(tld string) bool {
	switch tld {
	case "example", "test", "invalid":
		return true
	}
	_, icann := publicsuffix.PublicSuffix(tld)
	return icann
}

// links runs the phishing heuristics on the message's URLs and on the
// sender domains of From, Reply-To and Sender. Each host is judged once.
func (s *scan) links(m *Message) {
	b := s.b
	checked := map[string]bool{}
	checkHost := func(h string) {
		if h == "" || checked[h] {
			return
		}
		checked[h] = true
		if r := b.lookalike(h); r != "" {
			s.hit(r)
		}
	}
	for _, u := range m.URLs {
		checkHost(u.Host)
		if u.Userinfo != "" {
			name := strings.SplitN(u.Userinfo, ":", 2)[0]
			if shownDomain(name) != "" {
				s.hit(RuleURLUserinfoDomain)
			} else {
				s.hit(RuleURLUserinfo)
			}
		}
		if isIPHost(u.Host) && !privateHost(u.Host) {
			s.hit(RuleURLIPLiteral)
		}
		if !u.Href {
			continue
		}
		shown := shownDomain(u.Text)
		if shown == "" || u.Host == "" || shown == u.Host {
			continue
		}
		if registrable(shown) == registrable(u.Host) {
			continue
		}
		if b.isProtected(shown) || b.lookalike(shown) != "" {
			s.hit(RuleLinkProtectedMismatch)
		} else {
			s.hit(RuleLinkMismatch)
		}
	}
	for _, key := range []string{"From", "Reply-To", "Sender"} {
		addrs, err := s.addressList(m, key)
		if err != nil {
			continue
		}
		for _, a := range addrs {
			checkHost(domainOf(a.Address))
		}
	}
}

// privateHost reports whether an IP literal is loopback, private or
// link-local: internal links in business mail, not phishing.
func privateHost(h string) bool {
	if !mayBeIP(h) {
		return false
	}
	a, err := netip.ParseAddr(h)
	return err == nil && (a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast())
}
