package filter

import (
	"regexp"
	"strings"
	"unicode/utf8"
)

// RuleMatch says what an operator rule matched in a message: the rule
// (its text) and a short excerpt of the message around the first match.
type RuleMatch struct {
	// Name is the rule's name, as in its reason "builtin:NAME(score)".
	Name    string
	Target  Target
	Header  string
	Regex   bool
	Pattern string
	// Where is what matched: "body", "URL" or the header field's name.
	Where string
	// Before, Match and After are the excerpt: the matched text (at most
	// maxExcerptMatch bytes) with up to ExcerptWindow bytes either side,
	// cut at character boundaries, with line breaks and tabs as spaces.
	Before, Match, After string
	// Cut is set when the match was longer than the excerpt shows.
	Cut bool
}

// ExcerptWindow is how much text an excerpt shows either side of a match.
const ExcerptWindow = 40

// maxExcerptMatch bounds the matched text an excerpt shows.
const maxExcerptMatch = 200

// Explain finds, for each operator rule named in names that fires on m
// now, where it matches: the message view's "why it matched". A rule
// that no longer exists or no longer fires (the rules changed since
// the message was classified) is left out. Its cost is that of the
// rules run alone, one by one: it is meant for one message at a time.
func (b *Builtin) Explain(m *Message, names []string) []RuleMatch {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var out []RuleMatch
	for i := range b.rules {
		r := &b.rules[i]
		if !want[r.Name] {
			continue
		}
		rm := RuleMatch{Name: r.Name, Target: r.Target, Header: r.Header, Regex: r.re != nil, Pattern: r.Pattern}
		var ok bool
		switch r.Target {
		case TargetBody:
			rm.Where = "body"
			ok = r.excerpt(m.BodyText, &rm)
		case TargetURL:
			rm.Where = "URL"
			for _, u := range m.URLs {
				if ok = r.excerpt(u.Raw, &rm); ok {
					break
				}
			}
		case TargetHeader:
			fields := m.Header.Fields()
			if r.Header != "" {
				fields = m.Header.FieldsByKey(r.Header)
			}
			for fields.Next() {
				v, _ := fields.Text()
				if r.Header == "" {
					v = fields.Key() + ": " + v
				}
				if ok = r.excerpt(v, &rm); ok {
					rm.Where = fields.Key()
					break
				}
			}
		}
		if ok {
			out = append(out, rm)
		}
	}
	return out
}

// excerpt sets rm's excerpt to the first match of r in s; false when r
// does not match s.
func (r *compiledRule) excerpt(s string, rm *RuleMatch) bool {
	if !r.match(s) {
		return false
	}
	var loc []int
	if r.re != nil {
		loc = r.re.FindStringIndex(s)
	} else {
		// The rule matched strings.ToLower(s); find the span in s itself.
		loc = regexp.MustCompile("(?i)" + regexp.QuoteMeta(r.lower)).FindStringIndex(s)
		if loc == nil {
			// A fold that ToLower makes and (?i) does not: show the
			// lower-cased text.
			s = strings.ToLower(s)
			if i := strings.Index(s, r.lower); i >= 0 {
				loc = []int{i, i + len(r.lower)}
			}
		}
	}
	if loc == nil {
		return false
	}
	start, end := loc[0], loc[1]
	to := runeStart(s, min(len(s), end+ExcerptWindow))
	if end-start > maxExcerptMatch {
		// A long match is cut, and nothing after it shown.
		end = runeStart(s, start+maxExcerptMatch)
		to = end
		rm.Cut = true
	}
	from := runeStart(s, max(0, start-ExcerptWindow))
	rm.Before, rm.Match, rm.After = flat(s[from:start]), flat(s[start:end]), flat(s[end:to])
	return true
}

// runeStart moves i back to the start of the character it is in.
func runeStart(s string, i int) int {
	for i > 0 && i < len(s) && !utf8.RuneStart(s[i]) {
		i--
	}
	return i
}

// flat turns line breaks (CRLF as one) and tabs into spaces and invalid UTF-8 into
// U+FFFD, for an excerpt shown on one line.
func flat(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.Map(func(r rune) rune {
		switch r {
		case '\r', '\n', '\t', '\v', '\f':
			return ' '
		}
		return r
	}, s)
}
