package ops

import (
	"context"
	"errors"

	"github.com/outguard/outguard/quarantine"
)

// RuleMatch is what one rule named in a message's reasons matches in the
// message: the message view's "why it matched".
type RuleMatch struct {
	// Reason is the reason it explains, as stored on the log record
	// ("builtin:NAME(score)").
	Reason string
	// Pattern is the rule's text; Regex tells whether it is a regular
	// expression (otherwise a case-insensitive substring).
	Pattern string
	Regex   bool
	// Where is what matched: "body", "URL" or a header field's name.
	Where string
	// Before, Match and After are a short excerpt of the message around
	// the match, as text (the front end escapes it); Cut is set when
	// the match is longer than Match.
	Before, Match, After string
	Cut                  bool
}

// Explainer finds what the rules named in reasons match in raw, with the
// rules in force now.
type Explainer interface {
	Explain(ctx context.Context, raw []byte, reasons []string) ([]RuleMatch, error)
}

// Explain tells, for rec (a record loaded by Message), what each rule
// named in its reasons matches in its quarantined content, recomputed
// with the rules in force now (nothing is stored at classification
// time: docs/config-filter.md, "Why it matched"). Nil and no error when there is nothing to
// explain: no explainer, no content kept, or no rule reason.
func (o *Ops) Explain(ctx context.Context, p Principal, rec *quarantine.Record) ([]RuleMatch, error) {
	if err := o.allow(p, "message", rec.ID, rec.Domain); err != nil {
		return nil, err
	}
	if o.opts.Explainer == nil || !rec.Quarantine.HasContent() || len(rec.Reasons) == 0 {
		return nil, nil
	}
	raw, err := o.opts.Store.Raw(rec.ID, actor(p))
	if errors.Is(err, quarantine.ErrGone) || errors.Is(err, quarantine.ErrNotQuarantined) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return o.opts.Explainer.Explain(ctx, raw, rec.Reasons)
}
