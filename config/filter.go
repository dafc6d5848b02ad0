package config

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Filter configures classification: which engines judge each message and
// the limits of message parsing. See docs/config-filter.md.
type Filter struct {
	// Engines are the classification engines. They run concurrently on
	// every message and the most severe verdict wins.
	Engines FilterEngines `yaml:"engines"`
	// Limits bound the parsing of each message.
	Limits FilterLimits `yaml:"limits"`
}

// FilterEngines holds one section per engine.
type FilterEngines struct {
	Builtin BuiltinEngine `yaml:"builtin"`
	Rspamd  RspamdEngine  `yaml:"rspamd"`
	Clamd   ClamdEngine   `yaml:"clamd"`
}

// BuiltinEngine is the engine that needs no other service.
type BuiltinEngine struct {
	// Enabled turns the engine on; default true.
	Enabled *bool `yaml:"enabled"`
	// Timeout bounds one scan; default 10s.
	Timeout Duration `yaml:"timeout"`
	// OnError is tempfail or accept; default tempfail.
	OnError string `yaml:"on_error"`
	// SpamThreshold is the total score from which a message is spam;
	// default 5.
	SpamThreshold float64 `yaml:"spam_threshold"`
	// PhishingThreshold is the score of phishing-category signals from
	// which a message is phishing; default 5.
	PhishingThreshold float64 `yaml:"phishing_threshold"`
	// Rules are content rules on headers, body text and URLs.
	Rules []FilterRule `yaml:"rules"`
	// ProtectedDomains are domains (and brands, by their first label)
	// whose lookalikes mean phishing, e.g. paypal.com.
	ProtectedDomains []string `yaml:"protected_domains"`
	// DangerousAttachmentClass is virus, phishing or spam: the verdict for
	// executables, scripts, macro-enabled Office files, double extensions
	// and archives holding executables; default virus.
	DangerousAttachmentClass string `yaml:"dangerous_attachment_class"`
	// DangerousExtensions replaces the built-in list of executable
	// extensions (without dots) when set.
	DangerousExtensions []string `yaml:"dangerous_extensions"`
	// MacroExtensions replaces the built-in list of macro-enabled Office
	// extensions when set.
	MacroExtensions []string `yaml:"macro_extensions"`
	// MassRecipients is the number of envelope recipients from which the
	// MASS_RECIPIENTS signal fires; default 50.
	MassRecipients int `yaml:"mass_recipients"`
	// Scores override the scores of built-in signals by name.
	Scores map[string]float64 `yaml:"scores"`
	// Disabled turns built-in signals off by name.
	Disabled []string `yaml:"disabled"`
	// ContentModel configures the statistical content model.
	ContentModel ContentModel `yaml:"content_model"`
}

// ContentModel configures the built-in engine's content model: a seed
// model shipped in the binary plus what the operator's decisions taught
// it. See docs/content-model.md.
type ContentModel struct {
	// Enabled turns the model on; default true.
	Enabled *bool `yaml:"enabled"`
	// SuspectThreshold is the total built-in score from which a relayed
	// message is suspect (counted toward identity.thresholds.suspect);
	// 0 takes the seed model's cross-validated threshold.
	SuspectThreshold float64 `yaml:"suspect_threshold"`
	// Learn turns learning from operator actions on (release, confirm
	// spam, lock from a message, outguard learn); default true.
	Learn *bool `yaml:"learn"`
	// LearnFromFeedback learns spam from third-party complaints that
	// carry the original message and come from an allow-listed feedback
	// source (arf.feedback_sources); default true.
	LearnFromFeedback *bool `yaml:"learn_from_feedback"`
	// LearnFromRefusals learns spam from messages the next hop refused
	// permanently after DATA with 5.7.x; default false (a 5.7.x is not
	// always about the content).
	LearnFromRefusals bool `yaml:"learn_from_refusals"`
	// MaxOverlayFeatures bounds the learnt adjustments (8 bytes each in
	// the database, about 24 in memory); default 200000.
	MaxOverlayFeatures int `yaml:"max_overlay_features"`
}

// ModelEnabled reports whether the content model is on.
func (c *ContentModel) ModelEnabled() bool { return c.Enabled == nil || *c.Enabled }

// LearnEnabled reports whether operator actions teach the model.
func (c *ContentModel) LearnEnabled() bool { return c.ModelEnabled() && (c.Learn == nil || *c.Learn) }

// FilterRule is one content rule of the built-in engine.
type FilterRule struct {
	// Name appears in verdict reasons as builtin:NAME(score).
	Name string `yaml:"name"`
	// Target is header, body or url.
	Target string `yaml:"target"`
	// Header is the header name for target header; empty: all headers,
	// matched as "Name: value" lines.
	Header string `yaml:"header"`
	// Match is substring (case-insensitive, the default) or regex (RE2
	// syntax, as written; use (?i) for case-insensitivity).
	Match string `yaml:"match"`
	// Pattern is the substring or regular expression.
	Pattern string `yaml:"pattern"`
	// Score is added when the rule fires; may be negative.
	Score float64 `yaml:"score"`
	// Category is spam (default) or phishing: the threshold the score
	// also counts towards.
	Category string `yaml:"category"`
}

// RspamdEngine asks rspamd over its HTTP protocol.
type RspamdEngine struct {
	// Enabled turns the engine on; default false.
	Enabled bool `yaml:"enabled"`
	// URL of rspamd's normal worker; default http://127.0.0.1:11333.
	URL string `yaml:"url"`
	// Timeout bounds one scan; default 20s.
	Timeout Duration `yaml:"timeout"`
	// OnError is tempfail or accept; default tempfail.
	OnError string `yaml:"on_error"`
	// Password is sent in the Password header when set.
	Password string `yaml:"password"`
	// SettingsID is sent in the Settings-Id header when set.
	SettingsID string `yaml:"settings_id"`
	// SpamActions are the rspamd actions that mean spam; default [reject].
	SpamActions []string `yaml:"spam_actions"`
	// SpamScore, when above 0, makes a message spam from this rspamd
	// score on, whatever the action.
	SpamScore float64 `yaml:"spam_score"`
	// PhishingSymbols are symbol patterns ('*' wildcard) meaning phishing;
	// default: the phishing feeds' symbols (PHISHED_OPENPHISH,
	// PHISHED_PHISHTANK, PHISHED_GENERIC_SERVICE, HACKED_WP_PHISHING).
	PhishingSymbols []string `yaml:"phishing_symbols"`
	// VirusSymbols are symbol patterns meaning virus; default
	// [CLAM_VIRUS, "*_VIRUS"].
	VirusSymbols []string `yaml:"virus_symbols"`
}

// ClamdEngine streams messages to ClamAV's clamd.
type ClamdEngine struct {
	// Enabled turns the engine on; default false.
	Enabled bool `yaml:"enabled"`
	// Address is tcp:HOST:PORT or unix:/path; default tcp:127.0.0.1:3310.
	Address string `yaml:"address"`
	// Timeout bounds one scan; default 30s.
	Timeout Duration `yaml:"timeout"`
	// OnError is tempfail or accept; default tempfail.
	OnError string `yaml:"on_error"`
	// MaxStreamBytes should equal clamd's StreamMaxLength; default 25 MiB.
	MaxStreamBytes int64 `yaml:"max_stream_bytes"`
	// OverLimit is skip or tempfail: what happens to larger messages;
	// default skip.
	OverLimit string `yaml:"over_limit"`
}

// FilterLimits bound the parsing of one message. Zero takes the default.
// Content past a limit is not silently clean: the verdict is flagged
// partially scanned and the domain's unscannable policy applies.
type FilterLimits struct {
	// MaxDepth bounds multipart and attached-message nesting; default 16.
	MaxDepth int `yaml:"max_depth"`
	// MaxParts bounds the leaf parts walked; default 1000.
	MaxParts int `yaml:"max_parts"`
	// MaxPartBytes bounds the decoded bytes kept per part; default
	// limits.max_message_bytes (no part of an accepted message is cut).
	MaxPartBytes int64 `yaml:"max_part_bytes"`
	// MaxDecodedBytes bounds the decoded bytes kept per message; default
	// twice limits.max_message_bytes, at least 50 MiB.
	MaxDecodedBytes int64 `yaml:"max_decoded_bytes"`
	// MaxArchiveEntries bounds the entries listed per archive; default
	// 5000.
	MaxArchiveEntries int `yaml:"max_archive_entries"`
	// MaxArchiveBytes bounds the uncompressed bytes read per archive;
	// default 25 MiB.
	MaxArchiveBytes int64 `yaml:"max_archive_bytes"`
	// MaxArchiveDepth bounds archives nested in archives; default 8.
	MaxArchiveDepth int `yaml:"max_archive_depth"`
	// MaxURLs bounds the distinct URLs collected; default 1000.
	MaxURLs int `yaml:"max_urls"`
	// MaxConcurrent bounds the messages parsed and classified at once,
	// in all sessions; default 32. Others wait for a turn.
	MaxConcurrent int `yaml:"max_concurrent"`
}

// Defaults of the filter section.
const (
	DefaultBuiltinTimeout        = 10 * time.Second
	DefaultRspamdTimeout         = 20 * time.Second
	DefaultClamdTimeout          = 30 * time.Second
	DefaultRspamdURL             = "http://127.0.0.1:11333"
	DefaultClamdAddress          = "tcp:127.0.0.1:3310"
	DefaultClamdMaxStreamBytes   = 25 << 20
	DefaultSpamThreshold         = 5.0
	DefaultPhishingThreshold     = 5.0
	DefaultMassRecipients        = 50
	DefaultMaxOverlayFeatures    = 200_000
	DefaultFilterMaxDepth        = 16
	DefaultFilterMaxParts        = 1000
	DefaultFilterMaxDecodedBytes = 50 << 20
	DefaultFilterMaxArchiveEnts  = 5000
	DefaultFilterMaxArchiveBytes = 25 << 20
	DefaultFilterMaxArchiveDepth = 8
	DefaultFilterMaxURLs         = 1000
	DefaultFilterMaxConcurrent   = 32
)

// BuiltinSignals are the names of the built-in engine's signals, accepted
// in filter.engines.builtin.scores and disabled. Keep in step with the
// filter package's Rule* constants.
var BuiltinSignals = []string{
	"GTUBE", "EICAR", "EXECUTABLE_ATTACHMENT", "MACRO_ATTACHMENT", "DOUBLE_EXTENSION",
	"ARCHIVED_EXECUTABLE", "LINK_PROTECTED_MISMATCH", "LINK_MISMATCH", "URL_USERINFO_DOMAIN",
	"URL_USERINFO", "URL_IP_LITERAL", "LOOKALIKE_DOMAIN", "BRAND_IN_DOMAIN",
	"HTML_ATTACHMENT_PASSWORD_FORM", "HTML_PASSWORD_FORM", "FROM_DOMAIN_NOT_ALLOWED",
	"ENVELOPE_FROM_MISMATCH", "MASS_RECIPIENTS", "OBFUSCATED_WORDS",
}

// setDefaults fills in defaults; maxMessage is limits.max_message_bytes,
// from which the part and message decoding limits follow.
func (c *Filter) setDefaults(maxMessage int64) {
	b := &c.Engines.Builtin
	if b.Enabled == nil {
		on := true
		b.Enabled = &on
	}
	setDur(&b.Timeout, DefaultBuiltinTimeout)
	if b.OnError == "" {
		b.OnError = "tempfail"
	}
	if b.SpamThreshold == 0 {
		b.SpamThreshold = DefaultSpamThreshold
	}
	if b.PhishingThreshold == 0 {
		b.PhishingThreshold = DefaultPhishingThreshold
	}
	if b.DangerousAttachmentClass == "" {
		b.DangerousAttachmentClass = "virus"
	}
	setInt(&b.MassRecipients, DefaultMassRecipients)
	cm := &b.ContentModel
	on := true
	for _, p := range []**bool{&cm.Enabled, &cm.Learn, &cm.LearnFromFeedback} {
		if *p == nil {
			v := on
			*p = &v
		}
	}
	setInt(&cm.MaxOverlayFeatures, DefaultMaxOverlayFeatures)
	for i := range b.Rules {
		r := &b.Rules[i]
		if r.Match == "" {
			r.Match = "substring"
		}
		if r.Category == "" {
			r.Category = "spam"
		}
	}

	r := &c.Engines.Rspamd
	if r.URL == "" {
		r.URL = DefaultRspamdURL
	}
	setDur(&r.Timeout, DefaultRspamdTimeout)
	if r.OnError == "" {
		r.OnError = "tempfail"
	}
	if r.SpamActions == nil {
		r.SpamActions = []string{"reject"}
	}
	if r.PhishingSymbols == nil {
		r.PhishingSymbols = []string{"PHISHED_OPENPHISH", "PHISHED_PHISHTANK", "PHISHED_GENERIC_SERVICE", "HACKED_WP_PHISHING"}
	}
	if r.VirusSymbols == nil {
		r.VirusSymbols = []string{"CLAM_VIRUS", "*_VIRUS"}
	}

	k := &c.Engines.Clamd
	if k.Address == "" {
		k.Address = DefaultClamdAddress
	}
	setDur(&k.Timeout, DefaultClamdTimeout)
	if k.OnError == "" {
		k.OnError = "tempfail"
	}
	setInt64(&k.MaxStreamBytes, DefaultClamdMaxStreamBytes)
	if k.OverLimit == "" {
		k.OverLimit = "skip"
	}

	l := &c.Limits
	setInt(&l.MaxDepth, DefaultFilterMaxDepth)
	setInt(&l.MaxParts, DefaultFilterMaxParts)
	// No transfer encoding makes a part larger decoded, so with these no
	// part of a message the listeners accept is cut (charset conversion
	// of text aside).
	setInt64(&l.MaxPartBytes, maxMessage)
	setInt64(&l.MaxDecodedBytes, max(2*maxMessage, DefaultFilterMaxDecodedBytes))
	setInt(&l.MaxArchiveEntries, DefaultFilterMaxArchiveEnts)
	setInt64(&l.MaxArchiveBytes, DefaultFilterMaxArchiveBytes)
	setInt(&l.MaxArchiveDepth, DefaultFilterMaxArchiveDepth)
	setInt(&l.MaxURLs, DefaultFilterMaxURLs)
	setInt(&l.MaxConcurrent, DefaultFilterMaxConcurrent)
}

var rspamdActions = []string{"reject", "soft reject", "rewrite subject", "add header", "greylist", "no action"}

// validate returns nil or an error wrapping ErrInvalid that says how to fix
// the value.
func (c *Filter) validate(cfg *Config) error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...)))
	}
	onError := func(key, v string) {
		if v != "tempfail" && v != "accept" {
			bad("%s %q: use tempfail (defer the message when the engine fails) or accept (let it through and log)", key, v)
		}
	}
	positive := func(key string, v float64) {
		if v <= 0 {
			bad("%s %v: must be greater than 0", key, v)
		}
	}

	b := &c.Engines.Builtin
	const bk = "filter.engines.builtin"
	onError(bk+".on_error", b.OnError)
	positive(bk+".timeout", b.Timeout.D().Seconds())
	positive(bk+".spam_threshold", b.SpamThreshold)
	positive(bk+".phishing_threshold", b.PhishingThreshold)
	switch b.DangerousAttachmentClass {
	case "virus", "phishing", "spam":
	default:
		bad("%s.dangerous_attachment_class %q: use virus, phishing or spam", bk, b.DangerousAttachmentClass)
	}
	if t := b.ContentModel.SuspectThreshold; t < 0 || t > b.SpamThreshold {
		bad("%s.content_model.suspect_threshold %v: use 0 (the model's) or a score between 0 and spam_threshold (%v)", bk, t, b.SpamThreshold)
	}
	if n := b.ContentModel.MaxOverlayFeatures; n < 1000 || n > 10_000_000 {
		bad("%s.content_model.max_overlay_features %d: use a number between 1000 and 10000000", bk, n)
	}
	if b.MassRecipients < 1 {
		bad("%s.mass_recipients %d: must be at least 1; to turn the signal off, add MASS_RECIPIENTS to disabled", bk, b.MassRecipients)
	}
	names := map[string]bool{}
	for i, r := range b.Rules {
		where := fmt.Sprintf("%s.rules[%d] (%s)", bk, i, r.Name)
		if r.Name == "" {
			bad("%s: name is empty; it names the rule in verdict reasons", where)
		} else if !ruleNameRE.MatchString(r.Name) {
			bad("%s: name may hold only letters, digits, '_', '-' and '.'", where)
		}
		if names[r.Name] {
			bad("%s: duplicate rule name", where)
		}
		names[r.Name] = true
		switch r.Target {
		case "header", "body", "url":
		default:
			bad("%s: target %q: use header, body or url", where, r.Target)
		}
		if r.Header != "" && r.Target != "header" {
			bad("%s: header is only meaningful with target: header", where)
		}
		if r.Pattern == "" {
			bad("%s: pattern is empty", where)
		}
		switch r.Match {
		case "substring":
		case "regex":
			if _, err := regexp.Compile(r.Pattern); err != nil {
				bad("%s: pattern is not a valid regular expression (RE2 syntax): %v", where, err)
			}
		default:
			bad("%s: match %q: use substring or regex", where, r.Match)
		}
		if r.Category != "spam" && r.Category != "phishing" {
			bad("%s: category %q: use spam or phishing", where, r.Category)
		}
	}
	for _, d := range b.ProtectedDomains {
		if !strings.Contains(strings.Trim(d, "."), ".") || strings.ContainsAny(d, "@/ \t:") {
			bad("%s.protected_domains: %q is not a domain name like paypal.com", bk, d)
		}
	}
	for _, list := range []struct {
		key  string
		exts []string
	}{{"dangerous_extensions", b.DangerousExtensions}, {"macro_extensions", b.MacroExtensions}} {
		for _, e := range list.exts {
			if e == "" || strings.ContainsAny(e, "/\\ \t") {
				bad("%s.%s: %q is not a file name extension like exe", bk, list.key, e)
			}
		}
	}
	for n := range b.Scores {
		if !slices.Contains(BuiltinSignals, n) {
			bad("%s.scores: unknown signal %q; known: %s", bk, n, strings.Join(BuiltinSignals, ", "))
		}
	}
	for _, n := range b.Disabled {
		if !slices.Contains(BuiltinSignals, n) {
			bad("%s.disabled: unknown signal %q; known: %s", bk, n, strings.Join(BuiltinSignals, ", "))
		}
	}

	r := &c.Engines.Rspamd
	const rk = "filter.engines.rspamd"
	if r.Enabled {
		if !strings.HasPrefix(r.URL, "http://") && !strings.HasPrefix(r.URL, "https://") {
			bad("%s.url %q: use the normal worker's URL, e.g. %s", rk, r.URL, DefaultRspamdURL)
		}
	}
	onError(rk+".on_error", r.OnError)
	positive(rk+".timeout", r.Timeout.D().Seconds())
	for _, a := range r.SpamActions {
		if !slices.Contains(rspamdActions, a) {
			bad("%s.spam_actions: %q is not an rspamd action; use %s", rk, a, strings.Join(rspamdActions, ", "))
		}
	}
	if r.SpamScore < 0 {
		bad("%s.spam_score %v: must not be negative (0 turns it off)", rk, r.SpamScore)
	}
	for _, list := range []struct {
		key  string
		syms []string
	}{{"phishing_symbols", r.PhishingSymbols}, {"virus_symbols", r.VirusSymbols}} {
		for _, s := range list.syms {
			if s == "" || strings.ContainsAny(s, " \t[]\\?") {
				bad("%s.%s: %q is not a symbol name or pattern like PHISHED_*", rk, list.key, s)
			}
		}
	}

	k := &c.Engines.Clamd
	const kk = "filter.engines.clamd"
	if k.Enabled {
		if msg := clamdAddressProblem(k.Address); msg != "" {
			bad("%s.address %q: %s", kk, k.Address, msg)
		}
	}
	onError(kk+".on_error", k.OnError)
	positive(kk+".timeout", k.Timeout.D().Seconds())
	if k.MaxStreamBytes < 1 {
		bad("%s.max_stream_bytes %d: must be positive; set it to clamd's StreamMaxLength", kk, k.MaxStreamBytes)
	}
	if k.OverLimit != "skip" && k.OverLimit != "tempfail" {
		bad("%s.over_limit %q: use skip (relay unscanned by clamd) or tempfail", kk, k.OverLimit)
	}

	l := c.Limits
	const lk = "filter.limits"
	if l.MaxDepth < 1 || l.MaxParts < 1 || l.MaxPartBytes < 1 || l.MaxDecodedBytes < 1 ||
		l.MaxArchiveEntries < 1 || l.MaxArchiveBytes < 1 || l.MaxArchiveDepth < 1 || l.MaxURLs < 1 || l.MaxConcurrent < 1 {
		bad("%s: every limit must be positive (leave a key out for its default)", lk)
	}
	if l.MaxPartBytes > l.MaxDecodedBytes {
		bad("%s.max_part_bytes %d exceeds max_decoded_bytes %d", lk, l.MaxPartBytes, l.MaxDecodedBytes)
	}
	return errors.Join(errs...)
}

var ruleNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

func clamdAddressProblem(a string) string {
	switch {
	case strings.HasPrefix(a, "tcp:"):
		if _, _, err := net.SplitHostPort(strings.TrimPrefix(a, "tcp:")); err != nil {
			return "use tcp:HOST:PORT, e.g. " + DefaultClamdAddress
		}
		return ""
	case strings.HasPrefix(a, "unix:"):
		if !strings.HasPrefix(strings.TrimPrefix(a, "unix:"), "/") {
			return "use unix:/absolute/path/to/clamd.ctl"
		}
		return ""
	}
	return "use tcp:HOST:PORT or unix:/path/to/clamd.ctl"
}

// resolvePaths makes relative file paths in this section absolute. The
// filter section holds no file paths (clamd unix sockets must be
// absolute).
func (c *Filter) resolvePaths(abs func(*string)) {}
