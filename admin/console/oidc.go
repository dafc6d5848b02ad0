package console

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/outguard/outguard/admin/ops"
)

// OIDCOptions configure the console's OpenID Connect sign-in
// (docs/config-admin.md#openid-connect): the authorization code flow
// (OpenID Connect Core 1.0 section 3.1) with state, nonce and PKCE (RFC
// 7636, S256), against one provider found by discovery.
type OIDCOptions struct {
	// Name is shown on the sign-in button ("Sign in with Name").
	Name string
	// Issuer is the provider's issuer URL; required.
	Issuer string
	// ClientID and ClientSecret are the console's client at the
	// provider; ClientID is required, ClientSecret "" for a public
	// client.
	ClientID, ClientSecret string
	// RedirectURL is the console's callback URL as browsers reach it;
	// required.
	RedirectURL string
	// Scopes asked for; default openid, email, profile.
	Scopes []string
	// GroupsClaim names the ID token's claim of groups; default "groups".
	GroupsClaim string
	// Grants admit people; nobody else signs in.
	Grants []OIDCGrant
	// HTTPClient talks to the provider (discovery, keys, token
	// endpoint); default a client with a 15-second timeout.
	HTTPClient *http.Client
}

// OIDCGrant admits the people whose groups claim holds Group, whose
// verified email is Email, or whose subject is Subject (one of the
// three), with Scope: ops.ScopeAll or one administrative domain.
type OIDCGrant struct {
	Group, Email, Subject string
	Scope                 string
}

// OIDC timings and bounds.
const (
	// oidcPendingAge is how long a started sign-in may take at the
	// provider: the pending cookie's lifetime.
	oidcPendingAge = 10 * time.Minute
	// oidcTimeout bounds each exchange with the provider.
	oidcTimeout = 15 * time.Second
	// maxOIDCCookie bounds the pending cookie read back.
	maxOIDCCookie = 4096
	// maxGroups bounds the groups read from a token.
	maxGroups = 1000
)

// oidcCookie holds a started sign-in: its state, nonce and PKCE verifier,
// sealed with the console's key, so that the server keeps nothing per
// pending sign-in. SameSite=Lax: the provider's redirect back is a
// cross-site navigation, which a Strict cookie would not follow.
const oidcCookie = "outguard_oidc"

// oidcCredentialPrefix marks a session credential of an OpenID Connect
// sign-in; no token or password hash (bcrypt "$2", argon2id "$argon2id$")
// starts with it. Printable, so that a session store may keep it as text.
const oidcCredentialPrefix = "oidc:"

// oidcSetup is one configuration of the sign-in, swapped whole on reload.
type oidcSetup struct {
	o      OIDCOptions
	client *http.Client
	// fp fingerprints what admits people (provider, client, grants): a
	// change ends the sessions signed in under the old one.
	fp string

	mu       sync.Mutex
	provider *oidc.Provider
}

// SetOIDC turns the OpenID Connect sign-in on with o, or off with nil.
// It contacts no provider: discovery happens at the first sign-in, so that
// an unreachable provider never stops the daemon. Sessions signed in
// under a different provider, client or grants end at their next request.
func (c *Console) SetOIDC(o *OIDCOptions) error {
	if o == nil {
		c.oidc.Store(nil)
		return nil
	}
	x := *o
	if x.Issuer == "" || x.ClientID == "" || x.RedirectURL == "" {
		return errors.New("admin console: OIDC needs an issuer, a client id and a redirect URL")
	}
	if len(x.Grants) == 0 {
		return errors.New("admin console: OIDC without grants would admit nobody")
	}
	if len(x.Scopes) == 0 {
		x.Scopes = []string{oidc.ScopeOpenID, "email", "profile"}
	}
	if x.GroupsClaim == "" {
		x.GroupsClaim = "groups"
	}
	if x.Name == "" {
		x.Name = x.Issuer
	}
	x.Grants = append([]OIDCGrant(nil), x.Grants...)
	cl := x.HTTPClient
	if cl == nil {
		cl = &http.Client{Timeout: oidcTimeout}
	}
	b, _ := json.Marshal([]any{x.Issuer, x.ClientID, x.GroupsClaim, x.Grants})
	sum := sha256.Sum256(b)
	c.oidc.Store(&oidcSetup{o: x, client: cl, fp: hex.EncodeToString(sum[:16])})
	return nil
}

// discover returns the provider, fetching its discovery document on the
// first call (and again after a failure).
func (s *oidcSetup) discover(ctx context.Context) (*oidc.Provider, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.provider != nil {
		return s.provider, nil
	}
	ctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, s.client), oidcTimeout)
	defer cancel()
	p, err := oidc.NewProvider(ctx, s.o.Issuer)
	if err != nil {
		return nil, err
	}
	s.provider = p
	return p, nil
}

func (s *oidcSetup) oauth2(p *oidc.Provider) *oauth2.Config {
	return &oauth2.Config{ClientID: s.o.ClientID, ClientSecret: s.o.ClientSecret, Endpoint: p.Endpoint(),
		RedirectURL: s.o.RedirectURL, Scopes: s.o.Scopes}
}

// oidcCredential is the session credential of a sign-in under setup fp,
// with the scope its grants gave.
func oidcCredential(fp, scope string) credential {
	c := newCredential(false, fp, scope)
	c.sum = oidcCredentialPrefix + c.sum
	return c
}

// oidcSessionValid reports whether a session signed in with cred is still
// admitted: the sign-in is configured and unchanged.
func (c *Console) oidcSessionValid(cred credential, scope string) bool {
	set := c.oidc.Load()
	return set != nil && cred == oidcCredential(set.fp, scope)
}

// oidcPending is the content of the pending cookie.
type oidcPending struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Next     string `json:"r"`
	Expires  int64  `json:"e"`
	// Setup is the fingerprint of the configuration it was started
	// under: a reload in between voids it.
	Setup string `json:"f"`
}

func (c *Console) seal(p oidcPending) string {
	b, _ := json.Marshal(p)
	payload := base64.RawURLEncoding.EncodeToString(b)
	m := hmac.New(sha256.New, c.cookieKey)
	m.Write([]byte(payload))
	return payload + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (c *Console) unseal(v string) (oidcPending, bool) {
	var p oidcPending
	payload, mac, ok := strings.Cut(v, ".")
	if !ok || len(v) > maxOIDCCookie {
		return p, false
	}
	got, err := base64.RawURLEncoding.DecodeString(mac)
	if err != nil {
		return p, false
	}
	m := hmac.New(sha256.New, c.cookieKey)
	m.Write([]byte(payload))
	if !hmac.Equal(got, m.Sum(nil)) {
		return p, false
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil || json.Unmarshal(b, &p) != nil {
		return p, false
	}
	return p, true
}

func setOIDCCookie(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: value, Path: "/login/oidc", MaxAge: maxAge,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
}

// oidcStart sends the browser to the provider with a fresh state, nonce
// and PKCE challenge, kept in the pending cookie.
func (c *Console) oidcStart(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	set := c.oidc.Load()
	if set == nil {
		c.refuse(w, r, http.StatusNotFound, "single sign-on is not configured: sign in with a console account")
		return
	}
	next := localPath(r.URL.Query().Get("next"), "/")
	if _, ok, _ := c.session(r); ok {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	prov, err := set.discover(r.Context())
	if err != nil {
		c.log.Error("admin console: OIDC discovery", "issuer", set.o.Issuer, "err", err)
		c.showLogin(w, r, http.StatusBadGateway, fmt.Sprintf("%s cannot be reached just now: try again later, or sign in with a console account.", set.o.Name))
		return
	}
	var vals [2]string
	for i := range vals {
		if vals[i], err = randomToken(c.rand); err != nil {
			c.log.Error("admin console: OIDC sign-in", "err", err)
			http.Error(w, "internal error; see outguard's log", http.StatusInternalServerError)
			return
		}
	}
	p := oidcPending{State: vals[0], Nonce: vals[1], Verifier: oauth2.GenerateVerifier(), Next: clip(next),
		Expires: c.ops.Now().Add(oidcPendingAge).Unix(), Setup: set.fp}
	setOIDCCookie(w, r, c.seal(p), int(oidcPendingAge/time.Second))
	to := set.oauth2(prov).AuthCodeURL(p.State, oauth2.S256ChallengeOption(p.Verifier), oidc.Nonce(p.Nonce))
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// oidcError is a refused OpenID Connect sign-in: what the person is told,
// and whether it counts against the client as a failed sign-in.
type oidcError struct {
	status int
	msg    string
	detail string // logged, not shown
	guess  bool
}

func (e *oidcError) Error() string { return e.msg }

// Unwrap makes a counted refusal an ops.ErrUnauthorized, which the
// throttle counts.
func (e *oidcError) Unwrap() error {
	if e.guess {
		return ops.ErrUnauthorized
	}
	return nil
}

func refused(status int, guess bool, msg, detail string) error {
	return &oidcError{status: status, msg: msg, detail: detail, guess: guess}
}

// oidcCallback takes the provider's answer: it checks the state against
// the pending cookie, redeems the code with the PKCE verifier, verifies
// the ID token (signature, issuer, audience, expiry) and its nonce, maps
// the person through the grants and starts a session.
func (c *Console) oidcCallback(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	set := c.oidc.Load()
	if set == nil {
		c.refuse(w, r, http.StatusNotFound, "single sign-on is not configured: sign in with a console account")
		return
	}
	// One use: the pending sign-in ends here, whatever the outcome.
	setOIDCCookie(w, r, "", -1)
	q := r.URL.Query()
	var pending oidcPending
	ck, err := r.Cookie(oidcCookie)
	ok := err == nil
	if ok {
		pending, ok = c.unseal(ck.Value)
	}
	// The provider's own refusal (the person cancelled, or may not use
	// this client), for the sign-in this browser started: not a guess.
	// With another state it is refused below like any foreign answer.
	if e := q.Get("error"); e != "" && ok && tokenEqual(q.Get("state"), pending.State) {
		c.log.Info("admin console: OIDC sign-in refused by the provider", "error", clip(e), "description", clip(q.Get("error_description")), "remote", r.RemoteAddr)
		c.showLogin(w, r, http.StatusUnauthorized, fmt.Sprintf("%s did not sign you in (%s). Try again, or sign in with a console account.", set.o.Name, clip(e)))
		return
	}
	var person string
	p, err := c.ops.SignInExternal(ops.ClientIP(r.RemoteAddr), func() (ops.Principal, error) {
		if !ok || pending.Setup != set.fp || c.ops.Now().Unix() > pending.Expires {
			return ops.Principal{}, refused(http.StatusBadRequest, true,
				"This sign-in expired or was started in another browser. Start again.", "no valid pending sign-in cookie")
		}
		if !tokenEqual(q.Get("state"), pending.State) {
			return ops.Principal{}, refused(http.StatusBadRequest, true,
				"The provider's answer does not belong to the sign-in this browser started. Start again.", "state mismatch")
		}
		var p ops.Principal
		var err error
		p, person, err = c.oidcVerify(r.Context(), set, pending, q.Get("code"))
		return p, err
	})
	if err != nil {
		c.oidcRefuse(w, r, set, person, err)
		return
	}
	if !c.beginSession(w, r, p, oidcCredential(set.fp, scopeOf(p))) {
		return
	}
	c.log.Info("admin console: signed in", "actor", p.Name, "method", "oidc", "issuer", set.o.Issuer, "remote", r.RemoteAddr)
	// A page, not a redirect: the browser arrives from the provider's
	// site, and the session cookie (SameSite=Strict) is not sent on a
	// redirect that continues that navigation; the page's own refresh
	// is a same-site navigation.
	c.render(w, r, nil, http.StatusOK, "signedin", map[string]any{"Title": "Signed in", "Next": localPath(pending.Next, "/"), "Name": p.Name})
}

func scopeOf(p ops.Principal) string {
	if p.All() {
		return ops.ScopeAll
	}
	return p.Domain
}

func (c *Console) oidcRefuse(w http.ResponseWriter, r *http.Request, set *oidcSetup, person string, err error) {
	var te *ops.ThrottledError
	var oe *oidcError
	switch {
	case errors.As(err, &te):
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(te.RetryAfter.Seconds()))))
		c.showLogin(w, r, http.StatusTooManyRequests, fmt.Sprintf("Too many failed sign-ins: try again in %s.", te.RetryAfter.Round(time.Second)))
	case errors.As(err, &oe):
		c.log.Warn("admin console: OIDC sign-in refused", "reason", oe.detail, "person", person, "issuer", set.o.Issuer, "remote", r.RemoteAddr)
		c.showLogin(w, r, oe.status, oe.msg)
	default:
		c.log.Error("admin console: OIDC sign-in", "issuer", set.o.Issuer, "err", err)
		c.showLogin(w, r, http.StatusBadGateway, fmt.Sprintf("The sign-in with %s failed (see outguard's log). Try again, or sign in with a console account.", set.o.Name))
	}
}

// oidcClaims are the ID token's claims read for the mapping.
type oidcClaims struct {
	Email         string          `json:"email"`
	EmailVerified json.RawMessage `json:"email_verified"`
}

// oidcVerify redeems code and maps the person the ID token names. It
// returns the person's description for the log.
func (c *Console) oidcVerify(ctx context.Context, set *oidcSetup, pending oidcPending, code string) (ops.Principal, string, error) {
	if code == "" || len(code) > maxFieldLength {
		return ops.Principal{}, "", refused(http.StatusBadRequest, true, "The provider's answer has no usable code. Start again.", "no code")
	}
	prov, err := set.discover(ctx)
	if err != nil {
		return ops.Principal{}, "", fmt.Errorf("discovery: %w", err)
	}
	ctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, set.client), oidcTimeout)
	defer cancel()
	tok, err := set.oauth2(prov).Exchange(ctx, code, oauth2.VerifierOption(pending.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 {
			// The provider refused the code: used already, expired,
			// or not issued for this verifier.
			return ops.Principal{}, "", refused(http.StatusUnauthorized, true,
				fmt.Sprintf("%s refused the sign-in code (%s). Start again.", set.o.Name, clip(re.ErrorCode)), "token endpoint: "+err.Error())
		}
		return ops.Principal{}, "", fmt.Errorf("token endpoint: %w", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return ops.Principal{}, "", refused(http.StatusUnauthorized, true,
			fmt.Sprintf("%s sent no ID token: is the scope openid granted to this client?", set.o.Name), "no id_token in the token response")
	}
	idt, err := prov.Verifier(&oidc.Config{ClientID: set.o.ClientID, Now: c.ops.Now}).Verify(ctx, raw)
	if err != nil {
		return ops.Principal{}, "", refused(http.StatusUnauthorized, true,
			fmt.Sprintf("The ID token from %s was refused: %s.", set.o.Name, strings.TrimPrefix(err.Error(), "oidc: ")), "ID token: "+err.Error())
	}
	if !tokenEqual(idt.Nonce, pending.Nonce) {
		return ops.Principal{}, "", refused(http.StatusUnauthorized, true,
			fmt.Sprintf("The ID token from %s does not answer this sign-in (its nonce differs). Start again.", set.o.Name), "nonce mismatch")
	}
	var cl oidcClaims
	if err := idt.Claims(&cl); err != nil {
		return ops.Principal{}, "", refused(http.StatusUnauthorized, true, "The ID token's claims are unreadable.", "claims: "+err.Error())
	}
	var all map[string]json.RawMessage
	if err := idt.Claims(&all); err != nil {
		return ops.Principal{}, "", refused(http.StatusUnauthorized, true, "The ID token's claims are unreadable.", "claims: "+err.Error())
	}
	who := oidcPerson{subject: idt.Subject, groups: claimStrings(all[set.o.GroupsClaim])}
	if verified(cl.EmailVerified) && strings.Contains(cl.Email, "@") && len(cl.Email) <= 254 {
		who.email = cl.Email
	}
	p, err := c.admit(set, who)
	return p, who.String(), err
}

// oidcPerson is who the provider vouches for.
type oidcPerson struct {
	subject, email string
	groups         []string
}

func (p oidcPerson) String() string {
	if p.email != "" {
		return p.email + " (sub " + p.subject + ")"
	}
	return "sub " + p.subject
}

// name is the principal name: the verified email, or oidc:<sub>.
func (p oidcPerson) name() string {
	if p.email != "" {
		return p.email
	}
	return "oidc:" + p.subject
}

// admit maps a person through the grants: any grant of scope all gives
// all domains; otherwise the grants must agree on one domain, since a
// session has one scope. A person no grant matches is refused.
func (c *Console) admit(set *oidcSetup, who oidcPerson) (ops.Principal, error) {
	if who.subject == "" || len(who.subject) > 255 {
		return ops.Principal{}, refused(http.StatusUnauthorized, true, "The ID token names nobody (no subject).", "no subject")
	}
	scopes := map[string]bool{}
	for _, g := range set.o.Grants {
		match := (g.Subject != "" && g.Subject == who.subject) ||
			(g.Email != "" && who.email != "" && strings.EqualFold(g.Email, who.email))
		for _, x := range who.groups {
			match = match || (g.Group != "" && g.Group == x)
		}
		if match {
			scopes[strings.ToLower(g.Scope)] = true
		}
	}
	name := who.name()
	if len(scopes) == 0 {
		return ops.Principal{}, refused(http.StatusForbidden, true,
			fmt.Sprintf("%s signed you in as %s, but this console admits you through no grant. Ask an administrator to add you (admin.oidc.grants).", set.o.Name, name), "no grant matches")
	}
	if _, ok := c.ops.CurrentToken(name); ok {
		return ops.Principal{}, refused(http.StatusForbidden, false,
			fmt.Sprintf("The name %s is also an API token's name, and the audit trail could not tell you apart. Ask an administrator to rename the token.", name), "name taken by a token")
	}
	if _, ok := c.ops.CurrentAccount(name); ok {
		return ops.Principal{}, refused(http.StatusForbidden, false,
			fmt.Sprintf("The name %s is also a console account's name, and the audit trail could not tell you apart. Sign in with the account, or ask an administrator to rename it.", name), "name taken by an account")
	}
	if scopes[ops.ScopeAll] {
		return ops.Principal{Name: name}, nil
	}
	if len(scopes) > 1 {
		return ops.Principal{}, refused(http.StatusForbidden, false,
			fmt.Sprintf("%s: your grants name several domains, and a console session has one. Ask an administrator to keep one.", name), "grants of several domains")
	}
	var d string
	for x := range scopes {
		d = x
	}
	return ops.Principal{Name: name, Domain: d}, nil
}

// verified reads email_verified, a boolean (or, from some providers, the
// string "true").
func verified(raw json.RawMessage) bool {
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		return b
	}
	var s string
	return json.Unmarshal(raw, &s) == nil && s == "true"
}

// claimStrings reads a claim that is a list of strings or one string.
func claimStrings(raw json.RawMessage) []string {
	if len(raw) == 0 {
		return nil
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		if len(list) > maxGroups {
			list = list[:maxGroups]
		}
		return list
	}
	var s string
	if json.Unmarshal(raw, &s) == nil && s != "" {
		return []string{s}
	}
	return nil
}

// oidcButton is what the sign-in page shows of the OIDC sign-in: the
// provider's name and the link that starts it, or nil.
func (c *Console) oidcButton(next string) map[string]string {
	set := c.oidc.Load()
	if set == nil {
		return nil
	}
	return map[string]string{"Name": set.o.Name, "URL": "/login/oidc?next=" + url.QueryEscape(next)}
}
