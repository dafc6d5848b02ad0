package content

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestObfuscations(t *testing.T) {
	for _, tc := range []struct {
		in             string
		invisible, mix int
	}{
		{"Your password expires today", 0, 0},
		{"Your pass\u200bword expires", 1, 0},
		{"Kenn\u00adwort l\u00e4uft ab, Pass\u2060wort, Pa\ufeffss", 3, 0},
		{"Sign in to Micr\u043esoft 365", 0, 1},                                                    // Cyrillic o
		{"Sign in to Micr\u043e", 0, 1},                                                            // a look-alike last, after a long ASCII run
		{"\u043fa\u0440\u043e\u043b\u044c \u0438\u0441\u0442\u0435\u043a\u0430\u0435\u0442", 0, 1}, // Latin a inside a Russian word
		{"\u041f\u0430\u0440\u043e\u043b\u044c \u0438\u0441\u0442\u0435\u043a\u0430\u0435\u0442 Outlook", 0, 0},
		{"\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac and English", 0, 0},
		{"Kap\u0131 numaras\u0131 \u015fifre", 0, 0}, // Turkish dotless i is Latin
		{"family \U0001F468\u200d\U0001F469\u200d\U0001F467 photo", 0, 0},
		{"\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645", 0, 0}, // Persian ZWNJ
		{"cafe\u0301 cre\u0300me", 0, 0},
		{"a\u200b1", 0, 0},
		{"", 0, 0},
	} {
		inv, mix := Obfuscations(tc.in)
		if inv != tc.invisible || mix != tc.mix {
			t.Errorf("Obfuscations(%q) = %d, %d; want %d, %d", tc.in, inv, mix, tc.invisible, tc.mix)
		}
		if inv, mix := obfuscationsSlow(tc.in); inv != tc.invisible || mix != tc.mix {
			t.Errorf("reference(%q) = %d, %d; want %d, %d", tc.in, inv, mix, tc.invisible, tc.mix)
		}
	}
}

// obfuscationsSlow is Obfuscations rune by rune, without the ASCII skip:
// the reference the fuzz target compares with.
func obfuscationsSlow(s string) (invisible, mixed int) {
	var prevLatin, pending, latin, look bool
	end := func() {
		if latin && look {
			mixed++
		}
		prevLatin, pending, latin, look = false, false, false, false
	}
	for _, r := range s {
		isLatin := unicode.IsLetter(r) && r < 0x250
		switch {
		case isLatin:
			if pending {
				invisible++
				pending = false
			}
			latin, prevLatin = true, true
		case r >= '0' && r <= '9':
			prevLatin, pending = false, false
		case r < utf8.RuneSelf:
			end()
		case invisibleRune(r):
			pending = pending || prevLatin
		case confusable(r) != 0:
			look, prevLatin, pending = true, false, false
		case unicode.IsLetter(r):
			prevLatin, pending = false, false
		case unicode.Is(unicode.Mn, r):
		default:
			end()
		}
	}
	end()
	return invisible, mixed
}

func FuzzObfuscations(f *testing.F) {
	f.Add("Micr\u043esoft pass\u200bword")
	f.Add(strings.Repeat("abcdefgh", 3) + "\u043e")
	f.Add("\u043fa\u0440\u043e\u043b\u044c")
	f.Fuzz(func(t *testing.T, s string) {
		inv, mix := Obfuscations(s)
		wi, wm := obfuscationsSlow(s)
		if inv != wi || mix != wm {
			t.Fatalf("Obfuscations(%q) = %d, %d; reference %d, %d", s, inv, mix, wi, wm)
		}
	})
}
