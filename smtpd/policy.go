package smtpd

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	"github.com/emersion/go-smtp"
)

// Transaction is what the relay knows of one mail transaction, from MAIL
// to its end. The session owns it; a Check may read it at any stage but
// must not keep it after Close.
type Transaction struct {
	// ID is the transaction's log id, shown to the client in replies.
	ID       string
	Listener string
	Start    time.Time
	Client   netip.AddrPort
	Helo     string
	TLS      bool
	// User is the outgoing user; nil for feedback mail on a Feedback
	// listener.
	User *User
	// AuthName is the SMTP AUTH user name, empty for network users.
	AuthName string
	// Feedback marks mail to outguard's own feedback address.
	Feedback bool
	From     string
	Opts     MailOptions
	// Rcpts holds every RCPT attempted up to the recipient limit, with
	// the reply it got; after DATA the accepted ones carry the final
	// reply. Only the session appends to it (see AddRcpt).
	Rcpts []Recipient
	// RcptsOverLimit counts the RCPTs refused with 452 4.5.3 because
	// Rcpts had reached the recipient limit; they are not in Rcpts.
	RcptsOverLimit int

	accepted int // recipients in Rcpts that are not Refused
}

// AddRcpt records one RCPT and its outcome.
func (tx *Transaction) AddRcpt(r Recipient) {
	tx.Rcpts = append(tx.Rcpts, r)
	if !r.Refused {
		tx.accepted++
	}
}

// NumAccepted returns how many recipients were accepted so far, in
// constant time.
func (tx *Transaction) NumAccepted() int { return tx.accepted }

// Accepted returns the recipients the next hop accepted.
func (tx *Transaction) Accepted() []string {
	out := make([]string, 0, tx.accepted)
	for _, r := range tx.Rcpts {
		if !r.Refused {
			out = append(out, r.Addr)
		}
	}
	return out
}

// Recipient is one RCPT and its outcome.
type Recipient struct {
	Addr string
	// Refused is set when the RCPT itself was refused (by outguard or by
	// the next hop); the message never went to this recipient.
	Refused bool
	// Code and Message are the reply: the RCPT reply when Refused, else
	// the final reply after DATA (250 until then).
	Code    int
	Message string
	// Enhanced is the refusal's enhanced status code (RFC 3463), when
	// Refused.
	Enhanced smtp.EnhancedCode
	// NextHop is set when the next hop gave the refusal (not outguard).
	NextHop bool
}

// Action is what happens to a message after the Policy's Data step.
type Action int

const (
	// Relay sends the message on to the next hop.
	Relay Action = iota
	// Refuse answers Decision.Reply (4xx or 5xx) and sends nothing.
	Refuse
	// Consume answers 250 without relaying: the Policy kept the message
	// (feedback reports).
	Consume
)

// Decision is a Check's verdict on one message.
type Decision struct {
	Action Action
	// Reply is the refusal sent to the client, for Refuse. Its text
	// should end with the transaction id.
	Reply *smtp.SMTPError
	// Outcome is recorded for Refuse: quarantined, rejected or deferred.
	Outcome string
	// AddHeaders are complete header lines prepended (below Received)
	// before relaying; StripHeaders are names of fields removed.
	AddHeaders   []string
	StripHeaders []string
}

// Outcomes (Result.Outcome) of a transaction that reached DATA, as counted and logged.
const (
	OutcomeAccepted    = "accepted"
	OutcomeQuarantined = "quarantined"
	OutcomeRejected    = "rejected"
	OutcomeDeferred    = "deferred"
	OutcomeFailed      = "failed"
)

// Result is the final state of a transaction, given to Check.Close.
type Result struct {
	// Outcome is one of the Outcome constants, or "" when the client
	// ended the transaction before DATA.
	Outcome string
	// Reply is what the client was told after DATA.
	Reply *smtp.SMTPError
	// NextHopReply is the next hop's final reply text, when it gave one,
	// and NextHopCode its code.
	NextHopReply string
	NextHopCode  int
	// Decision is what the Check decided (zero when it never ran).
	Decision Decision
	// Size is the message size; Duration runs from MAIL to the reply.
	Size     int64
	Duration time.Duration
	// Err is the internal error behind a 4xx, if any.
	Err error
}

// Policy starts the per-transaction check. Begin runs at MAIL; an error
// (an *smtp.SMTPError, e.g. 550 5.7.1 for a locked user) refuses MAIL.
type Policy interface {
	Begin(ctx context.Context, tx *Transaction) (Check, error)
}

// Check is one transaction's check. Data runs after the whole message has
// been received and before the next hop sees any of it; an error becomes a
// reply through the relay's one translation point (ErrTempfail: 451 4.7.1).
// Close is called exactly once when the transaction ends, whatever
// happened, and before the client gets the final reply; it must not block
// on slow work.
type Check interface {
	Data(ctx context.Context, tx *Transaction, msg *Message) (Decision, error)
	Close(tx *Transaction, msg *Message, res Result)
}

// Committer is an optional extra of a Check. When the next hop has
// accepted a relayed message, the session calls Commit before it answers
// 250, and then Close: Commit makes the transaction's record durable and
// returns once it is. An error means the record could not be written: the
// client then gets 451 4.3.0 instead of 250, and Close sees the outcome
// deferred. So no client hears 250 for mail that left no record.
type Committer interface {
	Commit(ctx context.Context, tx *Transaction, msg *Message, res Result) error
}

// RcptChecker is an optional extra of a Check: Rcpt runs for each RCPT
// before it is forwarded to the next hop; an error (an *smtp.SMTPError)
// refuses that recipient only.
type RcptChecker interface {
	Rcpt(ctx context.Context, tx *Transaction, to string) error
}

// LogAttrser is an optional extra of a Check: AppendLogAttrs appends to
// dst what the Check learnt of the transaction (the identity, the
// verdict and its score), for the transaction's log line. It is called
// once, after Close.
type LogAttrser interface {
	AppendLogAttrs(dst []slog.Attr) []slog.Attr
}

// PolicyFunc adapts a function to Policy.
type PolicyFunc func(ctx context.Context, tx *Transaction) (Check, error)

// Begin calls f.
func (f PolicyFunc) Begin(ctx context.Context, tx *Transaction) (Check, error) { return f(ctx, tx) }

// RelayAll is the Policy that relays every message.
var RelayAll Policy = PolicyFunc(func(context.Context, *Transaction) (Check, error) {
	return relayAllCheck{}, nil
})

type relayAllCheck struct{}

func (relayAllCheck) Data(context.Context, *Transaction, *Message) (Decision, error) {
	return Decision{Action: Relay}, nil
}

func (relayAllCheck) Close(*Transaction, *Message, Result) {}
