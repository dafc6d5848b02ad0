package app

import (
	"fmt"
	"strings"
	"time"

	"github.com/outguard/outguard/config"
	"github.com/outguard/outguard/filter"
	"github.com/outguard/outguard/identity"
)

// policyState is the per-user policy compiled from one configuration; the
// pipeline swaps it atomically on reload.
type policyState struct {
	users       map[string]*userPolicy
	traceHeader string
	traceKey    []byte
	// abuse addresses: user over domain over global.
	globalAbuse string
	// feedback addresses (lower case) outguard never reports mail to.
	feedbackAddrs []string
}

// userPolicy is one outgoing user's resolved policy.
type userPolicy struct {
	domain               string
	rules                *identity.Rules
	requireIdentity      bool
	stripIdentity        bool
	policy               identity.Policy
	allowedSenderDomains []string
	abuseAddress         string
	// maxRecipients and maxMessageBytes are the user's own limits; 0
	// leaves the global ones.
	maxRecipients   int
	maxMessageBytes int64
	// thresholds are the built-in engine's score thresholds for this
	// user's mail (zero fields: the engine's).
	thresholds filter.Thresholds
	// unscannable says what happens to clean mail with content the
	// engines could not see.
	unscannable filter.UnscannablePolicy
	// replies are the refusal texts of the user's domain.
	replies *replyTexts
}

// fallbackUser applies to a user the configuration no longer has (removed
// by a reload while a session was open): identity by envelope sender,
// nothing automatic.
var fallbackUser = func() *userPolicy {
	r, _ := identity.NewRules([]identity.RuleSpec{{Kind: identity.RuleEnvelopeSender}}, identity.RulesOptions{})
	return &userPolicy{rules: r, policy: identity.DefaultPolicy(), replies: defaultReplies}
}()

func (s *policyState) user(name string) *userPolicy {
	if up, ok := s.users[name]; ok {
		return up
	}
	return fallbackUser
}

func buildPolicyState(cfg *config.Config) (*policyState, error) {
	st := &policyState{users: map[string]*userPolicy{}, traceHeader: cfg.Identity.TraceHeader, globalAbuse: cfg.ARF.AbuseAddress}
	if st.traceHeader != "" {
		k, err := cfg.Identity.TraceKeyBytes()
		if err != nil {
			return nil, err
		}
		st.traceKey = k
	}
	if a := cfg.ARF.FeedbackAddress; a != "" {
		st.feedbackAddrs = append(st.feedbackAddrs, strings.ToLower(a))
	}
	base := identity.Resolve(identity.DefaultThresholds(), thresholdOverrides(&cfg.Identity.Thresholds))
	lockDuration := identity.DefaultPolicy().LockDuration
	if cfg.Identity.LockDuration != nil {
		lockDuration = cfg.Identity.LockDuration.D()
	}
	escalate := identity.DefaultPolicy().EscalateAfter
	if cfg.Identity.EscalateAfter != nil {
		escalate = *cfg.Identity.EscalateAfter
	}
	for i := range cfg.Domains {
		d := &cfg.Domains[i]
		replies, err := newReplyTexts(cfg.Replies.Merge(d.Replies), d.Name, cfg.Hostname)
		if err != nil {
			return nil, fmt.Errorf("domain %s: %w", d.Name, err)
		}
		for j := range d.Users {
			u := &d.Users[j]
			rules := u.IdentityRules
			if len(rules) == 0 {
				rules = d.IdentityRules
			}
			if len(rules) == 0 {
				rules = []config.IdentityRule{{EnvelopeSender: true}}
			}
			specs := make([]identity.RuleSpec, 0, len(rules))
			for _, r := range rules {
				spec, err := ruleSpec(r)
				if err != nil {
					return nil, fmt.Errorf("user %s: %w", u.Name, err)
				}
				specs = append(specs, spec)
			}
			compiled, err := identity.NewRules(specs, identity.RulesOptions{MaxLength: cfg.Identity.MaxLength})
			if err != nil {
				return nil, fmt.Errorf("user %s: %w", u.Name, err)
			}
			up := &userPolicy{
				domain:          d.Name,
				rules:           compiled,
				requireIdentity: pick(u.RequireIdentity, d.RequireIdentity, false),
				stripIdentity:   pick(u.StripIdentityHeader, d.StripIdentityHeader, false),
				policy: identity.Policy{
					Auto:          pick(u.LockIdentitiesAutomatically, d.LockIdentitiesAutomatically, false),
					Monitor:       pick(u.Monitor, d.Monitor, cfg.Identity.Monitor),
					Thresholds:    identity.Resolve(base, thresholdOverrides(d.Thresholds), thresholdOverrides(u.Thresholds)),
					LockDuration:  lockDuration,
					EscalateAfter: escalate,
				},
				allowedSenderDomains: u.AllowedSenderDomains,
				maxRecipients:        firstPositive(u.MaxRecipients, d.MaxRecipients),
				maxMessageBytes:      int64(firstPositive(int(u.MaxMessageBytes), int(d.MaxMessageBytes))),
				abuseAddress:         firstNonEmpty(u.AbuseAddress, d.AbuseAddress, cfg.ARF.AbuseAddress),
				replies:              replies,
			}
			for _, c := range []*config.Classification{d.Classification, u.Classification} {
				if c == nil {
					continue
				}
				if c.SpamThreshold > 0 {
					up.thresholds.Spam = c.SpamThreshold
				}
				if c.SuspectThreshold > 0 {
					up.thresholds.Suspect = c.SuspectThreshold
				}
			}
			un, err := filter.ParseUnscannablePolicy(firstNonEmpty(u.Unscannable, d.Unscannable))
			if err != nil {
				return nil, fmt.Errorf("user %s: %w", u.Name, err)
			}
			up.unscannable = un
			if len(up.allowedSenderDomains) == 0 {
				up.allowedSenderDomains = d.AllowedSenderDomains
			}
			st.users[u.Name] = up
		}
	}
	return st, nil
}

func ruleSpec(r config.IdentityRule) (identity.RuleSpec, error) {
	switch {
	case r.Header != "":
		occ, err := identity.ParseOccurrence(r.Occurrence)
		return identity.RuleSpec{Kind: identity.RuleHeader, Header: r.Header, Occurrence: occ, Regex: r.Regex}, err
	case r.AuthUser:
		return identity.RuleSpec{Kind: identity.RuleAuthUser, Regex: r.Regex}, nil
	}
	return identity.RuleSpec{Kind: identity.RuleEnvelopeSender, Regex: r.Regex}, nil
}

func pick(user, domain *bool, def bool) bool {
	if user != nil {
		return *user
	}
	if domain != nil {
		return *domain
	}
	return def
}

func firstPositive(v ...int) int {
	for _, n := range v {
		if n > 0 {
			return n
		}
	}
	return 0
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// thresholdOverrides maps one configuration layer onto identity's.
func thresholdOverrides(t *config.Thresholds) *identity.ThresholdOverrides {
	if t == nil {
		return nil
	}
	o := &identity.ThresholdOverrides{Window: dur(t.Window)}
	set := func(c identity.Counter, n *int, w *config.Duration) {
		o.Count[c] = n
		o.CounterWindow[c] = dur(w)
	}
	set(identity.CounterSpam, t.Spam, t.SpamWindow)
	set(identity.CounterPhishing, t.Phishing, t.PhishingWindow)
	set(identity.CounterVirus, t.Virus, t.VirusWindow)
	set(identity.CounterComplaints, t.Complaints, t.ComplaintsWindow)
	set(identity.CounterMessages, t.Messages, t.MessagesWindow)
	set(identity.CounterRecipients, t.Recipients, t.RecipientsWindow)
	set(identity.CounterSuspect, t.Suspect, t.SuspectWindow)
	set(identity.CounterRefused, t.Refused, t.RefusedWindow)
	set(identity.CounterRefusedPolicy, t.RefusedPolicy, t.RefusedPolicyWindow)
	set(identity.CounterRefusedUnknown, t.RefusedUnknown, t.RefusedUnknownWindow)
	set(identity.CounterRefusedOther, t.RefusedOther, t.RefusedOtherWindow)
	set(identity.CounterRefusedAfterData, t.RefusedAfterData, t.RefusedAfterDataWindow)
	if t.RefusedShare != nil {
		share := *t.RefusedShare / 100
		o.RefusedShare = &share
	}
	return o
}

func dur(d *config.Duration) *time.Duration {
	if d == nil {
		return nil
	}
	v := d.D()
	return &v
}
