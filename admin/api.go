package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/outguard/outguard/arf"
	"github.com/outguard/outguard/identity"
	"github.com/outguard/outguard/internal/passwd"
	"github.com/outguard/outguard/quarantine"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	bolt "go.etcd.io/bbolt"
)

// APIPrefix is where the API is mounted (API.Mount).
const APIPrefix = "/api/v1/"

// ReloadPath is the reload endpoint outside the API's prefix, where
// Prometheus-style tooling expects it. The API serves it (API.Mount) with
// the same token check and audit as POST /api/v1/reload.
const ReloadPath = "/-/reload"

// Default body limits of APIOptions.
const (
	DefaultMaxBodyBytes     = 64 << 10
	DefaultMaxFeedbackBytes = 10 << 20
	defaultVerifierCache    = 1024
)

// LockManager is what the API needs of identity.Manager.
type LockManager interface {
	Lock(ctx context.Context, req identity.LockRequest) (identity.Lock, error)
	Unlock(ctx context.Context, t identity.Target, actor, reason string) (identity.Lock, error)
	Get(ctx context.Context, t identity.Target) (identity.Lock, error)
	History(ctx context.Context, t identity.Target) ([]identity.HistoryEntry, error)
	List(ctx context.Context, f identity.ListFilter) ([]identity.Lock, error)
	Usage(ctx context.Context, domain, ident string) (identity.Usage, error)
}

// MessageStore is what the API needs of quarantine.Store.
type MessageStore interface {
	Search(q quarantine.Query) (quarantine.Page, error)
	Get(id string) (*quarantine.Record, error)
	Show(id string, actor quarantine.Actor) (*quarantine.View, error)
	Raw(id string, actor quarantine.Actor) ([]byte, error)
	Release(ctx context.Context, id string, actor quarantine.Actor) (quarantine.ReleaseResult, error)
	Delete(ctx context.Context, id string, actor quarantine.Actor) error
	Report(q quarantine.ReportQuery) ([]quarantine.ReportRow, error)
}

var (
	_ LockManager  = (*identity.Manager)(nil)
	_ MessageStore = (*quarantine.Store)(nil)
)

// FeedbackResult is what ingesting one third-party feedback report did:
// the parsed report (arf.Result's keys, with file set to the source) and
// its attribution.
type FeedbackResult struct {
	arf.Result
	// ID is the intake id under which the accepted report is stored.
	ID string `json:"id,omitempty"`
	// Attribution is how the report was attributed: trace-token,
	// message-id, identity-header or none.
	Attribution string `json:"attribution,omitempty"`
	// Attributed is set when the report was matched to a transaction or
	// an identity of outguard's users.
	Attributed bool   `json:"attributed"`
	TxID       string `json:"tx_id,omitempty"`
	User       string `json:"user,omitempty"`
	Domain     string `json:"domain,omitempty"`
	Identity   string `json:"identity,omitempty"`
	// Counted is set when the complaint was counted toward automatic
	// locking; Locked when it triggered a lock. NotCounted says why it was
	// not: unlisted-reporter, not-attributed, identity-header-only,
	// no-identity, feedback-type or duplicate.
	Counted    bool   `json:"counted"`
	NotCounted string `json:"not_counted,omitempty"`
	Locked     bool   `json:"locked"`
	// Reporter is the arf.reporters entry the report came from, "" for
	// a report from no allow-listed feedback loop.
	Reporter string `json:"reporter"`
	// Duplicate is set when the same report was received before
	// (DuplicateOf is its id, and nothing was stored or counted), or the
	// same reporter already complained about the same transaction.
	Duplicate   bool   `json:"duplicate"`
	DuplicateOf string `json:"duplicate_of,omitempty"`
	// Received is when the daemon got the report.
	Received time.Time `json:"received,omitzero"`
	// Source is where the report came from: smtp:<client address>, or
	// the upload's source parameter.
	Source string `json:"source,omitempty"`
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
	Reports []FeedbackResult `json:"reports"`
	// Next is the cursor for the next (older) page, "" at the end.
	Next string `json:"next"`
}

// FeedbackLister lists the stored feedback reports for review.
type FeedbackLister interface {
	ListFeedback(ctx context.Context, q FeedbackQuery) (FeedbackList, error)
}

// FeedbackIngester handles an uploaded feedback report: parse, attribute,
// count the complaint, log. A report that is not a feedback report is
// not an error: return a result with OK false and its reason code. Return
// an error only when ingesting failed (storage), or wrap ErrBadRequest.
type FeedbackIngester interface {
	Ingest(ctx context.Context, raw []byte, source string) (FeedbackResult, error)
}

// FeedbackFunc adapts a function to FeedbackIngester.
type FeedbackFunc func(ctx context.Context, raw []byte, source string) (FeedbackResult, error)

// Ingest calls f.
func (f FeedbackFunc) Ingest(ctx context.Context, raw []byte, source string) (FeedbackResult, error) {
	return f(ctx, raw, source)
}

// APIOptions are the API's dependencies. Locks, Store and DB are
// required; a nil Feedback or Reload makes those endpoints answer 501.
type APIOptions struct {
	// Tokens are the bearer tokens; replace them on reload with
	// API.SetTokens.
	Tokens []Token
	// Locks keeps the locks (an *identity.Manager).
	Locks LockManager
	// Store is the message log and quarantine (a *quarantine.Store).
	Store MessageStore
	// Feedback ingests uploaded feedback reports.
	Feedback FeedbackIngester
	// FeedbackList lists stored feedback reports (GET /api/v1/feedback);
	// nil makes that endpoint answer 501.
	FeedbackList FeedbackLister
	// Reload re-reads the configuration (POST /api/v1/reload and POST
	// /-/reload). The caller serialises concurrent reloads.
	Reload func() error
	// Teacher is the content model operators teach; nil makes the
	// learning and model endpoints answer 501 and releases teach nothing.
	Teacher ModelTeacher
	// Campaigns is campaign detection (docs/campaigns.md); nil makes the
	// campaign endpoints answer 501.
	Campaigns Campaigns
	// DB is the shared database; the API keeps its audit trail in the
	// bucket admin_audit.
	DB *bolt.DB
	// UserDomain returns the administrative domain of an outgoing user,
	// false for an unknown user (locking it is then 404). Nil: user
	// locks must name their domain.
	UserDomain func(user string) (domain string, ok bool)
	// KnownDomain reports whether an administrative domain is
	// configured; locking an identity of an unknown domain is 404. Nil
	// accepts any domain.
	KnownDomain func(domain string) bool
	// MaxBodyBytes bounds JSON request bodies; default 64 KiB.
	MaxBodyBytes int64
	// MaxFeedbackBytes bounds an uploaded feedback report; default
	// 10 MiB (map arf.parse_max_bytes onto it).
	MaxFeedbackBytes int64
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Registerer receives outguard_api_* metrics; nil registers none.
	Registerer prometheus.Registerer
}

// API serves the admin HTTP API under /api/v1/. Create it with NewAPI and
// mount it on the admin server with Server.Handle(APIPrefix, api). It is
// safe for concurrent use.
type API struct {
	opts    APIOptions
	log     *slog.Logger
	now     func() time.Time
	tokens  tokens
	audit   *Audit
	mux     *http.ServeMux
	handler http.Handler
	metrics *apiMetrics
}

var _ http.Handler = (*API)(nil)

// NewAPI checks the options, creates the audit bucket and registers the
// routes.
func NewAPI(o APIOptions) (*API, error) {
	if o.Locks == nil || o.Store == nil || o.DB == nil {
		return nil, errors.New("admin: APIOptions.Locks, Store and DB are required")
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.MaxFeedbackBytes <= 0 {
		o.MaxFeedbackBytes = DefaultMaxFeedbackBytes
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	audit, err := OpenAudit(o.DB)
	if err != nil {
		return nil, err
	}
	a := &API{opts: o, log: o.Logger, now: o.Now, audit: audit, mux: http.NewServeMux()}
	a.tokens.verifier = passwd.NewVerifier(defaultVerifierCache)
	a.tokens.slow = make(chan struct{}, max(1, runtime.NumCPU()/2))
	if err := a.SetTokens(o.Tokens); err != nil {
		return nil, err
	}
	a.metrics = newAPIMetrics(o.Registerer)
	a.routes()
	// Every request needs a bearer token, which a browser sends cross-site
	// only after a CORS preflight that this API never grants; refusing
	// what a browser marks as cross-origin (Sec-Fetch-Site, Origin) also
	// keeps a page from even trying a state-changing request.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.metrics.crossOrigin.Inc()
		writeJSONStatus(w, http.StatusForbidden, ErrorBody{Error: ErrorDetail{Code: "cross_origin",
			Message: "cross-origin request refused: call the admin API from a script or the CLI with a bearer token"}})
	}))
	a.handler = cop.Handler(a.mux)
	return a, nil
}

// Mount registers the API on s: its routes under APIPrefix and the
// reload endpoint at ReloadPath.
func (a *API) Mount(s *Server) {
	s.Handle(APIPrefix, a)
	s.Handle(ReloadPath, a)
}

// SetTokens replaces the tokens; requests in flight keep the old set. It
// refuses a token without a name, hash or scope and keeps the old set.
func (a *API) SetTokens(list []Token) error {
	for i, t := range list {
		if t.Name == "" || t.Hash == "" || t.Scope == "" {
			return fmt.Errorf("admin: token %d (%q): name, hash and scope are required", i, t.Name)
		}
	}
	a.tokens.set(list)
	return nil
}

// Audit returns the audit trail, for the console.
func (a *API) Audit() *Audit { return a.audit }

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.handler.ServeHTTP(w, r) }

// handlerFunc is an authenticated endpoint: it writes its answer, or
// returns an error for writeError.
type handlerFunc func(w http.ResponseWriter, r *http.Request, p Principal) error

func (a *API) routes() {
	a.handle("GET /api/v1/messages", a.searchMessages)
	a.handle("GET /api/v1/messages/{id}", a.getMessage)
	a.handle("GET /api/v1/messages/{id}/raw", a.rawMessage)
	a.handle("POST /api/v1/messages/{id}/release", a.releaseMessage)
	a.handle("DELETE /api/v1/messages/{id}", a.deleteMessage)
	a.handle("POST /api/v1/messages/{id}/learn", a.learnMessage)
	a.handle("POST /api/v1/learn", a.learnUpload)
	a.handle("GET /api/v1/model", a.modelInfo)
	a.handle("GET /api/v1/model/overlay", a.exportOverlay)
	a.handle("PUT /api/v1/model/overlay", a.importOverlay)
	a.handle("DELETE /api/v1/model/overlay", a.resetOverlay)
	a.handle("GET /api/v1/reports", a.report)
	a.handle("GET /api/v1/locks", a.listLocks)
	a.handle("POST /api/v1/locks", a.createLock)
	a.handle("GET /api/v1/locks/user/{name}", a.getLock)
	a.handle("GET /api/v1/locks/identity/{domain}/{name}", a.getLock)
	a.handle("DELETE /api/v1/locks/user/{name}", a.unlock)
	a.handle("DELETE /api/v1/locks/identity/{domain}/{name}", a.unlock)
	a.handle("GET /api/v1/identities/{domain}/{name}/usage", a.usage)
	a.handle("GET /api/v1/feedback", a.listFeedback)
	a.handle("GET /api/v1/would-locks", a.listWouldLocks)
	a.handle("POST /api/v1/feedback", a.feedback)
	a.handle("POST /api/v1/reload", a.reload)
	a.handle("POST "+ReloadPath, a.reload)
	a.handle("GET /api/v1/audit", a.listAudit)
	a.handle("GET /api/v1/campaigns", a.listCampaigns)
	a.handle("GET /api/v1/campaigns/{id}", a.getCampaign)
	a.handle("POST /api/v1/campaigns/{id}/confirm", a.confirmCampaign)
	a.handle("POST /api/v1/campaigns/{id}/unconfirm", a.unconfirmCampaign)
	a.handle("POST /api/v1/campaigns/{id}/lock", a.lockCampaignEndpoint)
	// Everything else under the prefix: a JSON 404 (or 405) rather than
	// the mux's plain text.
	a.handle("/api/v1/", func(w http.ResponseWriter, r *http.Request, p Principal) error {
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, pattern := a.mux.Handler(probe); pattern != "/api/v1/" && pattern != "" {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			return errorf(ErrMethod, "%s is not allowed on %s; use %s", r.Method, r.URL.Path, strings.Join(allow, " or "))
		}
		return errorf(ErrNotFound, "no endpoint %s %s; see docs/api.md", r.Method, r.URL.Path)
	})
}

// handle registers h under pattern behind authentication, panic
// recovery and the request metrics.
func (a *API) handle(pattern string, h handlerFunc) {
	route := pattern
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				a.log.Error("admin api: panic", "route", route, "panic", v, "stack", string(debug.Stack()))
				if sw.status == 0 {
					a.writeError(sw, r, fmt.Errorf("panic: %v", v))
				}
			}
			a.metrics.observe(route, sw.status)
		}()
		p, err := a.tokens.authenticate(r)
		if err != nil {
			a.metrics.authFailures.Inc()
			a.writeError(sw, r, err)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
		if err := h(sw, r, p); err != nil {
			a.writeError(sw, r, err)
		}
	})
}

// statusWriter remembers the status written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// decodeJSON reads a JSON object of at most MaxBodyBytes into v,
// refusing unknown fields and trailing data. An empty body is an error
// unless optional is set, in which case v is left as it is.
func (a *API) decodeJSON(w http.ResponseWriter, r *http.Request, v any, optional bool) error {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.opts.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return errorf(ErrTooLarge, "the JSON body is over %d bytes", a.opts.MaxBodyBytes)
		}
		return errorf(ErrBadRequest, "reading the body: %v", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		if optional {
			return nil
		}
		return errorf(ErrBadRequest, "a JSON object body is required")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errorf(ErrBadRequest, "invalid JSON body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errorf(ErrBadRequest, "invalid JSON body: data after the object")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, v any) { writeJSONStatus(w, http.StatusOK, v) }

// record writes an audit entry for an action that succeeded. A failure
// to record is logged, not returned: the action is done.
func (a *API) record(p Principal, action string, target AuditTarget, reason, detail string) {
	scope := ScopeAll
	if !p.All() {
		scope = p.Domain
	}
	_, err := a.audit.Record(AuditEntry{At: a.now().UTC(), Actor: p.Name, Scope: scope, Action: action,
		Target: target, Reason: reason, Detail: detail})
	if err != nil {
		a.log.Error("admin api: audit trail", "action", action, "target", target.Name, "err", err)
		a.metrics.auditErrors.Inc()
	}
}

// apiMetrics are the API's metrics.
type apiMetrics struct {
	requests     *prometheus.CounterVec
	authFailures prometheus.Counter
	auditErrors  prometheus.Counter
	crossOrigin  prometheus.Counter
}

func newAPIMetrics(reg prometheus.Registerer) *apiMetrics {
	f := promauto.With(reg)
	return &apiMetrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "outguard_api_requests_total",
			Help: "Admin API requests by route pattern and status code class (2xx, 4xx, 5xx).",
		}, []string{"route", "code"}),
		authFailures: f.NewCounter(prometheus.CounterOpts{
			Name: "outguard_api_auth_failures_total",
			Help: "Admin API requests refused for a missing or invalid bearer token.",
		}),
		auditErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "outguard_api_audit_errors_total",
			Help: "Administrative actions done whose audit entry could not be written.",
		}),
		crossOrigin: f.NewCounter(prometheus.CounterOpts{
			Name: "outguard_api_cross_origin_refused_total",
			Help: "Admin API requests refused because a browser marked them as cross-origin.",
		}),
	}
}

func (m *apiMetrics) observe(route string, status int) {
	if status == 0 {
		status = http.StatusOK
	}
	class := fmt.Sprintf("%dxx", status/100)
	m.requests.WithLabelValues(route, class).Inc()
}
