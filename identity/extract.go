package identity

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/outguard/outguard/internal/header"
)

// DefaultMaxLength bounds the length in bytes of an identity when
// RulesOptions.MaxLength is zero.
const DefaultMaxLength = 256

// MaxLineLength is the longest header line (without its CRLF) that can yield
// an identity: RFC 5322's limit of 998 octets.
const MaxLineLength = 998

// maxValueLength bounds the unfolded value a rule looks at, so a regex never
// runs over more than this many bytes.
const maxValueLength = 4096

// ErrBadRule wraps every error of NewRules and ParseRule.
var ErrBadRule = errors.New("identity: bad rule")

// RuleKind says where a rule takes its value from.
type RuleKind int

const (
	// RuleHeader takes the topmost occurrence of a header field.
	RuleHeader RuleKind = iota + 1
	// RuleAuthUser takes the SMTP AUTH name.
	RuleAuthUser
	// RuleEnvelopeSender takes the envelope sender (MAIL FROM address).
	RuleEnvelopeSender
)

// String names the kind as the configuration does.
func (k RuleKind) String() string {
	switch k {
	case RuleHeader:
		return "header"
	case RuleAuthUser:
		return "auth_user"
	case RuleEnvelopeSender:
		return "envelope_sender"
	}
	return fmt.Sprintf("RuleKind(%d)", int(k))
}

// RuleSpec is one identity rule as configured.
type RuleSpec struct {
	// Kind is where the value comes from.
	Kind RuleKind
	// Header is the field name for RuleHeader, e.g. "X-AuthUser".
	Header string
	// Regex, if set, must have exactly one capture group; the identity is
	// what it captures from the value. Unanchored, it matches anywhere.
	Regex string
}

// RulesOptions tune NewRules.
type RulesOptions struct {
	// MaxLength is the longest identity in bytes; a longer value yields no
	// identity rather than a truncated one. Zero means DefaultMaxLength.
	MaxLength int
}

// rule is a compiled RuleSpec.
type rule struct {
	kind   RuleKind
	header string // canonical spelling, for messages
	re     *regexp.Regexp
	source string
}

// Rules is an outgoing user's compiled, ordered list of identity rules. It
// is immutable and safe for concurrent use.
type Rules struct {
	rules   []rule
	headers []string // distinct header names, lower case
	maxLen  int
}

// NewRules compiles specs in order. An empty list is valid and never yields
// an identity.
func NewRules(specs []RuleSpec, opts RulesOptions) (*Rules, error) {
	if opts.MaxLength < 0 {
		return nil, fmt.Errorf("%w: max length %d is negative", ErrBadRule, opts.MaxLength)
	}
	rs := &Rules{maxLen: opts.MaxLength}
	if rs.maxLen == 0 {
		rs.maxLen = DefaultMaxLength
	}
	for i, s := range specs {
		r := rule{kind: s.Kind}
		switch s.Kind {
		case RuleHeader:
			if !ValidFieldName(s.Header) {
				return nil, fmt.Errorf("%w: rule %d: %q is not a header field name", ErrBadRule, i, s.Header)
			}
			r.header = s.Header
			r.source = "header " + s.Header
			lower := strings.ToLower(s.Header)
			found := false
			for _, h := range rs.headers {
				found = found || h == lower
			}
			if !found {
				rs.headers = append(rs.headers, lower)
			}
		case RuleAuthUser, RuleEnvelopeSender:
			if s.Header != "" {
				return nil, fmt.Errorf("%w: rule %d: %s takes no header name", ErrBadRule, i, s.Kind)
			}
			r.source = s.Kind.String()
		default:
			return nil, fmt.Errorf("%w: rule %d: unknown kind %d", ErrBadRule, i, int(s.Kind))
		}
		if s.Regex != "" {
			re, err := regexp.Compile(s.Regex)
			if err != nil {
				return nil, fmt.Errorf("%w: rule %d: regex: %v", ErrBadRule, i, err)
			}
			if re.NumSubexp() != 1 {
				return nil, fmt.Errorf("%w: rule %d: regex %q has %d capture groups, want exactly 1", ErrBadRule, i, s.Regex, re.NumSubexp())
			}
			r.re = re
		}
		rs.rules = append(rs.rules, r)
	}
	return rs, nil
}

// ValidFieldName reports whether s is a header field name (RFC 5322: one or
// more printable US-ASCII characters other than colon).
func ValidFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 33 || c > 126 || c == ':' {
			return false
		}
	}
	return true
}

// HeaderNames returns the header field names the rules read, in rule order
// and without duplicates: the fields to remove before relaying when the
// user strips its identity header.
func (rs *Rules) HeaderNames() []string {
	var out []string
	for _, r := range rs.rules {
		if r.kind == RuleHeader && !containsFold(out, r.header) {
			out = append(out, r.header)
		}
	}
	return out
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// Input is what extraction sees of one message.
type Input struct {
	// Header is the raw header block as received: the field lines, each
	// ending in CRLF or LF. Anything after the first empty line is ignored,
	// so the whole message may be passed.
	Header []byte
	// AuthUser is the SMTP AUTH name, empty without AUTH.
	AuthUser string
	// EnvelopeSender is the MAIL FROM address, empty for the null sender.
	EnvelopeSender string
}

// Result is the outcome of Extract.
type Result struct {
	// Identity is the identity found, "" for none.
	Identity string
	// Rule is the index of the rule that yielded Identity, -1 for none.
	Rule int
	// Source describes that rule: "header X-AuthUser", "auth_user" or
	// "envelope_sender"; "" for none.
	Source string
	// Refused lists the rules whose value was present but refused (too
	// long, control characters, several values...), for the log.
	Refused []Refusal
}

// Refusal says why a rule's value was not taken as the identity.
type Refusal struct {
	Rule   int
	Source string
	Reason string
}

// Extract applies the rules in order and returns the first valid, non-empty
// value. Its cost is one pass over the header block.
func (rs *Rules) Extract(in Input) Result {
	res := Result{Rule: -1}
	var fields []field
	if len(rs.headers) > 0 {
		fields = topmostFields(in.Header, rs.headers)
	}
	for i, r := range rs.rules {
		var (
			raw    string
			reason string
		)
		switch r.kind {
		case RuleHeader:
			f := findField(fields, r.header)
			if f == nil {
				continue
			}
			raw, reason = f.value()
		case RuleAuthUser:
			raw = in.AuthUser
		case RuleEnvelopeSender:
			raw = in.EnvelopeSender
		}
		if reason == "" {
			raw = trimSpace(raw)
			if raw == "" {
				continue
			}
			raw, reason = rs.check(r, raw)
		}
		if reason != "" {
			res.Refused = append(res.Refused, Refusal{Rule: i, Source: r.source, Reason: reason})
			continue
		}
		if raw == "" {
			continue
		}
		res.Identity, res.Rule, res.Source = raw, i, r.source
		return res
	}
	return res
}

// check validates a trimmed candidate and applies the rule's regex. It
// returns the identity ("" when the regex does not match) or why the value
// is refused.
func (rs *Rules) check(r rule, v string) (string, string) {
	if len(v) > maxValueLength {
		return "", fmt.Sprintf("value longer than %d bytes", maxValueLength)
	}
	if r.re != nil {
		m := r.re.FindStringSubmatch(v)
		if m == nil {
			return "", ""
		}
		v = trimSpace(m[1])
		if v == "" {
			return "", ""
		}
	}
	if len(v) > rs.maxLen {
		return "", fmt.Sprintf("identity longer than %d bytes", rs.maxLen)
	}
	if !utf8.ValidString(v) {
		return "", "not valid UTF-8"
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == 0x7f {
			return "", "control character in value"
		}
	}
	if r.kind == RuleHeader && strings.IndexByte(v, ',') >= 0 {
		return "", "several comma-separated values"
	}
	return v, ""
}

// trimSpace trims blanks, including Unicode spaces such as NO-BREAK SPACE,
// but not control characters, which make the value invalid instead.
func trimSpace(s string) string {
	return strings.TrimFunc(s, func(r rune) bool {
		return r == ' ' || r == '\t' || (r > 0x7f && unicode.IsSpace(r))
	})
}

// field is one header field: its name and its physical lines (without line
// endings), the first including the name and colon.
type field struct {
	name  string // lower case
	lines [][]byte
	colon int // index of the colon in lines[0]
}

// value unfolds the field (RFC 5322 section 2.2.3: only the line breaks
// are removed, the whitespace that follows them stays) and returns it, or
// why it cannot yield an identity.
func (f *field) value() (string, string) {
	n := 0
	for _, l := range f.lines {
		if len(l) > MaxLineLength {
			return "", fmt.Sprintf("header line longer than %d octets", MaxLineLength)
		}
		n += len(l)
	}
	if n > maxValueLength+MaxLineLength {
		return "", fmt.Sprintf("value longer than %d bytes", maxValueLength)
	}
	var b strings.Builder
	b.Grow(n)
	b.Write(f.lines[0][f.colon+1:])
	for _, l := range f.lines[1:] {
		b.Write(l)
	}
	return b.String(), ""
}

func findField(fields []field, name string) *field {
	for i := range fields {
		if strings.EqualFold(fields[i].name, name) {
			return &fields[i]
		}
	}
	return nil
}

// topmostFields scans the header block and returns the first occurrence of
// each wanted (lower-case) field name.
func topmostFields(block []byte, wanted []string) []field {
	var out []field
	s := header.NewScanner(block)
	for len(out) < len(wanted) && s.Next() {
		f := s.Field()
		if f.Name == nil {
			continue
		}
		for _, w := range wanted {
			if !f.Is(w) {
				continue
			}
			if findField(out, w) == nil {
				out = append(out, field{name: w, lines: f.Lines(), colon: f.Colon()})
			}
			break
		}
	}
	return out
}

// RemoveFields returns the header block without every occurrence of the
// named fields (case-insensitive), continuation lines included: exactly
// the fields topmostFields reads (both use internal/header). Other bytes,
// line endings and anything after the header block are kept as they are.
// The input is not modified.
func RemoveFields(block []byte, names ...string) []byte {
	return header.Remove(block, names...)
}
