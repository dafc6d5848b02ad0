// Package notifytext renders the customer notice of a lock
// (docs/config-notify.md, "Customer notice"): a plain-text template with
// a fixed set of {placeholders}, checked when the configuration is
// loaded. It knows nothing of messages: a notice carries the lock's data
// only, never the content that caused it.
package notifytext

import (
	"fmt"
	"sort"
	"strings"
)

// Placeholders are the names a template may use, as {name}.
var Placeholders = map[string]string{
	"identity":  "the locked identity (the customer's account)",
	"domain":    "the administrative domain",
	"user":      "the outgoing user (the sending server), when known",
	"reason":    "the lock's reason",
	"locked_at": "when the lock began (UTC, RFC 3339)",
	"until":     "when the lock ends (UTC, RFC 3339), or \"until lifted by the provider\"",
	"lock_id":   "the lock's id, for the customer to quote",
}

// Values are a lock's data, by placeholder name.
type Values map[string]string

// maxValue bounds one substituted value.
const maxValue = 300

// Check reports the first problem of template s: a { without its }, or a
// placeholder not in Placeholders. "{{" stands for a literal "{".
func Check(s string) error {
	_, err := render(s, nil)
	return err
}

// Render substitutes v into template s (checked with Check). Values are
// flattened to one line and bounded, so that a value cannot add lines or
// headers.
func Render(s string, v Values) (string, error) {
	return render(s, v)
}

func render(s string, v Values) (string, error) {
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		s = s[i+1:]
		if strings.HasPrefix(s, "{") {
			b.WriteByte('{')
			s = s[1:]
			continue
		}
		j := strings.IndexByte(s, '}')
		if j < 0 {
			return "", fmt.Errorf("a { without its closing }: write {{ for a literal {")
		}
		name := s[:j]
		if _, ok := Placeholders[name]; !ok {
			return "", fmt.Errorf("unknown placeholder {%s}: use %s", name, names())
		}
		b.WriteString(OneLine(v[name], maxValue))
		s = s[j+1:]
	}
}

func names() string {
	var out []string
	for n := range Placeholders {
		out = append(out, "{"+n+"}")
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// OneLine replaces control characters by spaces and bounds s to max
// bytes (at a character boundary).
func OneLine(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "")
	}
	return s
}
