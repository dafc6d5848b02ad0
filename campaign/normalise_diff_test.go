package campaign

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/outguard/outguard/internal/testutil"
)

// normalise is Normalise with the hashes the fingerprint takes and the
// number of links seen.
func normalise(text string, perRecipient []string) (words []string, hashes []uint64, links int) {
	var sc scanner
	sc.setPerRecipient(perRecipient)
	sc.scan(text, func(w []byte, h uint64) {
		words = append(words, string(w))
		hashes = append(hashes, h)
	})
	return words, hashes, sc.links
}

// sameNormalise reports how the scanner and Compute differ from the
// reference on one text, or "" when they agree: the fingerprint, and word
// for word, hash for hash and on the links counted.
func sameNormalise(text string, per []string) string {
	in := Input{Subject: "Subject of the message", Text: text, PerRecipient: per}
	if f1, f2 := Compute(in), refCompute(in); !reflect.DeepEqual(f1, f2) {
		return fmt.Sprintf("fingerprints differ: %+v against %+v", f1, f2)
	}
	w1, h1, l1 := normalise(text, per)
	w2, h2, l2 := refNormalise(text, per)
	if d := sameRun(in.Subject, text, per); d != "" {
		return d
	}
	switch {
	case !slices.Equal(w1, w2):
		for i := range min(len(w1), len(w2)) {
			if w1[i] != w2[i] {
				return "word " + w1[i] + " against " + w2[i]
			}
		}
		return "word counts differ"
	case !slices.Equal(h1, h2):
		return "hashes differ"
	case l1 != l2:
		return "link counts differ"
	}
	return ""
}

// sameRun reports how the fingerprint's own walk of the text
// (computer.scan, which builds no words) differs from the reference's
// words on subject and text, the quoted part included: the number of
// words, the order-sensitive hash of all their hashes and the links
// counted. Compute's result alone would not show every difference: the
// signature keeps the minima only.
func sameRun(subject, text string, per []string) string {
	c := new(computer)
	c.sc.setPerRecipient(per)
	c.run(subject, text)
	_, hs, ls := refNormalise(subject, per)
	_, ht, lt := refNormalise(text, per)
	exact := uint64(0xcbf29ce484222325)
	for _, h := range append(hs, ht...) {
		exact = (exact ^ h) * 0x100000001b3
	}
	switch {
	case c.n != len(hs)+len(ht):
		return fmt.Sprintf("computer saw %d words, the reference %d", c.n, len(hs)+len(ht))
	case c.exact != exact:
		return "computer's word hashes differ"
	case c.sc.links != ls+lt:
		return "computer's link counts differ"
	}
	return ""
}

// normaliseCases are the corners of the scanner: every white space rune,
// invalid UTF-8, trimmed punctuation, links in any case, addresses, long
// words, digits, scripts without spaces and runes that fold to ASCII.
var normaliseCases = []string{
	"",
	"Dear John Smith, your order 12345 is ready: https://x.example/a/b1?c=d#e john@example.net",
	"会議は明日です www.shop.example/sale?ref=me ภาษาไทย カタカナ ひらがな",
	"http://@/?#",
	strings.Repeat("a", 200) + " https://" + strings.Repeat("b.", 100),
	"a\u00a0b\u0085c\u1680d\u2000e\u200af\u2028g\u2029h\u202fi\u205fj\u3000k\x1cl\x1fm\tn\vo\fp\rq\nr",
	"\xff\xfe bad \xe2\x80 half \xe2\x80\x80space \xc2 \xc2\xa0 ok\x80",
	"((\"[<hello>]\")) ...world!!! ?? :: ;; ,, '' x",
	"HTTPS://Example.COM/Path/Seg HTTP://a.b:8080/x Www.Shop.Example wWw.x httpſ://x.example ſ K Kelvin",
	"mailto:a@b.example @handle user@host x@ @",
	"Straße ÉCOLE İstanbul ΣΊΣΥΦΟΣ ǅemal ﬁnance 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 e\u0301 a\u200bb",
	strings.Repeat("É", 40) + " " + strings.Repeat("x", 70) + " " + strings.Repeat("é", 33) + "z",
	"abc123 123abc a1b ٣٤٥ x٣ foo_bar foo-bar o'neil",
	"https://host/" + strings.Repeat("s", 30) + "/ok/1x/?q=1 www.a1.b2c.example/Path#frag",
	"> quoted line\nOn Mon, Anna wrote:\n-----Original Message-----\n",
	"Thanks, that works for me and for the rest of the team here as well.\n \t> quoted line\n\t>> more\nOn Mon, Anna wrote: \t\r\nrest",
	"Some own text that is long enough to count as the message's own words.\r\nAm Montag schrieb Anna Weber:\r\n> alt\r\n",
	"Own words of the reply, several of them, enough for a signature here.\n----- Original Message -----\t\r\nquoted",
	"x\n" + strings.Repeat("y", 301) + " wrote:\n> q\n" + strings.Repeat("y", 290) + " wrote:\n> q",
	// computer.scan holds back up to maxPending words of a token: tokens
	// of fewer, as many and more words, ending in a word or not, with an
	// '@' or a multi-byte rune after some of their words.
	strings.Repeat("ab,", maxPending-1) + "ab " + strings.Repeat("ab,", maxPending) + " " +
		strings.Repeat("ab,", maxPending) + "ab " + strings.Repeat("a-", maxPending+3) + "z\t" +
		strings.Repeat("x1,", 40) + " " + strings.Repeat("x.", maxPending+1) + "1",
	"one,two,three@four five,six,seven,é eight-nine\u00a0ten,eleven\u2003twelve,thirteen\xff",
	"John,Smith:jsmith;anna.weber!JOHN?smith Smithy annaweber " + strings.Repeat("q", 63) + "Z " + strings.Repeat("Q", 64) + "z",
	// Tokens that start like a link without being one, and links behind
	// the characters token trims.
	"httpx HTTP http: htt wwwx www Www. WWW.x.example ((www.a.example)) \"http://q.example/a\" (HtTpS://b.example) ..http ht wW w",
	"<https://x.example/ab/cd> [www.y.example] 'http://' \"www.\" h w hTTp:/x.example",
	// Links with upper case, digits and multi-byte runes in their labels
	// and segments, valid or not.
	"https://Bücher.Example/Straße/Ü1x/ÖL/AbC https://例え.テスト/パス www.x٣.example/a٣b/ok http://\xffhost.EXAMPLE/\xfeX/Y2",
	"HTTP://A.B.C..D./E//F/ www.İ.example/İ https://ǅ.example/ǅ?x#y http://K.example/K",
}

// TestScannerMatchesReference holds the scanner to the reference (the
// rune-by-rune scanner it replaced) on the corner cases, on the text and
// the raw bytes of the repository's sample mail and, when it is unpacked
// (see filter/train), on the raw messages at odd positions of each folder
// of the SpamAssassin corpus (the training half; the held-out half stays
// unread).
func TestScannerMatchesReference(t *testing.T) {
	per := []string{"John Smith", "jsmith", "anna.weber", "会議"}
	cases := slices.Clone(normaliseCases)
	// Each white space rune, and others, between an address, a link and
	// words: a separator that is not white space joins them into one
	// token, which then counts as an address.
	for r := rune(0); r < 0x3100; r++ {
		sp := string(r)
		cases = append(cases, "a@b.example"+sp+"word"+sp+"https://h.example/p"+sp+"(tail)"+sp)
	}
	for _, c := range cases {
		if d := sameNormalise(c, per); d != "" {
			t.Errorf("%q: %s", c, d)
		}
	}
	// A subject past MaxTextBytes: the walk cuts it as the reference does.
	long := strings.Repeat("Subject words ", MaxTextBytes/10)
	if d := sameRun(long, "text", per); d != "" {
		t.Errorf("long subject: %s", d)
	}
	if f1, f2 := Compute(Input{Subject: long, Text: "x"}), refCompute(Input{Subject: long, Text: "x"}); !reflect.DeepEqual(f1, f2) {
		t.Errorf("long subject: fingerprints differ")
	}
	// Enough per-recipient words for the set to become a map and every
	// bit of its Bloom filter to be set.
	many := slices.Clone(per)
	for i := range 200 {
		many = append(many, fmt.Sprintf("w%c%c", 'a'+i%26, 'a'+i/26))
	}
	for _, c := range normaliseCases {
		c += " wab wcb wzg wzz two eight"
		if d := sameNormalise(c, many); d != "" {
			t.Errorf("%q with many per-recipient words: %s", c, d)
		}
	}
	var files []string
	for _, pat := range []string{"*/*.eml", "*/*/*.eml", "*/*/*/*.eml"} {
		m, _ := filepath.Glob(filepath.Join("..", "testdata", pat))
		files = append(files, m...)
	}
	for _, f := range files {
		if strings.Contains(f, "ham") {
			p := parseMessage(t, f)
			if d := sameNormalise(p.in.Subject+"\n"+p.in.Text, p.in.PerRecipient); d != "" {
				t.Errorf("%s: text: %s", f, d)
			}
		}
	}
	files = append(files, testutil.CorpusTrainingHalf(t)...)
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if d := sameNormalise(string(raw), per); d != "" {
			t.Errorf("%s: raw: %s", f, d)
		}
	}
	t.Logf("%d messages compared", len(files))
}

func FuzzScannerMatchesReference(f *testing.F) {
	for _, c := range normaliseCases {
		f.Add(c, "John Smith")
	}
	f.Fuzz(func(t *testing.T, text, per string) {
		if d := sameNormalise(text, []string{per, "x.y"}); d != "" {
			t.Fatalf("%q, %q: %s", text, per, d)
		}
	})
}
