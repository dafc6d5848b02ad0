package filter

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// corpusProtected is the configuration the spam corpus is checked with:
// defaults plus two protected brands.
var corpusProtected = BuiltinOptions{ProtectedDomains: []string{"paypal.com", "examplebank.com"}}

func corpusFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "testdata", dir, "*.eml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus in testdata/%s: %v", dir, err)
	}
	return files
}

func builtinClassifier(t testing.TB, opts BuiltinOptions) *Classifier {
	t.Helper()
	b, err := NewBuiltin(opts)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Options{Engines: []EngineSpec{{Engine: b}}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestHamCorpusIsClean guards against false positives: ordinary mail of
// every kind must come out clean, with the default configuration and with
// protected brands configured.
func TestHamCorpusIsClean(t *testing.T) {
	files := corpusFiles(t, "ham")
	if len(files) < 15 {
		t.Fatalf("got %d ham messages, want at least 15", len(files))
	}
	for _, cfg := range []struct {
		name string
		opts BuiltinOptions
	}{{"default", BuiltinOptions{}}, {"protected", corpusProtected}} {
		c := builtinClassifier(t, cfg.opts)
		for _, f := range files {
			t.Run(cfg.name+"/"+filepath.Base(f), func(t *testing.T) {
				r := ClassifyFile(context.Background(), c, f)
				if r.Error != "" {
					t.Fatalf("got error %s", r.Error)
				}
				if r.Class != "clean" {
					t.Errorf("got %s (score %v, reasons %q), want clean", r.Class, r.Score, r.Reasons)
				}
				if len(r.Defects) > 0 {
					t.Errorf("got defects %q, want a well-formed message", r.Defects)
				}
			})
		}
	}
}

// TestSpamCorpusIsCaught checks each bad message against the class its
// file name starts with.
func TestSpamCorpusIsCaught(t *testing.T) {
	c := builtinClassifier(t, corpusProtected)
	for _, f := range corpusFiles(t, "spam") {
		name := filepath.Base(f)
		want := name[:strings.IndexByte(name, '-')]
		t.Run(name, func(t *testing.T) {
			r := ClassifyFile(context.Background(), c, f)
			if r.Error != "" {
				t.Fatalf("got error %s", r.Error)
			}
			if r.Class != want {
				t.Errorf("got %s (score %v, reasons %q), want %s", r.Class, r.Score, r.Reasons, want)
			}
		})
	}
}

func TestCorpusCharsets(t *testing.T) {
	for file, want := range map[string]string{
		"10-german-latin1-qp.eml":    "Grüße aus der Backstube",
		"11-japanese-iso2022jp.eml":  "来週の打ち合わせ",
		"12-russian-koi8r.eml":       "Отправляю отчёт за октябрь",
		"19-utf8-emoji.eml":          "« Le Zéphyr »",
		"02-newsletter-tracking.eml": "Plant now for a colourful spring.",
	} {
		t.Run(file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("..", "testdata", "ham", file))
			if err != nil {
				t.Fatal(err)
			}
			m := mustParse(t, raw)
			if !strings.Contains(m.BodyText, want) {
				t.Errorf("got body %q, want it to contain %q", m.BodyText, want)
			}
		})
	}
}

func TestClassifyFileJSON(t *testing.T) {
	c := builtinClassifier(t, BuiltinOptions{})
	for _, tc := range []struct {
		name string
		path string
		want map[string]any
	}{
		{"virus", filepath.Join("..", "testdata", "spam", "virus-eicar-zip.eml"), map[string]any{
			"class": "virus", "score": 1000.0, "reasons": []any{"builtin:EICAR(1000)"}, "error": ""}},
		{"clean", filepath.Join("..", "testdata", "ham", "01-business-reply.eml"), map[string]any{
			"class": "clean", "score": 0.0, "reasons": []any{}, "error": ""}},
		{"missing file", filepath.Join(t.TempDir(), "nope.eml"), map[string]any{
			"class": "", "score": 0.0, "reasons": []any{}}},
		{"directory", t.TempDir(), map[string]any{"class": ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(ClassifyFile(context.Background(), c, tc.path))
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"file", "class", "score", "reasons", "error"} {
				if _, ok := got[k]; !ok {
					t.Errorf("got %s, want key %q", b, k)
				}
			}
			if got["file"] != tc.path {
				t.Errorf("got file %v, want %s", got["file"], tc.path)
			}
			for k, w := range tc.want {
				g, _ := json.Marshal(got[k])
				ws, _ := json.Marshal(w)
				if string(g) != string(ws) {
					t.Errorf("key %s: got %s, want %s", k, g, ws)
				}
			}
			if _, ok := tc.want["error"]; !ok && got["error"] == "" {
				t.Errorf("got no error, want one")
			}
		})
	}
}

// TestCorpusExternal runs the corpus through the real scanners: clamd must
// find the EICAR messages and nothing in the ham; rspamd must refuse GTUBE
// and, with its default actions, nothing in the ham.
func TestCorpusExternal(t *testing.T) {
	for _, tc := range []struct {
		name   string
		engine func(t *testing.T) Engine
		bad    map[string]string // spam corpus file -> class
	}{
		{"clamd", func(t *testing.T) Engine { return realClamd(t, ClamdOptions{}) }, map[string]string{
			"virus-eicar-attachment.eml": "virus", "virus-eicar-zip.eml": "virus"}},
		{"rspamd", func(t *testing.T) Engine { return realRspamd(t, RspamdOptions{}) }, map[string]string{
			"spam-gtube.eml": "spam"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.engine(t)
			c, err := New(Options{Engines: []EngineSpec{{Engine: e, Timeout: 30 * time.Second}}, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{}
			for _, f := range corpusFiles(t, "ham") {
				want[f] = "clean"
			}
			for name, class := range tc.bad {
				want[filepath.Join("..", "testdata", "spam", name)] = class
			}
			for f, class := range want {
				t.Run(filepath.Base(f), func(t *testing.T) {
					r := ClassifyFile(context.Background(), c, f)
					if r.Error != "" || r.Class != class {
						t.Errorf("got %q (score %v, reasons %q, error %q), want %s", r.Class, r.Score, r.Reasons, r.Error, class)
					}
				})
			}
		})
	}
}
