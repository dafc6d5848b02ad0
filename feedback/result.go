package feedback

import (
	"errors"
	"time"

	"github.com/outguard/outguard/arf"
)

// Reasons a complaint was not counted toward automatic locking
// (Result.NotCounted).
const (
	NotCountedUnlisted     = "unlisted-reporter"    // from no reporter in arf.reporters
	NotCountedUnattributed = "not-attributed"       // no transaction or identity found
	NotCountedIdentityOnly = "identity-header-only" // found by the identity header alone, and the reporter does not opt in
	NotCountedNoIdentity   = "no-identity"          // the transaction has no identity to count
	NotCountedType         = "feedback-type"        // not an abuse, fraud or virus report
	NotCountedDuplicate    = "duplicate"            // this reporter already complained about this transaction
)

// Result is what intake made of one report: the parse result, the
// attribution and what it led to. It is also the stored form of an
// accepted report (JSON, under "<id>/meta"), so its keys stay stable.
type Result struct {
	// ID is the intake id under which the report is stored; "" when it
	// was refused or is a copy of a stored one.
	ID     string     `json:"id"`
	Source string     `json:"source"`
	Parse  arf.Result `json:"parse"`
	// Received is when intake got the report.
	Received time.Time `json:"received"`
	// Reporter is the arf.reporters entry the report came from, "" when
	// none.
	Reporter string `json:"reporter"`
	// Method is how the complaint was attributed: trace-token,
	// message-id, identity-header or none.
	Method   string `json:"attribution"`
	TxID     string `json:"tx_id,omitempty"`
	Domain   string `json:"domain,omitempty"`
	User     string `json:"user,omitempty"`
	Identity string `json:"identity,omitempty"`
	// Counted is set when the complaint was counted toward automatic
	// locking; otherwise NotCounted says why.
	Counted    bool   `json:"counted"`
	NotCounted string `json:"not_counted,omitempty"`
	// Duplicate is set for a report already received (DuplicateOf is its
	// id; nothing was stored) or a second complaint of the same reporter
	// about the same transaction (stored, not counted).
	Duplicate   bool   `json:"duplicate,omitempty"`
	DuplicateOf string `json:"duplicate_of,omitempty"`
	// Locked is set when this complaint locked the identity.
	Locked bool `json:"locked"`
	// Learned is set when the complaint's original taught the content
	// model (an allow-listed reporter's report with the original).
	Learned bool `json:"learned,omitempty"`

	// Digest and DedupKey are the index entries the report holds, kept
	// with it so that retention can remove them; not shown by the API.
	Digest   string `json:"digest,omitempty"`
	DedupKey string `json:"dedup_key,omitempty"`
}

// Attributed reports whether the report was matched to a transaction or
// an identity.
func (r Result) Attributed() bool { return r.Method != string(arf.MethodNone) }

// ErrNotFeedback wraps the parser's refusal of a message that is not a
// feedback report.
var ErrNotFeedback = errors.New("not a feedback report")
