package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/outguard/outguard/app"
	"github.com/outguard/outguard/config"
	"github.com/outguard/outguard/filter"
	"github.com/outguard/outguard/filter/content"
)

const classifyHelp = `Usage:
  outguard classify [--config FILE] [--json] [--explain [--top N]] MESSAGE.eml...

Runs the classification engines configured in FILE (the built-in engine,
and rspamd and clamd when they are enabled there) on each message file and
prints its class (clean, spam, phishing, virus), score, band (clean,
suspect or spam: blocked) and the reasons that decided it. No daemon and no
next hop are involved; use it to test rules and to answer "why was this
blocked".

Without --config only the built-in engine runs, with its default rules.
Offline, the built-in engine's content model is the seed shipped in the
binary, without what a daemon learnt ('outguard learn').

--explain also shows the content model at work: the model version, its
score of the message, and the N tokens (--top, default 10) that push that
score most toward spam and most toward ham. A token is a subject word
(s:invoice), a body word (w:invoice) or word pair (b:click here), a number
by its length (n:w5), a link host or domain (h:bit.ly, d:example.com), the
number of links (k:), or a piece of MIME structure (m:html-only); its value
is what it adds to the content model's score. The reasons name the strongest spam tokens too, as
builtin:CONTENT[w:invoice](0.41).

With --json, one JSON object per line and file, with the keys file, class,
score, reasons (a list of strings), band, model_version (when the content
model judged), partially_scanned (the limits past which content went
unscanned, when any; the text output says "partially scanned: ...") and error (set when the file could not be read or a scanner
failed). With --explain, tokens is added: a list of {"name", "value"},
sorted by value, the tokens toward spam first; empty when the content model
is off.

With more than one file, a progress bar runs on standard error while it is a
terminal, and a summary line ends the run there: "outguard classify: 120
files in 3.2s: 100 clean, 18 spam, 2 errors".

Exit status: 0 when every file was classified, 1 when any could not be, 2 on
bad usage.

Examples:
  outguard classify suspicious.eml
  outguard classify --explain --top 5 false-positive.eml
  outguard classify --config /etc/outguard/outguard.yaml --json quarantine/*.eml
  outguard classify --explain --json spam.eml | jq -r '.tokens[] | select(.value > 0) | .name'
`

// builtinOnly is the configuration used without --config.
const builtinOnly = `listeners: [{address: "127.0.0.1:0", tls: none, allow_insecure_auth: true}]
next_hop: {type: capture}
domains: [{name: classify.invalid, users: [{name: classify, networks: ["127.0.0.1/32"]}]}]
`

func runClassify(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("classify", classifyHelp, stderr)
	path := fs.String("config", "", "configuration `FILE` whose filter section to use")
	asJSON := fs.Bool("json", false, "one JSON object per line and file")
	explain := fs.Bool("explain", false, "show the content model's score and its top tokens toward spam and toward ham")
	top := fs.Int("top", 10, "with --explain, show `N` tokens each way (1 to 100)")
	if c := parseFlags(fs, args, stdout); c >= 0 {
		return c
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "outguard classify: give at least one MESSAGE file")
		return exitUsage
	}
	topSet := false
	fs.Visit(func(f *flag.Flag) { topSet = topSet || f.Name == "top" })
	if topSet && !*explain {
		return usageError(stderr, "classify", "--top is for --explain only")
	}
	if *top < 1 || *top > 100 {
		return usageError(stderr, "classify", "--top %d: use 1 to 100", *top)
	}
	var cfg *config.Config
	var err error
	if *path != "" {
		cfg, err = config.Load(*path)
	} else {
		cfg, err = config.Parse([]byte(builtinOnly))
	}
	if err != nil {
		fmt.Fprintf(stderr, "outguard classify: %v\n", err)
		return exitFailed
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cl, err := app.NewClassifier(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "outguard classify: %v\n", err)
		return exitFailed
	}
	if cl == nil {
		fmt.Fprintln(stderr, "outguard classify: every engine is disabled in the configuration")
		return exitFailed
	}
	builtin := builtinEngine(cl)
	code := exitOK
	prog := newProgress(stderr, "outguard classify", "files", fs.NArg())
	defer prog.finish()
	for _, f := range fs.Args() {
		res := filter.ClassifyFile(context.Background(), cl, f)
		if res.Error != "" {
			code = exitFailed
		}
		var ex explanation
		if *explain && res.Error == "" {
			if ex, err = explainFile(builtin, cl.Limits(), f, *top); err != nil {
				res.Error = err.Error()
				code = exitFailed
			}
		}
		prog.clear()
		printClassified(stdout, f, res, ex, *asJSON, *explain)
		if res.Error != "" {
			prog.step("errors")
		} else {
			prog.step(res.Class)
		}
	}
	return code
}

// printClassified writes one file's result: a JSON line, or the class,
// score, band and reasons (and with explain the content model's tokens).
func printClassified(stdout io.Writer, f string, res filter.FileResult, ex explanation, asJSON, explain bool) {
	if asJSON {
		if explain {
			writeJSON(stdout, explainedResult{FileResult: res, Tokens: ex.tokens()})
		} else {
			writeJSON(stdout, res)
		}
		return
	}
	if res.Error != "" {
		fmt.Fprintf(stdout, "%s: error: %s\n", f, res.Error)
		return
	}
	fmt.Fprintf(stdout, "%s: %s (score %.1f, band %s)\n", f, res.Class, res.Score, res.Band)
	for _, r := range res.Reasons {
		fmt.Fprintf(stdout, "  %s\n", r)
	}
	if len(res.Defects) > 0 {
		fmt.Fprintf(stdout, "  defects: %s\n", strings.Join(res.Defects, "; "))
	}
	if len(res.PartiallyScanned) > 0 {
		fmt.Fprintf(stdout, "  partially scanned: %s reached\n", strings.Join(res.PartiallyScanned, ", "))
	}
	if explain {
		ex.print(stdout)
	}
}

// builtinEngine returns the classifier's built-in engine, nil when the
// configuration turns it off.
func builtinEngine(cl *filter.Classifier) *filter.Builtin {
	for _, s := range cl.Engines() {
		if b, ok := s.Engine.(*filter.Builtin); ok {
			return b
		}
	}
	return nil
}

// explanation is the content model's view of one message.
type explanation struct {
	// on is false when there is no content model (the built-in engine or
	// its model is off).
	on      bool
	score   float64
	version string
	// spam and ham are the tokens pushing toward each, strongest first.
	spam, ham []content.Contribution
}

// explainFile parses path as ClassifyFile does and asks b's content model
// for its score and the k tokens that push it most each way.
func explainFile(b *filter.Builtin, lim filter.Limits, path string, k int) (explanation, error) {
	var ex explanation
	if b == nil {
		return ex, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return ex, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ex, err
	}
	m, err := filter.ParseMessage(f, st.Size(), lim)
	if err != nil {
		return ex, err
	}
	score, version, top, ok := b.ExplainContent(m, k)
	if !ok {
		return ex, nil
	}
	ex = explanation{on: true, score: score, version: version}
	// top is sorted by value, largest first: the spam side from the
	// front, the ham side from the back.
	for _, c := range top {
		if c.Value > 0 && len(ex.spam) < k {
			ex.spam = append(ex.spam, c)
		}
	}
	for i := len(top) - 1; i >= 0 && len(ex.ham) < k; i-- {
		if top[i].Value < 0 {
			ex.ham = append(ex.ham, top[i])
		}
	}
	return ex, nil
}

// tokenJSON is one token of `classify --explain --json`.
type tokenJSON struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
}

// explainedResult is one line of `classify --explain --json`.
type explainedResult struct {
	filter.FileResult
	Tokens []tokenJSON `json:"tokens"`
}

// tokens lists the spam side, then the ham side, sorted by value.
func (ex explanation) tokens() []tokenJSON {
	out := make([]tokenJSON, 0, len(ex.spam)+len(ex.ham))
	for _, c := range ex.spam {
		out = append(out, tokenJSON{Name: c.Name, Value: c.Value})
	}
	for i := len(ex.ham) - 1; i >= 0; i-- {
		out = append(out, tokenJSON{Name: ex.ham[i].Name, Value: ex.ham[i].Value})
	}
	return out
}

func (ex explanation) print(w io.Writer) {
	if !ex.on {
		fmt.Fprintln(w, "  content model: off")
		return
	}
	fmt.Fprintf(w, "  content model %s: score %.2f\n", ex.version, ex.score)
	for _, side := range []struct {
		name string
		list []content.Contribution
	}{{"spam", ex.spam}, {"ham", ex.ham}} {
		if len(side.list) == 0 {
			fmt.Fprintf(w, "  toward %s: none\n", side.name)
			continue
		}
		fmt.Fprintf(w, "  toward %s:\n", side.name)
		for _, c := range side.list {
			fmt.Fprintf(w, "    %+.2f  %s\n", c.Value, clean(c.Name, 80))
		}
	}
}
