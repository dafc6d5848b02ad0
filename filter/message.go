package filter

import (
	"io"
	"net/netip"
	"strings"

	"github.com/emersion/go-message/mail"
)

// Envelope is what the SMTP transaction knows about a message besides its
// content. The caller fills it in after ParseMessage; every field may be
// empty when unknown (as for `outguard classify` on a file).
type Envelope struct {
	// MailFrom is the MAIL FROM address, "" for the null sender.
	MailFrom string
	// Rcpts are the RCPT TO addresses, in order.
	Rcpts []string
	// ClientIP is the address of the SMTP client.
	ClientIP netip.Addr
	// Helo is the name the client gave in EHLO or HELO.
	Helo string
	// User is the authenticated outgoing user.
	User string
	// Domain is the user's administrative domain.
	Domain string
	// Identity is the end user found behind the message, if any.
	Identity string
	// TransactionID is the log id of the transaction; sent to rspamd as
	// Queue-Id and used in logs.
	TransactionID string
	// AllowedSenderDomains are the header From domains the user may send
	// as; empty means any.
	AllowedSenderDomains []string
	// Thresholds are the user's score thresholds of the built-in engine;
	// zero fields take the engine's.
	Thresholds Thresholds
}

// Thresholds are per-user score thresholds of the built-in engine.
type Thresholds struct {
	// Spam is the total score from which a message is spam.
	Spam float64
	// Suspect is the total score from which a message that is not
	// blocked is suspect.
	Suspect float64
}

// Message is a parsed message plus its envelope. Build one with
// ParseMessage or ParseBytes; it is read-only once Classify has been
// called, and engines must not modify it.
type Message struct {
	Envelope

	// Header is the top-level header.
	Header mail.Header
	// Parts are the leaf parts of the MIME tree in the order they appear,
	// decoded, including the parts of attached messages.
	Parts []*Part
	// URLs are the distinct links found in text and HTML parts.
	URLs []URL
	// BodyText is the text of the inline (non-attachment) text parts,
	// HTML converted to text, joined by newlines.
	BodyText string
	// Defects lists what was malformed or cut by a limit, in plain words.
	Defects []string
	// Gaps is the content the engines cannot see whole because a parsing
	// limit was reached or an archive could not be opened, at most one
	// per limit and kind. Classify copies it into Verdict.Gaps.
	Gaps []Gap

	raw  io.ReaderAt
	size int64
}

// Raw returns a reader of the undecoded message, for engines that send the
// whole message elsewhere. Each call returns a new reader positioned at the
// start.
func (m *Message) Raw() io.Reader { return io.NewSectionReader(m.raw, 0, m.size) }

// Size is the length in bytes of the undecoded message.
func (m *Message) Size() int64 { return m.size }

// Attachments returns the parts that carry a file name or are marked as
// attachments.
func (m *Message) Attachments() []*Part {
	var out []*Part
	for _, p := range m.Parts {
		if p.IsAttachment() {
			out = append(out, p)
		}
	}
	return out
}

// Part is one leaf of the MIME tree.
type Part struct {
	// Path is the position in the tree, "1.2" for the second child of the
	// first child; "" for a single-part message.
	Path string
	// ContentType is the lower-case media type, "text/plain" when absent.
	ContentType string
	// Disposition is the lower-case Content-Disposition value, e.g.
	// "attachment", or "".
	Disposition string
	// Filename comes from the Content-Disposition filename or the
	// Content-Type name parameter, decoded.
	Filename string
	// Size is the decoded size, which may exceed len(Data) when Truncated.
	Size int64
	// Data is the decoded content (transfer encoding removed; text parts
	// converted to UTF-8), at most Limits.MaxPartBytes.
	Data []byte
	// Truncated is set when Data holds less than the whole part.
	Truncated bool
	// Text is the text of a text/plain or HTML part (HTML converted).
	Text string
	// HTML is set for HTML parts and HTML attachments.
	HTML bool
	// PasswordForm is set for HTML containing a password input field.
	PasswordForm bool
	// Archive lists the entries of a zip archive, including those of
	// nested archives (named "outer.zip/inner.zip/file").
	Archive []ArchiveEntry
}

// IsAttachment reports whether the part is a file rather than message
// text.
func (p *Part) IsAttachment() bool {
	return p.Filename != "" || p.Disposition == "attachment"
}

// ArchiveEntry is one file inside an attached archive.
type ArchiveEntry struct {
	// Name is the path inside the archive, prefixed by the names of the
	// enclosing archives for nested ones.
	Name string
	// Size is the uncompressed size the archive declares.
	Size uint64
	// Encrypted entries cannot be read; only their names are known.
	Encrypted bool
	// Data is the start of the uncompressed content, bounded by
	// Limits.MaxArchiveBytes across the archive.
	Data []byte
}

// URL is a link found in the message.
type URL struct {
	// Raw is the URL as written (after HTML entity decoding).
	Raw string
	// Host is the lower-case host name or IP literal without brackets and
	// port; "" when it could not be parsed.
	Host string
	// Userinfo is the part before "@" in the authority, if any.
	Userinfo string
	// Text is the visible text of an HTML link; "" for URLs found in text.
	Text string
	// Href is set for URLs taken from HTML attributes.
	Href bool
}

// headerAddrFallback pulls something address-like out of a header value
// that net/mail could not parse.
func headerAddrFallback(v string) string {
	if i := strings.LastIndexByte(v, '<'); i >= 0 {
		v = v[i+1:]
		if j := strings.IndexByte(v, '>'); j >= 0 {
			v = v[:j]
		}
	}
	return strings.TrimSpace(v)
}

// domainOf returns the lower-case domain part of an address, or "".
func domainOf(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 || i == len(addr)-1 {
		return ""
	}
	return strings.ToLower(strings.TrimSuffix(addr[i+1:], "."))
}
