package app

import (
	"context"
	"strings"

	"github.com/outguard/outguard/admin/ops"
	"github.com/outguard/outguard/filter"
)

// ruleExplainer recomputes, for the console's message view, what the
// built-in engine's rules named in a message's reasons match in its
// quarantined content, with the rules of the running configuration.
type ruleExplainer struct{ a *App }

func (x ruleExplainer) Explain(ctx context.Context, raw []byte, reasons []string) ([]ops.RuleMatch, error) {
	cl := x.a.pipeline.classifier.Load()
	if cl == nil {
		return nil, nil
	}
	var b *filter.Builtin
	for _, s := range cl.Engines() {
		if e, ok := s.Engine.(*filter.Builtin); ok {
			b = e
		}
	}
	if b == nil {
		return nil, nil
	}
	// reason of each rule name: "builtin:NAME(score)"
	byName := map[string]string{}
	var names []string
	for _, r := range reasons {
		rest, ok := strings.CutPrefix(r, filter.BuiltinName+":")
		if !ok {
			continue
		}
		name, _, ok := strings.Cut(rest, "(")
		if !ok || name == "" {
			continue
		}
		if _, dup := byName[name]; !dup {
			byName[name] = r
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	m, err := filter.ParseBytes(raw, cl.Limits())
	if err != nil {
		return nil, err
	}
	var out []ops.RuleMatch
	for _, rm := range b.Explain(m, names) {
		out = append(out, ops.RuleMatch{Reason: byName[rm.Name], Pattern: rm.Pattern, Regex: rm.Regex, Where: rm.Where,
			Before: rm.Before, Match: rm.Match, After: rm.After, Cut: rm.Cut})
	}
	return out, nil
}
