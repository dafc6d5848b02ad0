package content

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/outguard/outguard/internal/testutil"
)

// sameExtract reports how Extract differs from the reference on d, or ""
// when the features, the generic features and (with names) the names given
// agree. One Extractor of each kind is reused, as the engine's pool does.
func sameExtract(e *Extractor, r *refExtractor, d Doc, names bool) string {
	if !names {
		f1 := slices.Clone(e.Extract(&d))
		if f2 := r.Extract(&d); !slices.Equal(f1, f2) {
			return fmt.Sprintf("features differ: %d against %d", len(f1), len(f2))
		}
		if g1, g2 := e.Generic(), r.Generic(); !slices.Equal(g1, g2) {
			return "generic features differ"
		}
		return ""
	}
	var n1, n2 []string
	e.Names = func(id uint32, n string) { n1 = append(n1, fmt.Sprint(id, n)) }
	r.Names = func(id uint32, n string) { n2 = append(n2, fmt.Sprint(id, n)) }
	f1 := slices.Clone(e.Extract(&d))
	f2 := r.Extract(&d)
	switch {
	case !slices.Equal(f1, f2):
		return fmt.Sprintf("features differ: %d against %d", len(f1), len(f2))
	case !slices.Equal(n1, n2):
		return "names differ"
	}
	e.Names, r.Names = nil, nil
	f1 = slices.Clone(e.Extract(&d))
	if f2 = r.Extract(&d); !slices.Equal(f1, f2) {
		return "features without names differ"
	}
	if g1, g2 := e.Generic(), r.Generic(); !slices.Equal(g1, g2) {
		return "generic features differ"
	}
	return ""
}

// Generic of the reference, as Extractor.Generic.
func (e *refExtractor) Generic() Features {
	slices.Sort(e.generic)
	e.generic = slices.Compact(e.generic)
	return e.generic
}

// extractCases are the corners of text's ASCII path (asciiRun) and of its
// hand-overs to the general path: joiners inside, after and before words
// and after one another, '$', words cut at the end of the text, long
// words folded with joiners among their first runes, numbers, and words
// that go on with a zero-width character, an accented letter, a
// typographic apostrophe, a look-alike letter or CJK.
var extractCases = []string{
	"don't stop-me now. ab.é x'ö A.B.C. $100 a$b $$ ab$ ab$$c ab..cd ab.-cd ab.\u200bcd ab\u200bcd",
	"abc\u2019s ab.\u2019s ab\u2019\u2019s ab.日本 日本ab ab日本語 日 ab. ab.日 ab-é ab'\u00adcd",
	"abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKL.MNOPQRSTUVWXYZ abc.def-ghi'jkl.mno.pqr 123456789012345678901234 12.34 1-2 99 a b c d",
	"a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z ab\r\ncd\tef,gh;ij ab-\ncd ab.'cd ab.",
	"$ $a a$ $$$ x$y$z 1$ $1.5 1.5$ $. .$ ..ab.. -ab- 'ab' a.b",
	"ÉCOLE école abÉcole Pаypal pаypal.com x\u0301y ab\xffcd ab.\xff ab\x00cd",
	"end with a joiner.",
	"ab",
	"a",
	".",
	"",
	"ab.c",
	"ab\u200b",
	"ab-",
	"ab cd 日本",
	strings.Repeat("word ", 30) + strings.Repeat("x", 25) + "." + strings.Repeat("y", 3),
}

// TestExtractMatchesReference holds Extract to the reference (every id
// appended, then sorted and compacted) on texts that repeat their words
// (so that the set of distinct ids grows and wraps its table), on the
// repository's sample mail and, when it is unpacked (see filter/train),
// on the SpamAssassin corpus's messages at odd positions of each folder
// (the training half; the held-out half stays unread), each message's raw
// bytes taken as its body.
func TestExtractMatchesReference(t *testing.T) {
	var e Extractor
	var r refExtractor
	rnd := rand.New(rand.NewPCG(5, 6))
	words := strings.Fields("the quick brown fox jumps over lazy dog 0123456789 abcdefghij お知らせ Pаypal V\u200biagra $100 don't shop.my-store.com abcdefghijklmnopqrstuvwxyz")
	for _, c := range extractCases {
		for _, d := range []Doc{{Body: c}, {Subject: c}, {Subject: c, Body: c + " " + c}} {
			if diff := sameExtract(&e, &r, d, true); diff != "" {
				t.Errorf("%q in %+v: %s", c, d, diff)
			}
		}
	}
	for _, n := range []int{0, 1, 10, 300, 1000, 5000, 40000} {
		var b strings.Builder
		for i := range n {
			b.WriteString(words[rnd.IntN(len(words))])
			if i%3 == 0 {
				fmt.Fprintf(&b, "%d", rnd.IntN(n+1))
			}
			b.WriteByte(' ')
		}
		hosts := []string{"a.example", "b.example", "a.example"}
		d := Doc{Subject: "Subject " + b.String()[:min(b.Len(), 200)], Body: b.String(), Hosts: hosts,
			Structure: []Token{{Kind: "ct", Value: "text/plain"}, {Kind: "ct", Value: "text/plain"}, {Kind: "html-only"}}}
		if diff := sameExtract(&e, &r, d, true); diff != "" {
			t.Errorf("%d words: %s", n, diff)
		}
	}
	var files []string
	for _, pat := range []string{"*/*.eml", "*/*/*.eml", "*/*/*/*.eml"} {
		m, _ := filepath.Glob(filepath.Join("..", "..", "testdata", pat))
		files = append(files, m...)
	}
	files = append(files, testutil.CorpusTrainingHalf(t)...)
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s := string(raw)
		d := Doc{Subject: s[:min(len(s), 300)], Body: s, Hosts: strings.Fields(s[:min(len(s), 2000)])}
		if diff := sameExtract(&e, &r, d, !strings.HasSuffix(f, ".txt")); diff != "" {
			t.Errorf("%s: %s", f, diff)
		}
	}
	t.Logf("%d messages compared", len(files))
}

func FuzzExtractMatchesReference(f *testing.F) {
	f.Add("Subject", "Pаypal V\u200biagra $100 お知らせ abcdefghijklmnopqrstuvwxyz 12345 a a a", "bit.ly")
	for _, c := range extractCases {
		f.Add(c, c, "")
	}
	var e Extractor
	var r refExtractor
	f.Fuzz(func(t *testing.T, subject, body, host string) {
		d := Doc{Subject: subject, Body: body, Hosts: []string{host, host}}
		if diff := sameExtract(&e, &r, d, true); diff != "" {
			t.Fatal(diff)
		}
	})
}

// TestIDSet checks the set, and that hit finds only ids it holds, against
// a map over rounds of random ids, with many repeats, across growth and
// the wrap of the round counter.
func TestIDSet(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 8))
	var s idSet
	hits := 0
	for round := range 40 {
		if round == 20 {
			s.round = 1<<32 - 1 // the next reset wraps
		}
		s.reset()
		n := rnd.IntN(5000)
		want := map[uint32]bool{}
		var all []uint32
		for range n {
			id := rnd.Uint32() % uint32(1+n/2)
			if round%2 == 0 {
				id = rnd.Uint32()
			}
			if s.hit(id) {
				hits++
				if !want[id] {
					t.Fatalf("round %d: hit(%d) before it was added", round, id)
				}
			}
			added := s.add(id, all)
			if added == want[id] {
				t.Fatalf("round %d: add(%d) = %v, already there %v", round, id, added, want[id])
			}
			if added {
				want[id] = true
				all = append(all, id)
			}
		}
	}
	if hits == 0 {
		t.Error("hit never found an id in its first slot")
	}
}
