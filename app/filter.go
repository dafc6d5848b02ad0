package app

import (
	"fmt"
	"log/slog"

	"github.com/outguard/outguard/config"
	"github.com/outguard/outguard/filter"
	"github.com/outguard/outguard/filter/content"
)

// buildClassifier maps the filter section onto the engines; m (nil:
// unregistered) are the metrics shared by every classifier built on
// reload, and learner (nil: the embedded seed, without learning) the
// content model that outlives reloads. It returns nil when every engine is
// disabled.
func buildClassifier(cfg *config.Config, m *filter.Metrics, learner *content.Learner, log *slog.Logger) (*filter.Classifier, error) {
	fc := cfg.Filter
	var specs []filter.EngineSpec
	onErr := func(engine, s string) (filter.OnError, error) {
		if s == "" {
			return filter.ParseOnError("tempfail")
		}
		o, err := filter.ParseOnError(s)
		if err != nil {
			return o, fmt.Errorf("filter.engines.%s.on_error: %w", engine, err)
		}
		return o, nil
	}
	b := fc.Engines.Builtin
	if b.Enabled == nil || *b.Enabled {
		opts := filter.BuiltinOptions{
			SpamThreshold:       b.SpamThreshold,
			PhishingThreshold:   b.PhishingThreshold,
			ProtectedDomains:    b.ProtectedDomains,
			DangerousExtensions: b.DangerousExtensions,
			MacroExtensions:     b.MacroExtensions,
			MassRecipients:      b.MassRecipients,
			Scores:              b.Scores,
			Disabled:            b.Disabled,
			Content: filter.ContentOptions{
				Disabled:         !b.ContentModel.ModelEnabled(),
				Learner:          learner,
				SuspectThreshold: b.ContentModel.SuspectThreshold,
			},
		}
		if b.DangerousAttachmentClass != "" {
			c, err := filter.ParseClass(b.DangerousAttachmentClass)
			if err != nil {
				return nil, fmt.Errorf("filter.engines.builtin.dangerous_attachment_class: %w", err)
			}
			opts.DangerousAttachmentClass = c
		}
		for _, r := range b.Rules {
			t, err := filter.ParseTarget(r.Target)
			if err != nil {
				return nil, fmt.Errorf("filter rule %s: %w", r.Name, err)
			}
			rule := filter.Rule{Name: r.Name, Target: t, Header: r.Header, Regex: r.Match == "regex", Pattern: r.Pattern, Score: r.Score}
			if r.Category != "" {
				c, err := filter.ParseClass(r.Category)
				if err != nil {
					return nil, fmt.Errorf("filter rule %s: %w", r.Name, err)
				}
				rule.Category = c
			}
			opts.Rules = append(opts.Rules, rule)
		}
		eng, err := filter.NewBuiltin(opts)
		if err != nil {
			return nil, fmt.Errorf("filter.engines.builtin: %w", err)
		}
		oe, err := onErr("builtin", b.OnError)
		if err != nil {
			return nil, err
		}
		specs = append(specs, filter.EngineSpec{Engine: eng, Timeout: b.Timeout.D(), OnError: oe})
	}
	if r := fc.Engines.Rspamd; r.Enabled {
		eng, err := filter.NewRspamd(filter.RspamdOptions{
			URL: r.URL, Password: r.Password, SettingsID: r.SettingsID, SpamActions: r.SpamActions,
			SpamScore: r.SpamScore, PhishingSymbols: r.PhishingSymbols, VirusSymbols: r.VirusSymbols,
		})
		if err != nil {
			return nil, fmt.Errorf("filter.engines.rspamd: %w", err)
		}
		oe, err := onErr("rspamd", r.OnError)
		if err != nil {
			return nil, err
		}
		specs = append(specs, filter.EngineSpec{Engine: eng, Timeout: r.Timeout.D(), OnError: oe})
	}
	if c := fc.Engines.Clamd; c.Enabled {
		opts := filter.ClamdOptions{Address: c.Address, MaxStreamBytes: c.MaxStreamBytes}
		if c.OverLimit != "" {
			ol, err := filter.ParseOverLimit(c.OverLimit)
			if err != nil {
				return nil, fmt.Errorf("filter.engines.clamd.over_limit: %w", err)
			}
			opts.OverLimit = ol
		}
		eng, err := filter.NewClamd(opts)
		if err != nil {
			return nil, fmt.Errorf("filter.engines.clamd: %w", err)
		}
		oe, err := onErr("clamd", c.OnError)
		if err != nil {
			return nil, err
		}
		specs = append(specs, filter.EngineSpec{Engine: eng, Timeout: c.Timeout.D(), OnError: oe})
	}
	if len(specs) == 0 {
		// Every engine switched off: nothing is classified, every message
		// counts as clean. Allowed (an operator measuring or bypassing),
		// but said loudly.
		log.Warn("all classification engines are disabled: every message is treated as clean")
		return nil, nil
	}
	l := fc.Limits
	o := filter.Options{
		Engines: specs,
		Limits: filter.Limits{MaxDepth: l.MaxDepth, MaxParts: l.MaxParts, MaxPartBytes: l.MaxPartBytes,
			MaxDecodedBytes: l.MaxDecodedBytes, MaxArchiveEntries: l.MaxArchiveEntries, MaxArchiveBytes: l.MaxArchiveBytes,
			MaxArchiveDepth: l.MaxArchiveDepth, MaxURLs: l.MaxURLs},
		Logger:  log.With("component", "filter"),
		Metrics: m,
	}
	return filter.New(o)
}

// NewClassifier builds the classifier cfg configures, without metrics: for
// `outguard classify`, which runs the engines offline.
func NewClassifier(cfg *config.Config, log *slog.Logger) (*filter.Classifier, error) {
	return buildClassifier(cfg, nil, nil, log)
}
