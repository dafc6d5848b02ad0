package filter

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"mime/quotedprintable"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outguard/outguard/internal/htmltext"
	"github.com/outguard/outguard/internal/loadmsg"
)

// The per-stage benchmarks run each stage of the built-in engine on the
// same realistic messages, so that a change to one stage shows in its own
// figure: go test -run - -bench Stage -benchmem ./filter/
//
//   - 5KB: a real newsletter of testdata/modern (multipart/alternative,
//     quoted-printable text and HTML, 17 links);
//   - 50KB: the same newsletter grown to 50 KB by repeating its sections
//     with distinct links, re-encoded (the common shape of large mail);
//   - 50KB-pdf: the 5 KB newsletter plus a 45 KB base64 PDF attachment;
//   - plain5KB, plain50KB: the message of cmd/outguard-load (one line of
//     plain text repeated), which bench/relay.sh sends.

// stageMessages returns the benchmark messages by name, in order.
func stageMessages(tb testing.TB) []struct {
	name string
	raw  []byte
} {
	tb.Helper()
	base, err := os.ReadFile(filepath.Join("..", "testdata", "modern", "ham", "a-061-outdoor-shop-spring-sale.eml"))
	if err != nil {
		tb.Fatal(err)
	}
	m := mustParse(tb, base)
	var plain, html []byte
	for _, p := range m.Parts {
		switch p.ContentType {
		case "text/plain":
			plain = p.Data
		case "text/html":
			html = p.Data
		}
	}
	if plain == nil || html == nil {
		tb.Fatal("benchmark message lost its text or HTML part")
	}
	hdr := string(base[:bytes.Index(base, []byte("MIME-Version:"))])
	big := grownNewsletter(hdr, plain, html, 50<<10)

	r := rand.New(rand.NewPCG(3, 4))
	pdf := make([]byte, 45<<10*3/4)
	for i := range pdf {
		pdf[i] = byte(r.UintN(256))
	}
	copy(pdf, "%PDF-1.4\n")
	withPDF := buildMessage(hdr,
		att{ctype: "text/plain; charset=utf-8", body: qpEncode(plain), encoding: "quoted-printable"},
		att{ctype: "text/html; charset=utf-8", body: qpEncode(html), encoding: "quoted-printable"},
		att{ctype: "application/pdf", name: "spring-catalogue.pdf", body: pdf})
	return []struct {
		name string
		raw  []byte
	}{{"5KB", base}, {"50KB", big}, {"50KB-pdf", withPDF}, {"plain5KB", loadMessage(5 << 10)}, {"plain50KB", loadMessage(50 << 10)}}
}

// loadMessage is the message cmd/outguard-load sends, of size bytes, with
// the identity header it adds.
func loadMessage(size int) []byte {
	return append([]byte("X-AuthUser: loader-7\r\n"), loadmsg.Message(size)...)
}

// grownNewsletter repeats the text and the HTML body of a newsletter, each
// copy with its own link paths, until the message is about size bytes.
func grownNewsletter(hdr string, plain, html []byte, size int) []byte {
	bodyStart := bytes.Index(html, []byte("<body"))
	bodyEnd := bytes.LastIndex(html, []byte("</body>"))
	head, body, tail := html[:bodyStart], html[bodyStart:bodyEnd], html[bodyEnd:]
	var p, h bytes.Buffer
	h.Write(head)
	for i := 0; ; i++ {
		tag := fmt.Sprintf("/c/issue%d/", i)
		p.Write(bytes.ReplaceAll(plain, []byte("/c/"), []byte(tag)))
		h.Write(bytes.ReplaceAll(body, []byte("/c/"), []byte(tag)))
		// Quoted-printable grows HTML by about a tenth.
		if p.Len()+h.Len()*11/10 > size-1500 {
			break
		}
	}
	h.Write(tail)
	return buildMessage(hdr,
		att{ctype: "text/plain; charset=utf-8", body: qpEncode(p.Bytes()), encoding: "quoted-printable"},
		att{ctype: "text/html; charset=utf-8", body: qpEncode(h.Bytes()), encoding: "quoted-printable"})
}

// qpEncode encodes b as quoted-printable with CRLF line ends.
func qpEncode(b []byte) []byte {
	var out bytes.Buffer
	w := quotedprintable.NewWriter(&out)
	w.Write(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")))
	w.Close()
	return bytes.ReplaceAll(bytes.ReplaceAll(out.Bytes(), []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
}

// benchRules is an operator rule set of a realistic size: phrases, a few
// expressions, header and URL rules, like the ones of the example
// configuration.
func benchRules() []Rule {
	phrases := []string{
		"cheap pills", "act now", "limited time offer", "100% free", "risk-free",
		"no credit check", "work from home", "earn extra cash", "double your income",
		"miracle cure", "lose weight fast", "viagra", "cialis", "casino bonus",
		"wire the funds", "inheritance claim", "beneficiary of", "lottery winner",
		"claim your prize", "crypto giveaway", "verify your account", "account suspended",
		"unusual sign-in activity", "confirm your password", "update your billing",
		"final notice", "your parcel is on hold", "customs fee", "investment opportunity",
		"guaranteed returns",
	}
	var rules []Rule
	for i, p := range phrases {
		rules = append(rules, Rule{Name: fmt.Sprintf("PHRASE_%02d", i), Target: TargetBody, Pattern: p, Score: 1.5})
	}
	regexes := []string{
		`(?i)urgent(ly)?\s+wire\s+transfer`,
		`(?i)\bbitcoin\s+wallet\b`,
		`(?i)click\s+here\s+to\s+(verify|unlock|claim)`,
		`(?i)\$\d{1,3}(,\d{3})+\s+(usd|dollars)`,
		`(?i)password\s+expires?\s+(today|in\s+\d+\s+hours?)`,
		`(?i)dear\s+(customer|user|member)\b`,
	}
	for i, p := range regexes {
		rules = append(rules, Rule{Name: fmt.Sprintf("REGEX_%02d", i), Target: TargetBody, Regex: true, Pattern: p, Score: 2})
	}
	rules = append(rules,
		Rule{Name: "MAILER_PHPMAILER_SPAMKIT", Target: TargetHeader, Header: "X-Mailer", Pattern: "PHPMailer 5.2.0 [spam edition]", Score: 4},
		Rule{Name: "SUBJECT_VIAGRA", Target: TargetHeader, Header: "Subject", Pattern: "viagra", Score: 3},
		Rule{Name: "ANY_HEADER_BULK", Target: TargetHeader, Pattern: "x-bulk-sender", Score: 1},
		Rule{Name: "URL_SHORTENER_BADLY", Target: TargetURL, Pattern: "bit.ly.example/", Score: 1.5},
		Rule{Name: "URL_RU", Target: TargetURL, Pattern: ".ru/", Score: 1},
		Rule{Name: "URL_IPFS", Target: TargetURL, Pattern: "ipfs.io/ipfs/", Score: 2},
		Rule{Name: "FAKE_INVOICE_LOGIN", Target: TargetURL, Regex: true, Pattern: `(?i)/(webmail|office365|owa)[-_]?login`, Score: 3, Category: Phishing},
	)
	return rules
}

// benchBuiltin is the engine of the stage benchmarks: the shipped defaults
// (seed content model) with benchRules and a few protected domains.
func benchBuiltin(tb testing.TB) *Builtin {
	tb.Helper()
	eng, err := NewBuiltin(BuiltinOptions{
		ProtectedDomains: []string{"paypal.com", "examplebank.com", "microsoft.com"},
		Rules:            benchRules(),
	})
	if err != nil {
		tb.Fatal(err)
	}
	return eng
}

// benchStage runs fn for every stage message with allocation figures.
func benchStage(b *testing.B, fn func(b *testing.B, raw []byte) func()) {
	for _, s := range stageMessages(b) {
		b.Run(s.name, func(b *testing.B) {
			run := fn(b, s.raw)
			b.SetBytes(int64(len(s.raw)))
			b.ReportAllocs()
			b.ResetTimer()
			cpu := processCPU()
			for b.Loop() {
				run()
			}
			if cpu > 0 {
				// CPU time per message, garbage collection included.
				b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
			}
		})
	}
}

// BenchmarkStageParse is the MIME walk: header, tree, decoding, text,
// URLs and archive listings.
func BenchmarkStageParse(b *testing.B) {
	benchStage(b, func(b *testing.B, raw []byte) func() {
		return func() {
			if _, err := ParseBytes(raw, Limits{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkStageText is the HTML-to-text conversion of the HTML parts.
func BenchmarkStageText(b *testing.B) {
	benchStage(b, func(b *testing.B, raw []byte) func() {
		m := mustParse(b, raw)
		var html [][]byte
		for _, p := range m.Parts {
			if p.HTML {
				html = append(html, p.Data)
			}
		}
		return func() {
			for _, h := range html {
				htmltext.Parse(h)
			}
		}
	})
}

// BenchmarkStageLinks is the URL collection from the parts' text and the
// HTML links.
func BenchmarkStageLinks(b *testing.B) {
	benchStage(b, func(b *testing.B, raw []byte) func() {
		m := mustParse(b, raw)
		var texts []string
		var links []htmltext.Link
		for _, p := range m.Parts {
			if p.HTML {
				links = append(links, htmltext.Parse(p.Data).Links...)
			}
			if p.Text != "" {
				texts = append(texts, p.Text)
			}
		}
		lim := DefaultLimits()
		return func() {
			w := &walker{m: &Message{}, lim: lim, seen: map[string]bool{}}
			for _, l := range links {
				w.addURL(l.Href, l.Text, true)
			}
			for _, t := range texts {
				w.urlsInText(t)
			}
			if len(w.m.URLs) == 0 && len(links) > 0 {
				b.Fatal("no URL found")
			}
		}
	})
}

// BenchmarkStageRules is the operator rule set (benchRules) on a parsed
// message.
func BenchmarkStageRules(b *testing.B) {
	eng := benchBuiltin(b)
	benchStage(b, func(b *testing.B, raw []byte) func() {
		m := mustParse(b, raw)
		return func() {
			s := &scan{b: eng, fired: map[string]bool{}}
			s.rules(m)
		}
	})
}

// BenchmarkStageHeuristics is the built-in heuristics (test strings,
// attachments, links and sender domains, outbound checks, obfuscation) on
// a parsed message.
func BenchmarkStageHeuristics(b *testing.B) {
	eng := benchBuiltin(b)
	benchStage(b, func(b *testing.B, raw []byte) func() {
		m := mustParse(b, raw)
		m.MailFrom = "bounce@email.ridgelineoutfitters.com"
		return func() {
			s := &scan{b: eng, fired: map[string]bool{}}
			s.testStrings(m)
			s.attachments(m)
			s.links(m)
			s.outbound(m)
			s.obfuscation(m)
		}
	})
}

// BenchmarkStageContent is the content model: tokenising and scoring.
func BenchmarkStageContent(b *testing.B) {
	eng := benchBuiltin(b)
	benchStage(b, func(b *testing.B, raw []byte) func() {
		m := mustParse(b, raw)
		return func() {
			eng.scoreContent(m, func(float64) bool { return false })
		}
	})
}

// BenchmarkStageEngine is the whole built-in engine: parse and Scan.
func BenchmarkStageEngine(b *testing.B) {
	eng := benchBuiltin(b)
	benchStage(b, func(b *testing.B, raw []byte) func() {
		return func() {
			m, err := ParseBytes(raw, Limits{})
			if err != nil {
				b.Fatal(err)
			}
			m.MailFrom = "bounce@email.ridgelineoutfitters.com"
			if _, err := eng.Scan(context.Background(), m); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkStageClassify is what the pipeline does per message: parse,
// then Classify with the built-in engine alone (its goroutine and
// timeout), from several goroutines at once, as concurrent sessions do.
func BenchmarkStageClassify(b *testing.B) {
	c, err := New(Options{Engines: []EngineSpec{{Engine: benchBuiltin(b)}}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	for _, s := range stageMessages(b) {
		b.Run(s.name, func(b *testing.B) {
			b.SetBytes(int64(len(s.raw)))
			b.ReportAllocs()
			b.SetParallelism(4)
			cpu := processCPU()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					m, err := ParseBytes(s.raw, Limits{})
					if err != nil {
						b.Error(err)
						return
					}
					if _, err := c.Classify(context.Background(), m); err != nil {
						b.Error(err)
						return
					}
				}
			})
			if cpu > 0 {
				b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
			}
		})
	}
}

// TestStageMessages checks that the benchmark messages are what their
// names say and parse into the parts the stages expect.
func TestStageMessages(t *testing.T) {
	for _, s := range stageMessages(t) {
		m := mustParse(t, s.raw)
		if strings.HasPrefix(s.name, "plain") {
			if len(m.Parts) != 1 || m.Parts[0].HTML || len(m.URLs) > 0 || len(m.Defects) > 0 {
				t.Errorf("%s: %d parts, %d URLs, defects %v", s.name, len(m.Parts), len(m.URLs), m.Defects)
			}
			continue
		}
		var html bool
		for _, p := range m.Parts {
			html = html || p.HTML
		}
		if !html || len(m.URLs) == 0 || len(m.Defects) > 0 {
			t.Errorf("%s: html %v, %d URLs, defects %v", s.name, html, len(m.URLs), m.Defects)
		}
		want := 5 << 10
		if strings.Contains(s.name, "50KB") {
			want = 50 << 10
		}
		if n := len(s.raw); n < want*9/10 || n > want*11/10 {
			t.Errorf("%s: %d bytes", s.name, n)
		}
	}
}
