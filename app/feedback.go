package app

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/outguard/outguard/arf"
	"github.com/outguard/outguard/feedback"
	"github.com/outguard/outguard/filter"
	"github.com/outguard/outguard/filter/content"
	"github.com/outguard/outguard/identity"
	"github.com/outguard/outguard/quarantine"
	"github.com/outguard/outguard/smtpd"
)

// This file wires the feedback intake (package feedback) to the message
// log, the lock manager, the content model and the feedback listener.

// storeLookup attributes complaints through the message log.
type storeLookup struct{ s *quarantine.Store }

var _ feedback.MessageLog = storeLookup{}

func ref(r *quarantine.Record) arf.TxRef {
	return arf.TxRef{TxID: r.ID, Domain: r.Domain, User: r.User, Identity: r.Identity}
}

// relayed reports whether a log record is of mail outguard handed on: a
// complaint can only be about such mail (a refused message never reached
// the complainant).
func relayed(r *quarantine.Record) bool {
	return r.Status == quarantine.StatusAccepted || r.Status == quarantine.StatusReleased
}

func (l storeLookup) ByTraceToken(ctx context.Context, token string) (arf.TxRef, bool, error) {
	tok, ok := identity.ParseTraceToken(token)
	if !ok {
		return arf.TxRef{}, false, nil
	}
	r, err := l.s.ByTraceToken(tok)
	if errors.Is(err, quarantine.ErrNotFound) || err == nil && !relayed(r) {
		return arf.TxRef{}, false, nil
	}
	if err != nil {
		return arf.TxRef{}, false, err
	}
	return ref(r), true, nil
}

func (l storeLookup) ByMessageID(ctx context.Context, id string) (arf.TxRef, bool, error) {
	r, err := l.s.ByMessageID(id)
	if errors.Is(err, quarantine.ErrNotFound) || err == nil && !relayed(r) {
		return arf.TxRef{}, false, nil
	}
	if err != nil {
		return arf.TxRef{}, false, err
	}
	return ref(r), true, nil
}

// ByIdentity finds the user and domain an identity last sent through.
func (l storeLookup) ByIdentity(ctx context.Context, ident string) (arf.TxRef, bool, error) {
	page, err := l.s.Search(quarantine.Query{Identity: ident, Limit: 1})
	if err != nil {
		return arf.TxRef{}, false, err
	}
	if len(page.Records) == 0 {
		return arf.TxRef{}, false, nil
	}
	r := ref(page.Records[0])
	r.TxID = "" // the identity is known, not which message was complained about
	return r, true, nil
}

// AddComplaint marks the log record; a record retention already removed
// is not an error.
func (l storeLookup) AddComplaint(ctx context.Context, txID string, at time.Time) error {
	err := l.s.AddComplaint(ctx, txID, quarantine.Complaint{Time: at})
	if errors.Is(err, quarantine.ErrNotFound) {
		return nil
	}
	return err
}

// complaintCounter counts complaints toward automatic locking under the
// user's policy of the running configuration.
type complaintCounter struct {
	ids   *identity.Manager
	state *atomic.Pointer[policyState]
}

func (c complaintCounter) ObserveComplaint(ctx context.Context, cp feedback.Complaint) (bool, error) {
	up := c.state.Load().user(cp.User)
	out, err := c.ids.Observe(ctx, identity.Observation{
		Domain: cp.Domain, User: cp.User, Identity: cp.Identity, TxID: cp.TxID, Complaint: true,
	}, up.policy)
	return out.Locked != nil, err
}

// modelLearner teaches the content model from complaints.
type modelLearner struct{ l *content.Learner }

func (m modelLearner) LearnSpam(raw []byte) (before, after float64, err error) {
	msg, err := filter.ParseBytes(raw, filter.DefaultLimits())
	if err != nil {
		return 0, 0, err
	}
	return filter.LearnMessage(m.l, msg, true)
}

// newFeedbackIntake builds the intake over the message log, the lock
// manager and (when enabled) the content model.
func (a *App) newFeedbackIntake(p *pipeline) (*feedback.Intake, error) {
	o := feedback.Options{
		DB:         a.db,
		Log:        storeLookup{p.store},
		Locks:      complaintCounter{ids: p.ids, state: &p.state},
		Now:        a.opts.Now,
		Logger:     a.log.With("component", "feedback"),
		Registerer: a.reg,
	}
	if p.learner != nil {
		o.Learner = modelLearner{p.learner}
	}
	if a.pg != nil {
		// store.backend postgres: the fleet's shared reports and
		// de-duplication index (docs/config-arf.md, "Several nodes").
		o.DB, o.Postgres, o.Node = nil, a.pg, a.Config().NodeName
	}
	return feedback.New(o)
}

// feedbackCheck handles mail to the feedback address on a feedback
// listener: the report is consumed, never relayed.
type feedbackCheck struct{ in *feedback.Intake }

var _ smtpd.RcptChecker = (*feedbackCheck)(nil)

// replyTooBig refuses a report over arf.parse_max_bytes: a property of the
// message, so permanent (RFC 5321 section 4.5.3.1.10; docs/config-arf.md).
func replyTooBig(max int64) *smtp.SMTPError {
	return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4},
		Message: fmt.Sprintf("Feedback report too large: at most %d bytes", max)}
}

// Rcpt refuses the feedback address when the client declared a SIZE over
// the limit, before it sends the report.
func (c *feedbackCheck) Rcpt(ctx context.Context, tx *smtpd.Transaction, to string) error {
	if max := c.in.MaxBytes(); tx.Opts.Size > max {
		return replyTooBig(max)
	}
	return nil
}

func (c *feedbackCheck) Data(ctx context.Context, tx *smtpd.Transaction, msg *smtpd.Message) (smtpd.Decision, error) {
	if max := c.in.MaxBytes(); msg.Size > max {
		r := replyTooBig(max)
		r.Message += " (id " + tx.ID + ")"
		return smtpd.Decision{Action: smtpd.Refuse, Outcome: smtpd.OutcomeRejected, Reply: r}, nil
	}
	raw, err := msg.Bytes()
	if err != nil {
		return smtpd.Decision{}, err
	}
	res, err := c.in.IngestSMTP(ctx, raw, "smtp:"+tx.Client.Addr().String(), tx.Client.Addr(), tx.From)
	if errors.Is(err, feedback.ErrNotFeedback) {
		return smtpd.Decision{Action: smtpd.Refuse, Outcome: smtpd.OutcomeRejected,
			Reply: refusal(550, smtp.EnhancedCode{5, 6, 0}, "not a feedback report ("+res.Parse.Error+"); send ARF (RFC 5965) reports here", tx.ID)}, nil
	}
	if err != nil {
		return smtpd.Decision{}, err
	}
	return smtpd.Decision{Action: smtpd.Consume}, nil
}

func (c *feedbackCheck) Close(*smtpd.Transaction, *smtpd.Message, smtpd.Result) {}
