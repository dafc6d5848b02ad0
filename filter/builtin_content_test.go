package filter

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/outguard/outguard/filter/content"
)

// TestSeedModelLoads checks that the embedded seed fits this build's
// tokeniser and carries thresholds in the order the bands need.
func TestSeedModelLoads(t *testing.T) {
	m, err := content.Seed()
	if err != nil {
		t.Fatal(err)
	}
	if m.Len() < 10_000 {
		t.Errorf("got %d features, want a trained model", m.Len())
	}
	if !(m.Suspect > 0 && m.Suspect < m.Spam && m.Spam == DefaultSpamThreshold) {
		t.Errorf("got thresholds suspect %v spam %v, want 0 < suspect < spam = %v", m.Suspect, m.Spam, DefaultSpamThreshold)
	}
}

// TestModernCorpus checks the held-out part of testdata/modern (every
// fourth file of each sorted folder, never trained on): no ham blocked,
// and most spam and phishing blocked by rules and model together.
func TestModernCorpus(t *testing.T) {
	c := builtinClassifier(t, BuiltinOptions{})
	for _, kind := range []string{"ham", "spam"} {
		files, err := filepath.Glob(filepath.Join("..", "testdata", "modern", kind, "*.eml"))
		if err != nil || len(files) < 100 {
			t.Fatalf("testdata/modern/%s: %d files, %v", kind, len(files), err)
		}
		slices.Sort(files)
		blocked, n := 0, 0
		for i, f := range files {
			if i%4 != 0 {
				continue
			}
			n++
			r := ClassifyFile(context.Background(), c, f)
			if r.Error != "" {
				t.Fatalf("%s: %s", f, r.Error)
			}
			if r.Class != "clean" {
				blocked++
				if kind == "ham" {
					t.Errorf("%s: got %s (score %v, %q), want clean", filepath.Base(f), r.Class, r.Score, r.Reasons)
				}
			}
		}
		t.Logf("held-out modern %s: %d of %d blocked", kind, blocked, n)
		// The goal is 60%; the shipped seed with the default
		// heuristics blocks 60 of 83 (72%): docs/content-model.md.
		if kind == "spam" && blocked*100 < n*60 {
			t.Errorf("held-out modern spam: %d of %d blocked, want at least 60%%", blocked, n)
		}
	}
}

// TestContentReasonsNameTokens checks that a spam verdict of the model
// names the model's score and its top tokens.
func TestContentReasonsNameTokens(t *testing.T) {
	raw := buildMessage("From: a@shop.example\r\nTo: b@example.org\r\nSubject: Cheap meds online, no prescription",
		textPart("Buy cheap viagra and cialis online! No prescription needed, lowest prices, discreet shipping. Order now: http://cheap-meds.example/buy"))
	v := scanBuiltin2(t, raw)
	if v.Class != Spam || v.Band != BandSpam {
		t.Fatalf("got %s/%s (%q), want spam", v.Class, v.Band, v.Reasons)
	}
	if !strings.HasPrefix(v.Reasons[0], "builtin:CONTENT_MODEL(") || !strings.HasPrefix(v.Reasons[1], "builtin:CONTENT[") {
		t.Errorf("got reasons %q, want the model's score then its tokens", v.Reasons)
	}
	if v.ModelVersion == "" {
		t.Error("got no model version")
	}
}

func scanBuiltin2(t *testing.T, raw []byte) Verdict {
	t.Helper()
	b, err := NewBuiltin(BuiltinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := b.Scan(context.Background(), mustParse(t, raw))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// contentBenchMessage is a text message of about size bytes in ordinary
// English, words drawn from the ham test corpus.
func contentBenchMessage(tb testing.TB, size int) []byte {
	tb.Helper()
	var words []string
	for _, f := range []string{"01-business-reply.eml", "03-mailing-list.eml", "16-forwarded-message.eml"} {
		raw, err := os.ReadFile(filepath.Join("..", "testdata", "ham", f))
		if err != nil {
			tb.Fatal(err)
		}
		words = append(words, strings.Fields(string(raw))...)
	}
	r := rand.New(rand.NewPCG(3, 4))
	var b strings.Builder
	for b.Len() < size-400 {
		b.WriteString(words[r.IntN(len(words))])
		if r.IntN(12) == 0 {
			b.WriteString(".\n")
		} else {
			b.WriteByte(' ')
		}
		if r.IntN(300) == 0 {
			fmt.Fprintf(&b, "https://docs.example-corp.com/page/%d ", r.IntN(100))
		}
	}
	return buildMessage(stdHeaders, textPart(b.String()))
}

// BenchmarkContent measures what the content model adds to a parsed
// message: building the document, tokenising and scoring. Run with -cpu 1.
func BenchmarkContent(b *testing.B) {
	eng, err := NewBuiltin(BuiltinOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for _, s := range []struct {
		name string
		size int
	}{{"5KB", 5 << 10}, {"50KB", 50 << 10}} {
		m := mustParse(b, contentBenchMessage(b, s.size))
		b.Run(s.name, func(b *testing.B) {
			b.SetBytes(int64(len(m.BodyText)))
			b.ReportAllocs()
			for b.Loop() {
				eng.scoreContent(m, func(float64) bool { return false })
			}
		})
	}
}
