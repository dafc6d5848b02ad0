package filter

import (
	"strings"
	"testing"
)

// TestBuiltinExplain: each named rule that fires tells its text and an
// excerpt around its first match, in the text as written; a rule not
// named or not firing is left out.
func TestBuiltinExplain(t *testing.T) {
	body := strings.Repeat("filler words here ", 10) + "Buy CHEAP\nwatches <script>alert(1)</script> today " + strings.Repeat("more text ", 10)
	raw := buildMessage("From: a@shop.example\r\nTo: b@example.org\r\nSubject: Hello\r\nX-Mailer: BulkBlaster 3",
		textPart(body))
	rules := []Rule{
		{Name: "WATCH", Target: TargetBody, Pattern: "cheap\nwatches", Score: 2},
		{Name: "SCRIPT", Target: TargetBody, Regex: true, Pattern: `<script>[^<]*</script>`, Score: 1},
		{Name: "MAILER", Target: TargetHeader, Header: "X-Mailer", Regex: true, Pattern: `Bulk\w+`, Score: 1},
		{Name: "MISS", Target: TargetBody, Pattern: "pills", Score: 1},
		{Name: "UNNAMED", Target: TargetBody, Pattern: "today", Score: 1},
	}
	b, err := NewBuiltin(BuiltinOptions{Rules: rules, Content: ContentOptions{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	got := b.Explain(mustParse(t, raw), []string{"WATCH", "SCRIPT", "MAILER", "MISS", "GONE"})
	if len(got) != 3 {
		t.Fatalf("got %d matches %+v, want 3", len(got), got)
	}
	w := got[0]
	if w.Name != "WATCH" || w.Pattern != "cheap\nwatches" || w.Where != "body" || w.Match != "CHEAP watches" ||
		!strings.HasSuffix(w.Before, "here Buy ") || !strings.HasPrefix(w.After, " <script>") ||
		len(w.Before) > ExcerptWindow || len(w.After) > ExcerptWindow {
		t.Errorf("WATCH: got %+v", w)
	}
	if s := got[1]; s.Name != "SCRIPT" || !s.Regex || s.Match != "<script>alert(1)</script>" {
		t.Errorf("SCRIPT: got %+v", s)
	}
	if h := got[2]; h.Name != "MAILER" || h.Where != "X-Mailer" || h.Match != "BulkBlaster" || h.After != " 3" {
		t.Errorf("MAILER: got %+v", h)
	}
}

// TestExcerptBounds: an excerpt never cuts a character and bounds the
// matched text.
func TestExcerptBounds(t *testing.T) {
	b, err := NewBuiltin(BuiltinOptions{Rules: []Rule{{Name: "R", Target: TargetBody, Regex: true, Pattern: "x+"}}, Content: ContentOptions{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	r := b.rules[0]
	var rm RuleMatch
	s := strings.Repeat("é", 50) + strings.Repeat("x", 500) + strings.Repeat("ü", 50)
	if !r.excerpt(s, &rm) {
		t.Fatal("no match")
	}
	for _, part := range []string{rm.Before, rm.Match, rm.After} {
		if strings.ContainsRune(part, '\uFFFD') {
			t.Errorf("cut character in %q", part)
		}
	}
	if len(rm.Match) != maxExcerptMatch || rm.After != "" || !rm.Cut || len(rm.Before) > ExcerptWindow {
		t.Errorf("got before %d, match %d, after %q", len(rm.Before), len(rm.Match), rm.After)
	}
}
