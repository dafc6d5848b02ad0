// Package config defines outguard's YAML configuration: its schema, its
// defaults and its validation.
//
// # Overview
//
// One YAML file configures the whole daemon. Load reads it strictly: an
// unknown key is an error that names the key and its line, and Validate
// explains what is wrong with a value and how to fix it. Defaults are filled
// in by Load, so every consumer sees a complete configuration.
//
// The package is a leaf: it imports nothing of outguard's but internal
// helpers (internal/notifytext checks the customer notice), and the other
// packages never import it. The app package maps it onto each component's
// Options.
//
// # Caveats
//
// Secrets (password hashes, token hashes, HMAC keys) are read from the file
// as they are; keep the file readable by outguard's user only.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/outguard/outguard/internal/notifytext"
	"go.yaml.in/yaml/v3"
)

// MaxFileSize bounds the configuration file read by Load, so a wrong path
// (a log file, a device) fails fast instead of exhausting memory.
const MaxFileSize = 4 << 20

// ErrInvalid wraps every validation failure returned by Validate.
var ErrInvalid = errors.New("invalid configuration")

// Config is the root of the YAML document.
type Config struct {
	// Hostname is the name outguard uses in its greeting, in the Received
	// header it prepends and as the Reporting-MTA of its ARF reports.
	Hostname string `yaml:"hostname"`
	// NodeName names this node in a fleet sharing one store: in its
	// records, logs and metrics. Default the machine's host name
	// (docs/config-store.md, "Several nodes").
	NodeName string `yaml:"node_name"`
	// DataDir holds the database, the self-signed certificate made in trial
	// mode and the capture folder. Relative paths are relative to the
	// directory of the configuration file.
	DataDir string `yaml:"data_dir"`
	// Log configures outguard's own log.
	Log Log `yaml:"log"`
	// ShutdownTimeout is how long a graceful stop waits for transactions in
	// flight before closing their connections.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`

	Listeners []Listener `yaml:"listeners"`
	Limits    Limits     `yaml:"limits"`
	NextHop   NextHop    `yaml:"next_hop"`
	Domains   []Domain   `yaml:"domains"`
	Admin     Admin      `yaml:"admin"`

	Filter   Filter   `yaml:"filter"`
	Identity Identity `yaml:"identity"`
	Store    Store    `yaml:"store"`
	ARF      ARF      `yaml:"arf"`
	Notify   Notify   `yaml:"notify"`
	// Replies are the texts of outguard's refusals (docs/replies.md).
	Replies Replies `yaml:"replies"`

	// path is the file the configuration was loaded from, used to resolve
	// relative paths.
	path string
}

// Log configures outguard's log output (log/slog on standard error).
type Log struct {
	// Level is one of debug, info, warn, error.
	Level string `yaml:"level"`
	// Format is text or json.
	Format string `yaml:"format"`
}

// Listener is one SMTP listening socket.
type Listener struct {
	// Name labels the listener in logs, metrics and the message log.
	Name string `yaml:"name"`
	// Address is host:port.
	Address string `yaml:"address"`
	// TLS is none, starttls or implicit.
	TLS string `yaml:"tls"`
	// CertFile and KeyFile are PEM files. Both empty with tls starttls or
	// implicit makes a self-signed certificate under data_dir at first
	// start (for trying outguard out, never for production).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// AllowInsecureAuth offers AUTH before TLS. Only for loopback testing.
	AllowInsecureAuth bool `yaml:"allow_insecure_auth"`
	// Feedback makes this listener also accept third-party feedback reports
	// addressed to arf.feedback_address without authentication.
	Feedback bool `yaml:"feedback"`
	// MaxConnections and MaxConnectionsPerIP bound this listener's own
	// connections (each listener counts its own). Defaults: the limits
	// keys of the same names, or DefaultFeedbackMaxConnections and
	// DefaultFeedbackMaxConnectionsPerIP for a feedback listener.
	MaxConnections      int `yaml:"max_connections"`
	MaxConnectionsPerIP int `yaml:"max_connections_per_ip"`
	// IdleTimeoutBeforeMail overrides limits.idle_timeout_before_mail.
	IdleTimeoutBeforeMail Duration `yaml:"idle_timeout_before_mail"`
}

// Limits bound what one client may do. Zero values take the defaults.
type Limits struct {
	MaxMessageBytes int64 `yaml:"max_message_bytes"`
	MaxRecipients   int   `yaml:"max_recipients"`
	// MaxLineLength bounds SMTP command lines; message lines are bounded
	// by MaxMessageBytes only, unless MaxDataLineLength is set.
	MaxLineLength int `yaml:"max_line_length"`
	// MaxDataLineLength, when above zero, refuses messages that have a
	// longer line with 552 5.3.4. Default 0: no limit of its own.
	MaxDataLineLength int `yaml:"max_data_line_length"`
	MaxHeaderBytes    int `yaml:"max_header_bytes"`
	// MaxRefusedRecipients is how many refused RCPTs a session may
	// collect before the next RCPT gets 421 4.7.0 and the connection
	// closes (452 replies are not counted).
	MaxRefusedRecipients int      `yaml:"max_refused_recipients"`
	IdleTimeout          Duration `yaml:"idle_timeout"`
	// IdleTimeoutBeforeMail is the time allowed between reads outside a
	// transaction (before MAIL), for listeners that set none.
	IdleTimeoutBeforeMail Duration `yaml:"idle_timeout_before_mail"`
	SessionTimeout        Duration `yaml:"session_timeout"`
	// MaxConnections and MaxConnectionsPerIP are the connection limits of
	// each listener that sets none of its own (feedback listeners have
	// smaller defaults).
	MaxConnections      int `yaml:"max_connections"`
	MaxConnectionsPerIP int `yaml:"max_connections_per_ip"`
	// IPv6PrefixLength is how many leading bits of an IPv6 client address
	// the per-IP limits and the AUTH throttle count by.
	IPv6PrefixLength int `yaml:"ipv6_prefix_length"`
	// AuthFailures throttles password guessing per client IP.
	AuthFailures AuthThrottle `yaml:"auth_failures"`
	// AuthMemoryBytes is the memory that password verifications running
	// at once may use together (an argon2id check takes its m parameter,
	// 64 MiB as outguard hash-password makes them).
	AuthMemoryBytes int64 `yaml:"auth_memory_bytes"`
	// SpoolThreshold is how much of a message is kept in memory before the
	// rest is spooled to a temporary file.
	SpoolThreshold int64 `yaml:"spool_threshold"`
	// MessageMemoryBytes bounds the memory all messages held in memory
	// take together; past it a message is spooled whatever its size.
	MessageMemoryBytes int64 `yaml:"message_memory_bytes"`
}

// AuthThrottle closes the connection with 421 once an IP has failed Max
// times within Window, and refuses AUTH from it until the window passes.
type AuthThrottle struct {
	Max    int      `yaml:"max"`
	Window Duration `yaml:"window"`
}

// NextHop is where relayed mail goes.
type NextHop struct {
	// Type is smtp (the outbound MTA) or capture (writes each message to a
	// folder: for trying outguard out only).
	Type string `yaml:"type"`
	// Address is host:port of the next hop, for type smtp.
	Address string `yaml:"address"`
	// TLS is none, starttls (required), starttls_optional or implicit.
	TLS string `yaml:"tls"`
	// ServerName overrides the name verified in the next hop's certificate.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify disables certificate verification.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
	// Username and Password authenticate to the next hop with AUTH PLAIN.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// Helo is the name sent in EHLO; default: hostname.
	Helo string `yaml:"helo"`
	// Timeout bounds each command exchanged with the next hop.
	Timeout Duration `yaml:"timeout"`
	// DataTimeout bounds the transfer of a message and its final reply.
	DataTimeout Duration `yaml:"data_timeout"`
	// Chunking sends messages with BDAT (RFC 3030) when the next hop
	// offers CHUNKING and PIPELINING; false always uses DATA. Default
	// true.
	Chunking *bool `yaml:"chunking"`
	// PoolSize is the most idle connections kept for reuse.
	PoolSize int `yaml:"pool_size"`
	// IdleTimeout closes pooled connections unused for this long.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// CaptureDir is the folder for type capture; default data_dir/capture.
	CaptureDir string `yaml:"capture_dir"`
}

// Domain is an administrative domain: a group of outgoing users with common
// defaults.
type Domain struct {
	Name string `yaml:"name"`
	// AbuseAddress receives ARF reports for blocks in this domain,
	// overriding arf.abuse_address.
	AbuseAddress string `yaml:"abuse_address"`
	// Policy holds the defaults for the domain's users.
	Policy `yaml:",inline"`
	Users  []User `yaml:"users"`
	// Replies override the global refusal texts for this domain's users,
	// key by key.
	Replies *Replies `yaml:"replies"`
	// CustomerNotice, when set, mails a plain-text notice to the
	// customer on each lock of one of the domain's identities
	// (docs/config-notify.md, "Customer notice").
	CustomerNotice *CustomerNotice `yaml:"customer_notice"`
}

// CustomerNotice is a domain's notice to the customer behind a locked
// identity: a fixed recipient rule and a template of {placeholders}
// (internal/notifytext).
type CustomerNotice struct {
	// To is "identity" (the locked identity, when it is an email
	// address) or a fixed email address; "" turns the notice off.
	To string `yaml:"to"`
	// Subject and Body are the templates; both required.
	Subject string `yaml:"subject"`
	Body    string `yaml:"body"`
}

// On reports whether the notice is sent (To is set).
func (n *CustomerNotice) On() bool { return n != nil && n.To != "" }

// CustomerNoticeToIdentity is the To of a notice sent to the identity.
const CustomerNoticeToIdentity = "identity"

// maxNoticeSubject and maxNoticeBody bound a notice's templates.
const (
	maxNoticeSubject = 200
	maxNoticeBody    = 8000
)

func (n *CustomerNotice) validate(where string) []string {
	var errs []string
	bad := func(f string, a ...any) { errs = append(errs, fmt.Sprintf(f, a...)) }
	switch {
	case n.To == "":
		// off, as the shipped example has it; the templates are still checked
	case n.To != CustomerNoticeToIdentity && !looksLikeAddress(n.To):
		bad("%s.to %q: use \"identity\" or an email address", where, n.To)
	}
	if strings.TrimSpace(n.Subject) == "" {
		bad("%s.subject is required", where)
	} else if len(n.Subject) > maxNoticeSubject || strings.ContainsAny(n.Subject, "\r\n") {
		bad("%s.subject: one line of at most %d bytes", where, maxNoticeSubject)
	} else if err := notifytext.Check(n.Subject); err != nil {
		bad("%s.subject: %v", where, err)
	}
	if strings.TrimSpace(n.Body) == "" {
		bad("%s.body is required", where)
	} else if len(n.Body) > maxNoticeBody {
		bad("%s.body: at most %d bytes", where, maxNoticeBody)
	} else if err := notifytext.Check(n.Body); err != nil {
		bad("%s.body: %v", where, err)
	}
	return errs
}

// User is an outgoing user: a sender allowed to relay.
type User struct {
	Name string `yaml:"name"`
	// PasswordHash is a bcrypt ($2a$, $2b$, $2y$) or argon2id
	// ($argon2id$) hash, made with `outguard hash-password`. Empty: the
	// user cannot use SMTP AUTH.
	PasswordHash string `yaml:"password_hash"`
	// Networks authorise by client address (CIDR) instead of AUTH.
	Networks []string `yaml:"networks"`
	// AbuseAddress overrides the domain's abuse address for this user.
	AbuseAddress string `yaml:"abuse_address"`
	// Policy overrides the domain's defaults for this user.
	Policy `yaml:",inline"`

	prefixes []netip.Prefix
}

// Prefixes returns the parsed Networks. Valid only after Validate.
func (u *User) Prefixes() []netip.Prefix { return u.prefixes }

// Policy is the per-user behaviour, set per domain as a default and per user
// as an override. Nil pointers and empty lists mean "inherit".
type Policy struct {
	// IdentityRules find the end user behind a message, first match wins.
	IdentityRules []IdentityRule `yaml:"identity_rules"`
	// RequireIdentity refuses mail for which no rule yields an identity.
	RequireIdentity *bool `yaml:"require_identity"`
	// StripIdentityHeader removes the identity header before relaying.
	StripIdentityHeader *bool `yaml:"strip_identity_header"`
	// LockIdentitiesAutomatically turns automatic locking on.
	LockIdentitiesAutomatically *bool `yaml:"lock_identities_automatically"`
	// Monitor classifies, counts and records but refuses nothing.
	Monitor *bool `yaml:"monitor"`
	// Thresholds override identity.thresholds.
	Thresholds *Thresholds `yaml:"thresholds"`
	// Classification overrides the built-in engine's score thresholds for
	// these users' mail.
	Classification *Classification `yaml:"classification"`
	// Unscannable says what happens to mail the engines found clean but
	// could not scan whole (a parsing limit, an encrypted or damaged
	// archive): accept (relay, flagged as partially scanned), tempfail
	// (451; only because the operator chose it) or block (550, quarantined
	// first). Empty inherits; the default blocks executables and archives
	// that could not be opened and relays the rest flagged. See
	// docs/config-filter.md.
	Unscannable string `yaml:"unscannable"`
	// AllowedSenderDomains lists the header From domains this user may
	// send as; empty: any.
	AllowedSenderDomains []string `yaml:"allowed_sender_domains"`
	// MaxRecipients and MaxMessageBytes lower the global limits for these
	// users (0: the global limit applies).
	MaxRecipients   int   `yaml:"max_recipients"`
	MaxMessageBytes int64 `yaml:"max_message_bytes"`
}

// Classification holds per-domain and per-user score thresholds of the
// built-in engine; 0 (or absent) inherits.
type Classification struct {
	// SpamThreshold overrides filter.engines.builtin.spam_threshold.
	SpamThreshold float64 `yaml:"spam_threshold"`
	// SuspectThreshold overrides
	// filter.engines.builtin.content_model.suspect_threshold.
	SuspectThreshold float64 `yaml:"suspect_threshold"`
}

// Admin is the HTTP listener for metrics, health, the API and the console.
type Admin struct {
	Address  string `yaml:"address"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// Tokens authorise API and console access.
	Tokens []Token `yaml:"tokens"`
	// Accounts are the console's named accounts (password and TOTP).
	Accounts []Account `yaml:"accounts"`
	// SignInThrottle slows down failed sign-ins.
	SignInThrottle SignInThrottle `yaml:"sign_in_throttle"`
	// OIDC is the console's optional OpenID Connect sign-in; nil: none.
	OIDC *OIDC `yaml:"oidc"`
}

// Token is an admin API bearer token, stored only as a hash.
type Token struct {
	Name string `yaml:"name"`
	// Hash is a bcrypt or argon2id hash of the token, made with
	// `outguard hash-password`.
	Hash string `yaml:"hash"`
	// Scope is "all" or the name of one administrative domain.
	Scope string `yaml:"scope"`
}

// Load reads, defaults and validates the file at path.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(b) > MaxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes; is this the configuration file?", path, MaxFileSize)
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	abs, err := filepath.Abs(path)
	if err == nil {
		c.path = abs
		c.resolvePaths()
	}
	return c, nil
}

// Parse decodes a YAML document strictly, fills in defaults and validates.
// Relative paths stay relative to the working directory. A configuration
// that cannot be used returns Problems: every value of the wrong type,
// every unknown key and every validation failure, each with its line and
// key path, in one pass.
func Parse(b []byte) (*Config, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Problems{{Message: "the file is empty", Fix: "start from the example configuration (testdata/outguard.example.yaml)"}}
		}
		return nil, Problems{syntaxProblem(err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := extra.Line
		if err != nil {
			line = 0
		}
		return nil, Problems{{Line: line, Message: "more than one YAML document", Fix: "keep the whole configuration in one document: remove the \"---\" line"}}
	}
	if len(doc.Content) == 0 || isNull(doc.Content[0]) {
		return nil, Problems{{Message: "the file is empty", Fix: "start from the example configuration (testdata/outguard.example.yaml)"}}
	}
	root := doc.Content[0]
	w := &schemaWalk{lines: map[string]int{}}
	c := &Config{}
	var decodeErrs []Problem
	if !w.walk(root, reflect.TypeFor[Config](), "") {
		return nil, Problems(w.problems)
	}
	decodeErrs = w.problems
	if len(decodeErrs) == 0 {
		// Decode strictly as well: the walk's checks and the
		// decoder's are the same, and the decoder has the last word.
		strict := yaml.NewDecoder(bytes.NewReader(b))
		strict.KnownFields(true)
		if err := strict.Decode(c); err != nil {
			ps := Problems(decodeProblems(err))
			sortByLine(ps)
			return nil, ps
		}
	} else if err := root.Decode(c); err != nil {
		ps := Problems(append(decodeErrs, decodeProblems(err)...))
		sortByLine(ps)
		return nil, ps
	}
	c.setDefaults()
	err := c.Validate()
	if err == nil && len(decodeErrs) == 0 {
		return c, nil
	}
	all := Problems(decodeErrs)
	if err != nil {
	next:
		for _, v := range validationProblems(err, w.lines) {
			for _, d := range decodeErrs {
				if consequence(v, d) {
					continue next
				}
			}
			all = append(all, v)
		}
	}
	sortByLine(all)
	return nil, all
}

// yamlError rewords the decoder's messages so they name the key plainly.
func yamlError(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: ")
	msg = strings.ReplaceAll(msg, "unmarshal errors:\n  ", "")
	// "line 7: field bogus not found in type config.Listener"
	if i := strings.Index(msg, " not found in type "); i > 0 {
		var b strings.Builder
		for _, line := range strings.Split(msg, "\n") {
			line = strings.TrimSpace(line)
			if j := strings.Index(line, " not found in type "); j > 0 {
				line = strings.Replace(line[:j], "field ", "unknown key \"", 1) + "\" (check the spelling and the indentation)"
			}
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			b.WriteString(line)
		}
		return b.String()
	}
	return msg
}

// Path returns the file the configuration came from, or "".
func (c *Config) Path() string { return c.path }

func (c *Config) resolvePaths() {
	dir := filepath.Dir(c.path)
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	abs(&c.DataDir)
	for i := range c.Listeners {
		abs(&c.Listeners[i].CertFile)
		abs(&c.Listeners[i].KeyFile)
	}
	abs(&c.Admin.CertFile)
	abs(&c.Admin.KeyFile)
	c.Admin.resolvePaths(abs)
	abs(&c.NextHop.CaptureDir)
	if c.NextHop.CaptureDir == filepath.Join(dir, "capture") && c.DataDir != "" {
		c.NextHop.CaptureDir = filepath.Join(c.DataDir, "capture")
	}
	c.resolveSectionPaths(abs)
}

// FindUser returns the user with that name and its domain.
func (c *Config) FindUser(name string) (*User, *Domain) {
	for i := range c.Domains {
		d := &c.Domains[i]
		for j := range d.Users {
			if d.Users[j].Name == name {
				return &d.Users[j], d
			}
		}
	}
	return nil, nil
}

// IsLoopback reports whether addr (host:port) binds only loopback
// addresses.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
