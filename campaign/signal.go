package campaign

import (
	"fmt"
	"time"
)

// Message describes one observed message, besides its fingerprint.
type Message struct {
	// TxID is the transaction's log id, listed as evidence.
	TxID string
	// Identity is the sending identity and User the customer it belongs
	// to; the user threshold counts distinct users.
	Identity string
	User     string
	// Recipients is the number of envelope recipients.
	Recipients int
	// Verdict is the content verdict before the campaign check. A message
	// that Observe blocks is counted as Spam whatever this says.
	Verdict Verdict
	// Time is when the message was seen; zero means Options.Now().
	Time time.Time
}

// SignalKind names a campaign signal.
type SignalKind uint8

// The campaign signals; docs/campaigns.md describes each.
const (
	// SignalUsers: the campaign came from identities of more than
	// UserThreshold distinct users within UserWindow.
	SignalUsers SignalKind = iota + 1
	// SignalRecipients: this message's identity has sent the campaign to
	// more than RecipientThreshold recipients.
	SignalRecipients
	// SignalConfirmed: the message is a near-duplicate of a campaign
	// confirmed as spam or phishing.
	SignalConfirmed
)

// String returns the signal's name as used in logs and lock reasons.
func (k SignalKind) String() string {
	switch k {
	case SignalUsers:
		return "campaign_users"
	case SignalRecipients:
		return "campaign_recipients"
	case SignalConfirmed:
		return "campaign_confirmed"
	}
	return fmt.Sprintf("signal(%d)", uint8(k))
}

// Action is what a signal asks of the caller.
type Action uint8

// Actions, mildest first.
const (
	// Report: record and show; no effect on delivery.
	Report Action = iota + 1
	// Lock: lock the identities behind the signal (in monitor mode,
	// record that they would have been locked).
	Lock
	// Block: refuse this message with a permanent error naming the
	// campaign.
	Block
)

// String returns "report", "lock" or "block".
func (a Action) String() string {
	switch a {
	case Report:
		return "report"
	case Lock:
		return "lock"
	case Block:
		return "block"
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}

// Evidence is one transaction behind a signal.
type Evidence struct {
	TxID     string
	Identity string
	User     string
	Time     time.Time
}

// Signal is one campaign signal raised by Observe. Signals are level
// triggered: they are raised by every message while the condition holds;
// Crossed marks the message that made it hold.
type Signal struct {
	Kind     SignalKind
	Action   Action
	Campaign string
	// Count against Threshold within Window (Window is zero for counts
	// over the campaign's life). For SignalUsers, Count is exact up to
	// MaxEvidence and Saturated says it stopped there.
	Count     int
	Threshold int
	Window    time.Duration
	Saturated bool
	Crossed   bool
	// Similarity is the estimated Jaccard similarity to the matched
	// fingerprint (1 for an exact or attachment match).
	Similarity float64
	// Evidence lists the transactions behind Count, newest first, at most
	// MaxEvidence.
	Evidence []Evidence
	// Reason is a one-line explanation for logs, lock reasons and SMTP
	// replies; it names the campaign id.
	Reason string
}

// Result is the outcome of Observe.
type Result struct {
	// Campaign is the id of the campaign the message joined or started;
	// empty for an empty fingerprint.
	Campaign string
	// New reports that the message started the campaign.
	New bool
	// Similarity is the estimated Jaccard similarity to the fingerprint
	// it matched; 0 for a new campaign, 1 for exact and attachment matches.
	Similarity float64
	// Signals lists the signals raised, Block first, then Lock, then
	// Report.
	Signals []Signal
}

// Strongest returns the signal with the strongest action, if any.
func (r Result) Strongest() (Signal, bool) {
	if len(r.Signals) == 0 {
		return Signal{}, false
	}
	return r.Signals[0], true
}
