package filter

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// referenceFires is the rule matching of the engine before the rules were
// compiled into one matcher (issue 17): every rule on its own, substring
// rules on the lower-cased text. The compiled matcher must fire exactly
// the same rules.
func referenceFires(r *compiledRule, m *Message) bool {
	match := func(s string) bool {
		if r.re != nil {
			return r.re.MatchString(s)
		}
		return strings.Contains(strings.ToLower(s), r.lower)
	}
	switch r.Target {
	case TargetBody:
		return match(m.BodyText)
	case TargetHeader:
		var values []string
		if r.Header != "" {
			fields := m.Header.FieldsByKey(r.Header)
			for fields.Next() {
				v, _ := fields.Text()
				values = append(values, v)
			}
		} else {
			fields := m.Header.Fields()
			for fields.Next() {
				v, _ := fields.Text()
				values = append(values, fields.Key()+": "+v)
			}
		}
		return slices.ContainsFunc(values, match)
	case TargetURL:
		for _, u := range m.URLs {
			if match(u.Raw) {
				return true
			}
		}
	}
	return false
}

// differentialRules are rules that exercise the prefilter: literals with
// and without case folding, the long s and Kelvin sign, alternations,
// optional parts, anchors, classes, and non-ASCII patterns.
func differentialRules() []Rule {
	rules := benchRules()
	extra := []struct {
		target  Target
		regex   bool
		pattern string
	}{
		{TargetBody, true, `(?i)transfer`},
		{TargetBody, true, `(?i)mask`},
		{TargetBody, true, `(?i)kelvin`},
		{TargetBody, true, `(?i)(unsubscribe|preferences)`},
		{TargetBody, true, `(?i)(sale|)now`},
		{TargetBody, true, `^Spring`},
		{TargetBody, true, `[0-9]{3}`},
		{TargetBody, true, `(?i)trail(s)?\s+runners?`},
		{TargetBody, true, `(?i)(?:добрый|привет)\s+день`},
		{TargetBody, true, `(?i)straße`},
		{TargetBody, true, `ſtraße`},
		{TargetBody, true, `(?i)x{2,}ray`},
		{TargetBody, true, `(?i)k{0,3}elvin`},
		{TargetBody, false, "STRASSE"},
		{TargetBody, false, "İstanbul"},
		{TargetBody, false, "ſale"},
		{TargetBody, false, "спасибо"},
		{TargetBody, false, "sale"},
		{TargetBody, false, "trail runners"},
		{TargetBody, false, "e"},
		{TargetURL, false, "click."},
		{TargetURL, false, "/C/"},
		{TargetURL, true, `(?i)https://[a-z.]+/unsub/`},
		{TargetURL, true, `issue[0-9]+/`},
		{TargetURL, true, `(?i)PREFS`},
		{TargetHeader, false, "ridgeline"},
		{TargetHeader, true, `(?i)^deals@`},
	}
	for i, e := range extra {
		rules = append(rules, Rule{Name: "DIFF_" + string(rune('A'+i)), Target: e.target, Regex: e.regex, Pattern: e.pattern, Score: 1})
	}
	return rules
}

// checkSameRules fails when the compiled matcher and referenceFires
// disagree on raw.
func checkSameRules(t *testing.T, eng *Builtin, name string, raw []byte) {
	t.Helper()
	m, err := ParseBytes(raw, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	s := &scan{b: eng, fired: map[string]bool{}}
	s.rules(m)
	var want []string
	for i := range eng.rules {
		if r := &eng.rules[i]; referenceFires(r, m) {
			want = append(want, Reason(BuiltinName, r.Name, r.Score))
		}
	}
	if !slices.Equal(s.reasons, want) {
		t.Errorf("%s: compiled rules fire %v, each rule alone %v", name, s.reasons, want)
	}
}

// TestRuleSetMatchesEachRule runs the compiled rule set and every rule on
// its own over the corpora and the benchmark messages: they must fire the
// same rules.
func TestRuleSetMatchesEachRule(t *testing.T) {
	eng, err := NewBuiltin(BuiltinOptions{Rules: differentialRules()})
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, dir := range []string{"ham", "spam", "modern/ham", "modern/spam"} {
		f, _ := filepath.Glob(filepath.Join("..", "testdata", dir, "*.eml"))
		files = append(files, f...)
	}
	if len(files) < 600 {
		t.Fatalf("only %d corpus files", len(files))
	}
	fired := 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		checkSameRules(t, eng, f, raw)
		m := mustParse(t, raw)
		s := &scan{b: eng, fired: map[string]bool{}}
		s.rules(m)
		fired += len(s.reasons)
	}
	for _, s := range stageMessages(t) {
		checkSameRules(t, eng, s.name, s.raw)
	}
	if fired == 0 {
		t.Fatal("no rule fired on the corpus: the comparison shows nothing")
	}
}

// TestRuleSetFoldCases pins the cases where a lower-cased prefilter could
// miss a match: the long s and the Kelvin sign fold with s and k, and
// non-ASCII text is lower-cased by strings.ToLower.
func TestRuleSetFoldCases(t *testing.T) {
	eng, err := NewBuiltin(BuiltinOptions{Rules: differentialRules()})
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{
		"urgent wire tranſfer today", "TRANSFER", "the \u212Aelvin scale", "маѕк and MASK",
		"STRAẞE", "Straße", "ſtraße", "İSTANBUL İstanbul", "ſALE", "Добрый   ДЕНЬ",
		"XXRAY", "\u212A\u212Aelvin", "Spring", "x", "",
		"straße TRANSFER – MASK", "\xff TRANSFER STRASSE", "Ünïcode TRANSFER",
	} {
		raw := buildMessage(stdHeaders, textPart(body))
		checkSameRules(t, eng, body, raw)
	}
	// The rules the cases above must fire, so that the comparison is
	// not vacuous.
	m := mustParse(t, buildMessage(stdHeaders, textPart("urgent wire tranſfer, the \u212Aelvin scale")))
	v, err := eng.Scan(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"DIFF_A", "DIFF_C"} {
		if !slices.ContainsFunc(v.Reasons, func(r string) bool { return strings.Contains(r, ":"+want+"(") }) {
			t.Errorf("%s did not fire: %v", want, v.Reasons)
		}
	}
}

// FuzzRuleSet checks the compiled matcher against each rule alone on
// arbitrary bodies, subjects and links.
func FuzzRuleSet(f *testing.F) {
	eng, err := NewBuiltin(BuiltinOptions{Rules: differentialRules()})
	if err != nil {
		f.Fatal(err)
	}
	f.Add("urgent wire tranſfer", "viagra", "https://bit.ly.example/x")
	f.Add("\u212Aelvin straße İstanbul", "Subject", "http://x.ru/owa-login")
	f.Add("Dear CUSTOMER, click here to verify", "", "www.example.com/PREFS")
	f.Fuzz(func(t *testing.T, body, subject, link string) {
		if strings.ContainsAny(subject, "\r\n") {
			subject = ""
		}
		hdr := "From: a@example.com\r\nSubject: " + subject
		raw := buildMessage(hdr, textPart(body+"\n"+link))
		checkSameRules(t, eng, body, raw)
	})
}

// TestPrefilter pins the literals an expression is prefiltered by.
func TestPrefilter(t *testing.T) {
	for _, c := range []struct {
		pattern string
		want    [][]string
	}{
		{`(?i)click\s+here\s+to\s+(verify|unlock|claim)`, [][]string{{"click"}, {"here"}, {"verify", "unlock", "claim"}}},
		{`(?i)transfer`, [][]string{{"transfer", "tranſfer"}}},
		{`(?i)\$\d{1,3}(,\d{3})+\s+(usd|dollars)`, [][]string{{"usd", "uſd", "dollars", "dollarſ"}}},
		{`(?i)kelvin`, [][]string{{"kelvin"}}},
		{`Straße`, [][]string{{"straße"}}},
		{`(?i)(sale|)now`, [][]string{{"now"}}},
		{`(?i)x{2,}ray`, [][]string{{"ray"}}},
		{`(?i)k{0,3}elvin`, [][]string{{"elvin"}}},
		{`[0-9]{3}`, nil},
		{`a*b?`, nil},
		{`(`, nil},
	} {
		if got := prefilter(c.pattern); !reflect.DeepEqual(got, c.want) {
			t.Errorf("prefilter(%q) = %q, want %q", c.pattern, got, c.want)
		}
	}
}
