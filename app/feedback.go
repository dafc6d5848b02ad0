package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	bolt "go.etcd.io/bbolt"

	"github.com/outguard/outguard/arf"
	"github.com/outguard/outguard/filter"
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
	// Learned is set when the complaint's original taught the content
	// model (an allow-listed feedback loop's report with the original).
	Learned bool `json:"learned,omitempty"`
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
	// learn holds what teaches the content model from complaints: the
	// trusted feedback networks, nil when complaints teach nothing.
	learn    atomic.Pointer[feedbackLearning]
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

func (f *feedbackIntake) configure(identityHeader, traceHeader string, maxBytes int64, learn *feedbackLearning) {
	f.idHeader.Store(&identityHeader)
	f.trHeader.Store(&traceHeader)
	f.maxBytes.Store(maxBytes)
	f.learn.Store(learn)
}

// feedbackLearning is the configuration of learning from complaints.
type feedbackLearning struct {
	sources []netip.Prefix
}

// trusts reports whether a report that came over SMTP from client is from
// an allow-listed feedback loop.
func (l *feedbackLearning) trusts(client netip.Addr) bool {
	if l == nil || !client.IsValid() {
		return false
	}
	client = client.Unmap()
	for _, p := range l.sources {
		if p.Contains(client) {
			return true
		}
	}
	return false
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
	return f.ingest(ctx, raw, source, netip.Addr{})
}

// ingest is Ingest for a report that came over SMTP from client (invalid
// for uploads): a report from an allow-listed feedback loop may teach the
// content model.
func (f *feedbackIntake) ingest(ctx context.Context, raw []byte, source string, client netip.Addr) (FeedbackResult, error) {
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
	f.learnFrom(fb, &res, client)
	f.ingested.WithLabelValues(feedbackTypeLabel(fb.FeedbackType), res.Method).Inc()
	f.log.Info("feedback received", "feedback", res.ID, "source", source, "type", fb.FeedbackType,
		"attribution", res.Method, "tx", res.TxID, "domain", res.Domain, "identity", res.Identity)
	return res, nil
}

// learnFrom teaches the content model that the original of a complaint is
// spam, when every condition holds: the report came from an allow-listed
// feedback loop, it is an abuse or fraud report, it was attributed to a
// transaction of ours (so the original is mail we relayed, not a third
// party's), and it carries the whole original. A report that fails any of
// them still counts as a complaint; it only teaches nothing.
func (f *feedbackIntake) learnFrom(fb *arf.Feedback, res *FeedbackResult, client netip.Addr) {
	l := f.p.learner
	if l == nil || fb.Original == nil || res.TxID == "" || !f.learn.Load().trusts(client) {
		return
	}
	switch strings.ToLower(fb.FeedbackType) {
	case "abuse", "fraud", "":
	default:
		return
	}
	m, err := filter.ParseBytes(fb.Original, filter.DefaultLimits())
	if err != nil {
		return
	}
	before, after, err := filter.LearnMessage(l, m, true)
	if err != nil {
		f.log.Warn("learning from a complaint failed", "feedback", res.ID, "err", err)
		return
	}
	res.Learned = true
	f.log.Info("content model learnt a complaint's original as spam", "feedback", res.ID, "tx", res.TxID, "before", before, "after", after)
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
	res, err := c.p.feedback.ingest(ctx, raw, "smtp:"+tx.Client.Addr().String(), tx.Client.Addr())
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
