package filter

import (
	"math"
	"path"
	"strconv"
	"strings"
	"sync"

	"github.com/outguard/outguard/filter/content"
)

// RuleContentModel is the reason of the content model's share of the
// built-in score: "builtin:CONTENT_MODEL(6.2)", followed by the tokens that
// added most, each as "builtin:CONTENT[w:invoice](0.41)".
const RuleContentModel = "CONTENT_MODEL"

// ContentTokens is how many of the top contributing tokens a verdict's
// reasons name.
const ContentTokens = 5

// ContentOptions configure the content model of the built-in engine.
type ContentOptions struct {
	// Disabled turns the content model off: the engine then judges by
	// its rules and heuristics alone.
	Disabled bool
	// Learner scores messages: the seed model plus what the operator
	// taught. Nil uses the embedded seed model, without learning.
	Learner *content.Learner
	// SuspectThreshold is the total score from which a message that is
	// not blocked is in the suspect band. Zero takes the seed model's
	// cross-validated threshold.
	SuspectThreshold float64
}

var extractors = sync.Pool{New: func() any { return new(content.Extractor) }}

// ContentDoc returns what the content model reads of m: the subject, the
// body text, the link hosts and MIME-structure tokens. Exported for the
// training command, which must see messages exactly as the engine does.
func ContentDoc(m *Message) content.Doc {
	subject, _ := m.Header.Subject()
	d := content.Doc{Subject: subject, Body: m.BodyText, Registrable: registrable}
	if len(m.URLs) > 0 {
		d.Hosts = make([]string, 0, len(m.URLs))
		for _, u := range m.URLs {
			d.Hosts = append(d.Hosts, u.Host)
		}
	}
	d.Structure = structureTokens(m)
	return d
}

// structureTokens describe the MIME tree: the media types of the leaves,
// attachment extensions, and a few shapes that matter for spam (HTML
// without a text alternative, a body without text, a password form).
func structureTokens(m *Message) []string {
	out := make([]string, 0, 2*len(m.Parts)+3)
	plain, html, attach := false, false, 0
	for _, p := range m.Parts {
		out = append(out, "ct:"+p.ContentType)
		if p.IsAttachment() {
			attach++
			if ext := strings.TrimPrefix(path.Ext(strings.ToLower(p.Filename)), "."); ext != "" && len(ext) <= 8 {
				out = append(out, "ext:"+ext)
			}
			if p.HTML {
				out = append(out, "html-attachment")
			}
			continue
		}
		switch {
		case p.ContentType == "text/plain":
			plain = true
		case p.HTML:
			html = true
		}
		if p.PasswordForm {
			out = append(out, "password-form")
		}
	}
	if html && !plain {
		out = append(out, "html-only")
	}
	if strings.TrimSpace(m.BodyText) == "" {
		out = append(out, "no-text")
	} else if n := len(m.BodyText); n < 200 {
		out = append(out, "short-text")
	}
	out = append(out, "attachments:"+strconv.Itoa(min(attach, 3)))
	return out
}

// contentScore is the content model's judgement of one message.
type contentScore struct {
	score   float64
	version string
	reasons []string
}

// seedLearner serves the embedded seed to engines configured without a
// Learner.
var seedLearner = sync.OnceValues(func() (*content.Learner, error) {
	seed, err := content.Seed()
	if err != nil {
		return nil, err
	}
	return content.NewLearner(seed, content.LearnerOptions{})
})

// scoreContent runs the content model on m. explain asks for the top
// tokens, which costs a second, allocating pass over the message; Scan
// asks only when the score matters to the verdict.
func (b *Builtin) scoreContent(m *Message, explain func(float64) bool) contentScore {
	ex := extractors.Get().(*content.Extractor)
	defer extractors.Put(ex)
	doc := ContentDoc(m)
	f := ex.Extract(&doc)
	z, version := b.learner.Score(f)
	cs := contentScore{score: z, version: version}
	if !explain(z) {
		return cs
	}
	names := map[uint32]string{}
	named := &content.Extractor{Names: func(id uint32, n string) { names[id] = n }}
	f = named.Extract(&doc)
	for _, c := range b.learner.Explain(f, names, ContentTokens) {
		if c.Value <= 0 {
			break
		}
		cs.reasons = append(cs.reasons, Reason(BuiltinName, "CONTENT["+c.Name+"]", round2(c.Value)))
	}
	return cs
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }

// ExplainContent returns the content model's score of m and every feature
// that moved it, most spammy first, for `outguard classify --explain`.
// It returns ok false when the engine has no content model.
func (b *Builtin) ExplainContent(m *Message, k int) (score float64, version string, top []content.Contribution, ok bool) {
	if b.learner == nil {
		return 0, "", nil, false
	}
	doc := ContentDoc(m)
	names := map[uint32]string{}
	ex := &content.Extractor{Names: func(id uint32, n string) { names[id] = n }}
	f := ex.Extract(&doc)
	score, version = b.learner.Score(f)
	all := b.learner.Explain(f, names, len(f))
	if len(all) <= 2*k {
		return score, version, all, true
	}
	// The k that push most toward spam and the k that push most toward ham.
	top = append(append([]content.Contribution{}, all[:k]...), all[len(all)-k:]...)
	return score, version, top, true
}

// Learner returns the engine's content model, nil when it has none.
func (b *Builtin) Learner() *content.Learner { return b.learner }

// LearnMessage teaches the engine's content model that m is spam or ham
// and returns its score before and after.
func (b *Builtin) LearnMessage(m *Message, spam bool) (before, after float64, err error) {
	if b.learner == nil {
		return 0, 0, ErrNoContentModel
	}
	return LearnMessage(b.learner, m, spam)
}

// LearnMessage teaches l that m is spam or ham.
func LearnMessage(l *content.Learner, m *Message, spam bool) (before, after float64, err error) {
	doc := ContentDoc(m)
	var ex content.Extractor
	f := ex.Extract(&doc)
	return l.Learn(f, ex.Generic(), spam)
}
