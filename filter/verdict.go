package filter

import (
	"fmt"
	"strconv"
	"strings"
)

// Class is the outcome of classification. Classes are ordered by severity:
// a larger value is more severe.
type Class int

// The classes, from least to most severe.
const (
	Clean Class = iota
	Spam
	Phishing
	Virus
)

var classNames = [...]string{Clean: "clean", Spam: "spam", Phishing: "phishing", Virus: "virus"}

// String returns the lower-case name used in configuration, logs and
// metrics: clean, spam, phishing or virus.
func (c Class) String() string {
	if c < 0 || int(c) >= len(classNames) {
		return "Class(" + strconv.Itoa(int(c)) + ")"
	}
	return classNames[c]
}

// ParseClass is the inverse of Class.String.
func ParseClass(s string) (Class, error) {
	for i, n := range classNames {
		if strings.EqualFold(s, n) {
			return Class(i), nil
		}
	}
	return Clean, fmt.Errorf("unknown class %q: use clean, spam, phishing or virus", s)
}

// MarshalText implements encoding.TextMarshaler.
func (c Class) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (c *Class) UnmarshalText(b []byte) error {
	v, err := ParseClass(string(b))
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// Verdict is what an engine, or the Classifier as a whole, found.
type Verdict struct {
	// Class is the outcome.
	Class Class
	// Score is the engine's score. Scores of different engines are on
	// different scales; see the package documentation.
	Score float64
	// Reasons name the engine and rule of every signal that fired, with its
	// score, e.g. "builtin:GTUBE(1000)" or "rspamd:BAYES_SPAM(5.1)".
	Reasons []string
}

// Reason formats one entry of Verdict.Reasons.
func Reason(engine, rule string, score float64) string {
	return engine + ":" + rule + "(" + strconv.FormatFloat(score, 'f', -1, 64) + ")"
}

// merge combines the verdicts of several engines: the most severe class
// wins and brings its score (the highest among the engines of that class);
// reasons are concatenated in the order given.
func merge(vs []Verdict) Verdict {
	var out Verdict
	first := true
	for _, v := range vs {
		switch {
		case first || v.Class > out.Class:
			out.Class, out.Score = v.Class, v.Score
		case v.Class == out.Class && v.Score > out.Score:
			out.Score = v.Score
		}
		first = false
		out.Reasons = append(out.Reasons, v.Reasons...)
	}
	return out
}
