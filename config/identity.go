package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"
)

// Defaults and bounds of the identity section. They match the identity
// package's, which config does not import.
const (
	DefaultIdentityMaxLength     = 256
	MaxIdentityMaxLength         = 4096
	DefaultIdentityWindow        = 10 * time.Minute
	DefaultIdentitySpam          = 5
	DefaultIdentitySuspect       = 10
	DefaultIdentityPhishing      = 2
	DefaultIdentityVirus         = 1
	DefaultIdentityComplaints    = 3
	DefaultIdentityRefused       = 20
	DefaultIdentityRefusedShare  = 30 // percent
	DefaultIdentityRefusedAfter  = 3
	DefaultIdentityLockDuration  = time.Hour
	DefaultIdentityEscalateAfter = 3
	DefaultIdentityFlushInterval = 5 * time.Second
	MinTraceKeyLength            = 16
	MaxThresholdWindow           = 7 * 24 * time.Hour
	MaxEventThreshold            = 1000
	MaxVolumeThreshold           = 10_000_000
)

// Identity holds the global settings of identity extraction, locks and
// automatic locking. Per-domain and per-user overrides live in Policy. See
// docs/config-identity.md.
type Identity struct {
	// TraceHeader, if set, names a header added to every relayed message
	// carrying an opaque token (a keyed HMAC of the log id), so that
	// complaints about the message can be attributed without revealing
	// the identity, e.g. "X-Outguard-Trace". Empty: no trace header.
	TraceHeader string `yaml:"trace_header"`
	// TraceKey is the HMAC key of the trace token, at least 16 bytes.
	// Required (or TraceKeyFile) when TraceHeader is set. Changing it makes
	// the tokens of earlier mail unattributable.
	TraceKey string `yaml:"trace_key"`
	// TraceKeyFile reads the key from a file instead (surrounding
	// whitespace trimmed); relative to the configuration file.
	TraceKeyFile string `yaml:"trace_key_file"`
	// MaxLength is the longest identity in bytes; a longer value yields no
	// identity rather than a truncated one. Default 256.
	MaxLength int `yaml:"max_length"`
	// Thresholds are the global automatic-locking thresholds; domains and
	// users override them field by field.
	Thresholds Thresholds `yaml:"thresholds"`
	// LockDuration is how long an automatic lock lasts; "0" makes
	// automatic locks permanent. Default 1h.
	LockDuration *Duration `yaml:"lock_duration"`
	// EscalateAfter makes the next automatic lock of an identity permanent
	// once this many of its automatic locks have ended (expired or been
	// unlocked); 0 never escalates. Default 3.
	EscalateAfter *int `yaml:"escalate_after"`
	// Monitor is the global default of monitor mode: count and record
	// "would have locked", never lock automatically. Domains and users
	// override it with monitor.
	Monitor bool `yaml:"monitor"`
	// FlushInterval is how often automatic-locking windows are written to
	// the database (and expired locks settled); a crash loses at most this
	// much counting. Default 5s.
	FlushInterval Duration `yaml:"flush_interval"`
	// Baseline compares each identity's sending with its own history
	// (docs/baseline.md).
	Baseline Baseline `yaml:"baseline"`
	// Campaigns finds the same content sent by many identities
	// (docs/campaigns.md).
	Campaigns Campaigns `yaml:"campaigns"`
}

// IdentityRule is one step of identity extraction: exactly one of Header,
// AuthUser or EnvelopeSender is set.
type IdentityRule struct {
	// Header takes this header field's value.
	Header string `yaml:"header"`
	// Occurrence says which occurrence of Header counts when the header
	// block holds several: "first" (topmost), "last" (bottommost) or
	// "only" (every occurrence must carry the same value, else no
	// identity). Default "only". See docs/config-identity.md.
	Occurrence string `yaml:"occurrence"`
	// Regex, optional, must have exactly one capture group: the identity
	// is what it captures from the value (RE2 syntax, unanchored).
	Regex string `yaml:"regex"`
	// AuthUser takes the SMTP AUTH name.
	AuthUser bool `yaml:"auth_user"`
	// EnvelopeSender takes the envelope sender (MAIL FROM address).
	EnvelopeSender bool `yaml:"envelope_sender"`
}

// check returns "" or what is wrong with the rule and how to fix it.
func (r IdentityRule) check() string {
	n := 0
	if r.Header != "" {
		n++
	}
	if r.AuthUser {
		n++
	}
	if r.EnvelopeSender {
		n++
	}
	if n != 1 {
		return "set exactly one of header: NAME, auth_user: true, envelope_sender: true (use one rule per source, in order)"
	}
	if r.Header != "" && !validFieldName(r.Header) {
		return fmt.Sprintf("header %q is not a header field name (printable ASCII without spaces or colon, e.g. X-AuthUser)", r.Header)
	}
	switch r.Occurrence {
	case "", "first", "last", "only":
	default:
		return fmt.Sprintf("occurrence %q: use first (the MTA adds its header at the top), last (at the bottom) or only (default: different values give no identity)", r.Occurrence)
	}
	if r.Occurrence != "" && r.Header == "" {
		return "occurrence applies to header rules only; remove it from this rule"
	}
	if r.Regex != "" {
		re, err := regexp.Compile(r.Regex)
		if err != nil {
			return fmt.Sprintf("regex %q does not compile (%v); use RE2 syntax", r.Regex, err)
		}
		if re.NumSubexp() != 1 {
			return fmt.Sprintf("regex %q has %d capture groups; use exactly one around the identity, and (?:...) for other groups", r.Regex, re.NumSubexp())
		}
	}
	return ""
}

func validFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 33 || c > 126 || c == ':' {
			return false
		}
	}
	return true
}

// Thresholds of automatic locking: an identity is locked when, within a
// counter's window, the counter reaches its threshold. A count of 0 turns
// the counter off. Each counter's window is its own *_window, else window.
// Nil fields inherit (user from domain, domain from global, global from the
// defaults).
type Thresholds struct {
	// Window is the sliding window of every counter without its own.
	// Default 10m.
	Window *Duration `yaml:"window"`
	// Spam counts messages classified spam. Default 5.
	Spam       *int      `yaml:"spam"`
	SpamWindow *Duration `yaml:"spam_window"`
	// Phishing counts messages classified phishing. Default 2.
	Phishing       *int      `yaml:"phishing"`
	PhishingWindow *Duration `yaml:"phishing_window"`
	// Virus counts messages classified virus. Default 1.
	Virus       *int      `yaml:"virus"`
	VirusWindow *Duration `yaml:"virus_window"`
	// Complaints counts attributed third-party feedback reports.
	// Default 3.
	Complaints       *int      `yaml:"complaints"`
	ComplaintsWindow *Duration `yaml:"complaints_window"`
	// Messages counts every message, whatever its verdict. Default 0
	// (off).
	Messages       *int      `yaml:"messages"`
	MessagesWindow *Duration `yaml:"messages_window"`
	// Recipients counts the recipients of every message. Default 0 (off).
	Recipients       *int      `yaml:"recipients"`
	RecipientsWindow *Duration `yaml:"recipients_window"`
	// Suspect counts relayed messages in the classifier's suspect band.
	// Default 10.
	Suspect       *int      `yaml:"suspect"`
	SuspectWindow *Duration `yaml:"suspect_window"`
	// Refused counts recipients the next hop refused permanently, and
	// locks when RefusedShare percent of the recipients tried in the
	// same window were refused too. Default 20 and 30.
	Refused       *int      `yaml:"refused"`
	RefusedWindow *Duration `yaml:"refused_window"`
	RefusedShare  *float64  `yaml:"refused_share"`
	// RefusedPolicy, RefusedUnknown and RefusedOther count the refused
	// recipients by class (5.7.x, 5.1.x, other). Default 0 (off: counted
	// with refused, for the evidence, but not locking on their own).
	RefusedPolicy        *int      `yaml:"refused_policy"`
	RefusedPolicyWindow  *Duration `yaml:"refused_policy_window"`
	RefusedUnknown       *int      `yaml:"refused_unknown"`
	RefusedUnknownWindow *Duration `yaml:"refused_unknown_window"`
	RefusedOther         *int      `yaml:"refused_other"`
	RefusedOtherWindow   *Duration `yaml:"refused_other_window"`
	// RefusedAfterData counts messages the next hop refused permanently
	// after DATA. Default 3.
	RefusedAfterData       *int      `yaml:"refused_after_data"`
	RefusedAfterDataWindow *Duration `yaml:"refused_after_data_window"`
}

// thresholdField is one counter of Thresholds, for uniform checks.
type thresholdField struct {
	name   string
	count  **int
	window **Duration
	def    int
	max    int
}

func (t *Thresholds) fields() []thresholdField {
	return []thresholdField{
		{"spam", &t.Spam, &t.SpamWindow, DefaultIdentitySpam, MaxEventThreshold},
		{"phishing", &t.Phishing, &t.PhishingWindow, DefaultIdentityPhishing, MaxEventThreshold},
		{"virus", &t.Virus, &t.VirusWindow, DefaultIdentityVirus, MaxEventThreshold},
		{"complaints", &t.Complaints, &t.ComplaintsWindow, DefaultIdentityComplaints, MaxEventThreshold},
		{"messages", &t.Messages, &t.MessagesWindow, 0, MaxVolumeThreshold},
		{"recipients", &t.Recipients, &t.RecipientsWindow, 0, MaxVolumeThreshold},
		{"suspect", &t.Suspect, &t.SuspectWindow, DefaultIdentitySuspect, MaxEventThreshold},
		{"refused", &t.Refused, &t.RefusedWindow, DefaultIdentityRefused, MaxVolumeThreshold},
		{"refused_policy", &t.RefusedPolicy, &t.RefusedPolicyWindow, 0, MaxVolumeThreshold},
		{"refused_unknown", &t.RefusedUnknown, &t.RefusedUnknownWindow, 0, MaxVolumeThreshold},
		{"refused_other", &t.RefusedOther, &t.RefusedOtherWindow, 0, MaxVolumeThreshold},
		{"refused_after_data", &t.RefusedAfterData, &t.RefusedAfterDataWindow, DefaultIdentityRefusedAfter, MaxEventThreshold},
	}
}

// check returns "" or what is wrong and how to fix it.
func (t *Thresholds) check() string {
	var msgs []string
	checkWindow := func(name string, w *Duration) {
		switch {
		case w == nil:
		case *w <= 0:
			msgs = append(msgs, fmt.Sprintf("%s must be a positive duration like \"10m\" (to turn a counter off set its count to 0)", name))
		case w.D() > MaxThresholdWindow:
			msgs = append(msgs, fmt.Sprintf("%s %s is longer than the maximum of 7d", name, w))
		}
	}
	checkWindow("window", t.Window)
	if s := t.RefusedShare; s != nil && (*s < 0 || *s > 100) {
		msgs = append(msgs, fmt.Sprintf("refused_share %v: use a percentage from 0 (the count alone decides) to 100", *s))
	}
	for _, f := range t.fields() {
		if c := *f.count; c != nil {
			if *c < 0 {
				msgs = append(msgs, fmt.Sprintf("%s %d is negative; use 0 to turn the counter off", f.name, *c))
			} else if *c > f.max {
				msgs = append(msgs, fmt.Sprintf("%s %d is above the maximum of %d", f.name, *c, f.max))
			}
		}
		checkWindow(f.name+"_window", *f.window)
	}
	return strings.Join(msgs, "; ")
}

func (c *Identity) setDefaults() {
	c.Baseline.setDefaults()
	c.Campaigns.setDefaults()
	if c.MaxLength == 0 {
		c.MaxLength = DefaultIdentityMaxLength
	}
	t := &c.Thresholds
	if t.Window == nil {
		w := Duration(DefaultIdentityWindow)
		t.Window = &w
	}
	for _, f := range t.fields() {
		if *f.count == nil {
			v := f.def
			*f.count = &v
		}
	}
	if t.RefusedShare == nil {
		v := float64(DefaultIdentityRefusedShare)
		t.RefusedShare = &v
	}
	if c.LockDuration == nil {
		d := Duration(DefaultIdentityLockDuration)
		c.LockDuration = &d
	}
	if c.EscalateAfter == nil {
		n := DefaultIdentityEscalateAfter
		c.EscalateAfter = &n
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = Duration(DefaultIdentityFlushInterval)
	}
}

func (c *Identity) validate(cfg *Config) error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: identity.%s", ErrInvalid, fmt.Sprintf(format, args...)))
	}
	if c.TraceHeader != "" && !validFieldName(c.TraceHeader) {
		bad("trace_header %q is not a header field name; use e.g. X-Outguard-Trace", c.TraceHeader)
	}
	if c.TraceKey != "" && c.TraceKeyFile != "" {
		bad("trace_key and trace_key_file are both set; keep one")
	}
	if c.TraceHeader != "" && c.TraceKey == "" && c.TraceKeyFile == "" {
		bad("trace_header is set without trace_key or trace_key_file; set a random secret of at least %d bytes (e.g. from `openssl rand -hex 32`)", MinTraceKeyLength)
	}
	if c.TraceKey != "" && len(c.TraceKey) < MinTraceKeyLength {
		bad("trace_key is %d bytes; use at least %d (e.g. from `openssl rand -hex 32`)", len(c.TraceKey), MinTraceKeyLength)
	}
	if c.MaxLength < 1 || c.MaxLength > MaxIdentityMaxLength {
		bad("max_length %d: use 1 to %d (default %d)", c.MaxLength, MaxIdentityMaxLength, DefaultIdentityMaxLength)
	}
	if msg := c.Thresholds.check(); msg != "" {
		bad("thresholds: %s", msg)
	}
	for _, msg := range c.Baseline.check() {
		bad("baseline.%s", msg)
	}
	for _, msg := range c.Campaigns.check() {
		bad("campaigns.%s", msg)
	}
	if c.LockDuration != nil && *c.LockDuration < 0 {
		bad("lock_duration %s is negative; use \"0\" for permanent automatic locks", c.LockDuration)
	}
	if c.EscalateAfter != nil && *c.EscalateAfter < 0 {
		bad("escalate_after %d is negative; use 0 to never escalate", *c.EscalateAfter)
	}
	if c.FlushInterval.D() < time.Second || c.FlushInterval.D() > 10*time.Minute {
		bad("flush_interval %s: use 1s to 10m (default 5s)", c.FlushInterval)
	}
	return errors.Join(errs...)
}

// resolvePaths makes relative file paths in this section absolute.
func (c *Identity) resolvePaths(abs func(*string)) {
	abs(&c.TraceKeyFile)
}

// TraceKeyBytes returns the trace key from trace_key or trace_key_file, or
// nil when neither is set. It reads the file each time it is called.
func (c *Identity) TraceKeyBytes() ([]byte, error) {
	if c.TraceKeyFile == "" {
		if c.TraceKey == "" {
			return nil, nil
		}
		return []byte(c.TraceKey), nil
	}
	f, err := os.Open(c.TraceKeyFile)
	if err != nil {
		return nil, fmt.Errorf("%w: identity.trace_key_file: %v", ErrInvalid, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 4097))
	if err != nil {
		return nil, fmt.Errorf("%w: identity.trace_key_file: %v", ErrInvalid, err)
	}
	if len(b) > 4096 {
		return nil, fmt.Errorf("%w: identity.trace_key_file %s is larger than 4096 bytes; is it the key?", ErrInvalid, c.TraceKeyFile)
	}
	key := []byte(strings.TrimSpace(string(b)))
	if len(key) < MinTraceKeyLength {
		return nil, fmt.Errorf("%w: identity.trace_key_file %s holds %d bytes; use at least %d (e.g. `openssl rand -hex 32 > FILE`)", ErrInvalid, c.TraceKeyFile, len(key), MinTraceKeyLength)
	}
	return key, nil
}
