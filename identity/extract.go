package identity

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
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
	// RuleHeader takes a header field's value; which occurrence is
	// RuleSpec.Occurrence.
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

// Occurrence says which occurrence of its header field a header rule
// reads when the header block holds several (docs/config-identity.md).
type Occurrence int

const (
	// OccurrenceOnly, the default, takes the value only if every
	// occurrence carries the same value; two different values yield no
	// identity at all, whatever the later rules would give.
	OccurrenceOnly Occurrence = iota
	// OccurrenceFirst takes the topmost occurrence: for a sending MTA that
	// adds its header at the top of the header block.
	OccurrenceFirst
	// OccurrenceLast takes the bottommost occurrence: for a sending MTA
	// that appends its header at the end of the header block.
	OccurrenceLast
)

// String names the occurrence as the configuration does.
func (o Occurrence) String() string {
	switch o {
	case OccurrenceOnly:
		return "only"
	case OccurrenceFirst:
		return "first"
	case OccurrenceLast:
		return "last"
	}
	return fmt.Sprintf("Occurrence(%d)", int(o))
}

// ParseOccurrence parses "first", "last" or "only"; "" is the default,
// OccurrenceOnly.
func ParseOccurrence(s string) (Occurrence, error) {
	switch s {
	case "", "only":
		return OccurrenceOnly, nil
	case "first":
		return OccurrenceFirst, nil
	case "last":
		return OccurrenceLast, nil
	}
	return 0, fmt.Errorf("%w: occurrence %q: use first, last or only", ErrBadRule, s)
}

// RuleSpec is one identity rule as configured.
type RuleSpec struct {
	// Kind is where the value comes from.
	Kind RuleKind
	// Header is the field name for RuleHeader, e.g. "X-AuthUser".
	Header string
	// Occurrence chooses among several occurrences of Header; the zero
	// value is OccurrenceOnly. Only for RuleHeader.
	Occurrence Occurrence
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
	hidx   int    // index of header in Rules.headers
	occ    Occurrence
	re     *regexp.Regexp
	source string
}

// Rules is an outgoing user's compiled, ordered list of identity rules. It
// is immutable and safe for concurrent use.
type Rules struct {
	rules   []rule
	headers []string // distinct header names, lower case
	only    []bool   // per headers entry: some rule reads it with OccurrenceOnly
	// firstOnly: every header rule reads the topmost occurrence, so a scan
	// may stop once it has seen each header.
	firstOnly bool
	maxLen    int
}

// NewRules compiles specs in order. An empty list is valid and never yields
// an identity.
func NewRules(specs []RuleSpec, opts RulesOptions) (*Rules, error) {
	if opts.MaxLength < 0 {
		return nil, fmt.Errorf("%w: max length %d is negative", ErrBadRule, opts.MaxLength)
	}
	rs := &Rules{maxLen: opts.MaxLength, firstOnly: true}
	if rs.maxLen == 0 {
		rs.maxLen = DefaultMaxLength
	}
	for i, s := range specs {
		r := rule{kind: s.Kind, occ: s.Occurrence}
		switch s.Kind {
		case RuleHeader:
			if !ValidFieldName(s.Header) {
				return nil, fmt.Errorf("%w: rule %d: %q is not a header field name", ErrBadRule, i, s.Header)
			}
			if s.Occurrence < OccurrenceOnly || s.Occurrence > OccurrenceLast {
				return nil, fmt.Errorf("%w: rule %d: unknown occurrence %d", ErrBadRule, i, int(s.Occurrence))
			}
			r.header = s.Header
			r.source = "header " + s.Header
			lower := strings.ToLower(s.Header)
			j := slices.Index(rs.headers, lower)
			if j < 0 {
				j = len(rs.headers)
				rs.headers = append(rs.headers, lower)
				rs.only = append(rs.only, false)
			}
			rs.only[j] = rs.only[j] || s.Occurrence == OccurrenceOnly
			rs.firstOnly = rs.firstOnly && s.Occurrence == OccurrenceFirst
			r.hidx = j
		case RuleAuthUser, RuleEnvelopeSender:
			if s.Header != "" {
				return nil, fmt.Errorf("%w: rule %d: %s takes no header name", ErrBadRule, i, s.Kind)
			}
			if s.Occurrence != OccurrenceOnly {
				return nil, fmt.Errorf("%w: rule %d: %s takes no occurrence", ErrBadRule, i, s.Kind)
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
	// Ambiguous is set when a header rule with OccurrenceOnly found
	// different values: extraction stopped there, without an identity,
	// and the last entry of Refused says why.
	Ambiguous bool
	// Candidates, when Ambiguous, are the valid values of the header's
	// topmost and bottommost copies. The sending MTA writes its copy at
	// one end of the header block, so the real identity is one of them:
	// a locked identity must not escape its lock by adding a second copy
	// (docs/config-identity.md).
	Candidates []string
}

// Refusal says why a rule's value was not taken as the identity.
type Refusal struct {
	Rule   int
	Source string
	Reason string
}

// String is the refusal as the log shows it: "header X-AuthUser: reason".
func (r Refusal) String() string { return r.Source + ": " + r.Reason }

// Reason summarizes why res has no identity, for the log and the message
// log: "" when it has one or when no rule found a value at all.
func (res Result) Reason() string {
	if res.Identity != "" || len(res.Refused) == 0 {
		return ""
	}
	if res.Ambiguous {
		return res.Refused[len(res.Refused)-1].String()
	}
	parts := make([]string, len(res.Refused))
	for i, r := range res.Refused {
		parts[i] = r.String()
	}
	return strings.Join(parts, "; ")
}

// Extract applies the rules in order and returns the first valid, non-empty
// value. A header rule reads the occurrence its Occurrence names; with
// OccurrenceOnly, occurrences with different values end extraction without
// an identity, so that no later rule (the envelope sender, say) decides
// instead. Its cost is one pass over the header block.
func (rs *Rules) Extract(in Input) Result {
	res := Result{Rule: -1}
	var fields []fieldSet
	if len(rs.headers) > 0 {
		fields = rs.scan(in.Header)
	}
	for i, r := range rs.rules {
		var (
			raw    string
			reason string
		)
		switch r.kind {
		case RuleHeader:
			fs := &fields[r.hidx]
			if fs.count == 0 {
				continue
			}
			if r.occ == OccurrenceOnly && fs.differ {
				res.Refused = append(res.Refused, Refusal{Rule: i, Source: r.source,
					Reason: fmt.Sprintf("%d occurrences with different values (occurrence: only)", fs.count)})
				res.Ambiguous = true
				for _, f := range []*field{&fs.first, &fs.last} {
					raw, reason := f.value()
					if reason != "" {
						continue
					}
					if v, reason := rs.check(r, trimSpace(raw)); reason == "" && v != "" && !slices.Contains(res.Candidates, v) {
						res.Candidates = append(res.Candidates, v)
					}
				}
				return res
			}
			f := &fs.first
			if r.occ == OccurrenceLast {
				f = &fs.last
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

// fieldSet is what one scan learns of one wanted header field.
type fieldSet struct {
	count       int
	first, last field
	// firstValue is the first occurrence's trimmed value, kept while
	// later occurrences are compared with it (only for names read with
	// OccurrenceOnly); firstBad is set when it could not be read.
	firstValue string
	firstBad   bool
	// differ is set once a later occurrence's value differs from the
	// first's, or either cannot be read.
	differ bool
}

// scan walks the header block and returns, for each of rs.headers in
// order, its first and last occurrences and whether their values differ.
// When every rule reads the topmost occurrence it stops once it has seen
// each header.
func (rs *Rules) scan(block []byte) []fieldSet {
	out := make([]fieldSet, len(rs.headers))
	seen := 0
	s := header.NewScanner(block)
	for s.Next() {
		f := s.Field()
		if f.Name == nil {
			continue
		}
		for j, w := range rs.headers {
			if !f.Is(w) {
				continue
			}
			fs := &out[j]
			if rs.firstOnly && fs.count > 0 {
				break
			}
			cur := field{name: w, lines: f.Lines(), colon: f.Colon()}
			fs.count++
			fs.last = cur
			if fs.count == 1 {
				fs.first = cur
				seen++
			}
			if rs.only[j] && !fs.differ {
				v, reason := cur.value()
				v = trimSpace(v)
				if fs.count == 1 {
					fs.firstValue, fs.firstBad = v, reason != ""
				} else if reason != "" || fs.firstBad || v != fs.firstValue {
					fs.differ = true
				}
			}
			break
		}
		if rs.firstOnly && seen == len(rs.headers) {
			break
		}
	}
	return out
}

// RemoveFields returns the header block without every occurrence of the
// named fields (case-insensitive), continuation lines included: exactly
// the fields Extract reads (both use internal/header). Other bytes,
// line endings and anything after the header block are kept as they are.
// The input is not modified.
func RemoveFields(block []byte, names ...string) []byte {
	return header.Remove(block, names...)
}
