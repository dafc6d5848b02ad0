package arf

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"
)

// Defaults of ParseOptions.
const (
	DefaultParseMaxBytes  = 10 << 20
	DefaultMaxFields      = 1000
	DefaultMaxFieldBytes  = 64 << 10
	DefaultMaxParts       = 100
	DefaultMaxDepth       = 6
	DefaultIdentityHeader = "X-AuthUser"
	DefaultTraceHeader    = "X-Outguard-Trace"
)

// Profiles name the format a Feedback was read from.
const (
	ProfileARF      = "arf"              // RFC 5965 multipart/report
	ProfileBare     = "arf-bare"         // a lone message/feedback-report entity
	ProfileJMRP     = "jmrp"             // Microsoft JMRP "RFC822 Attachment" format
	ProfileAOLSCOMP = "legacy-aol-scomp" // AOL's feedback loop format before ARF (RFC 6449 appendix A.1)
)

// ParseOptions bound and configure Parse. The zero value is usable.
type ParseOptions struct {
	// MaxBytes caps the input read; a longer input is refused with
	// ErrLimitExceeded. Default DefaultParseMaxBytes (10 MiB).
	MaxBytes int64
	// MaxFields caps the fields of one header block. Default 1000.
	MaxFields int
	// MaxFieldBytes caps the length of one folded header field. Default
	// 64 KiB.
	MaxFieldBytes int
	// MaxParts caps the MIME parts in the whole message. Default 100.
	MaxParts int
	// MaxDepth caps nesting of multiparts and attached messages. Default 6.
	MaxDepth int
	// IdentityHeader names the header of the original message that holds
	// the identity, in the original's top-level header. Default X-AuthUser.
	IdentityHeader string
	// IdentityOccurrence says which occurrence of IdentityHeader names
	// the identity when the original carries several, as the identity
	// rule reading that header does (docs/config-identity.md,
	// "occurrence"), so that a complaint never names a value the
	// pipeline ignored. The zero value is OccurrenceOnly.
	IdentityOccurrence Occurrence
	// TraceHeader names outguard's trace header in the original. Default
	// X-Outguard-Trace.
	TraceHeader string
}

func (o *ParseOptions) defaults() {
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultParseMaxBytes
	}
	if o.MaxFields <= 0 {
		o.MaxFields = DefaultMaxFields
	}
	if o.MaxFieldBytes <= 0 {
		o.MaxFieldBytes = DefaultMaxFieldBytes
	}
	if o.MaxParts <= 0 {
		o.MaxParts = DefaultMaxParts
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = DefaultMaxDepth
	}
	if o.IdentityHeader == "" {
		o.IdentityHeader = DefaultIdentityHeader
	}
	if o.TraceHeader == "" {
		o.TraceHeader = DefaultTraceHeader
	}
}

// Field is one field of the message/feedback-report part, in the order
// found, name as written.
type Field struct {
	Name  string
	Value string
}

// Feedback is a parsed feedback report.
type Feedback struct {
	// Profile is the format it was read from: ProfileARF, ProfileBare,
	// ProfileJMRP or ProfileAOLSCOMP.
	Profile string
	// FeedbackType is lower case for the registered types (abuse, fraud,
	// virus, other, not-spam, auth-failure) and verbatim otherwise.
	FeedbackType string
	// Version is the Version field as written ("" when missing).
	Version   string
	UserAgent string
	// OriginalMailFrom and OriginalRcptTo are without angle brackets,
	// redaction placeholders kept as written.
	OriginalMailFrom string
	OriginalRcptTo   []string
	// ArrivalDate is zero when missing or unreadable.
	ArrivalDate time.Time
	// SourceIP is the canonical address; invalid when missing or
	// unreadable (SourceIPRaw then holds what was written).
	SourceIP    netip.Addr
	SourceIPRaw string
	SourcePort  int
	// ReportingMTA is the Reporting-MTA field as written.
	ReportingMTA string
	// ReportedDomain is lower case.
	ReportedDomain []string
	ReportedURI    []string
	// Incidents is the Incidents field, 1 when missing (one report, one
	// incident).
	Incidents             int
	AuthenticationResults string
	// Fields holds every field of the feedback-report part, extension
	// fields included.
	Fields []Field

	// HasOriginal is set when part 3 held a header block (message/rfc822
	// or text/rfc822-headers); OriginalHeadersOnly when only the header.
	HasOriginal         bool
	OriginalHeadersOnly bool
	// Original is the whole original message when part 3 held one
	// (message/rfc822, not redacted); nil otherwise.
	Original []byte
	// Header is the original message's top-level header.
	Header textproto.Header
	// MessageID is the original's Message-ID without angle brackets.
	MessageID string
	// Identity is the ParseOptions.IdentityHeader value of the original's
	// top-level header; "" when missing, a redaction placeholder, or
	// ambiguous (two different values: warning WarnIdentityAmbiguous).
	Identity string
	// TraceToken is the topmost ParseOptions.TraceHeader value of the
	// original's top-level header.
	TraceToken string

	// Warnings list the deviations from RFC 5965 that were tolerated, in
	// words, and the conditions that affect attribution as the codes
	// WarnOversizedFieldSkipped and WarnIdentityAmbiguous.
	Warnings []string

	// From is the address in the report's own From field (the outermost
	// message's), lower case; "" when missing or unreadable. Callers use
	// it to tell which feedback loop sent an uploaded report.
	From string
}

// Warnings that are codes rather than sentences, because they change what
// a complaint can be attributed to.
const (
	// WarnOversizedFieldSkipped: a header field of the original longer
	// than ParseOptions.MaxFieldBytes was left out; the other fields were
	// read.
	WarnOversizedFieldSkipped = "oversized-field-skipped"
	// WarnIdentityAmbiguous: the original carries the identity header
	// with two different values, so Identity is "".
	WarnIdentityAmbiguous = "identity-ambiguous"
)

func (f *Feedback) warn(format string, args ...any) {
	f.Warnings = append(f.Warnings, fmt.Sprintf(format, args...))
}

// Parse reads one feedback report from r. It reads at most opts.MaxBytes
// (plus one byte to detect overflow), so memory stays bounded whatever r
// holds. Errors wrap one of the sentinel errors (see ErrorCode).
func Parse(r io.Reader, opts ParseOptions) (*Feedback, error) {
	opts.defaults()
	b, err := io.ReadAll(io.LimitReader(r, opts.MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnreadable, err)
	}
	if int64(len(b)) > opts.MaxBytes {
		return nil, fmt.Errorf("%w: input larger than %d bytes", ErrLimitExceeded, opts.MaxBytes)
	}
	lim := &limits{maxFields: opts.MaxFields, maxFieldBytes: opts.MaxFieldBytes, maxParts: opts.MaxParts, maxDepth: opts.MaxDepth}
	p := &parser{opts: opts, lim: lim}
	fb, err := p.message(b, 0)
	if err != nil {
		return nil, err
	}
	h, _ := splitHeader(b)
	if fs, _, _, err := parseFieldsSkipping(h, lim); err == nil {
		fb.From = addressOf((&entity{fields: fs}).get("From"))
	}
	return fb, nil
}

// addressOf returns the lower-case address of a From field, "" when it
// does not parse.
func addressOf(v string) string {
	if v == "" {
		return ""
	}
	a, err := mail.ParseAddress(v)
	if err != nil {
		return ""
	}
	return strings.ToLower(a.Address)
}

type parser struct {
	opts ParseOptions
	lim  *limits
}

// message parses a whole message at the given nesting depth.
func (p *parser) message(b []byte, depth int) (*Feedback, error) {
	if depth > p.lim.maxDepth {
		return nil, fmt.Errorf("%w: nested deeper than %d", ErrLimitExceeded, p.lim.maxDepth)
	}
	top, err := parseEntity(b, p.lim)
	if err != nil {
		return nil, err
	}
	return p.dispatch(top, depth)
}

// dispatch reads a parsed entity according to its media type.
func (p *parser) dispatch(top *entity, depth int) (*Feedback, error) {
	if depth > p.lim.maxDepth {
		return nil, fmt.Errorf("%w: nested deeper than %d", ErrLimitExceeded, p.lim.maxDepth)
	}
	if len(top.fields) == 0 {
		return nil, fmt.Errorf("%w: no message header", ErrNotARF)
	}
	mt, params := top.mediaType()
	switch {
	case mt == "multipart/report":
		return p.report(top, params, depth)
	case mt == "message/feedback-report":
		fb := &Feedback{Profile: ProfileBare}
		fb.warn("a lone message/feedback-report entity, not a multipart/report")
		body, _ := top.decodedBody()
		if err := p.fields(fb, body); err != nil {
			return nil, err
		}
		fb.warn("no original message (part 3 missing)")
		return fb, nil
	case strings.HasPrefix(mt, "multipart/"):
		return p.forwarded(top, params, depth)
	}
	return nil, fmt.Errorf("%w: a %s message, not a multipart/report", ErrNotARF, mt)
}

// report handles a multipart/report.
func (p *parser) report(top *entity, params map[string]string, depth int) (*Feedback, error) {
	rt := strings.ToLower(strings.TrimSpace(params["report-type"]))
	parts, err := p.children(top, params, depth)
	if err != nil {
		return nil, err
	}
	idx := -1
	for i, e := range parts {
		if mt, _ := e.mediaType(); mt == "message/feedback-report" {
			idx = i
			break
		}
	}
	if idx < 0 {
		switch rt {
		case "feedback-report":
			return nil, fmt.Errorf("%w: multipart/report with report-type=feedback-report has no message/feedback-report part", ErrNoFeedbackReport)
		case "delivery-status":
			return nil, fmt.Errorf("%w: a delivery status notification (report-type=delivery-status), not a feedback report", ErrNotARF)
		case "":
			return nil, fmt.Errorf("%w: multipart/report without report-type and without a message/feedback-report part", ErrNoFeedbackReport)
		}
		return nil, fmt.Errorf("%w: a multipart/report with report-type=%s, not a feedback report", ErrNotARF, rt)
	}
	fb := &Feedback{Profile: ProfileARF}
	switch {
	case rt == "":
		fb.warn("multipart/report without report-type; read as feedback-report")
	case rt != "feedback-report":
		fb.warn("multipart/report with report-type=%s holds a message/feedback-report part; read as feedback-report", rt)
	}
	if len(parts) != 3 {
		fb.warn("%d MIME parts instead of 3", len(parts))
	}
	if idx != 1 {
		fb.warn("message/feedback-report is part %d instead of part 2", idx+1)
	}
	body, cte := parts[idx].decodedBody()
	if cte != "" && cte != "7bit" {
		fb.warn("message/feedback-report part has Content-Transfer-Encoding %s instead of 7bit", cte)
	}
	if err := p.fields(fb, body); err != nil {
		return nil, err
	}
	// The original is the part after the report; some senders put it
	// elsewhere, so fall back to any later or earlier part that holds one.
	order := make([]int, 0, len(parts))
	for i := idx + 1; i < len(parts); i++ {
		order = append(order, i)
	}
	for i := 0; i < idx; i++ {
		if i != 0 {
			order = append(order, i)
		}
	}
	found := false
	for _, i := range order {
		ok, err := p.original(fb, parts[i], depth)
		if err != nil {
			return nil, err
		}
		if ok {
			found = true
			break
		}
	}
	if !found {
		if len(parts) <= idx+1 {
			fb.warn("no original message (part 3 missing)")
		} else {
			fb.warn("no original message: no part is message/rfc822 or text/rfc822-headers")
		}
	}
	if fb.Incidents == 0 {
		fb.Incidents = 1
	}
	return fb, nil
}

// children splits a multipart entity into its parts.
func (p *parser) children(e *entity, params map[string]string, depth int) ([]*entity, error) {
	if depth+1 > p.lim.maxDepth {
		return nil, fmt.Errorf("%w: nested deeper than %d", ErrLimitExceeded, p.lim.maxDepth)
	}
	raw, err := splitMultipart(e.body, params["boundary"], p.lim)
	if err != nil {
		return nil, err
	}
	out := make([]*entity, 0, len(raw))
	for _, r := range raw {
		c, err := parseEntity(r, p.lim)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// original reads part 3 into fb. It returns false for a part that is not
// (a placeholder for) the original message.
func (p *parser) original(fb *Feedback, e *entity, depth int) (bool, error) {
	mt, _ := e.mediaType()
	headersOnly := false
	switch mt {
	case "message/rfc822", "message/global":
	case "text/rfc822-headers", "message/global-headers":
		headersOnly = true
	case "text/rfc822-header", "message/rfc822-headers":
		headersOnly = true
		fb.warn("original part has the misspelt type %s; read as text/rfc822-headers", mt)
	case "text/plain":
		body, _ := e.decodedBody()
		if isPlaceholder(body) {
			fb.warn("original message redacted: part 3 is a placeholder")
			return true, nil
		}
		return false, nil
	default:
		return false, nil
	}
	body, cte := e.decodedBody()
	if cte == "base64" || cte == "quoted-printable" {
		fb.warn("original part has Content-Transfer-Encoding %s", cte)
	}
	if isPlaceholder(body) {
		fb.warn("original message redacted: part 3 is a placeholder")
		return true, nil
	}
	if depth+1 > p.lim.maxDepth {
		return false, fmt.Errorf("%w: nested deeper than %d", ErrLimitExceeded, p.lim.maxDepth)
	}
	h, _ := splitHeader(body)
	fs, bad, skipped, err := parseFieldsSkipping(h, p.lim)
	if err != nil {
		return false, err
	}
	if skipped > 0 {
		fb.Warnings = append(fb.Warnings, WarnOversizedFieldSkipped)
	}
	if len(fs) == 0 {
		fb.warn("original part holds no header")
		return true, nil
	}
	if bad > 0 {
		fb.warn("original header has %d malformed lines", bad)
	}
	fb.HasOriginal = true
	fb.OriginalHeadersOnly = headersOnly
	if !headersOnly {
		fb.Original = body
	}
	hdr, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(headerForReader(fs))))
	if err == nil || errors.Is(err, io.EOF) {
		fb.Header = hdr
	}
	orig := &entity{fields: fs}
	fb.MessageID = stripAngles(orig.get("Message-ID"))
	id, ambiguous := identityOf(fs, p.opts.IdentityHeader, p.opts.IdentityOccurrence)
	fb.Identity = id
	if ambiguous {
		// Whoever wrote the second value, the complaint cannot say which
		// end user it is about.
		fb.Warnings = append(fb.Warnings, WarnIdentityAmbiguous)
	}
	fb.TraceToken = orig.get(p.opts.TraceHeader)
	return true, nil
}

// Occurrence says which occurrence of the identity header counts, as an
// identity rule's occurrence does (docs/config-identity.md).
type Occurrence string

// Occurrences.
const (
	// OccurrenceOnly, the default (also ""), takes the value only when
	// every occurrence carries it (compared without regard to case); two
	// different values, or a redacted occurrence beside a value, name no
	// identity (WarnIdentityAmbiguous).
	OccurrenceOnly Occurrence = "only"
	// OccurrenceFirst takes the topmost occurrence.
	OccurrenceFirst Occurrence = "first"
	// OccurrenceLast takes the bottommost occurrence.
	OccurrenceLast Occurrence = "last"
)

// ParseOccurrence parses "first", "last" or "only"; "" is OccurrenceOnly.
func ParseOccurrence(s string) (Occurrence, error) {
	switch o := Occurrence(s); o {
	case "":
		return OccurrenceOnly, nil
	case OccurrenceOnly, OccurrenceFirst, OccurrenceLast:
		return o, nil
	}
	return "", fmt.Errorf("arf: identity occurrence %q: use first, last or only", s)
}

// identityOf returns the identity named by the field name of fs under
// occ, "" when none: the field is missing, the occurrence that counts is
// empty or a redaction placeholder, or (OccurrenceOnly) the occurrences
// disagree, which is reported as ambiguous. first and last never look
// past the occurrence they take: another occurrence is a value the
// pipeline ignored.
func identityOf(fs []field, name string, occ Occurrence) (id string, ambiguous bool) {
	var vals []string
	for _, f := range fs {
		if strings.EqualFold(f.name, name) {
			vals = append(vals, f.value)
		}
	}
	if len(vals) == 0 {
		return "", false
	}
	usable := func(v string) bool { return v != "" && !IsRedacted(v) }
	switch occ {
	case OccurrenceFirst:
		if v := vals[0]; usable(v) {
			return v, false
		}
		return "", false
	case OccurrenceLast:
		if v := vals[len(vals)-1]; usable(v) {
			return v, false
		}
		return "", false
	}
	// only: one value, the same in every occurrence. A redacted or empty
	// occurrence beside others may have held another value.
	for _, v := range vals {
		if !usable(v) {
			return "", len(vals) > 1
		}
		if id != "" && !strings.EqualFold(id, v) {
			return "", true
		}
		if id == "" {
			id = v
		}
	}
	return id, false
}

// headerForReader rebuilds a clean header block for go-message's reader,
// which is stricter than this parser about field names.
func headerForReader(fs []field) []byte {
	var b bytes.Buffer
	for _, f := range fs {
		b.WriteString(f.name)
		b.WriteString(": ")
		b.WriteString(f.value)
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// isPlaceholder reports whether part 3 is a stand-in like "redacted"
// rather than a message or header.
func isPlaceholder(b []byte) bool {
	t := bytes.TrimSpace(b)
	if len(t) == 0 {
		return true
	}
	if len(t) > 200 || bytes.IndexByte(t, ':') > 0 && !bytes.Contains(bytes.ToLower(t), []byte("redacted")) {
		return false
	}
	first, _, _ := bytes.Cut(t, []byte("\n"))
	return IsRedacted(string(bytes.TrimSpace(first))) || !bytes.Contains(first, []byte(":"))
}

// registered feedback types are lower-cased; others kept verbatim.
var registeredTypes = map[string]bool{
	"abuse": true, "fraud": true, "virus": true, "other": true,
	"not-spam": true, "auth-failure": true, "opt-out": true, "opt-out-list": true,
}

// singleFields may appear at most once (RFC 5965 section 3.1, 3.2).
var singleFields = map[string]bool{
	"feedback-type": true, "user-agent": true, "version": true, "original-envelope-id": true,
	"original-mail-from": true, "arrival-date": true, "received-date": true, "reporting-mta": true,
	"source-ip": true, "incidents": true, "source-port": true,
}

// fields reads the machine-readable part.
func (p *parser) fields(fb *Feedback, body []byte) error {
	fs, bad, err := parseFields(body, p.lim)
	if err != nil {
		return err
	}
	if bad > 0 {
		fb.warn("feedback-report part has %d malformed lines", bad)
	}
	seen := map[string]int{}
	var arrival, received string
	for _, f := range fs {
		name := strings.ToLower(f.name)
		v := decodeWords(f.value)
		fb.Fields = append(fb.Fields, Field{Name: f.name, Value: v})
		seen[name]++
		if seen[name] > 1 && singleFields[name] {
			if name == "arrival-date" || name == "received-date" {
				prev := arrival
				if name == "received-date" {
					prev = received
				}
				if !sameDate(prev, v) {
					return fmt.Errorf("%w: %s appears twice with different values", ErrConflictingDates, f.name)
				}
			}
			fb.warn("%s appears %d times; the first is used", f.name, seen[name])
			continue
		}
		switch name {
		case "feedback-type":
			v = strings.TrimSpace(v)
			if registeredTypes[strings.ToLower(v)] {
				v = strings.ToLower(v)
			} else {
				fb.warn("unregistered feedback type %q", v)
			}
			fb.FeedbackType = v
		case "version":
			fb.Version = v
		case "user-agent":
			fb.UserAgent = v
		case "original-mail-from":
			fb.OriginalMailFrom = stripAngles(v)
		case "original-rcpt-to":
			fb.OriginalRcptTo = append(fb.OriginalRcptTo, stripAngles(v))
		case "arrival-date":
			arrival = v
		case "received-date":
			received = v
		case "source-ip":
			fb.SourceIPRaw = v
			a, err := ParseSourceIP(v)
			if err != nil {
				fb.warn("Source-IP %q is not an IP address", v)
			} else {
				fb.SourceIP = a
			}
		case "source-port":
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 0 || n > 65535 {
				fb.warn("Source-Port %q is not a port number", v)
			} else {
				fb.SourcePort = n
			}
		case "reporting-mta":
			fb.ReportingMTA = v
		case "reported-domain":
			fb.ReportedDomain = append(fb.ReportedDomain, strings.ToLower(strings.TrimSuffix(strings.TrimSpace(v), ".")))
		case "reported-uri":
			fb.ReportedURI = append(fb.ReportedURI, stripAngles(v))
		case "incidents":
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 1 {
				fb.warn("Incidents %q is not a positive number", v)
			} else {
				fb.Incidents = n
			}
		case "authentication-results":
			if fb.AuthenticationResults == "" {
				fb.AuthenticationResults = v
			}
		}
	}
	if fb.FeedbackType == "" {
		return fmt.Errorf("%w: the message/feedback-report part has no Feedback-Type field", ErrMissingFeedbackType)
	}
	switch {
	case fb.Version == "":
		fb.warn("Version missing")
	case strings.TrimSpace(fb.Version) != "1":
		fb.warn("Version %q instead of 1", fb.Version)
	}
	if fb.UserAgent == "" {
		fb.warn("User-Agent missing")
	}
	if arrival != "" && received != "" && !sameDate(arrival, received) {
		return fmt.Errorf("%w: Arrival-Date and Received-Date disagree", ErrConflictingDates)
	}
	if arrival == "" && received != "" {
		fb.warn("Received-Date used instead of Arrival-Date")
		arrival = received
	}
	if arrival != "" {
		t, unknown, err := ParseDate(arrival)
		switch {
		case err != nil:
			fb.warn("Arrival-Date %q is not a date", arrival)
		default:
			fb.ArrivalDate = t
			if unknown {
				fb.warn("Arrival-Date %q has no usable time zone; read as UTC", arrival)
			}
		}
	}
	return nil
}

// sameDate compares two date fields by instant, or as text when either does
// not parse.
func sameDate(a, b string) bool {
	ta, _, ea := ParseDate(a)
	tb, _, eb := ParseDate(b)
	if ea != nil || eb != nil {
		return strings.TrimSpace(a) == strings.TrimSpace(b)
	}
	return ta.Equal(tb)
}

var wordDecoder = &mime.WordDecoder{}

// decodeWords decodes RFC 2047 encoded words, which the generator uses for
// the rare non-ASCII field value; other values pass unchanged.
func decodeWords(s string) string {
	if !strings.Contains(s, "=?") {
		return s
	}
	d, err := wordDecoder.DecodeHeader(s)
	if err != nil {
		return s
	}
	return d
}
