package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	bolt "go.etcd.io/bbolt"

	"github.com/outguard/outguard/arf"
	"github.com/outguard/outguard/identity"
	"github.com/outguard/outguard/quarantine"
	"github.com/outguard/outguard/smtpd"
)

// feedbackBucket keeps every accepted third-party feedback report, raw,
// keyed by its intake id.
var feedbackBucket = []byte("app_feedback")

// FeedbackResult is what intake made of one report: the parse result, the
// attribution and what it led to.
type FeedbackResult struct {
	// ID is the intake id under which the report is stored; "" when it
	// was refused.
	ID     string     `json:"id"`
	Source string     `json:"source"`
	Parse  arf.Result `json:"parse"`
	// Method is how the complaint was attributed: trace-token,
	// message-id, identity-header or none.
	Method   string `json:"attribution"`
	TxID     string `json:"tx_id,omitempty"`
	Domain   string `json:"domain,omitempty"`
	User     string `json:"user,omitempty"`
	Identity string `json:"identity,omitempty"`
	// Locked is set when this complaint locked the identity.
	Locked bool `json:"locked"`
}

// ErrNotFeedback wraps the parser's refusal of a message that is not a
// feedback report.
var ErrNotFeedback = errors.New("not a feedback report")

// feedbackIntake parses, stores, attributes and counts third-party
// feedback, from SMTP (mail to the feedback address), the HTTP API and the
// CLI.
type feedbackIntake struct {
	p        *pipeline
	db       *bolt.DB
	log      *slog.Logger
	idHeader atomic.Pointer[string]
	trHeader atomic.Pointer[string]
	maxBytes atomic.Int64
	ingested *prometheus.CounterVec
	newID    func(time.Time) string
	now      func() time.Time
}

func newFeedbackIntake(p *pipeline, db *bolt.DB, reg prometheus.Registerer, log *slog.Logger) (*feedbackIntake, error) {
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(feedbackBucket)
		return err
	}); err != nil {
		return nil, err
	}
	f := &feedbackIntake{p: p, db: db, log: log, newID: quarantine.NewID, now: p.now,
		ingested: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "outguard_feedback_ingested_total",
			Help: "Third-party feedback reports received, by feedback type (abuse, fraud, virus, other, refused) and attribution (trace-token, message-id, identity-header, none).",
		}, []string{"type", "attribution"}),
	}
	return f, nil
}

func (f *feedbackIntake) configure(identityHeader, traceHeader string, maxBytes int64) {
	f.idHeader.Store(&identityHeader)
	f.trHeader.Store(&traceHeader)
	f.maxBytes.Store(maxBytes)
}

func feedbackTypeLabel(t string) string {
	switch t = strings.ToLower(t); t {
	case "abuse", "fraud", "virus":
		return t
	}
	return "other"
}

// Ingest handles one report. A report that is not feedback comes back as
// an error wrapping ErrNotFeedback, with the parse result filled in; an
// accepted one is stored (synced) before Ingest returns.
func (f *feedbackIntake) Ingest(ctx context.Context, raw []byte, source string) (FeedbackResult, error) {
	res := FeedbackResult{Source: source, Method: string(arf.MethodNone)}
	fb, err := arf.Parse(bytes.NewReader(raw), arf.ParseOptions{
		IdentityHeader: *f.idHeader.Load(), TraceHeader: *f.trHeader.Load(), MaxBytes: f.maxBytes.Load(),
	})
	res.Parse = arf.NewResult(source, fb, err)
	if err != nil {
		f.ingested.WithLabelValues("refused", string(arf.MethodNone)).Inc()
		return res, fmt.Errorf("%w: %s", ErrNotFeedback, res.Parse.Detail)
	}
	now := f.now()
	res.ID = f.newID(now)

	attr, err := arf.Attribute(ctx, fb, storeLookup{f.p.store})
	if err != nil {
		return res, fmt.Errorf("attributing feedback: %w", err)
	}
	res.Method = string(attr.Method)
	res.TxID, res.Domain, res.User, res.Identity = attr.Tx.TxID, attr.Tx.Domain, attr.Tx.User, attr.Tx.Identity

	// Store first: a report accepted is a report kept.
	meta, _ := json.Marshal(res)
	if err := f.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(feedbackBucket)
		if err := b.Put([]byte(res.ID+"/meta"), meta); err != nil {
			return err
		}
		return b.Put([]byte(res.ID+"/raw"), raw)
	}); err != nil {
		return res, fmt.Errorf("storing feedback: %w", err)
	}

	if res.TxID != "" {
		if err := f.p.store.AddComplaint(ctx, res.TxID, quarantine.Complaint{Time: now}); err != nil && !errors.Is(err, quarantine.ErrNotFound) {
			f.log.Error("recording complaint on the log record failed", "tx", res.TxID, "err", err)
		}
	}
	if res.Identity != "" && res.Domain != "" {
		up := f.p.state.Load().user(res.User)
		out, err := f.p.ids.Observe(ctx, identity.Observation{
			Domain: res.Domain, User: res.User, Identity: res.Identity, TxID: res.TxID, Complaint: true,
		}, up.policy)
		if err != nil {
			f.log.Error("counting complaint failed", "feedback", res.ID, "err", err)
		} else if out.Locked != nil {
			res.Locked = true
			f.log.Warn("identity locked by complaints", "feedback", res.ID, "domain", res.Domain, "identity", res.Identity)
		}
	}
	f.ingested.WithLabelValues(feedbackTypeLabel(fb.FeedbackType), res.Method).Inc()
	f.log.Info("feedback received", "feedback", res.ID, "source", source, "type", fb.FeedbackType,
		"attribution", res.Method, "tx", res.TxID, "domain", res.Domain, "identity", res.Identity)
	return res, nil
}

// storeLookup attributes complaints through the message log.
type storeLookup struct{ s *quarantine.Store }

func ref(r *quarantine.Record) arf.TxRef {
	return arf.TxRef{TxID: r.ID, Domain: r.Domain, User: r.User, Identity: r.Identity}
}

func (l storeLookup) ByTraceToken(ctx context.Context, token string) (arf.TxRef, bool, error) {
	tok, ok := identity.ParseTraceToken(token)
	if !ok {
		return arf.TxRef{}, false, nil
	}
	r, err := l.s.ByTraceToken(tok)
	if errors.Is(err, quarantine.ErrNotFound) {
		return arf.TxRef{}, false, nil
	}
	if err != nil {
		return arf.TxRef{}, false, err
	}
	return ref(r), true, nil
}

func (l storeLookup) ByMessageID(ctx context.Context, id string) (arf.TxRef, bool, error) {
	r, err := l.s.ByMessageID(id)
	if errors.Is(err, quarantine.ErrNotFound) {
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

// feedbackCheck handles mail to the feedback address on a feedback
// listener: the report is consumed, never relayed.
type feedbackCheck struct{ p *pipeline }

func (c *feedbackCheck) Data(ctx context.Context, tx *smtpd.Transaction, msg *smtpd.Message) (smtpd.Decision, error) {
	raw, err := msg.Bytes()
	if err != nil {
		return smtpd.Decision{}, err
	}
	res, err := c.p.feedback.Ingest(ctx, raw, "smtp:"+tx.Client.Addr().String())
	if errors.Is(err, ErrNotFeedback) {
		return smtpd.Decision{Action: smtpd.Refuse, Outcome: smtpd.OutcomeRejected,
			Reply: refusal(550, smtp.EnhancedCode{5, 6, 0}, "not a feedback report ("+res.Parse.Error+"); send ARF (RFC 5965) reports here", tx.ID)}, nil
	}
	if err != nil {
		return smtpd.Decision{}, err
	}
	return smtpd.Decision{Action: smtpd.Consume}, nil
}

func (c *feedbackCheck) Close(*smtpd.Transaction, *smtpd.Message, smtpd.Result) {}
