package arf

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// DefaultMaxOriginalBytes is the size above which a report carries only the
// original's header block (text/rfc822-headers).
const DefaultMaxOriginalBytes = 1 << 20

// Errors returned by Generate.
var (
	// ErrNotReportable: the verdict has no feedback type (clean or empty).
	ErrNotReportable = errors.New("arf: verdict is not reportable")
	// ErrBoundary: the boundary generator kept producing boundaries that
	// occur in the original message.
	ErrBoundary = errors.New("arf: no MIME boundary absent from the original")
	// ErrNoRecipient: neither the incident nor the options name a report
	// recipient.
	ErrNoRecipient = errors.New("arf: no report recipient")
)

// FeedbackType returns the RFC 5965 feedback type for an outguard verdict:
// abuse for spam, fraud for phishing, virus for virus; "" for anything else.
func FeedbackType(verdict string) string {
	switch strings.ToLower(verdict) {
	case "spam":
		return "abuse"
	case "phishing":
		return "fraud"
	case "virus":
		return "virus"
	}
	return ""
}

// Incident describes one blocked message to report.
type Incident struct {
	// TxID is the transaction's log id.
	TxID string
	// User is the outgoing user; Domain its administrative domain.
	User   string
	Domain string
	// Identity is the end user behind User, "" when none was found.
	Identity string
	// Verdict is spam, phishing or virus; Score and Reasons explain it.
	Verdict string
	Score   float64
	Reasons []string
	// MailFrom and RcptTo are the envelope ("" for the null sender).
	MailFrom string
	RcptTo   []string
	// Arrival is when the message was received.
	Arrival time.Time
	// SourceIP and SourcePort are the sending client's address.
	SourceIP   netip.Addr
	SourcePort int
	// Original is the message as received, unmodified.
	Original []byte
	// To overrides GeneratorOptions.To (e.g. a per-user abuse address).
	To []string
}

// GeneratorOptions configure a Generator. From and ReportingMTA are
// required; the rest have defaults.
type GeneratorOptions struct {
	// From is the report's From address, e.g. outguard@mta.example.net.
	From string
	// To is the default recipient list (the abuse address).
	To []string
	// ReportingMTA is the host name written as Reporting-MTA and as the
	// authserv-id of Authentication-Results.
	ReportingMTA string
	// Version is outguard's version for User-Agent: outguard/Version.
	// Default "dev".
	Version string
	// MaxOriginalBytes: above it only the original's header block is
	// attached. Default DefaultMaxOriginalBytes; negative: always whole.
	MaxOriginalBytes int
	// Now is the clock for the Date header. Default time.Now.
	Now func() time.Time
	// MessageID returns the report's Message-ID without angle brackets.
	// Default: random hex @ ReportingMTA.
	MessageID func() string
	// Boundary returns a MIME boundary. Default: random. A boundary found
	// in the original is rejected and another one asked for, up to 10
	// times.
	Boundary func() string
}

// Generator builds RFC 5965 reports. It is safe for concurrent use.
type Generator struct {
	opts GeneratorOptions
}

// NewGenerator validates opts and fills in the defaults.
func NewGenerator(opts GeneratorOptions) (*Generator, error) {
	if _, err := mail.ParseAddress(opts.From); err != nil || opts.From == "" {
		return nil, fmt.Errorf("arf: GeneratorOptions.From %q is not an address", opts.From)
	}
	if opts.ReportingMTA == "" {
		return nil, errors.New("arf: GeneratorOptions.ReportingMTA is empty")
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	if opts.MaxOriginalBytes == 0 {
		opts.MaxOriginalBytes = DefaultMaxOriginalBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MessageID == nil {
		host := opts.ReportingMTA
		opts.MessageID = func() string { return "arf." + randomHex(12) + "@" + host }
	}
	if opts.Boundary == nil {
		opts.Boundary = func() string { return "outguard-arf-" + randomHex(16) }
	}
	return &Generator{opts: opts}, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

const dateLayout = "Mon, 02 Jan 2006 15:04:05 -0700"

// Generate returns the report for inc as a complete message with CRLF line
// endings (the original is embedded byte for byte, whatever its line
// endings).
func (g *Generator) Generate(inc Incident) ([]byte, error) {
	ft := FeedbackType(inc.Verdict)
	if ft == "" {
		return nil, fmt.Errorf("%w: %q", ErrNotReportable, inc.Verdict)
	}
	to := inc.To
	if len(to) == 0 {
		to = g.opts.To
	}
	if len(to) == 0 {
		return nil, ErrNoRecipient
	}
	boundary := ""
	for range 10 {
		b := g.opts.Boundary()
		if b != "" && !bytes.Contains(inc.Original, []byte("--"+b)) {
			boundary = b
			break
		}
	}
	if boundary == "" {
		return nil, ErrBoundary
	}

	lim := &limits{maxFields: 10000, maxFieldBytes: 1 << 20, maxParts: 1, maxDepth: 1}
	headerBlock, _ := splitHeader(inc.Original)
	ofs, _, _ := parseFields(headerBlock, lim)
	orig := &entity{fields: ofs}
	subject := decodeWords(orig.get("Subject"))
	fromDomain := ""
	if a, err := mail.ParseAddress(decodeWords(orig.get("From"))); err == nil {
		if _, d, ok := strings.Cut(a.Address, "@"); ok {
			fromDomain = strings.ToLower(d)
		}
	}
	whole := g.opts.MaxOriginalBytes < 0 || len(inc.Original) <= g.opts.MaxOriginalBytes

	var b bytes.Buffer
	hdr := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	hdr("From", g.opts.From)
	hdr("To", strings.Join(to, ", "))
	hdr("Date", g.opts.Now().Format(dateLayout))
	hdr("Message-ID", "<"+g.opts.MessageID()+">")
	hdr("Subject", strings.TrimRight(fmt.Sprintf("[outguard] %s report: %s", strings.ToLower(inc.Verdict), encodeSubject(subject)), " "))
	hdr("Auto-Submitted", "auto-generated")
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", fmt.Sprintf("multipart/report; report-type=feedback-report;\r\n\tboundary=\"%s\"", boundary))
	b.WriteString("\r\nThis is an abuse report in the Abuse Reporting Format (RFC 5965).\r\n")

	// Part 1: for people.
	text := g.humanText(inc, whole)
	b.WriteString("\r\n--" + boundary + "\r\n")
	if isASCII(text) {
		hdr("Content-Type", "text/plain; charset=utf-8")
		hdr("Content-Transfer-Encoding", "7bit")
		b.WriteString("\r\n" + text)
	} else {
		hdr("Content-Type", "text/plain; charset=utf-8")
		hdr("Content-Transfer-Encoding", "quoted-printable")
		b.WriteString("\r\n")
		w := quotedprintable.NewWriter(&b)
		_, _ = w.Write([]byte(text))
		_ = w.Close()
	}

	// Part 2: for machines.
	b.WriteString("\r\n--" + boundary + "\r\n")
	hdr("Content-Type", "message/feedback-report")
	hdr("Content-Transfer-Encoding", "7bit")
	b.WriteString("\r\n")
	fld := func(k, v string) { hdr(k, encodeField(v)) }
	fld("Feedback-Type", ft)
	fld("User-Agent", "outguard/"+g.opts.Version)
	fld("Version", "1")
	fld("Original-Mail-From", "<"+inc.MailFrom+">")
	for _, r := range inc.RcptTo {
		fld("Original-Rcpt-To", "<"+r+">")
	}
	if !inc.Arrival.IsZero() {
		fld("Arrival-Date", inc.Arrival.Format(dateLayout))
	}
	fld("Reporting-MTA", "dns; "+g.opts.ReportingMTA)
	if inc.SourceIP.IsValid() {
		fld("Source-IP", inc.SourceIP.Unmap().String())
	}
	if inc.SourcePort > 0 {
		fld("Source-Port", strconv.Itoa(inc.SourcePort))
	}
	if inc.User != "" {
		fld("Authentication-Results", g.opts.ReportingMTA+"; auth=pass smtp.auth="+authValue(inc.User))
	}
	if fromDomain != "" {
		fld("Reported-Domain", fromDomain)
	}

	// Part 3: the evidence.
	b.WriteString("\r\n--" + boundary + "\r\n")
	if whole {
		hdr("Content-Type", "message/rfc822")
		hdr("Content-Disposition", "inline")
		hdr("Content-Transfer-Encoding", cteFor(inc.Original))
		b.WriteString("\r\n")
		b.Write(inc.Original)
	} else {
		hdr("Content-Type", "text/rfc822-headers")
		hdr("Content-Transfer-Encoding", cteFor(headerBlock))
		b.WriteString("\r\n")
		b.Write(headerBlock)
	}
	b.WriteString("\r\n--" + boundary + "--\r\n")
	return b.Bytes(), nil
}

func (g *Generator) humanText(inc Incident, whole bool) string {
	var t strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&t, format+"\r\n", args...) }
	line("This is an abuse report from outguard on %s.", g.opts.ReportingMTA)
	line("")
	line("A message submitted through this relay was refused and quarantined.")
	line("")
	orNone := func(s string) string {
		if s == "" {
			return "(none)"
		}
		return s
	}
	line("  Outgoing user:         %s", orNone(inc.User))
	line("  Administrative domain: %s", orNone(inc.Domain))
	line("  Identity:              %s", orNone(inc.Identity))
	line("  Verdict:               %s (score %.2f)", strings.ToLower(inc.Verdict), inc.Score)
	line("  Reasons:               %s", orNone(strings.Join(inc.Reasons, ", ")))
	line("  Transaction id:        %s", orNone(inc.TxID))
	sender := inc.MailFrom
	if sender == "" {
		sender = "<> (null sender)"
	}
	line("  Envelope sender:       %s", sender)
	line("  Recipients:            %d", len(inc.RcptTo))
	if inc.SourceIP.IsValid() {
		line("  Client:                %s port %d", inc.SourceIP.Unmap(), inc.SourcePort)
	}
	line("")
	if whole {
		line("The original message is attached unmodified (message/rfc822).")
	} else {
		line("The original message (%d bytes) is larger than the report cap of", len(inc.Original))
		line("%d bytes, so only its header is attached (text/rfc822-headers).", g.opts.MaxOriginalBytes)
		line("The whole message is kept in outguard's quarantine.")
	}
	line("")
	line("What you can do:")
	if inc.TxID != "" {
		line("  outguard quarantine show %s", shellQuote(inc.TxID))
		line("  outguard quarantine raw %s", shellQuote(inc.TxID))
	}
	if inc.Identity != "" {
		line("  outguard lock identity %s --domain %s --reason 'abuse report %s'", shellQuote(inc.Identity), shellQuote(inc.Domain), inc.TxID)
	}
	if inc.User != "" {
		line("  outguard lock user %s --reason 'abuse report %s'", shellQuote(inc.User), inc.TxID)
	}
	return t.String()
}

// shellQuote quotes s for a POSIX shell when it needs quoting.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@._-+=:/") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// authValue makes a user name fit the smtp.auth property of RFC 8601: a
// value with characters outside a token is quoted.
func authValue(u string) string {
	if strings.Trim(u, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@._-+!#$%&'*/=?^`{|}~") == "" {
		return u
	}
	return strconv.Quote(u)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// encodeSubject keeps the subject on one logical line and Q-encodes it when
// it is not ASCII.
func encodeSubject(s string) string {
	s = strings.ToValidUTF8(strings.Join(strings.Fields(s), " "), "\uFFFD")
	if r := []rune(s); len(r) > maxSubjectRunes {
		s = string(r[:maxSubjectRunes]) + "..."
	}
	if isASCII(s) {
		return s
	}
	// Fold between encoded words so no line grows past 78 characters.
	return strings.ReplaceAll(mime.QEncoding.Encode("utf-8", s), "?= =?", "?=\r\n =?")
}

// maxSubjectRunes bounds the original subject quoted in the report's.
const maxSubjectRunes = 200

// encodeField keeps a feedback-report field 7bit: line breaks are removed
// and non-ASCII values are written as RFC 2047 encoded words, which Parse
// decodes.
func encodeField(v string) string {
	v = strings.Join(strings.Fields(v), " ")
	if isASCII(v) {
		return v
	}
	return mime.QEncoding.Encode("utf-8", v)
}

// cteFor is 8bit for content with bytes above 127, else 7bit. The content
// is never re-encoded.
func cteFor(b []byte) string {
	for _, c := range b {
		if c >= 0x80 {
			return "8bit"
		}
	}
	return "7bit"
}
