package htmltext

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	d := Parse([]byte(`<title>T</title><script>x()</script><p>a&amp;b <a href=" http://e.example/ ">click <img alt=here></a></p>` +
		`<form action="/post"><input type=PASSWORD></form><area href="http://m.example/">`))
	if d.Text != "T\na&b click here" {
		t.Fatalf("text %q", d.Text)
	}
	want := []Link{{"http://e.example/", "click here"}, {"/post", ""}, {"http://m.example/", ""}}
	if len(d.Links) != len(want) {
		t.Fatalf("links %q", d.Links)
	}
	for i := range want {
		if d.Links[i] != want[i] {
			t.Fatalf("links %q, want %q", d.Links, want)
		}
	}
	if !d.PasswordForm {
		t.Fatal("password input missed")
	}
}

// FuzzParse checks that any input gives text without script or style
// contents around it and with no blank lines or surrounding white space.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"<p>a</p><p>b", "<script>SECRET</script>x", "<a href=x>y", "<style>SECRET"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d := Parse(b)
		if d.Text != strings.TrimSpace(d.Text) || strings.Contains(d.Text, "\n\n") {
			t.Fatalf("text %q", d.Text)
		}
		if Text(b) != d.Text {
			t.Fatal("Text and Parse disagree")
		}
		s := string(b)
		if strings.HasPrefix(s, "<script>") && !strings.ContainsAny(s[8:], "<&") && strings.Contains(d.Text, s[8:]) && len(s) > 8 {
			t.Fatalf("script content %q in text %q", s[8:], d.Text)
		}
	})
}
