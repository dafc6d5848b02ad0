package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Defaults of the arf section.
const (
	DefaultARFMaxOriginalBytes = 1 << 20
	DefaultARFRetryInitial     = 30 * time.Second
	DefaultARFRetryMax         = 30 * time.Minute
	DefaultARFMaxAge           = 5 * 24 * time.Hour
	DefaultARFParseMaxBytes    = 10 << 20
	DefaultARFIdentityHeader   = "X-AuthUser"
	DefaultARFRelayTimeout     = 2 * time.Minute
	DefaultFeedbackRetention   = 90 * 24 * time.Hour
	// LegacyFeedbackSourcesReporter names the reporter that
	// arf.feedback_sources (the older key) stands for.
	LegacyFeedbackSourcesReporter = "feedback_sources"
)

// ARF configures abuse reports out (one RFC 5965 report per quarantined
// message, through a durable outbox) and third-party feedback in.
type ARF struct {
	// Enabled turns outgoing reports on. Default true. Feedback in is
	// governed by FeedbackAddress and the listeners' feedback flag.
	Enabled *bool `yaml:"enabled"`
	// AbuseAddress receives the reports, unless a domain's or user's
	// abuse_address overrides it. Empty everywhere: no report is sent
	// (blocks are still quarantined and logged).
	AbuseAddress string `yaml:"abuse_address"`
	// From is the reports' From header address. Default
	// outguard@<hostname>. Reports are always sent with MAIL FROM:<>.
	From string `yaml:"from"`
	// FeedbackAddress is where mailbox providers send feedback reports
	// (complaints) about outguard's users; mail to it is parsed, never
	// filtered or reported. Empty: no feedback by SMTP.
	FeedbackAddress string `yaml:"feedback_address"`
	// MaxOriginalBytes: a blocked message larger than this is reported
	// with its header only (text/rfc822-headers) instead of in full.
	// Default 1 MiB.
	MaxOriginalBytes int `yaml:"max_original_bytes"`
	// Relay is where reports are sent.
	Relay ARFRelay `yaml:"relay"`
	// Retry is the backoff while the relay is unreachable or says 4xx.
	Retry ARFRetry `yaml:"retry"`
	// MaxAge is how long an undelivered report is retried before it
	// expires (it is then kept in the outbox's expired list and counted).
	// Default 5d.
	MaxAge Duration `yaml:"max_age"`
	// ParseMaxBytes caps the size of a feedback report read from SMTP,
	// HTTP or the CLI; larger ones are refused. Default 10 MiB.
	ParseMaxBytes int64 `yaml:"parse_max_bytes"`
	// IdentityHeader is the header of the complained-about message that
	// names the identity when neither the trace header nor the Message-ID
	// finds the transaction. Default X-AuthUser.
	IdentityHeader string `yaml:"identity_header"`
	// Reporters are the feedback loops whose complaints count toward
	// automatic locking and teach the content model. A report from no
	// listed reporter is stored and shown, never counted. Default: none.
	Reporters []ARFReporter `yaml:"reporters"`
	// FeedbackSources is the older form of Reporters: networks (CIDR or
	// addresses) of trusted feedback loops. It stands for one more
	// reporter, named "feedback_sources", with these networks.
	FeedbackSources []string `yaml:"feedback_sources"`
	// FeedbackRetention is how long received feedback reports (and what
	// de-duplicates them) are kept. Default 90d.
	FeedbackRetention Duration `yaml:"feedback_retention"`

	reporters []Reporter
}

// ARFReporter is one feedback loop allowed to complain (docs/config-arf.md).
type ARFReporter struct {
	// Name labels the reporter in stored reports, logs and the API.
	Name string `yaml:"name"`
	// Domains match the domain of the report's envelope sender or of its
	// From address (either); subdomains do not match.
	Domains []string `yaml:"domains"`
	// Networks match the SMTP client that delivered the report (CIDR or
	// addresses). Set with Domains, both must match.
	Networks []string `yaml:"networks"`
	// CountIdentityHeader makes this reporter's complaints count when they
	// are attributed only by the identity header of the original (not
	// found in the message log). Default false: recorded for review only.
	CountIdentityHeader bool `yaml:"count_identity_header"`
}

// Reporter is a validated ARFReporter.
type Reporter struct {
	Name                string
	Domains             []string // lower case, no trailing dot
	Networks            []netip.Prefix
	CountIdentityHeader bool
}

// FeedbackReporters returns the reporters, arf.feedback_sources included,
// as validation parsed them.
func (c *ARF) FeedbackReporters() []Reporter { return c.reporters }

// ARFRelay is the SMTP server reports are handed to.
type ARFRelay struct {
	// Address is host:port. Empty: the next hop (its address, TLS and
	// credentials), in which case the other relay keys must stay unset.
	Address string `yaml:"address"`
	// TLS is none, starttls (required), starttls_optional or implicit.
	// Default none.
	TLS string `yaml:"tls"`
	// ServerName overrides the name verified in the relay's certificate.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify disables certificate verification.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
	// Username and Password authenticate with AUTH PLAIN.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// Timeout bounds one delivery attempt. Default 2m.
	Timeout Duration `yaml:"timeout"`
}

// ARFRetry is an exponential backoff: Initial after the first failure,
// doubling up to Max.
type ARFRetry struct {
	Initial Duration `yaml:"initial"`
	Max     Duration `yaml:"max"`
}

// IsEnabled reports whether outgoing reports are on.
func (c *ARF) IsEnabled() bool { return c.Enabled == nil || *c.Enabled }

func (c *ARF) setDefaults() {
	if c.Enabled == nil {
		t := true
		c.Enabled = &t
	}
	setInt(&c.MaxOriginalBytes, DefaultARFMaxOriginalBytes)
	setDur(&c.Retry.Initial, DefaultARFRetryInitial)
	setDur(&c.Retry.Max, DefaultARFRetryMax)
	setDur(&c.MaxAge, DefaultARFMaxAge)
	setInt64(&c.ParseMaxBytes, DefaultARFParseMaxBytes)
	if c.IdentityHeader == "" {
		c.IdentityHeader = DefaultARFIdentityHeader
	}
	setDur(&c.Relay.Timeout, DefaultARFRelayTimeout)
	setDur(&c.FeedbackRetention, DefaultFeedbackRetention)
}

// parseNetwork reads a CIDR or a single address.
func parseNetwork(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		if a, aerr := netip.ParseAddr(s); aerr == nil {
			p, err = a.Prefix(a.BitLen())
		}
	}
	if err != nil {
		return netip.Prefix{}, err
	}
	return p.Masked(), nil
}

// validateReporters fills c.reporters from Reporters and FeedbackSources.
func (c *ARF) validateReporters(bad func(string, ...any)) {
	c.reporters = nil
	names := map[string]bool{}
	for i, r := range c.Reporters {
		where := fmt.Sprintf("arf.reporters[%d]", i)
		if r.Name != "" {
			where = fmt.Sprintf("arf.reporters %q", r.Name)
		}
		v := Reporter{Name: r.Name, CountIdentityHeader: r.CountIdentityHeader}
		switch {
		case r.Name == "":
			bad("%s: give it a name, e.g. name: mailbox-example", where)
		case r.Name == LegacyFeedbackSourcesReporter:
			bad("%s: the name %q stands for arf.feedback_sources; choose another", where, r.Name)
		case names[strings.ToLower(r.Name)]:
			bad("%s: the name is used twice; give each reporter its own", where)
		}
		names[strings.ToLower(r.Name)] = true
		if len(r.Domains) == 0 && len(r.Networks) == 0 {
			bad("%s: set domains (of the report's envelope sender or From) or networks (of the SMTP client), or both", where)
		}
		for _, d := range r.Domains {
			d = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(d), "."))
			if d == "" || strings.ContainsAny(d, "@ <>\t") || !strings.Contains(d, ".") {
				bad("%s: domains: %q is not a domain; write it like \"fbl.mailbox.example\", without user@", where, d)
				continue
			}
			v.Domains = append(v.Domains, d)
		}
		for _, n := range r.Networks {
			p, err := parseNetwork(n)
			if err != nil {
				bad("%s: networks: %q is not a network; use CIDR like \"192.0.2.0/24\" or an address", where, n)
				continue
			}
			v.Networks = append(v.Networks, p)
		}
		c.reporters = append(c.reporters, v)
	}
	if len(c.FeedbackSources) > 0 {
		v := Reporter{Name: LegacyFeedbackSourcesReporter}
		for _, s := range c.FeedbackSources {
			p, err := parseNetwork(s)
			if err != nil {
				bad("arf.feedback_sources: %q is not a network; use CIDR like \"192.0.2.0/24\" or an address", s)
				continue
			}
			v.Networks = append(v.Networks, p)
		}
		c.reporters = append(c.reporters, v)
	}
}

// validate returns nil or an error wrapping ErrInvalid that says how to fix
// the value. It also fills in From from the hostname, which setDefaults
// cannot see.
func (c *ARF) validate(cfg *Config) error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...)))
	}
	if c.From == "" {
		c.From = "outguard@" + cfg.Hostname
	}
	if !looksLikeAddress(c.From) {
		bad("arf.from %q is not an email address; use e.g. \"outguard@mta.example.net\"", c.From)
	}
	c.validateReporters(bad)
	if c.FeedbackRetention < Duration(time.Hour) {
		bad("arf.feedback_retention %s: must be at least 1h; received reports are kept this long (default 90d)", c.FeedbackRetention)
	}
	if c.AbuseAddress != "" && !looksLikeAddress(c.AbuseAddress) {
		bad("arf.abuse_address %q is not an email address, e.g. \"abuse@example.net\"", c.AbuseAddress)
	}
	if c.FeedbackAddress != "" {
		if !looksLikeAddress(c.FeedbackAddress) {
			bad("arf.feedback_address %q is not an email address, e.g. \"fbl@mta.example.net\"", c.FeedbackAddress)
		} else if strings.EqualFold(c.FeedbackAddress, c.AbuseAddress) {
			bad("arf.feedback_address is the same as arf.abuse_address; outguard would read its own reports as complaints: use two mailboxes")
		}
	}
	if c.MaxOriginalBytes < 1024 || c.MaxOriginalBytes > 1<<30 {
		bad("arf.max_original_bytes %d: use a size between 1024 and 1073741824 (default 1048576)", c.MaxOriginalBytes)
	}
	if c.ParseMaxBytes < 64<<10 || c.ParseMaxBytes > 1<<30 {
		bad("arf.parse_max_bytes %d: use a size between 65536 and 1073741824 (default 10485760)", c.ParseMaxBytes)
	}
	if !validHeaderName(c.IdentityHeader) {
		bad("arf.identity_header %q is not a header field name; use e.g. X-AuthUser (no colon or spaces)", c.IdentityHeader)
	}
	if c.Retry.Initial < Duration(time.Second) {
		bad("arf.retry.initial %s: must be at least 1s", c.Retry.Initial)
	}
	if c.Retry.Max < c.Retry.Initial {
		bad("arf.retry.max %s is shorter than arf.retry.initial %s; make it at least as long", c.Retry.Max, c.Retry.Initial)
	}
	if c.MaxAge < Duration(time.Minute) {
		bad("arf.max_age %s: must be at least 1m; reports are kept and retried this long (default 5d)", c.MaxAge)
	}
	if c.Relay.Timeout < Duration(time.Second) {
		bad("arf.relay.timeout %s: must be at least 1s", c.Relay.Timeout)
	}
	r := c.Relay
	if r.Address == "" {
		if r.TLS != "" || r.Username != "" || r.Password != "" || r.ServerName != "" || r.InsecureSkipVerify {
			bad("arf.relay: tls, server_name, insecure_skip_verify, username and password need arf.relay.address; without an address the next hop's settings are used")
		}
	} else {
		if _, port, err := net.SplitHostPort(r.Address); err != nil || port == "" {
			bad("arf.relay.address %q is not host:port, e.g. \"relay.example.net:25\"; leave it empty to use the next hop", r.Address)
		}
		switch r.TLS {
		case "", "none", "starttls", "starttls_optional", "implicit":
		default:
			bad("arf.relay.tls %q: use none, starttls, starttls_optional or implicit", r.TLS)
		}
		if (r.Username == "") != (r.Password == "") {
			bad("arf.relay: set both username and password, or neither")
		}
	}
	return errors.Join(errs...)
}

// validHeaderName reports whether s is an RFC 5322 field name.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 || s[i] == ':' {
			return false
		}
	}
	return true
}

// resolvePaths makes relative file paths in this section absolute. The
// section has none.
func (c *ARF) resolvePaths(abs func(*string)) {}
