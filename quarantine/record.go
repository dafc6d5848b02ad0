package quarantine

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Status is the outcome of a transaction.
type Status uint8

// The outcomes a record can have. The zero Status is invalid.
const (
	// StatusAccepted: the next hop accepted the message and the client got 250.
	StatusAccepted Status = iota + 1
	// StatusQuarantined: classified spam, phishing or virus, refused with
	// 550 and its raw content kept in the quarantine.
	StatusQuarantined
	// StatusRejected: refused by a lock or a policy, content not kept.
	StatusRejected
	// StatusDeferred: answered 4xx by outguard (a scanner failed with
	// on_error tempfail, a store error, ...).
	StatusDeferred
	// StatusFailed: the next hop refused or could not take the message.
	StatusFailed
	// StatusReleased: quarantined (the client heard 550), then released
	// by an admin and delivered to the next hop. Release sets it; reports
	// count the message as refused, as it was when it arrived.
	StatusReleased
	statusEnd
)

var statusNames = [...]string{"", "accepted", "quarantined", "rejected", "deferred", "failed", "released"}

// String returns the status's lower-case name.
func (s Status) String() string {
	if s == 0 || s >= statusEnd {
		return fmt.Sprintf("status(%d)", uint8(s))
	}
	return statusNames[s]
}

// ParseStatus parses a status name as String writes it.
func ParseStatus(s string) (Status, error) {
	for i := StatusAccepted; i < statusEnd; i++ {
		if strings.EqualFold(s, statusNames[i]) {
			return i, nil
		}
	}
	return 0, fmt.Errorf("%w: status %q: use accepted, quarantined, rejected, deferred or failed", ErrBadQuery, s)
}

// Verdict is the classification of a message's content.
type Verdict uint8

// Verdicts, least severe first. The zero Verdict means the message was not
// classified (refused before the scanners ran).
const (
	VerdictNone Verdict = iota
	VerdictClean
	VerdictSpam
	VerdictPhishing
	VerdictVirus
	verdictEnd
)

var verdictNames = [...]string{"none", "clean", "spam", "phishing", "virus"}

// String returns the verdict's lower-case name.
func (v Verdict) String() string {
	if v >= verdictEnd {
		return fmt.Sprintf("verdict(%d)", uint8(v))
	}
	return verdictNames[v]
}

// ParseVerdict parses a verdict name as String writes it.
func ParseVerdict(s string) (Verdict, error) {
	for i := VerdictNone; i < verdictEnd; i++ {
		if strings.EqualFold(s, verdictNames[i]) {
			return i, nil
		}
	}
	return 0, fmt.Errorf("%w: verdict %q: use clean, spam, phishing, virus or none", ErrBadQuery, s)
}

// Band is the classifier's band of a message.
type Band uint8

// The bands; the zero Band is clean (and what unclassified records have).
const (
	BandClean Band = iota
	BandSuspect
	BandSpam
	bandEnd
)

var bandNames = [...]string{"clean", "suspect", "spam"}

// String returns clean, suspect or spam.
func (b Band) String() string {
	if b >= bandEnd {
		return fmt.Sprintf("band(%d)", uint8(b))
	}
	return bandNames[b]
}

// ParseBand parses a band name as String writes it.
func ParseBand(s string) (Band, error) {
	for i := BandClean; i < bandEnd; i++ {
		if strings.EqualFold(s, bandNames[i]) {
			return i, nil
		}
	}
	return 0, fmt.Errorf("%w: band %q: use clean, suspect or spam", ErrBadQuery, s)
}

// Recipient is one envelope recipient and what became of it.
type Recipient struct {
	// Address is the RCPT TO address.
	Address string
	// Code and Text are the reply the client got for this recipient: at
	// RCPT if it was refused there, else the final reply after DATA.
	Code int
	Text string
	// Refused is true when the recipient was refused at RCPT (by outguard
	// or by the next hop), so the message was never meant to reach it.
	// Release skips refused recipients.
	Refused bool
}

// Record is the message log entry of one transaction that reached DATA.
type Record struct {
	// ID is the log id, made by NewID for the transaction's start time;
	// it orders the log, and its time is the one searches, reports and
	// retention use.
	ID string
	// Time is when the transaction started; zero means the id's time.
	Time time.Time
	// Listener is the name of the SMTP listener.
	Listener string
	// ClientIP and ClientPort are the sending MTA's address.
	ClientIP   netip.Addr
	ClientPort uint16
	// User is the outgoing user; Domain its administrative domain.
	User   string
	Domain string
	// Identity is the end user found by the identity rules, or "".
	Identity string
	// IdentitySource names the rule that found Identity, e.g. "header
	// X-AuthUser" or "envelope_sender"; "" when there is none.
	IdentitySource string
	// IdentityReason says why a value the rules found was not taken, e.g.
	// "header X-AuthUser: 2 occurrences with different values
	// (occurrence: only)" (docs/config-identity.md); "" when there is
	// nothing to say.
	IdentityReason string
	// Sender is the envelope sender (MAIL FROM), "" for the null sender.
	Sender     string
	Recipients []Recipient
	// HeaderFrom, Subject and MessageID are taken from the header, decoded.
	HeaderFrom string
	Subject    string
	MessageID  string
	// Size is the message size in bytes.
	Size int64
	// Status is the transaction's outcome.
	Status Status
	// Verdict, Score and Reasons are the classification.
	Verdict Verdict
	Score   float64
	Reasons []string
	// Band is the classifier's band: clean, suspect or spam (blocking).
	Band Band
	// Model names the content model version that judged the message; ""
	// when none did.
	Model string
	// Learned is "spam" or "ham" once an operator taught the content
	// model with this message, else "".
	Learned string
	// Partial names the limits that left content unscanned (e.g.
	// max_depth, archive_encrypted), sorted; empty when the engines saw
	// the whole message. A record with Partial set is "partially scanned".
	Partial []string
	// Campaign is the id of the campaign the message belongs to (the same
	// content from many identities, docs/campaigns.md); "" for none.
	Campaign string
	// NextHopReply is the next hop's final reply, e.g. "250 2.0.0 queued as X".
	NextHopReply string
	// Duration is how long the transaction took from DATA to the reply.
	Duration time.Duration
	// TraceToken is the opaque token put in the trace header, for ARF
	// attribution; "" when none was added.
	TraceToken string

	// Complaints counts third-party complaints attributed to this
	// transaction by AddComplaint; LastComplaint is when the latest came.
	Complaints    int
	LastComplaint time.Time

	// Quarantine describes the stored content of a quarantined
	// transaction; nil for the other outcomes. Set by the store.
	Quarantine *QuarantineInfo
}

// QuarantineInfo is the state of a quarantined message's content.
type QuarantineInfo struct {
	// RawSize and StoredSize are the message's size as received and as
	// stored (compressed).
	RawSize    int64
	StoredSize int64
	// Released is set once the message was released, by whom and when.
	ReleasedAt time.Time
	ReleasedBy string
	// ReleaseReason is the reason the releaser gave ("" when none), and
	// ReleaseLearn is set when the release asked to teach the content
	// model the message as ham ("release and don't block this kind
	// again"); whether it was taught is Record.Learned.
	ReleaseReason string
	ReleaseLearn  bool
	// Deleted is set once the content was deleted by an admin.
	DeletedAt time.Time
	DeletedBy string
	// Expired is set when retention removed the content.
	Expired bool
}

// HasContent reports whether the raw message is still stored.
func (q *QuarantineInfo) HasContent() bool {
	return q != nil && q.DeletedAt.IsZero() && !q.Expired
}

// Released reports whether the message was released.
func (q *QuarantineInfo) Released() bool { return q != nil && !q.ReleasedAt.IsZero() }

// classes returns the report classifications a record counts toward:
// always classAll, then accepted or rejected by status, then its verdict's
// class.
func (r *Record) classes(buf []Class) []Class {
	buf = append(buf[:0], ClassAll)
	switch r.Status {
	case StatusAccepted:
		buf = append(buf, ClassAccepted)
	case StatusQuarantined, StatusRejected, StatusReleased:
		buf = append(buf, ClassRejected)
	}
	switch r.Verdict {
	case VerdictClean:
		buf = append(buf, ClassClean)
	case VerdictSpam:
		buf = append(buf, ClassSpam)
	case VerdictPhishing:
		buf = append(buf, ClassPhishing)
	case VerdictVirus:
		buf = append(buf, ClassVirus)
	}
	return buf
}

// validate checks what the store relies on and canonicalises the id.
func (r *Record) validate() error {
	id, err := ParseID(r.ID)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadRecord, err)
	}
	r.ID = id
	if r.Status == 0 || r.Status >= statusEnd {
		return fmt.Errorf("%w: %s: status %d", ErrBadRecord, r.ID, r.Status)
	}
	if r.Verdict >= verdictEnd {
		return fmt.Errorf("%w: %s: verdict %d", ErrBadRecord, r.ID, r.Verdict)
	}
	if r.Time.IsZero() {
		r.Time, _ = IDTime(r.ID)
	}
	return nil
}
