package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"
)

// Defaults for keys left out of the file.
const (
	DefaultHostname              = "localhost"
	DefaultDataDir               = "data"
	DefaultShutdownTimeout       = 30 * time.Second
	DefaultMaxMessageBytes       = 25 << 20
	DefaultMaxRecipients         = 100
	DefaultMaxLineLength         = 2000
	DefaultMaxHeaderBytes        = 256 << 10
	DefaultIdleTimeout           = 5 * time.Minute
	DefaultIdleTimeoutBeforeMail = time.Minute
	DefaultMaxRefusedRecipients  = 50
	DefaultIPv6PrefixLength      = 64
	DefaultAuthMemoryBytes       = 128 << 20
	// A feedback listener takes reports from a few mailbox providers'
	// feedback loops: its connection limits default small, so that a
	// flood there leaves the other listeners alone.
	DefaultFeedbackMaxConnections      = 50
	DefaultFeedbackMaxConnectionsPerIP = 5
	DefaultSessionTimeout              = 30 * time.Minute
	DefaultMaxConnections              = 1000
	DefaultMaxConnectionsPerIP         = 100
	DefaultAuthFailuresMax             = 5
	DefaultAuthFailuresWindow          = 5 * time.Minute
	DefaultSpoolThreshold              = 1 << 20
	DefaultMessageMemoryBytes          = 256 << 20
	DefaultNextHopTimeout              = 30 * time.Second
	DefaultNextHopDataTimeout          = 5 * time.Minute
	DefaultPoolSize                    = 64
	DefaultPoolIdleTimeout             = 60 * time.Second
	DefaultAdminAddress                = "127.0.0.1:8025"
)

func (c *Config) setDefaults() {
	if c.Hostname == "" {
		c.Hostname = DefaultHostname
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.NodeName == "" {
		c.NodeName = defaultNodeName()
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = Duration(DefaultShutdownTimeout)
	}
	lim := &c.Limits
	setInt64(&lim.MaxMessageBytes, DefaultMaxMessageBytes)
	setInt(&lim.MaxRecipients, DefaultMaxRecipients)
	setInt(&lim.MaxLineLength, DefaultMaxLineLength)
	setInt(&lim.MaxHeaderBytes, DefaultMaxHeaderBytes)
	setDur(&lim.IdleTimeout, DefaultIdleTimeout)
	setDur(&lim.SessionTimeout, DefaultSessionTimeout)
	setInt(&lim.MaxConnections, DefaultMaxConnections)
	setInt(&lim.MaxConnectionsPerIP, DefaultMaxConnectionsPerIP)
	setInt(&lim.AuthFailures.Max, DefaultAuthFailuresMax)
	setDur(&lim.AuthFailures.Window, DefaultAuthFailuresWindow)
	setInt64(&lim.SpoolThreshold, DefaultSpoolThreshold)
	setInt64(&lim.MessageMemoryBytes, DefaultMessageMemoryBytes)
	setInt(&lim.MaxRefusedRecipients, DefaultMaxRefusedRecipients)
	setDur(&lim.IdleTimeoutBeforeMail, DefaultIdleTimeoutBeforeMail)
	setInt(&lim.IPv6PrefixLength, DefaultIPv6PrefixLength)
	setInt64(&lim.AuthMemoryBytes, DefaultAuthMemoryBytes)
	for i := range c.Listeners {
		l := &c.Listeners[i]
		if l.TLS == "" {
			l.TLS = "starttls"
		}
		if l.Name == "" {
			l.Name = fmt.Sprintf("smtp%d", i)
		}
		maxConns, perIP := lim.MaxConnections, lim.MaxConnectionsPerIP
		if l.Feedback {
			maxConns, perIP = DefaultFeedbackMaxConnections, DefaultFeedbackMaxConnectionsPerIP
		}
		setInt(&l.MaxConnections, maxConns)
		if l.MaxConnectionsPerIP == 0 && l.MaxConnections > 0 {
			l.MaxConnectionsPerIP = min(perIP, l.MaxConnections)
		}
		setDur(&l.IdleTimeoutBeforeMail, lim.IdleTimeoutBeforeMail.D())
	}

	nh := &c.NextHop
	if nh.Type == "" {
		nh.Type = "smtp"
	}
	if nh.TLS == "" {
		nh.TLS = "none"
	}
	if nh.Helo == "" {
		nh.Helo = c.Hostname
	}
	setDur(&nh.Timeout, DefaultNextHopTimeout)
	setDur(&nh.DataTimeout, DefaultNextHopDataTimeout)
	setInt(&nh.PoolSize, DefaultPoolSize)
	if nh.Chunking == nil {
		on := true
		nh.Chunking = &on
	}
	setDur(&nh.IdleTimeout, DefaultPoolIdleTimeout)
	if nh.CaptureDir == "" {
		nh.CaptureDir = "capture"
	}
	if c.Admin.Address == "" {
		c.Admin.Address = DefaultAdminAddress
	}
	for i := range c.Admin.Tokens {
		if c.Admin.Tokens[i].Scope == "" {
			c.Admin.Tokens[i].Scope = "all"
		}
	}
	c.Admin.setDefaults()
	c.Filter.setDefaults(c.Limits.MaxMessageBytes)
	c.Identity.setDefaults()
	c.Store.setDefaults()
	c.ARF.setDefaults()
	c.Notify.setDefaults()
}

func setInt(p *int, v int) {
	if *p == 0 {
		*p = v
	}
}

func setInt64(p *int64, v int64) {
	if *p == 0 {
		*p = v
	}
}

func setDur(p *Duration, v time.Duration) {
	if *p == 0 {
		*p = Duration(v)
	}
}

// Validate checks the whole configuration and returns every problem found,
// joined, each wrapped in ErrInvalid.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...)))
	}

	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level %q: use one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format %q: use text or json", c.Log.Format)
	}

	if len(c.Listeners) == 0 {
		bad("listeners: none configured; add at least one, e.g. {name: submission, address: \"127.0.0.1:2525\"}")
	}
	names := map[string]bool{}
	addrs := map[string]bool{}
	for i, l := range c.Listeners {
		where := fmt.Sprintf("listeners[%d] (%s)", i, l.Name)
		if names[l.Name] {
			bad("%s: duplicate name; give each listener its own name", where)
		}
		names[l.Name] = true
		if _, _, err := net.SplitHostPort(l.Address); err != nil {
			bad("%s: address %q is not host:port, e.g. \"0.0.0.0:587\"", where, l.Address)
		} else if addrs[l.Address] && !strings.HasSuffix(l.Address, ":0") {
			bad("%s: address %s is used twice", where, l.Address)
		}
		addrs[l.Address] = true
		switch l.TLS {
		case "none", "starttls", "implicit":
		default:
			bad("%s: tls %q: use none, starttls or implicit", where, l.TLS)
		}
		if (l.CertFile == "") != (l.KeyFile == "") {
			bad("%s: set both cert_file and key_file, or neither (a self-signed certificate is then made)", where)
		}
		if l.MaxConnections < 1 || l.MaxConnectionsPerIP < 1 {
			bad("%s: max_connections and max_connections_per_ip must be positive", where)
		} else if l.MaxConnectionsPerIP > l.MaxConnections {
			bad("%s: max_connections_per_ip %d exceeds max_connections %d", where, l.MaxConnectionsPerIP, l.MaxConnections)
		}
		if l.IdleTimeoutBeforeMail < Duration(time.Second) {
			bad("%s: idle_timeout_before_mail %s: use at least 1s", where, l.IdleTimeoutBeforeMail.D())
		}
		if l.TLS == "none" && !l.AllowInsecureAuth && !l.Feedback {
			bad("%s: tls none without allow_insecure_auth leaves no way to authenticate; set tls: starttls or allow_insecure_auth: true (loopback only)", where)
		}
	}

	lim := c.Limits
	if lim.MaxMessageBytes < 1024 {
		bad("limits.max_message_bytes %d: must be at least 1024", lim.MaxMessageBytes)
	}
	if lim.MaxLineLength < 1000 {
		bad("limits.max_line_length %d: must be at least 1000 (RFC 5321 allows 1000-octet lines)", lim.MaxLineLength)
	}
	if lim.MaxDataLineLength != 0 && lim.MaxDataLineLength < 998 {
		bad("limits.max_data_line_length %d: must be 0 (no limit) or at least 998 (RFC 5322 allows 998-octet lines)", lim.MaxDataLineLength)
	}
	if lim.MaxHeaderBytes < 1024 {
		bad("limits.max_header_bytes %d: must be at least 1024", lim.MaxHeaderBytes)
	}
	if lim.MaxRecipients < 1 {
		bad("limits.max_recipients %d: must be at least 1", lim.MaxRecipients)
	}
	if lim.MaxConnectionsPerIP > lim.MaxConnections {
		bad("limits.max_connections_per_ip %d exceeds limits.max_connections %d", lim.MaxConnectionsPerIP, lim.MaxConnections)
	}
	if lim.MaxConnections < 1 || lim.MaxConnectionsPerIP < 1 || lim.AuthFailures.Max < 1 || lim.SpoolThreshold < 1 || lim.MessageMemoryBytes < 1 {
		bad("limits: connection, auth failure and spool limits must be positive")
	}
	if lim.MaxRefusedRecipients < 1 {
		bad("limits.max_refused_recipients %d: must be at least 1", lim.MaxRefusedRecipients)
	}
	if lim.IdleTimeoutBeforeMail < Duration(time.Second) {
		bad("limits.idle_timeout_before_mail %s: use at least 1s", lim.IdleTimeoutBeforeMail.D())
	}
	if lim.IPv6PrefixLength < 1 || lim.IPv6PrefixLength > 128 {
		bad("limits.ipv6_prefix_length %d: use 1 to 128 (64: one customer's network)", lim.IPv6PrefixLength)
	}
	if lim.AuthMemoryBytes < 1<<20 {
		bad("limits.auth_memory_bytes %d: use at least 1048576 (1 MiB); an argon2id check with outguard's parameters takes 64 MiB", lim.AuthMemoryBytes)
	}

	nh := c.NextHop
	switch nh.Type {
	case "smtp":
		if _, _, err := net.SplitHostPort(nh.Address); err != nil {
			bad("next_hop.address %q is not host:port; set the outbound MTA, e.g. \"127.0.0.1:10025\", or use type: capture to try outguard out", nh.Address)
		}
	case "capture":
	default:
		bad("next_hop.type %q: use smtp or capture", nh.Type)
	}
	switch nh.TLS {
	case "none", "starttls", "starttls_optional", "implicit":
	default:
		bad("next_hop.tls %q: use none, starttls, starttls_optional or implicit", nh.TLS)
	}
	if (nh.Username == "") != (nh.Password == "") {
		bad("next_hop: set both username and password, or neither")
	}
	if nh.PoolSize < 0 {
		bad("next_hop.pool_size %d: must not be negative", nh.PoolSize)
	}

	if len(c.Domains) == 0 {
		if len(c.Admin.Tokens) == 0 {
			bad("domains and admin.tokens: none configured: set users and tokens before starting: add an administrative domain with at least one user, and an admin token, each with a hash from `outguard hash-password` (docs/install.md)")
		} else {
			bad("domains: none configured: set users before starting: add an administrative domain with at least one user, its password hash from `outguard hash-password` (docs/install.md)")
		}
	}
	domains := map[string]bool{}
	users := map[string]string{}
	for i := range c.Domains {
		d := &c.Domains[i]
		where := fmt.Sprintf("domains[%d] (%s)", i, d.Name)
		if d.Name == "" {
			bad("%s: name is empty", where)
		}
		if domains[strings.ToLower(d.Name)] {
			bad("%s: duplicate domain name", where)
		}
		domains[strings.ToLower(d.Name)] = true
		if d.AbuseAddress != "" && !looksLikeAddress(d.AbuseAddress) {
			bad("%s: abuse_address %q is not an email address", where, d.AbuseAddress)
		}
		if d.CustomerNotice != nil {
			for _, e := range d.CustomerNotice.validate(where + ".customer_notice") {
				bad("%s", e)
			}
		}
		for _, e := range d.Policy.validate(c, where) {
			bad("%s", e)
		}
		if d.Replies != nil {
			for _, e := range d.Replies.validate(where+".replies", c.Replies.Merge(d.Replies)) {
				bad("%s", e)
			}
		}
		for j := range d.Users {
			u := &d.Users[j]
			uw := fmt.Sprintf("%s.users[%d] (%s)", where, j, u.Name)
			if u.Name == "" {
				bad("%s: name is empty", uw)
			}
			if other, ok := users[u.Name]; ok {
				bad("%s: user name also used in domain %s; user names are global", uw, other)
			}
			users[u.Name] = d.Name
			if u.PasswordHash == "" && len(u.Networks) == 0 {
				bad("%s: set password_hash (from `outguard hash-password`) or networks, or the user can never relay", uw)
			}
			if u.PasswordHash != "" && !IsPasswordHash(u.PasswordHash) {
				bad("%s: password_hash is not a bcrypt or argon2id hash; make one with `outguard hash-password`", uw)
			}
			u.prefixes = u.prefixes[:0]
			for _, n := range u.Networks {
				p, err := netip.ParsePrefix(n)
				if err != nil {
					if a, err2 := netip.ParseAddr(n); err2 == nil {
						p = netip.PrefixFrom(a, a.BitLen())
					} else {
						bad("%s: network %q is not a CIDR prefix like 192.0.2.0/24", uw, n)
						continue
					}
				}
				u.prefixes = append(u.prefixes, p.Masked())
			}
			if u.AbuseAddress != "" && !looksLikeAddress(u.AbuseAddress) {
				bad("%s: abuse_address %q is not an email address", uw, u.AbuseAddress)
			}
			for _, e := range u.Policy.validate(c, uw) {
				bad("%s", e)
			}
		}
	}

	for _, e := range c.Replies.validate("replies", c.Replies) {
		bad("%s", e)
	}

	if _, _, err := net.SplitHostPort(c.Admin.Address); err != nil {
		bad("admin.address %q is not host:port, e.g. \"127.0.0.1:8025\"", c.Admin.Address)
	}
	if (c.Admin.CertFile == "") != (c.Admin.KeyFile == "") {
		bad("admin: set both cert_file and key_file, or neither")
	}
	tokens := map[string]bool{}
	for i, t := range c.Admin.Tokens {
		where := fmt.Sprintf("admin.tokens[%d] (%s)", i, t.Name)
		if t.Name == "" {
			bad("%s: name is empty; it is the actor recorded in the audit trail", where)
		}
		if tokens[t.Name] {
			bad("%s: duplicate token name", where)
		}
		tokens[t.Name] = true
		if !IsPasswordHash(t.Hash) {
			bad("%s: hash is not a bcrypt or argon2id hash; make one with `outguard hash-password`", where)
		}
		if t.Scope != "all" && !domains[strings.ToLower(t.Scope)] {
			bad("%s: scope %q is neither \"all\" nor a configured domain", where, t.Scope)
		}
	}

	if err := validNodeName(c.NodeName); err != nil {
		errs = append(errs, err)
	}
	for _, fn := range []func(*Config) error{c.Filter.validate, c.Identity.validate, c.Store.validate, c.ARF.validate, c.Notify.validate, c.Admin.validate} {
		if err := fn(c); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// IsPasswordHash reports whether s looks like a hash outguard can verify.
func IsPasswordHash(s string) bool {
	for _, p := range []string{"$2a$", "$2b$", "$2y$", "$argon2id$"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func looksLikeAddress(s string) bool {
	at := strings.LastIndexByte(s, '@')
	return at > 0 && at < len(s)-1 && !strings.ContainsAny(s, " <>\t\r\n")
}

// validate checks a Policy; where names it in messages.
func (p *Policy) validate(c *Config, where string) []string {
	var out []string
	for i, r := range p.IdentityRules {
		if msg := r.check(); msg != "" {
			out = append(out, fmt.Sprintf("%s.identity_rules[%d]: %s", where, i, msg))
		}
	}
	if p.Thresholds != nil {
		if msg := p.Thresholds.check(); msg != "" {
			out = append(out, fmt.Sprintf("%s.thresholds: %s", where, msg))
		}
	}
	if cl := p.Classification; cl != nil {
		if cl.SpamThreshold < 0 || cl.SuspectThreshold < 0 {
			out = append(out, fmt.Sprintf("%s.classification: thresholds must be 0 (inherit) or positive", where))
		}
		if cl.SpamThreshold > 0 && cl.SuspectThreshold > cl.SpamThreshold {
			out = append(out, fmt.Sprintf("%s.classification.suspect_threshold %v is above spam_threshold %v: the suspect band lies below the blocking one", where, cl.SuspectThreshold, cl.SpamThreshold))
		}
	}
	if p.MaxRecipients < 0 || (c.Limits.MaxRecipients > 0 && p.MaxRecipients > c.Limits.MaxRecipients) {
		out = append(out, fmt.Sprintf("%s.max_recipients %d: use 0 (the global limit) or a number up to limits.max_recipients (%d)", where, p.MaxRecipients, c.Limits.MaxRecipients))
	}
	if p.MaxMessageBytes < 0 || (c.Limits.MaxMessageBytes > 0 && p.MaxMessageBytes > c.Limits.MaxMessageBytes) {
		out = append(out, fmt.Sprintf("%s.max_message_bytes %d: use 0 (the global limit) or a size up to limits.max_message_bytes (%d)", where, p.MaxMessageBytes, c.Limits.MaxMessageBytes))
	}
	switch p.Unscannable {
	case "", "accept", "tempfail", "block":
	default:
		out = append(out, fmt.Sprintf("%s.unscannable %q: use accept (relay, flagged), tempfail (451: defer) or block (550, quarantined); leave it out for the default (block executables and archives that could not be opened, relay the rest flagged)", where, p.Unscannable))
	}
	for _, d := range p.AllowedSenderDomains {
		if d == "" || strings.ContainsAny(d, "@ \t") {
			out = append(out, fmt.Sprintf("%s.allowed_sender_domains: %q is not a domain name", where, d))
		}
	}
	return out
}

// defaultNodeName is the host name cut at its first dot, or "outguard"
// when the host name is unknown or unusable as a node name.
func defaultNodeName() string {
	h, err := os.Hostname()
	if err != nil {
		return "outguard"
	}
	if i := strings.IndexByte(h, '.'); i > 0 {
		h = h[:i]
	}
	if validNodeName(h) != nil {
		return "outguard"
	}
	return h
}

// validNodeName checks a node name: 1 to MaxNodeNameLength letters,
// digits, dots, hyphens and underscores, so that it is safe as a metric
// label and in a log line.
func validNodeName(s string) error {
	if s == "" || len(s) > MaxNodeNameLength {
		return fmt.Errorf("%w: node_name %q: use 1 to %d characters", ErrInvalid, s, MaxNodeNameLength)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return fmt.Errorf("%w: node_name %q: use letters, digits, '.', '-' and '_' only, e.g. \"mx1\"", ErrInvalid, s)
		}
	}
	return nil
}

func (c *Config) resolveSectionPaths(abs func(*string)) {
	c.Filter.resolvePaths(abs)
	c.Identity.resolvePaths(abs)
	c.Store.resolvePaths(abs)
	c.ARF.resolvePaths(abs)
	c.Notify.resolvePaths(abs)
}
