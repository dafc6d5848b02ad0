// Package console serves the admin web console: server-rendered pages
// over the operations layer (admin/ops), signed in with a named account,
// an API token or, when configured, through an OpenID Connect provider
// (oidc.go, docs/config-admin.md#openid-connect). It is a thin front
// end, as the JSON API (admin/api) is: every scope check and every audit
// entry is ops's; the console only names itself ("via console") in the
// entries' detail. Its few JSON answers, to its own
// script, use the API's wire types (admin/api's conversions).
package console

import (
	"bytes"
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outguard/outguard/admin/api"
	"github.com/outguard/outguard/admin/apiv1"
	"github.com/outguard/outguard/admin/ops"
)

// The console's templates, stylesheet and script, embedded: the console
// loads nothing from elsewhere.
//
//go:embed all:web
var webFS embed.FS

// Console defaults.
const (
	DefaultSessionIdle   = 30 * time.Minute
	DefaultSessionMaxAge = 12 * time.Hour
	DefaultMaxSessions   = 10000
)

// Cookie names of the console.
const (
	sessionCookie = "outguard_session"
	loginCookie   = "outguard_login"
)

// consoleCSP forbids inline script and every resource from elsewhere.
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// via names the console in the audit entries' detail.
const via = "console"

// DefaultMaxFormBytes bounds a posted form.
const DefaultMaxFormBytes = 64 << 10

// maxFieldLength bounds a form or query value (clip).
const maxFieldLength = 1024

// Options are the console's dependencies.
type Options struct {
	// Ops is the operations layer whose tokens, domain scoping, actions
	// and audit trail the console shares with the API. Required.
	Ops *ops.Ops
	// MaxFormBytes bounds a posted form; default 64 KiB.
	MaxFormBytes int64
	// SessionIdle ends a session unused for that long; default 30
	// minutes.
	SessionIdle time.Duration
	// SessionMaxAge ends a session that long after sign-in; default 12
	// hours.
	SessionMaxAge time.Duration
	// MaxSessions bounds the sessions kept (in memory, or in
	// PostgreSQL for the whole fleet); when full, the least recently used
	// is ended. Default 10,000.
	MaxSessions int
	// Postgres, when set, keeps the sessions in the table
	// console_sessions that the nodes of a fleet share
	// (docs/config-store.md), instead of in memory: a session started on
	// one node is valid on all of them. The migrations must have been
	// applied (internal/pgdb.Migrate).
	Postgres *pgxpool.Pool
	// Node is this node's name (node_name), recorded with the sessions
	// it starts in PostgreSQL.
	Node string
	// Rand is the source of session ids and CSRF tokens; default
	// crypto/rand. A test seam.
	Rand io.Reader
	// Logger; default the operations' logger.
	Logger *slog.Logger
	// OIDC, when set, offers sign-in through an OpenID Connect provider
	// (docs/config-admin.md#openid-connect); SetOIDC changes it later.
	OIDC *OIDCOptions
}

// Console is the web console: server-rendered pages over the operations
// layer
// (admin/ops), signed in with an API token. Mount it at "/" on the admin
// server; the API, /metrics and /-/ keep their more specific patterns.
// It is safe for concurrent use.
//
// Pages: the overview (traffic by verdict and the top identities by
// blocked mail, as inline SVG), the identity profile (messages by verdict
// over time, lock, evidence, history, usage, complaints, recipient
// domains, lock and unlock), the outgoing log (rule builder, paging, bulk
// release, delete and identity lock with one reason, CSV export,
// message view with the content model's band and reasons, raw download,
// release as not spam, confirm spam, delete, lock from a row, which
// teaches the row's message as spam), the
// reports (with an in-place lock toggle), the locks (history, evidence,
// usage against thresholds, unlock), the campaigns (near-duplicate
// content across identities, docs/campaigns.md: list, detail with the
// identities and the sample message, confirm, lock every identity) and
// the audit trail.
//
// Security: sign-in takes a named account, an API token (checked like a
// bearer token) or an OpenID Connect provider's ID token, and starts a
// session, in memory or, for a fleet, in PostgreSQL (random id in an
// HttpOnly, SameSite=Strict cookie, Secure under TLS, of which PostgreSQL
// keeps only a hash; idle and absolute expiry; ended, with every other
// session of the same credential, when a reload removes or changes the
// token, the account or the OIDC grants). Every POST needs the session's
// CSRF token (form field csrf or header X-CSRF-Token) and a same-site
// Origin.
// Pages are html/template output under a Content-Security-Policy that
// allows no inline script and nothing from elsewhere. Scoping and the
// audit trail are ops.s, shared with the API: a domain-scoped token sees and changes only
// its domain, and every change is written to the audit trail.
type Console struct {
	ops      *ops.Ops
	maxForm  int64
	log      *slog.Logger
	sessions sessionStore
	rand     io.Reader
	pages    map[string]*template.Template
	mux      *http.ServeMux
	static   fs.FS
	// oidc is the OpenID Connect sign-in, nil when off.
	oidc atomic.Pointer[oidcSetup]
	// cookieKey seals the pending OpenID Connect sign-in cookie.
	cookieKey []byte
}

var _ http.Handler = (*Console)(nil)

// New parses the embedded templates and registers the pages.
func New(o Options) (*Console, error) {
	if o.Ops == nil {
		return nil, errors.New("admin console: Options.Ops is required")
	}
	if o.MaxFormBytes <= 0 {
		o.MaxFormBytes = DefaultMaxFormBytes
	}
	if o.SessionIdle <= 0 {
		o.SessionIdle = DefaultSessionIdle
	}
	if o.SessionMaxAge <= 0 {
		o.SessionMaxAge = DefaultSessionMaxAge
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = DefaultMaxSessions
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Logger == nil {
		o.Logger = o.Ops.Logger()
	}
	c := &Console{ops: o.Ops, maxForm: o.MaxFormBytes, log: o.Logger, mux: http.NewServeMux(), rand: o.Rand}
	if o.Postgres != nil {
		c.sessions = newPgSessions(o.Postgres, o.Node, o.SessionIdle, o.SessionMaxAge, o.MaxSessions)
	} else {
		c.sessions = newMemSessions(o.SessionIdle, o.SessionMaxAge, o.MaxSessions)
	}
	c.cookieKey = make([]byte, 32)
	if _, err := io.ReadFull(o.Rand, c.cookieKey); err != nil {
		return nil, fmt.Errorf("admin console: random source: %w", err)
	}
	if err := c.SetOIDC(o.OIDC); err != nil {
		return nil, err
	}
	var err error
	if c.static, err = fs.Sub(webFS, "web/static"); err != nil {
		return nil, err
	}
	if c.pages, err = parsePages(); err != nil {
		return nil, err
	}
	c.routes()
	return c, nil
}

func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(webFS, "web/templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "web/templates/"), ".html")
		if strings.HasPrefix(base, "_") {
			continue
		}
		t, err := template.New(base).Funcs(consoleFuncs).ParseFS(webFS, "web/templates/_*.html", n)
		if err != nil {
			return nil, fmt.Errorf("admin console: template %s: %w", n, err)
		}
		pages[base] = t
	}
	return pages, nil
}

// ServeHTTP implements http.Handler.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", consoleCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	if r.TLS != nil {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	c.mux.ServeHTTP(w, r)
}

// pageFunc is a page or action behind sign-in.
type pageFunc func(w http.ResponseWriter, r *http.Request, s *session) error

func (c *Console) routes() {
	c.mux.Handle("GET /static/", http.StripPrefix("/static/", http.HandlerFunc(c.serveStatic)))
	c.mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		r.URL.Path = "/favicon.svg"
		c.serveStatic(w, r)
	})
	c.mux.HandleFunc("GET /login", c.loginPage)
	c.mux.HandleFunc("POST /login", c.loginSubmit)
	c.mux.HandleFunc("GET /login/oidc", c.oidcStart)
	c.mux.HandleFunc("GET /login/oidc/callback", c.oidcCallback)
	c.handle("POST /logout", c.logout)
	c.handle("GET /{$}", c.overview)
	c.handle("GET /log", c.logPage)
	c.handle("GET /log.csv", c.logCSV)
	c.handle("POST /log/bulk", c.logBulk)
	c.handle("GET /log/{id}", c.messagePage)
	c.handle("GET /log/{id}/raw", c.messageRaw)
	c.handle("POST /log/{id}/release", c.messageRelease)
	c.handle("POST /log/{id}/delete", c.messageDelete)
	c.handle("POST /log/{id}/confirm-spam", c.messageConfirmSpam)
	c.handle("GET /lock", c.lockConfirm)
	c.handle("POST /lock", c.lockSubmit)
	c.handle("GET /reports", c.reportsPage)
	c.handle("POST /reports/toggle", c.reportToggle)
	c.handle("GET /locks", c.locksPage)
	c.handle("GET /locks/{kind}/{domain}/{name}", c.lockDetail)
	c.handle("GET /locks/{kind}/{domain}/{name}/notice", c.noticePreview)
	c.handle("POST /unlock", c.unlockSubmit)
	c.handle("GET /identities/{domain}/{name}", c.identityPage)
	c.handle("GET /identities/{domain}/{name}/notify", c.identityNotify)
	c.handle("POST /identities/{domain}/{name}/notify", c.identityNotifySubmit)
	c.handle("GET /audit", c.auditPage)
	c.handle("GET /campaigns", c.campaignsPage)
	c.handle("GET /campaigns/{id}", c.campaignPage)
	c.handle("POST /campaigns/{id}/confirm", c.campaignConfirm)
	c.handle("POST /campaigns/{id}/unconfirm", c.campaignUnconfirm)
	c.handle("POST /campaigns/{id}/lock", c.campaignLock)
	c.handle("/", func(w http.ResponseWriter, r *http.Request, s *session) error {
		return ops.Errorf(ops.ErrNotFound, "no page %s", r.URL.Path)
	})
}

// handle registers h behind the session check, and for POST the CSRF
// check, with panic recovery.
func (c *Console) handle(pattern string, h pageFunc) {
	c.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				c.log.Error("admin console: panic", "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				http.Error(w, "internal error; see outguard's log", http.StatusInternalServerError)
			}
		}()
		w.Header().Set("Cache-Control", "no-store")
		s, ok, err := c.session(r)
		if err != nil {
			c.log.Error("admin console: session store", "path", r.URL.Path, "err", err)
			c.refuse(w, r, http.StatusServiceUnavailable, "the console cannot read its sessions now; try again in a moment")
			return
		}
		if !ok {
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			c.refuse(w, r, http.StatusUnauthorized, "sign in first: your session is missing or has expired")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if err := c.checkCSRF(w, r, s); err != nil {
				c.refuse(w, r, http.StatusForbidden, err.Error())
				return
			}
		}
		if err := h(w, r, s); err != nil {
			c.fail(w, r, s, err)
		}
	})
}

// session returns the request's live session. A session whose token or
// account a reload removed or changed is ended, and with it every other
// session of that credential (on every node, with PostgreSQL).
func (c *Console) session(r *http.Request) (*session, bool, error) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, false, nil
	}
	ctx := r.Context()
	s, ok, err := c.sessions.get(ctx, ck.Value, c.ops.Now())
	if err != nil || !ok {
		return nil, false, err
	}
	// A session of a token or account that a reload removed or changed
	// ends (an account's new TOTP secret too), and one of an OpenID
	// Connect sign-in whose provider, client or grants changed.
	var now credential
	switch {
	case strings.HasPrefix(s.cred.sum, oidcCredentialPrefix):
		ok, now = c.oidcSessionValid(s.cred, scopeOf(s.p)), s.cred
	case s.cred.account:
		var a ops.Account
		a, ok = c.ops.CurrentAccount(s.p.Name)
		now = accountCredential(a)
	default:
		var tok ops.Token
		tok, ok = c.ops.CurrentToken(s.p.Name)
		now = tokenCredential(tok)
	}
	if !ok || now != s.cred {
		cur := now.sum
		if !ok {
			cur = ""
		}
		if err := c.sessions.endStale(ctx, s.p.Name, s.cred.account, cur); err != nil {
			return nil, false, err
		}
		return nil, false, nil
	}
	return &s, true, nil
}

// checkCSRF refuses a change whose Origin is another site's or whose form
// (or X-CSRF-Token header) lacks the session's token.
func (c *Console) checkCSRF(w http.ResponseWriter, r *http.Request, s *session) error {
	if err := sameOrigin(r); err != nil {
		return err
	}
	r.Body = http.MaxBytesReader(w, r.Body, c.maxForm)
	if err := r.ParseForm(); err != nil {
		return fmt.Errorf("unreadable form: %v", err)
	}
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		got = r.PostForm.Get("csrf")
	}
	if !tokenEqual(got, s.csrf) {
		return errors.New("the form's security token is missing or wrong: reload the page and try again")
	}
	return nil
}

// sameOrigin checks the Origin header (or, without it, Sec-Fetch-Site)
// against the request's own host.
func sameOrigin(r *http.Request) error {
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || o == "null" || !strings.EqualFold(u.Host, r.Host) {
			return fmt.Errorf("request from another site (Origin %q) refused", o)
		}
		return nil
	}
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" && s != "none" {
		return fmt.Errorf("request from another site (Sec-Fetch-Site %q) refused", s)
	}
	return nil
}

// wantsJSON reports whether the request comes from the console's script,
// which wants a JSON answer instead of a redirect.
func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json")
}

// refuse answers a request without a session or with a bad CSRF token.
func (c *Console) refuse(w http.ResponseWriter, r *http.Request, status int, msg string) {
	w.Header().Set("Cache-Control", "no-store")
	if wantsJSON(r) {
		writeJSONStatus(w, status, apiv1.ErrorBody{Error: apiv1.ErrorDetail{Code: http.StatusText(status), Message: msg}})
		return
	}
	c.render(w, r, nil, status, "error", map[string]any{"Title": http.StatusText(status), "Message": msg})
}

// fail renders an error page for err with the status of ops.Classify;
// internal errors are logged and not shown.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, s *session, err error) {
	status, code := ops.Classify(err)
	msg := err.Error()
	if status == http.StatusInternalServerError {
		c.log.Error("admin console: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "internal error; see outguard's log"
	}
	if wantsJSON(r) {
		writeJSONStatus(w, status, apiv1.ErrorBody{Error: apiv1.ErrorDetail{Code: code, Message: msg}})
		return
	}
	c.render(w, r, s, status, "error", map[string]any{"Title": http.StatusText(status), "Message": msg})
}

// pageData is what every page template gets.
type pageData struct {
	Page       string
	Title      string
	User       string
	Scope      string
	CSRF       string
	Flash      string
	FlashError bool
	Data       any
}

// render executes a page into a buffer, then writes it: a template error
// never leaves half a page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, s *session, status int, page string, data any) {
	t, ok := c.pages[page]
	if !ok {
		http.Error(w, "internal error: no template "+page, http.StatusInternalServerError)
		return
	}
	pd := pageData{Page: page, Data: data}
	if m, ok := data.(map[string]any); ok {
		if v, ok := m["Title"].(string); ok {
			pd.Title = v
		}
	}
	if s != nil {
		pd.User, pd.Scope, pd.CSRF = s.p.Name, s.scopeLabel(), s.csrf
		var err error
		if pd.Flash, pd.FlashError, err = c.sessions.takeFlash(r.Context(), s.id); err != nil {
			c.log.Error("admin console: reading a notice", "actor", s.p.Name, "err", err)
		}
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", pd); err != nil {
		c.log.Error("admin console: rendering", "page", page, "err", err)
		http.Error(w, "internal error; see outguard's log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// done ends a successful change: a JSON answer for the script, else a
// notice and a redirect (post/redirect/get) to back.
func (c *Console) done(w http.ResponseWriter, r *http.Request, s *session, back, msg string, v any) {
	if wantsJSON(r) {
		writeJSON(w, v)
		return
	}
	c.setFlash(r.Context(), s, msg, false)
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// localPath returns p if it is a path on this site, else def: redirects
// never leave the console.
func localPath(p, def string) string {
	if p == "" || !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\\r\n\t") {
		return def
	}
	u, err := url.Parse(p)
	if err != nil || u.Host != "" || u.Scheme != "" {
		return def
	}
	return p
}

func (c *Console) serveStatic(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "max-age=3600")
	http.FileServerFS(c.static).ServeHTTP(w, r)
}

// setCookie sets a console cookie: HttpOnly, SameSite=Strict, Secure
// under TLS. maxAge < 0 deletes it.
func setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
}

func writeJSON(w http.ResponseWriter, v any) { api.WriteJSON(w, http.StatusOK, v) }

func writeJSONStatus(w http.ResponseWriter, status int, v any) { api.WriteJSON(w, status, v) }
