package filter

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// benchMessage builds a realistic message of about size bytes: a text part
// and an HTML part with links, and, for larger sizes, a PDF attachment
// filling the rest.
func benchMessage(tb testing.TB, size int) []byte {
	tb.Helper()
	var text, html strings.Builder
	for i := 0; text.Len()+html.Len() < 3500; i++ {
		fmt.Fprintf(&text, "Paragraph %d of the quarterly update. Details: https://www.example.com/news/%d\n", i, i)
		fmt.Fprintf(&html, `<p>Paragraph %d of the quarterly update. <a href="https://click.esp.example/c/%d">Read more</a></p>`, i, i)
	}
	parts := []att{textPart(text.String()), htmlPart(html.String())}
	base := buildMessage(stdHeaders, parts...)
	if pad := size - len(base); pad > 1024 {
		r := rand.New(rand.NewPCG(1, 2))
		pdf := make([]byte, pad*3/4)
		for i := range pdf {
			pdf[i] = byte(r.UintN(256))
		}
		copy(pdf, "%PDF-1.4\n")
		parts = append(parts, att{ctype: "application/pdf", name: "report.pdf", body: pdf})
	}
	return buildMessage(stdHeaders, parts...)
}

var benchSizes = []struct {
	name string
	size int
}{{"5KB", 5 << 10}, {"100KB", 100 << 10}}

func BenchmarkParseMessage(b *testing.B) {
	for _, s := range benchSizes {
		raw := benchMessage(b, s.size)
		b.Run(s.name, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseBytes(raw, Limits{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBuiltin measures parse plus built-in scan: the whole cost of a
// message to the built-in engine. Run with -cpu 1 for msgs/s on one core.
func BenchmarkBuiltin(b *testing.B) {
	eng, err := NewBuiltin(BuiltinOptions{
		ProtectedDomains: []string{"paypal.com", "examplebank.com", "microsoft.com"},
		Rules: []Rule{
			{Name: "R1", Target: TargetBody, Pattern: "cheap pills", Score: 3},
			{Name: "R2", Target: TargetBody, Regex: true, Pattern: `(?i)wire\s+transfer`, Score: 2},
			{Name: "R3", Target: TargetURL, Pattern: ".ru/", Score: 1},
			{Name: "R4", Target: TargetHeader, Header: "Subject", Pattern: "viagra", Score: 3},
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	for _, s := range benchSizes {
		raw := benchMessage(b, s.size)
		b.Run(s.name, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				m, err := ParseBytes(raw, Limits{})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := eng.Scan(context.Background(), m); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

func benchEngine(b *testing.B, e Engine) {
	for _, s := range benchSizes {
		raw := benchMessage(b, s.size)
		m := rspamdMessage(b, raw)
		b.Run(s.name, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if _, err := e.Scan(context.Background(), m); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

func BenchmarkRspamd(b *testing.B) { benchEngine(b, realRspamd(b, RspamdOptions{})) }

func BenchmarkClamd(b *testing.B) { benchEngine(b, realClamd(b, ClamdOptions{})) }
