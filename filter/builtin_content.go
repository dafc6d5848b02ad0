package filter

import (
	"math"
	"path"
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

// scratch is the per-message working memory of the content model, pooled
// so that scoring a message allocates nothing.
type scratch struct {
	ex  content.Extractor
	doc content.Doc
	// regs remembers the registrable domain of each link host of the
	// message: links share a few hosts, and the public suffix lookup
	// allocates (it tries the name as an IP address first).
	regs map[string]string
	// registrable is sc.cachedRegistrable, bound once.
	registrable func(string) string
}

var scratches = sync.Pool{New: func() any {
	sc := &scratch{regs: map[string]string{}}
	sc.registrable = sc.cachedRegistrable
	return sc
}}

func (sc *scratch) cachedRegistrable(host string) string {
	if r, ok := sc.regs[host]; ok {
		return r
	}
	r := registrable(host)
	sc.regs[host] = r
	return r
}

// ContentDoc returns what the content model reads of m: the subject, the
// body text, the link hosts and MIME-structure tokens. Exported for the
// training command, which must see messages exactly as the engine does.
func ContentDoc(m *Message) content.Doc {
	var d content.Doc
	fillContentDoc(&d, m)
	return d
}

// fillContentDoc makes d ContentDoc(m), reusing d's slices.
func fillContentDoc(d *content.Doc, m *Message) {
	subject, _ := m.Header.Subject()
	d.Subject, d.Body, d.Registrable = subject, m.BodyText, registrable
	d.Hosts = d.Hosts[:0]
	for _, u := range m.URLs {
		d.Hosts = append(d.Hosts, u.Host)
	}
	d.Structure = structureTokens(d.Structure[:0], m)
}

// attachmentCounts name the attachment-count token's values without
// formatting a number per message.
var attachmentCounts = [...]string{"0", "1", "2", "3"}

// structureTokens appends to out the tokens describing the MIME tree: the
// media types of the leaves, attachment extensions, and a few shapes that
// matter for spam (HTML without a text alternative, a body without text, a
// password form).
func structureTokens(out []content.Token, m *Message) []content.Token {
	plain, html, attach := false, false, 0
	for _, p := range m.Parts {
		out = append(out, content.Token{Kind: "ct", Value: p.ContentType})
		if p.IsAttachment() {
			attach++
			if ext := fileExt(p.Filename); ext != "" {
				out = append(out, content.Token{Kind: "ext", Value: ext})
			}
			if p.HTML {
				out = append(out, content.Token{Kind: "html-attachment"})
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
			out = append(out, content.Token{Kind: "password-form"})
		}
	}
	if html && !plain {
		out = append(out, content.Token{Kind: "html-only"})
	}
	if strings.TrimSpace(m.BodyText) == "" {
		out = append(out, content.Token{Kind: "no-text"})
	} else if len(m.BodyText) < 200 {
		out = append(out, content.Token{Kind: "short-text"})
	}
	return append(out, content.Token{Kind: "attachments", Value: attachmentCounts[min(attach, 3)]})
}

// fileExt returns the lower-case extension of a file name, without the
// dot, or "" when there is none or it is longer than 8 characters.
func fileExt(name string) string {
	ext := path.Ext(name)
	if len(ext) < 2 || len(ext) > 9 {
		return ""
	}
	return strings.ToLower(ext[1:])
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
	sc := scratches.Get().(*scratch)
	defer scratches.Put(sc)
	fillContentDoc(&sc.doc, m)
	// At most content.MaxHosts hosts per message are looked up.
	clear(sc.regs)
	sc.doc.Registrable = sc.registrable
	f := sc.ex.Extract(&sc.doc)
	z, version := b.learner.Score(f)
	cs := contentScore{score: z, version: version}
	if !explain(z) {
		return cs
	}
	names := map[uint32]string{}
	named := &content.Extractor{Names: func(id uint32, n string) { names[id] = n }}
	f = named.Extract(&sc.doc)
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

// LearnMessage teaches l that m is spam or ham.
func LearnMessage(l *content.Learner, m *Message, spam bool) (before, after float64, err error) {
	doc := ContentDoc(m)
	var ex content.Extractor
	f := ex.Extract(&doc)
	return l.Learn(f, ex.Generic(), spam)
}
