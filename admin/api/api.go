// Package api serves the admin JSON API, version 1 (docs/api.md), under
// /api/v1/ and at /-/reload. It is a thin front end over the operations
// layer (admin/ops): it reads requests (parameters, JSON bodies), asks
// ops for every check and change, and converts the results to the wire
// types of admin/apiv1 (convert.go). The scope checks and the audit trail
// are ops's, not this package's.
package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"

	"github.com/outguard/outguard/admin/apiv1"
	"github.com/outguard/outguard/admin/ops"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Prefix is where the API is mounted (API.Mount).
const Prefix = apiv1.Prefix

// ReloadPath is the reload endpoint outside the API's prefix, where
// Prometheus-style tooling expects it. The API serves it (API.Mount) with
// the same token check and audit as POST /api/v1/reload.
const ReloadPath = "/-/reload"

// Default body limits of Options.
const (
	DefaultMaxBodyBytes     = 64 << 10
	DefaultMaxFeedbackBytes = 10 << 20
)

// Options are the API's dependencies. Ops is required.
type Options struct {
	// Ops is the operations layer: tokens, scoping, the audit trail and
	// every action.
	Ops *ops.Ops
	// MaxBodyBytes bounds JSON request bodies; default 64 KiB.
	MaxBodyBytes int64
	// MaxFeedbackBytes bounds an uploaded feedback report; default
	// 10 MiB (map arf.parse_max_bytes onto it).
	MaxFeedbackBytes int64
	// Logger; default the operations' logger.
	Logger *slog.Logger
	// Registerer receives outguard_api_* metrics; nil registers none.
	Registerer prometheus.Registerer
}

// API serves the admin HTTP API under /api/v1/. Create it with New and
// mount it on the admin server with Mount. It is safe for concurrent use.
type API struct {
	opts    Options
	ops     *ops.Ops
	log     *slog.Logger
	mux     *http.ServeMux
	handler http.Handler
	metrics *apiMetrics
}

var _ http.Handler = (*API)(nil)

// New checks the options and registers the routes.
func New(o Options) (*API, error) {
	if o.Ops == nil {
		return nil, errors.New("admin api: Options.Ops is required")
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.MaxFeedbackBytes <= 0 {
		o.MaxFeedbackBytes = DefaultMaxFeedbackBytes
	}
	if o.Logger == nil {
		o.Logger = o.Ops.Logger()
	}
	a := &API{opts: o, ops: o.Ops, log: o.Logger, mux: http.NewServeMux()}
	a.metrics = newAPIMetrics(o.Registerer)
	a.routes()
	// Every request needs a bearer token, which a browser sends cross-site
	// only after a CORS preflight that this API never grants; refusing
	// what a browser marks as cross-origin (Sec-Fetch-Site, Origin) also
	// keeps a page from even trying a state-changing request.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.metrics.crossOrigin.Inc()
		writeJSONStatus(w, http.StatusForbidden, apiv1.ErrorBody{Error: apiv1.ErrorDetail{Code: "cross_origin",
			Message: "cross-origin request refused: call the admin API from a script or the CLI with a bearer token"}})
	}))
	a.handler = cop.Handler(a.mux)
	return a, nil
}

// Mux is where the API mounts itself: the admin server (admin.Server).
type Mux interface {
	Handle(pattern string, h http.Handler)
}

// Mount registers the API on s: its routes under Prefix and the reload
// endpoint at ReloadPath.
func (a *API) Mount(s Mux) {
	s.Handle(Prefix, a)
	s.Handle(ReloadPath, a)
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.handler.ServeHTTP(w, r) }

// handlerFunc is an authenticated endpoint: it writes its answer, or
// returns an error for writeError.
type handlerFunc func(w http.ResponseWriter, r *http.Request, p ops.Principal) error

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
	a.handle("GET /api/v1/identities/{domain}/{name}/notice", a.noticePreview)
	a.handle("POST /api/v1/identities/{domain}/{name}/notice", a.sendNotice)
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
	a.handle("/api/v1/", func(w http.ResponseWriter, r *http.Request, p ops.Principal) error {
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
			return ops.Errorf(ops.ErrMethod, "%s is not allowed on %s; use %s", r.Method, r.URL.Path, strings.Join(allow, " or "))
		}
		return ops.Errorf(ops.ErrNotFound, "no endpoint %s %s; see docs/api.md", r.Method, r.URL.Path)
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
		p, err := a.ops.Authenticate(r.Context(), r.Header.Get("Authorization"), ops.ClientIP(r.RemoteAddr))
		if err != nil {
			a.writeError(sw, r, err)
			return
		}
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
			return ops.Errorf(ops.ErrTooLarge, "the JSON body is over %d bytes", a.opts.MaxBodyBytes)
		}
		return ops.Errorf(ops.ErrBadRequest, "reading the body: %v", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		if optional {
			return nil
		}
		return ops.Errorf(ops.ErrBadRequest, "a JSON object body is required")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return ops.Errorf(ops.ErrBadRequest, "invalid JSON body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return ops.Errorf(ops.ErrBadRequest, "invalid JSON body: data after the object")
	}
	return nil
}

// apiMetrics are the API's metrics.
type apiMetrics struct {
	requests    *prometheus.CounterVec
	crossOrigin prometheus.Counter
}

func newAPIMetrics(reg prometheus.Registerer) *apiMetrics {
	f := promauto.With(reg)
	return &apiMetrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "outguard_api_requests_total",
			Help: "Admin API requests by route pattern and status code class (2xx, 4xx, 5xx).",
		}, []string{"route", "code"}),
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
