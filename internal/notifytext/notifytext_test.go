package notifytext

import (
	"strings"
	"testing"
)

func TestRender(t *testing.T) {
	got, err := Render("Account {identity} ({domain}) locked until {until}; {{not a placeholder}", Values{"identity": "alice\r\nBcc: x@evil.example", "domain": "out.example.net", "until": "2026-03-01T13:00:00Z"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "Account alice  Bcc: x@evil.example (out.example.net) locked until 2026-03-01T13:00:00Z; {not a placeholder}"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, _ := Render("{reason}", Values{"reason": strings.Repeat("é", 400)}); len(got) > maxValue || !strings.HasPrefix(got, "é") || strings.ContainsRune(got, '\uFFFD') {
		t.Errorf("long value: got %d bytes", len(got))
	}
}

func TestCheck(t *testing.T) {
	for _, s := range []string{"{subject}", "{identity", "{}", "{Identity}"} {
		if err := Check(s); err == nil {
			t.Errorf("%q: no error", s)
		}
	}
	for _, s := range []string{"", "plain", "{identity} {{x} {lock_id}"} {
		if err := Check(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
}

// FuzzRender: any template renders or is refused, without panic, and a
// rendered one has no line break that the template did not have.
func FuzzRender(f *testing.F) {
	f.Add("Hello {identity}, {{ {until}", "a\nb")
	f.Fuzz(func(t *testing.T, tmpl, val string) {
		out, err := Render(tmpl, Values{"identity": val, "reason": val})
		if err != nil {
			return
		}
		if strings.Count(out, "\n") > strings.Count(tmpl, "\n") {
			t.Errorf("a value added a line: %q", out)
		}
	})
}
