package feedback

import (
	"context"
	"time"

	"github.com/outguard/outguard/arf"
)

// MessageLog is what intake needs of the message log: the lookups that
// attribute a complaint to a transaction, and the mark of a complaint on
// that transaction's record.
type MessageLog interface {
	arf.Lookup
	arf.IdentityLookup
	// AddComplaint records a complaint received at "at" on the log record
	// txID. A record no longer in the log is not an error.
	AddComplaint(ctx context.Context, txID string, at time.Time) error
}

// Complaint is a counted complaint about an identity, as the lock
// observer sees it. TxID is "" for an attribution by identity header.
type Complaint struct {
	Domain, User, Identity, TxID string
}

// LockObserver counts complaints toward automatic locking.
type LockObserver interface {
	// ObserveComplaint counts c and reports whether it locked the
	// identity.
	ObserveComplaint(ctx context.Context, c Complaint) (locked bool, err error)
}

// Learner teaches the content model.
type Learner interface {
	// LearnSpam teaches that the message raw is spam and returns the
	// model's score for it before and after learning.
	LearnSpam(raw []byte) (before, after float64, err error)
}
