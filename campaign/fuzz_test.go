package campaign

import (
	"strings"
	"testing"
	"unicode"
)

func FuzzNormalise(f *testing.F) {
	f.Add("Dear John Smith, your order 12345 is ready: https://x.example/a/b1?c=d#e john@example.net", "John Smith")
	f.Add("会議は明日です www.shop.example/sale?ref=me", "jsmith")
	f.Add("http://@/?#", "")
	f.Add(strings.Repeat("a", 200)+" https://"+strings.Repeat("b.", 100), "a")
	f.Fuzz(func(t *testing.T, text, per string) {
		words := Normalise(text, []string{per})
		if len(words) > len(text) {
			t.Fatalf("%d words from %d bytes", len(words), len(text))
		}
		var sc scanner
		sc.setPerRecipient([]string{per})
		skip := sc.skip
		lower := strings.ToLower(text)
		noLinks := !strings.Contains(lower, "http") && !strings.Contains(lower, "www.")
		for _, w := range words {
			if w == "" {
				t.Fatalf("empty word")
			}
			for _, r := range w {
				if unicode.IsDigit(r) {
					t.Fatalf("word %q holds a digit", w)
				}
			}
			if noLinks {
				for _, r := range w {
					if !unicode.IsLetter(r) && !unicode.IsMark(r) && r != utf8RuneError {
						t.Fatalf("word %q holds %q", w, r)
					}
					if unicode.ToLower(r) != r {
						t.Fatalf("word %q is not lower case", w)
					}
				}
				if skip.has(hashBytes([]byte(w))) {
					t.Fatalf("per-recipient word %q kept", w)
				}
			}
			if strings.Contains(w, "?") {
				t.Fatalf("word %q keeps a query", w)
			}
		}
		f1 := Compute(Input{Text: text, PerRecipient: []string{per}})
		f2 := Compute(Input{Text: text, PerRecipient: []string{per}})
		// Compute reads the message's own text, unless it is too short.
		seen := words
		if own, quoted := ownText(text); quoted && !f1.Quoted {
			seen = Normalise(own, []string{per})
		}
		if f1.Words != len(seen) {
			t.Fatalf("Compute saw %d words, Normalise %d", f1.Words, len(seen))
		}
		words = seen
		if f1.Sig != f2.Sig || f1.Exact != f2.Exact || f1.HasSig != f2.HasSig {
			t.Fatalf("Compute is not deterministic")
		}
		if f1.HasSig != (len(words)-ShingleWords+1 >= MinShingles) {
			t.Fatalf("HasSig %v with %d words", f1.HasSig, len(words))
		}
	})
}

const utf8RuneError = '\uFFFD'
