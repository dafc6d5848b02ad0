package app

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// oidcProvider is a minimal OpenID Connect provider for the tests of the
// console's sign-in (docs/config-admin.md#openid-connect): discovery, a
// JWKS with one RSA key, an authorize endpoint that signs the configured
// person in when they click "Continue" on its page and redirects back
// with a code, and a token endpoint
// that checks the client, the code, the redirect URI and the PKCE
// verifier (RFC 7636, S256) before it answers with an RS256-signed ID
// token carrying the nonce it was given.
//
// It listens on 127.0.0.1 but names itself "localhost": to the browser it
// is another site than the console on 127.0.0.1, as a real provider is.
type oidcProvider struct {
	t        *testing.T
	srv      *httptest.Server
	issuer   string
	clientID string
	secret   string
	now      func() time.Time
	key      *rsa.PrivateKey
	signer   jose.Signer

	mu sync.Mutex
	// redirect is the console's callback URL, registered for the client.
	redirect string
	// person are the claims of whoever signs in at the authorize
	// endpoint: sub, email, email_verified, groups.
	person map[string]any
	// tamper changes the ID token's claims before signing, when set.
	tamper func(claims map[string]any)
	// otherKey signs with a key the JWKS does not publish, when set.
	otherKey bool
	codes    map[string]oidcCode
	// tokens counts the codes redeemed.
	tokens int
}

// oidcCode is an issued authorization code and what it was issued for.
type oidcCode struct {
	nonce, challenge, redirect string
	person                     map[string]any
}

func newOIDCProvider(t *testing.T, now func() time.Time) *oidcProvider {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := &oidcProvider{t: t, clientID: "outguard-console", secret: "client-secret-for-tests", now: now, key: key, codes: map[string]oidcCode{}}
	if p.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}},
		(&jose.SignerOptions{}).WithType("JWT")); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("GET /jwks", p.jwks)
	mux.HandleFunc("GET /authorize", p.authorize)
	mux.HandleFunc("POST /token", p.token)
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	_, port, _ := net.SplitHostPort(p.srv.Listener.Addr().String())
	p.issuer = "http://localhost:" + port
	return p
}

// signIn sets who the authorize endpoint signs in.
func (p *oidcProvider) signIn(person map[string]any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.person = person
}

func (p *oidcProvider) setTamper(f func(map[string]any)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tamper = f
}

func (p *oidcProvider) discovery(w http.ResponseWriter, r *http.Request) {
	writeJSONTest(w, map[string]any{
		"issuer":                                p.issuer,
		"authorization_endpoint":                p.issuer + "/authorize",
		"token_endpoint":                        p.issuer + "/token",
		"jwks_uri":                              p.issuer + "/jwks",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"code_challenge_methods_supported":      []string{"S256"},
	})
}

func (p *oidcProvider) jwks(w http.ResponseWriter, r *http.Request) {
	writeJSONTest(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &p.key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
}

func (p *oidcProvider) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case q.Get("response_type") != "code", q.Get("client_id") != p.clientID:
		http.Error(w, "unknown client or response type", http.StatusBadRequest)
		return
	case q.Get("redirect_uri") != p.redirect:
		http.Error(w, "redirect_uri "+q.Get("redirect_uri")+" is not registered", http.StatusBadRequest)
		return
	case q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "":
		http.Error(w, "PKCE with S256 is required", http.StatusBadRequest)
		return
	case q.Get("state") == "" || q.Get("nonce") == "":
		http.Error(w, "state and nonce are required", http.StatusBadRequest)
		return
	case !strings.Contains(" "+q.Get("scope")+" ", " openid "):
		http.Error(w, "scope openid is required", http.StatusBadRequest)
		return
	}
	if q.Get("approve") == "" {
		// The provider's own page, as a real one asks for a password:
		// the way back to the console is then a navigation that this
		// other site starts.
		q.Set("approve", "1")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>Test IdP</title><h1>Test IdP</h1><p><a id="approve" href="/authorize?%s">Continue as %v</a></p>`,
			html.EscapeString(q.Encode()), html.EscapeString(fmt.Sprint(p.person["email"])))
		return
	}
	b := make([]byte, 24)
	rand.Read(b)
	code := base64.RawURLEncoding.EncodeToString(b)
	p.codes[code] = oidcCode{nonce: q.Get("nonce"), challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri"), person: p.person}
	back, _ := url.Parse(p.redirect)
	back.RawQuery = url.Values{"code": {code}, "state": {q.Get("state")}}.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

func (p *oidcProvider) token(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	id, _ = url.QueryUnescape(id)
	secret, _ = url.QueryUnescape(secret)
	if !ok || id != p.clientID || secret != p.secret {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"error":"invalid_client"}`))
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	c, ok := p.codes[r.PostForm.Get("code")]
	delete(p.codes, r.PostForm.Get("code")) // one use
	tamper, otherKey := p.tamper, p.otherKey
	p.tokens++
	p.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if !ok || r.PostForm.Get("grant_type") != "authorization_code" || r.PostForm.Get("redirect_uri") != c.redirect ||
		base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"error":"invalid_grant"}`))
		return
	}
	now := p.now()
	claims := map[string]any{"iss": p.issuer, "aud": p.clientID, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "nonce": c.nonce}
	for k, v := range c.person {
		claims[k] = v
	}
	if tamper != nil {
		tamper(claims)
	}
	signer := p.signer
	if otherKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			p.t.Error(err)
			return
		}
		signer, _ = jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: k, KeyID: "k1"}}, (&jose.SignerOptions{}).WithType("JWT"))
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		p.t.Error(err)
		return
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		p.t.Error(err)
		return
	}
	writeJSONTest(w, map[string]any{"access_token": "at-" + r.PostForm.Get("code"), "token_type": "Bearer", "expires_in": 300, "id_token": raw})
}

func writeJSONTest(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}
