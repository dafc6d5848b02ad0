// Package ops holds what an administrator may do, whatever the front
// end: the principal a token gives, its domain scoping, the audit trail,
// and every action on the daemon's state (lock, unlock, release, delete,
// learn, overlay changes, campaign confirmation and locking, feedback
// ingestion, reload) with the reads that need a scope check.
//
// The JSON API (admin/api) and the web console (admin/console) are thin
// front ends over one *Ops: they read requests and write replies, and
// call Ops for every check and change. Each scope check and each audit
// entry is made here, once; the front ends only name themselves (via)
// in the audit entries' detail. See docs/architecture.md.
package ops

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/outguard/outguard/feedback"
	"github.com/outguard/outguard/identity"
	"github.com/outguard/outguard/quarantine"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	bolt "go.etcd.io/bbolt"
)

// defaultVerifierCache bounds the token hash verifier's cache.
const defaultVerifierCache = 1024

// LockManager is what the operations need of identity.Manager.
type LockManager interface {
	Lock(ctx context.Context, req identity.LockRequest) (identity.Lock, error)
	Unlock(ctx context.Context, t identity.Target, actor, reason string) (identity.Lock, error)
	Get(ctx context.Context, t identity.Target) (identity.Lock, error)
	History(ctx context.Context, t identity.Target) ([]identity.HistoryEntry, error)
	List(ctx context.Context, f identity.ListFilter) ([]identity.Lock, error)
	Usage(ctx context.Context, domain, ident string) (identity.Usage, error)
}

// WouldLockLister lists monitor-mode crossings; *identity.Manager
// implements it. A LockManager without it makes WouldLocks unavailable.
type WouldLockLister interface {
	WouldLocks(ctx context.Context, f identity.WouldLockFilter) ([]identity.WouldLock, error)
}

// MessageStore is what the operations need of quarantine.Store.
type MessageStore interface {
	Search(q quarantine.Query) (quarantine.Page, error)
	Get(id string) (*quarantine.Record, error)
	Show(id string, actor quarantine.Actor) (*quarantine.View, error)
	Raw(id string, actor quarantine.Actor) ([]byte, error)
	Release(ctx context.Context, id string, actor quarantine.Actor) (quarantine.ReleaseResult, error)
	Delete(ctx context.Context, id string, actor quarantine.Actor) error
	Report(q quarantine.ReportQuery) ([]quarantine.ReportRow, error)
}

// seriesStore is the optional time-series side of the message store
// (quarantine.Store has it), for the console's overview chart.
type seriesStore interface {
	Series(q quarantine.SeriesQuery) ([]quarantine.SeriesPoint, error)
}

var (
	_ LockManager     = (*identity.Manager)(nil)
	_ WouldLockLister = (*identity.Manager)(nil)
	_ MessageStore    = (*quarantine.Store)(nil)
	_ seriesStore     = (*quarantine.Store)(nil)
)

// FeedbackIngester handles an uploaded feedback report: parse, attribute,
// count the complaint, log (the feedback package's intake). A report that
// is not a feedback report is a result with Parse.OK false, with or
// without feedback.ErrNotFeedback; other errors are failures.
type FeedbackIngester interface {
	Ingest(ctx context.Context, raw []byte, source string) (feedback.Result, error)
}

// FeedbackFunc adapts a function to FeedbackIngester.
type FeedbackFunc func(ctx context.Context, raw []byte, source string) (feedback.Result, error)

// Ingest calls f.
func (f FeedbackFunc) Ingest(ctx context.Context, raw []byte, source string) (feedback.Result, error) {
	return f(ctx, raw, source)
}

// FeedbackQuery selects stored feedback reports, newest first.
type FeedbackQuery struct {
	// Limit is the page size (1 to 1000).
	Limit int
	// Before is the id of the last report of the previous page; "" for
	// the newest.
	Before string
	// Counted, when non-nil, keeps only counted (true) or only not
	// counted (false) reports.
	Counted *bool
	// Domain, when set, keeps only reports attributed to that
	// administrative domain.
	Domain string
}

// FeedbackList is one page of stored feedback reports.
type FeedbackList struct {
	Reports []feedback.Result
	// Next is the cursor for the next (older) page, "" at the end.
	Next string
}

// FeedbackLister lists the stored feedback reports for review.
type FeedbackLister interface {
	ListFeedback(ctx context.Context, q FeedbackQuery) (FeedbackList, error)
}

// FeedbackListFunc adapts a function to FeedbackLister.
type FeedbackListFunc func(ctx context.Context, q FeedbackQuery) (FeedbackList, error)

// ListFeedback calls f.
func (f FeedbackListFunc) ListFeedback(ctx context.Context, q FeedbackQuery) (FeedbackList, error) {
	return f(ctx, q)
}

// Options are the operations' dependencies. Locks, Store and DB are
// required; a nil Feedback, FeedbackList, Reload, Teacher or Campaigns
// makes those operations fail with ErrUnavailable.
type Options struct {
	// Tokens are the bearer tokens; replace them on reload with
	// Ops.SetTokens.
	Tokens []Token
	// Accounts are the named console accounts; replace them on reload
	// with Ops.SetAccounts.
	Accounts []Account
	// Throttle sets the sign-in throttle; zero values take the defaults.
	Throttle ThrottleOptions
	// Locks keeps the locks (an *identity.Manager).
	Locks LockManager
	// Store is the message log and quarantine (a *quarantine.Store).
	Store MessageStore
	// Feedback ingests uploaded feedback reports.
	Feedback FeedbackIngester
	// FeedbackList lists stored feedback reports.
	FeedbackList FeedbackLister
	// Reload re-reads the configuration. The caller serialises
	// concurrent reloads.
	Reload func() error
	// Teacher is the content model operators teach; nil makes learning
	// and the model unavailable, and releases teach nothing.
	Teacher ModelTeacher
	// Campaigns is campaign detection (docs/campaigns.md).
	Campaigns Campaigns
	// Notices renders the customer notice of a lock for the console's
	// preview; nil: no preview.
	Notices NoticeRenderer
	// NoticeOutbox sends customer notices an operator asks for (the
	// notify action); nil makes SendNotice fail with ErrUnavailable.
	NoticeOutbox NoticeOutbox
	// Explainer tells what the rules named in a message's reasons match
	// in its stored content; nil shows the reasons alone.
	Explainer Explainer
	// DB is the node's bbolt database; the audit trail is kept in its
	// bucket admin_audit unless Audit is set. Required without Audit.
	DB *bolt.DB
	// TOTPSteps, when set, remembers the TOTP steps accepted instead of
	// this process: the fleet's table on PostgreSQL (PgTOTPSteps).
	TOTPSteps TOTPSteps
	// Audit, when set, keeps the audit trail instead of DB's bucket: the
	// fleet's table on PostgreSQL (OpenPgAudit).
	Audit AuditStore
	// Node is this node's name (node_name), recorded in each audit
	// entry; "" records none.
	Node string
	// UserDomain returns the administrative domain of an outgoing user,
	// false for an unknown user (locking it is then ErrNotFound). Nil:
	// user locks must name their domain.
	UserDomain func(user string) (domain string, ok bool)
	// KnownDomain reports whether an administrative domain is
	// configured; locking an identity of an unknown domain is
	// ErrNotFound. Nil accepts any domain.
	KnownDomain func(domain string) bool
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Registerer receives outguard_api_auth_failures_total,
	// outguard_api_audit_errors_total,
	// outguard_admin_sign_in_throttled_total and
	// outguard_admin_sign_in_lockouts_total; nil registers none.
	Registerer prometheus.Registerer
}

// Ops is the operations layer. It is safe for concurrent use.
type Ops struct {
	opts     Options
	log      *slog.Logger
	now      func() time.Time
	tokens   tokens
	accounts accounts
	throttle *throttle
	audit    AuditStore
	metrics  metrics
}

// New checks the options and opens the audit trail.
func New(o Options) (*Ops, error) {
	if o.Locks == nil || o.Store == nil || (o.DB == nil && o.Audit == nil) {
		return nil, errors.New("admin: ops.Options.Locks, Store and DB (or Audit) are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	audit := o.Audit
	if audit == nil {
		var err error
		if audit, err = OpenAudit(o.DB); err != nil {
			return nil, err
		}
	}
	x := &Ops{opts: o, log: o.Logger, now: o.Now, audit: audit, metrics: newMetrics(o.Registerer)}
	x.tokens.init()
	x.throttle = newThrottle(o.Throttle)
	if err := x.SetTokens(o.Tokens); err != nil {
		return nil, err
	}
	if err := x.SetAccounts(o.Accounts); err != nil {
		return nil, err
	}
	return x, nil
}

// Now returns the operations' clock's time: the front ends compute
// periods and lock states with it.
func (o *Ops) Now() time.Time { return o.now() }

// Logger returns the operations' logger, the front ends' default.
func (o *Ops) Logger() *slog.Logger { return o.log }

// Learning reports whether a content model can be taught.
func (o *Ops) Learning() bool { return o.opts.Teacher != nil }

// metrics are the operations' metrics. Their names keep the api prefix
// they had when the API held them.
type metrics struct {
	authFailures prometheus.Counter
	auditErrors  prometheus.Counter
	throttled    prometheus.Counter
	lockouts     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) metrics {
	f := promauto.With(reg)
	return metrics{
		authFailures: f.NewCounter(prometheus.CounterOpts{
			Name: "outguard_api_auth_failures_total",
			Help: "Admin API requests refused for a missing or invalid bearer token.",
		}),
		auditErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "outguard_api_audit_errors_total",
			Help: "Administrative actions done whose audit entry could not be written.",
		}),
		throttled: f.NewCounter(prometheus.CounterOpts{
			Name: "outguard_admin_sign_in_throttled_total",
			Help: "Sign-in attempts (console or API bearer token) refused unchecked because the client or account was locked out.",
		}),
		lockouts: f.NewCounter(prometheus.CounterOpts{
			Name: "outguard_admin_sign_in_lockouts_total",
			Help: "Client addresses and accounts locked out of signing in after repeated failures.",
		}),
	}
}
