package filter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/emersion/go-message/mail"

	"github.com/outguard/outguard/filter/content"
)

// BuiltinName is the name of the built-in engine in reasons and metrics.
const BuiltinName = "builtin"

// Test strings recognised by every scanner. They are assembled at run time
// so that this source file does not itself look infected to a scanner.
var (
	gtube = []byte("XJS*C4JDBQADN1.NSBN3*2IDNEN*" + "GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X")
	eicar = []byte(`X5O!P%@AP[4\PZX54(P^)7CC)7}$` + "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*")
)

// Target is what a Rule looks at.
type Target int

const (
	// TargetBody matches the text of the inline text and HTML parts.
	TargetBody Target = iota
	// TargetHeader matches one header's decoded values, or every
	// "Name: value" line of the top-level header when Rule.Header is "".
	TargetHeader
	// TargetURL matches every URL found in the message.
	TargetURL
)

// ParseTarget parses "body", "header" or "url".
func ParseTarget(s string) (Target, error) {
	switch s {
	case "body":
		return TargetBody, nil
	case "header":
		return TargetHeader, nil
	case "url":
		return TargetURL, nil
	}
	return TargetBody, fmt.Errorf("unknown rule target %q: use header, body or url", s)
}

// Rule is an operator-defined content rule of the built-in engine. A rule
// fires at most once per message and adds its Score.
type Rule struct {
	// Name appears in reasons: "builtin:NAME(score)". Required.
	Name string
	// Target is what the rule looks at.
	Target Target
	// Header names the header for TargetHeader; "" means all headers.
	Header string
	// Regex makes Pattern a Go regular expression (RE2 syntax, matched as
	// written); otherwise Pattern is a case-insensitive substring.
	Regex bool
	// Pattern is the substring or expression. Required.
	Pattern string
	// Score is added when the rule fires; negative scores lower the total.
	Score float64
	// Category is Spam (the default; Clean counts as Spam) or Phishing: the
	// threshold the score counts towards. Every score also counts towards
	// the spam threshold.
	Category Class
}

// Heuristic names, as they appear in reasons and in
// BuiltinOptions.Scores and Disabled.
const (
	RuleGTUBE                 = "GTUBE"
	RuleEICAR                 = "EICAR"
	RuleExecutableAttachment  = "EXECUTABLE_ATTACHMENT"
	RuleMacroAttachment       = "MACRO_ATTACHMENT"
	RuleDoubleExtension       = "DOUBLE_EXTENSION"
	RuleArchivedExecutable    = "ARCHIVED_EXECUTABLE"
	RuleLinkProtectedMismatch = "LINK_PROTECTED_MISMATCH"
	RuleLinkMismatch          = "LINK_MISMATCH"
	RuleURLUserinfoDomain     = "URL_USERINFO_DOMAIN"
	RuleURLUserinfo           = "URL_USERINFO"
	RuleURLIPLiteral          = "URL_IP_LITERAL"
	RuleLookalikeDomain       = "LOOKALIKE_DOMAIN"
	RuleBrandInDomain         = "BRAND_IN_DOMAIN"
	RuleHTMLAttachPassword    = "HTML_ATTACHMENT_PASSWORD_FORM"
	RuleHTMLPasswordForm      = "HTML_PASSWORD_FORM"
	RuleFromNotAllowed        = "FROM_DOMAIN_NOT_ALLOWED"
	RuleEnvelopeMismatch      = "ENVELOPE_FROM_MISMATCH"
	RuleMassRecipients        = "MASS_RECIPIENTS"
	RuleObfuscatedWords       = "OBFUSCATED_WORDS"
)

// heuristic describes a built-in signal. A strong heuristic decides the
// class by itself; a weak one only adds its score.
type heuristic struct {
	score    float64
	strong   Class // Clean for weak heuristics
	category Class // for weak ones: Spam or Phishing
}

// DefaultScores returns the default score of every built-in heuristic.
func DefaultScores() map[string]float64 {
	out := map[string]float64{}
	for n, h := range defaultHeuristics {
		out[n] = h.score
	}
	return out
}

var defaultHeuristics = map[string]heuristic{
	RuleGTUBE:                 {score: 1000, strong: Spam},
	RuleEICAR:                 {score: 1000, strong: Virus},
	RuleExecutableAttachment:  {score: 100, strong: Virus},
	RuleMacroAttachment:       {score: 100, strong: Virus},
	RuleDoubleExtension:       {score: 100, strong: Virus},
	RuleArchivedExecutable:    {score: 100, strong: Virus},
	RuleLinkProtectedMismatch: {score: 100, strong: Phishing},
	RuleURLUserinfoDomain:     {score: 100, strong: Phishing},
	RuleLookalikeDomain:       {score: 100, strong: Phishing},
	RuleBrandInDomain:         {score: 100, strong: Phishing},
	RuleHTMLAttachPassword:    {score: 100, strong: Phishing},
	RuleLinkMismatch:          {score: 2.5, category: Phishing},
	RuleURLUserinfo:           {score: 2, category: Phishing},
	RuleURLIPLiteral:          {score: 2.5, category: Phishing},
	RuleHTMLPasswordForm:      {score: 4, category: Phishing},
	RuleFromNotAllowed:        {score: 4, category: Spam},
	RuleEnvelopeMismatch:      {score: 1, category: Spam},
	RuleMassRecipients:        {score: 3, category: Spam},
	RuleObfuscatedWords:       {score: 3, category: Spam},
}

// Defaults of BuiltinOptions.
const (
	DefaultSpamThreshold     = 5.0
	DefaultPhishingThreshold = 5.0
	DefaultMassRecipients    = 50
)

// BuiltinOptions configure the built-in engine. The zero value is the
// default configuration.
type BuiltinOptions struct {
	// SpamThreshold is the total score from which a message is spam.
	// Zero means DefaultSpamThreshold.
	SpamThreshold float64
	// PhishingThreshold is the score of phishing-category signals from
	// which a message is phishing. Zero means DefaultPhishingThreshold.
	PhishingThreshold float64
	// Rules are the operator's content rules.
	Rules []Rule
	// ProtectedDomains are domains (and through their first label, brands)
	// whose lookalikes mean phishing, e.g. "paypal.com". The domains
	// themselves and their subdomains are never flagged.
	ProtectedDomains []string
	// DangerousAttachmentClass is the class given by executables, scripts,
	// macro-enabled Office files, double extensions and archives holding
	// executables. Zero (Clean) means Virus.
	DangerousAttachmentClass Class
	// DangerousExtensions replaces the list of file name extensions (without
	// the dot, lower case) treated as executable. Nil means
	// DefaultDangerousExtensions.
	DangerousExtensions []string
	// MacroExtensions replaces the list of macro-enabled Office
	// extensions. Nil means DefaultMacroExtensions.
	MacroExtensions []string
	// MassRecipients is the number of envelope recipients from which
	// MASS_RECIPIENTS fires. Zero means DefaultMassRecipients; negative
	// turns the signal off.
	MassRecipients int
	// Scores overrides the scores of built-in heuristics by name (see
	// DefaultScores). The class of a strong heuristic does not depend on
	// its score.
	Scores map[string]float64
	// Disabled turns built-in heuristics off by name.
	Disabled []string
	// Content configures the content model; the zero value uses the
	// embedded seed model.
	Content ContentOptions
}

// Builtin is the engine that needs no other service. Make one with
// NewBuiltin; it is safe for concurrent use.
type Builtin struct {
	spamThreshold, phishThreshold float64
	rules                         []compiledRule
	ruleSet                       ruleSet
	heur                          map[string]heuristic
	protected                     []protectedDomain
	dangerous, macro              map[string]bool
	massRcpts                     int
	// learner is the content model, nil when it is disabled.
	learner          *content.Learner
	suspectThreshold float64
}

var _ Engine = (*Builtin)(nil)

type compiledRule struct {
	Rule
	re    *regexp.Regexp
	lower string
}

// NewBuiltin checks opts and compiles the rules.
func NewBuiltin(opts BuiltinOptions) (*Builtin, error) {
	b := &Builtin{
		spamThreshold:  opts.SpamThreshold,
		phishThreshold: opts.PhishingThreshold,
		heur:           map[string]heuristic{},
		massRcpts:      opts.MassRecipients,
	}
	if b.spamThreshold == 0 {
		b.spamThreshold = DefaultSpamThreshold
	}
	if b.phishThreshold == 0 {
		b.phishThreshold = DefaultPhishingThreshold
	}
	if b.massRcpts == 0 {
		b.massRcpts = DefaultMassRecipients
	}
	var errs []error
	attachClass := opts.DangerousAttachmentClass
	if attachClass == Clean {
		attachClass = Virus
	}
	for n, h := range defaultHeuristics {
		if h.strong == Virus && n != RuleEICAR {
			h.strong = attachClass
		}
		b.heur[n] = h
	}
	for n, s := range opts.Scores {
		h, ok := b.heur[n]
		if !ok {
			errs = append(errs, fmt.Errorf("scores: unknown heuristic %q", n))
			continue
		}
		h.score = s
		b.heur[n] = h
	}
	for _, n := range opts.Disabled {
		if _, ok := b.heur[n]; !ok {
			errs = append(errs, fmt.Errorf("disabled: unknown heuristic %q", n))
		}
		delete(b.heur, n)
	}
	names := map[string]bool{}
	for i, r := range opts.Rules {
		if r.Name == "" || r.Pattern == "" {
			errs = append(errs, fmt.Errorf("rules[%d]: name and pattern are required", i))
			continue
		}
		if names[r.Name] {
			errs = append(errs, fmt.Errorf("rules[%d]: duplicate name %q", i, r.Name))
		}
		names[r.Name] = true
		if r.Category == Clean {
			r.Category = Spam
		}
		if r.Category != Spam && r.Category != Phishing {
			errs = append(errs, fmt.Errorf("rules[%d] (%s): category must be spam or phishing", i, r.Name))
		}
		cr := compiledRule{Rule: r}
		if r.Regex {
			re, err := regexp.Compile(r.Pattern)
			if err != nil {
				errs = append(errs, fmt.Errorf("rules[%d] (%s): %w", i, r.Name, err))
				continue
			}
			cr.re = re
		} else {
			cr.lower = strings.ToLower(r.Pattern)
		}
		b.rules = append(b.rules, cr)
	}
	b.ruleSet = compileRuleSet(b.rules)
	for _, d := range opts.ProtectedDomains {
		p, err := newProtectedDomain(d)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		b.protected = append(b.protected, p)
	}
	if !opts.Content.Disabled {
		b.learner = opts.Content.Learner
		if b.learner == nil {
			l, err := seedLearner()
			if err != nil {
				errs = append(errs, fmt.Errorf("content model: %w", err))
			}
			b.learner = l
		}
		b.suspectThreshold = opts.Content.SuspectThreshold
		if b.suspectThreshold == 0 && b.learner != nil {
			b.suspectThreshold = float64(b.learner.Seed().Suspect)
		}
	}
	if b.suspectThreshold == 0 {
		b.suspectThreshold = b.spamThreshold
	}
	b.dangerous = extSet(opts.DangerousExtensions, DefaultDangerousExtensions)
	b.macro = extSet(opts.MacroExtensions, DefaultMacroExtensions)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("filter: builtin engine: %w", err)
	}
	return b, nil
}

func extSet(list, def []string) map[string]bool {
	if list == nil {
		list = def
	}
	m := make(map[string]bool, len(list))
	for _, e := range list {
		m[strings.ToLower(strings.TrimPrefix(e, "."))] = true
	}
	return m
}

// Name returns "builtin".
func (b *Builtin) Name() string { return BuiltinName }

// scan accumulates the signals of one message.
type scan struct {
	b       *Builtin
	fired   map[string]bool
	reasons []string
	total   float64
	phish   float64
	strong  Class
	// from is the parsed From header, once fromParsed.
	from       []*mail.Address
	fromErr    error
	fromParsed bool
}

// addressList parses a header's address list, once per scan for From,
// which both the link and the outbound checks read.
func (s *scan) addressList(m *Message, key string) ([]*mail.Address, error) {
	if key != "From" {
		return m.Header.AddressList(key)
	}
	if !s.fromParsed {
		s.from, s.fromErr = m.Header.AddressList("From")
		s.fromParsed = true
	}
	return s.from, s.fromErr
}

// fromDomain is Message.fromDomain with the From header parsed once per
// scan.
func (s *scan) fromDomain(m *Message) string {
	addrs, err := s.addressList(m, "From")
	if err != nil || len(addrs) == 0 {
		return domainOf(headerAddrFallback(m.Header.Get("From")))
	}
	return domainOf(addrs[0].Address)
}

// hit records a built-in heuristic once.
func (s *scan) hit(name string) {
	h, ok := s.b.heur[name]
	if !ok || s.fired[name] {
		return
	}
	s.fired[name] = true
	if h.strong == Clean && h.score == 0 {
		return
	}
	s.reasons = append(s.reasons, Reason(BuiltinName, name, h.score))
	s.total += h.score
	if h.strong > s.strong {
		s.strong = h.strong
	}
	if h.category == Phishing {
		s.phish += h.score
	}
}

// Scan runs every built-in check on m.
func (b *Builtin) Scan(ctx context.Context, m *Message) (Verdict, error) {
	s := &scan{b: b, fired: map[string]bool{}}
	s.testStrings(m)
	s.attachments(m)
	if err := ctx.Err(); err != nil {
		return Verdict{}, err
	}
	s.links(m)
	s.outbound(m)
	if err := ctx.Err(); err != nil {
		return Verdict{}, err
	}
	s.rules(m)
	s.obfuscation(m)
	spamAt, suspectAt := b.spamThreshold, b.suspectThreshold
	if t := m.Thresholds.Spam; t > 0 {
		spamAt = t
	}
	if t := m.Thresholds.Suspect; t > 0 {
		suspectAt = t
	}
	var model contentScore
	if b.learner != nil && s.strong == Clean {
		// A strong heuristic has decided the class already; otherwise the
		// model's score counts when it is positive: it is calibrated so
		// that 5 alone is spam, and a hammy text must not cancel a rule.
		rest := s.total
		model = b.scoreContent(m, func(z float64) bool { return rest+max(z, 0) >= min(suspectAt, spamAt) })
		if z := round2(max(model.score, 0)); z > 0 {
			s.total += z
			s.reasons = append(s.reasons, Reason(BuiltinName, RuleContentModel, z))
			s.reasons = append(s.reasons, model.reasons...)
		}
	}
	v := Verdict{Class: s.strong, Score: s.total, Reasons: s.reasons, ModelVersion: model.version}
	if v.Class < Spam && s.total >= spamAt {
		v.Class = Spam
	}
	if v.Class < Phishing && s.phish >= b.phishThreshold {
		v.Class = Phishing
	}
	switch {
	case v.Class > Clean:
		v.Band = BandSpam
	case s.total >= suspectAt:
		v.Band = BandSuspect
	}
	return v, ctx.Err()
}

// obfuscation fires when the subject or the body text hides a word from
// filters: an invisible character inside a Latin word, or Cyrillic or
// Greek look-alike letters mixed into one (docs/content-model.md).
func (s *scan) obfuscation(m *Message) {
	if _, ok := s.b.heur[RuleObfuscatedWords]; !ok {
		return
	}
	subject, _ := m.Header.Subject()
	if inv, mix := content.Obfuscations(subject); inv+mix > 0 {
		s.hit(RuleObfuscatedWords)
		return
	}
	if inv, mix := content.Obfuscations(m.BodyText); inv+mix > 0 {
		s.hit(RuleObfuscatedWords)
	}
}

func (s *scan) testStrings(m *Message) {
	for _, p := range m.Parts {
		if bytes.Contains(p.Data, gtube) {
			s.hit(RuleGTUBE)
		}
		if bytes.Contains(p.Data, eicar) {
			s.hit(RuleEICAR)
		}
		for _, e := range p.Archive {
			if bytes.Contains(e.Data, eicar) {
				s.hit(RuleEICAR)
			}
		}
	}
}

func (s *scan) rules(m *Message) {
	if len(s.b.rules) == 0 {
		return
	}
	fired := make([]bool, len(s.b.rules))
	s.b.ruleSet.body.match(1, func(int) string { return m.BodyText }, fired)
	s.b.ruleSet.url.match(len(m.URLs), func(i int) string { return m.URLs[i].Raw }, fired)
	for i := range s.b.rules {
		r := &s.b.rules[i]
		if r.Target == TargetHeader {
			fired[i] = r.matchHeader(m)
		}
		if fired[i] {
			s.reasons = append(s.reasons, Reason(BuiltinName, r.Name, r.Score))
			s.total += r.Score
			if r.Category == Phishing {
				s.phish += r.Score
			}
		}
	}
}

// matchHeader reports whether a header rule fires on m.
func (r *compiledRule) matchHeader(m *Message) bool {
	if r.Header != "" {
		fields := m.Header.FieldsByKey(r.Header)
		for fields.Next() {
			if v, _ := fields.Text(); r.match(v) {
				return true
			}
		}
		return false
	}
	fields := m.Header.Fields()
	for fields.Next() {
		if v, _ := fields.Text(); r.match(fields.Key() + ": " + v) {
			return true
		}
	}
	return false
}

func (r *compiledRule) match(s string) bool {
	if r.re != nil {
		return r.re.MatchString(s)
	}
	return strings.Contains(strings.ToLower(s), r.lower)
}

func (s *scan) outbound(m *Message) {
	from := s.fromDomain(m)
	if len(m.AllowedSenderDomains) > 0 && from != "" && !domainIn(from, m.AllowedSenderDomains) {
		s.hit(RuleFromNotAllowed)
	}
	if env := domainOf(m.MailFrom); env != "" && from != "" && registrable(env) != registrable(from) {
		s.hit(RuleEnvelopeMismatch)
	}
	if s.b.massRcpts > 0 && len(m.Rcpts) >= s.b.massRcpts {
		s.hit(RuleMassRecipients)
	}
}

// domainIn reports whether d equals one of list or is a subdomain of one.
func domainIn(d string, list []string) bool {
	for _, a := range list {
		a = strings.ToLower(strings.TrimSuffix(a, "."))
		if d == a || strings.HasSuffix(d, "."+a) {
			return true
		}
	}
	return false
}
