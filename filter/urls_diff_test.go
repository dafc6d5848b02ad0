package filter

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/outguard/outguard/internal/testutil"
)

// referenceURLsInText is the URL scan of text before issue 17: split into
// words, then the expression on the words that can hold a URL.
func referenceURLsInText(w *walker, s string) {
	for _, word := range strings.Fields(s) {
		if !strings.Contains(word, "://") && !strings.Contains(strings.ToLower(word), "www.") {
			continue
		}
		for _, u := range textURLRE.FindAllString(word, w.lim.MaxURLs+1) {
			w.addURL(trimURLTail(u), "", false)
		}
	}
}

// checkSameURLs fails when urlsInText and referenceURLsInText find
// different URLs in s.
func checkSameURLs(t *testing.T, s string) {
	t.Helper()
	scan := func(f func(*walker, string)) []URL {
		w := &walker{m: &Message{}, lim: DefaultLimits(), seen: map[string]bool{}}
		f(w, s)
		return w.m.URLs
	}
	got, want := scan((*walker).urlsInText), scan(referenceURLsInText)
	if !slices.Equal(got, want) {
		t.Errorf("%.80q: found %v, the word split finds %v", s, got, want)
	}
}

// TestURLsInTextMatchesWordSplit checks the one-pass URL scan against the
// word split on the corpora's texts and on white-space edge cases.
func TestURLsInTextMatchesWordSplit(t *testing.T) {
	var files []string
	for _, dir := range []string{"ham", "spam", "modern/ham", "modern/spam"} {
		f, _ := filepath.Glob(filepath.Join("..", "testdata", dir, "*.eml"))
		files = append(files, f...)
	}
	n := 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range mustParse(t, raw).Parts {
			if p.Text != "" {
				checkSameURLs(t, p.Text)
				n++
			}
		}
	}
	if n < 600 {
		t.Fatalf("only %d texts", n)
	}
	// The raw bytes of the SpamAssassin corpus's messages at odd positions
	// of each folder (the training half; the held-out half stays unread),
	// when it is unpacked (see filter/train): text in every charset.
	for _, f := range testutil.CorpusTrainingHalf(t) {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		checkSameURLs(t, string(raw))
	}
	for _, s := range []string{
		"", "www.", "WwW.example.com", "see http://a.example/x.", "a\u00a0https://b.example/\u0085www.c.example",
		"x\u2028http://d.example/\u3000y", "\xffhttp://e.example/\xc2", "ends with WWW.f.example",
		"http://g.example/(x)) and (www.h.example/y)", "://", "wwW", "\u212Aww.i.example",
		"xhttp://a.example _www.b.example éhttp://c.example HTTPS://D.EXAMPLE http:// http://<x> ftp://e|f",
		"https:/x.example www.www.g.example http://h.example/http://i.example hTtP://j.example",
		// Marks next to multi-byte and invalid runes, white space and not.
		"é://x.example \u00a0www.a.example\u00a0 \u3000://b\u3000 \xe3\x80://c.example \x80\x80www.d.example",
		"\xe2\x80\x80www.e.example \xe2\x80\x80\x80www.f.example \xc2\xa0\xa0http://g.example \xf0\x9f\x98www.h.example",
		"wwww.i.example ww.j.example .www.k.example www.l.example:// ://www.m.example www. www",
	} {
		checkSameURLs(t, s)
	}
}

// FuzzURLsInText checks the one-pass URL scan against the word split on
// arbitrary text.
func FuzzURLsInText(f *testing.F) {
	f.Add("see http://a.example/x. and WWW.b.example\u00a0www.c.example")
	f.Add("\xe2\x80\xa8https://d.example\xc2\x85")
	f.Fuzz(func(t *testing.T, s string) { checkSameURLs(t, s) })
}

// FuzzNextTextURL checks the URL scanner against the expression it stands
// for, match by match.
func FuzzNextTextURL(f *testing.F) {
	f.Add("xhttp://a http://b.example/(c) WWW.d.example_www.e")
	f.Add("éhttps://f.example<g>ftp://h")
	f.Fuzz(func(t *testing.T, s string) {
		want := textURLRE.FindAllStringIndex(s, -1)
		var got [][]int
		for i := 0; ; {
			start, end := nextTextURL(s, i)
			if start < 0 {
				break
			}
			got = append(got, []int{start, end})
			i = end
		}
		if len(got) != len(want) {
			t.Fatalf("%q: scanner %v, expression %v", s, got, want)
		}
		for i := range got {
			if !slices.Equal(got[i], want[i]) {
				t.Fatalf("%q: scanner %v, expression %v", s, got, want)
			}
		}
	})
}
