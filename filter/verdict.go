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
	// Band is what the verdict means for the identity: clean, suspect
	// (relayed, but counted toward the identity's suspect threshold) or
	// spam (blocked, whatever the class).
	Band Band
	// ModelVersion names the content model that judged the message, ""
	// when none did.
	ModelVersion string
	// Gaps is the content the engines could not see whole: the message's
	// parsing gaps plus those an engine reports (clamd skipping a message
	// over its stream limit). A verdict with gaps is "partially scanned";
	// PartialLimits names the limits for the log.
	Gaps []Gap
}

// Partial reports whether some content was left unscanned.
func (v Verdict) Partial() bool { return len(v.Gaps) > 0 }

// Band groups verdicts by what follows from them.
type Band int

// The bands, from least to most severe.
const (
	// BandClean: relayed.
	BandClean Band = iota
	// BandSuspect: relayed and recorded, and counted in the identity's
	// window under its own automatic-lock threshold, so a burst of
	// uncertain mail from one identity still locks it.
	BandSuspect
	// BandSpam: blocked (the class is spam, phishing or virus).
	BandSpam
)

var bandNames = [...]string{BandClean: "clean", BandSuspect: "suspect", BandSpam: "spam"}

// String returns "clean", "suspect" or "spam".
func (b Band) String() string {
	if b < 0 || int(b) >= len(bandNames) {
		return "Band(" + strconv.Itoa(int(b)) + ")"
	}
	return bandNames[b]
}

// ParseBand is the inverse of Band.String.
func ParseBand(s string) (Band, error) {
	for i, n := range bandNames {
		if strings.EqualFold(s, n) {
			return Band(i), nil
		}
	}
	return BandClean, fmt.Errorf("unknown band %q: use clean, suspect or spam", s)
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
		out.Band = max(out.Band, v.Band)
		if v.ModelVersion != "" {
			out.ModelVersion = v.ModelVersion
		}
		for _, g := range v.Gaps {
			out.Gaps = addGap(out.Gaps, g)
		}
	}
	if out.Class > Clean {
		out.Band = BandSpam
	}
	return out
}
