package ops

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/outguard/outguard/internal/passwd"
)

// ScopeAll is the scope of a token that may act on every administrative
// domain.
const ScopeAll = "all"

// maxTokenLength bounds the bearer token read from a request, so a
// hostile header cannot make the hash functions work on megabytes.
const maxTokenLength = 512

// Token is one API bearer token as configured: only its hash is known.
type Token struct {
	// Name identifies the token in the audit trail and in locks (the
	// lock's actor).
	Name string
	// Hash is a bcrypt or argon2id hash of the token.
	Hash string
	// Scope is ScopeAll or the name of one administrative domain.
	Scope string
}

// Principal is the authenticated caller of a request.
type Principal struct {
	// Name is the token's name.
	Name string
	// Domain is the administrative domain the token is limited to; ""
	// for a token of scope all.
	Domain string
}

// All reports whether the principal may act on every domain.
func (p Principal) All() bool { return p.Domain == "" }

// Allows reports whether the principal may see or act on an object of
// the administrative domain d.
func (p Principal) Allows(d string) bool { return p.Domain == "" || strings.EqualFold(p.Domain, d) }

// maxCachedTokens bounds the cache of recognised tokens.
const maxCachedTokens = 1024

// tokens is the hot-swappable token table.
type tokens struct {
	list     atomic.Pointer[tokenTable]
	verifier *passwd.Verifier
	key      []byte // keys the cache's hashes of secrets
	// slow bounds the concurrent checks of unrecognised secrets, each
	// costing one slow hash per token, so that a flood of wrong tokens
	// queues instead of taking every CPU from the mail flow.
	slow chan struct{}
}

// tokenTable is one configured token set with the secrets recognised so
// far: without it, the k-th token would pay k-1 failed (slow) hash checks
// on every request, failures being never cached.
type tokenTable struct {
	tokens []Token
	mu     sync.Mutex
	known  map[[32]byte]int // keyed hash of a secret -> index in tokens
}

func (t *tokens) set(list []Token) {
	if t.key == nil {
		t.key = make([]byte, 32)
		rand.Read(t.key)
	}
	t.list.Store(&tokenTable{tokens: append([]Token(nil), list...), known: map[[32]byte]int{}})
}

func (t *tokens) cacheKey(secret string) [32]byte {
	m := hmac.New(sha256.New, t.key)
	m.Write([]byte(secret))
	var k [32]byte
	copy(k[:], m.Sum(nil))
	return k
}

func principal(tok Token) Principal {
	p := Principal{Name: tok.Name}
	if !strings.EqualFold(tok.Scope, ScopeAll) {
		p.Domain = tok.Scope
	}
	return p
}

// authenticate finds the token whose hash matches the bearer token of an
// Authorization header's value. A secret recognised before is found in
// the table's cache; else every configured hash is tried, which is slow
// by design (tens of milliseconds per token) for an unknown secret.
func (t *tokens) authenticate(ctx context.Context, h string) (Principal, error) {
	if h == "" {
		return Principal{}, Errorf(ErrUnauthorized, "missing Authorization: Bearer TOKEN header")
	}
	scheme, secret, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return Principal{}, Errorf(ErrUnauthorized, "the Authorization header must be \"Bearer TOKEN\"")
	}
	secret = strings.TrimSpace(secret)
	if secret == "" || len(secret) > maxTokenLength {
		return Principal{}, Errorf(ErrUnauthorized, "invalid token")
	}
	table := t.list.Load()
	ck := t.cacheKey(secret)
	table.mu.Lock()
	i, hit := table.known[ck]
	table.mu.Unlock()
	if hit {
		return principal(table.tokens[i]), nil
	}
	select {
	case t.slow <- struct{}{}:
		defer func() { <-t.slow }()
	case <-ctx.Done():
		return Principal{}, ctx.Err()
	}
	for i, tok := range table.tokens {
		err := t.verifier.Verify(tok.Hash, secret)
		if err == nil {
			table.mu.Lock()
			if len(table.known) >= maxCachedTokens {
				clear(table.known)
			}
			table.known[ck] = i
			table.mu.Unlock()
			return principal(tok), nil
		}
		if !errors.Is(err, passwd.ErrMismatch) && !errors.Is(err, passwd.ErrUnknownHash) {
			return Principal{}, err
		}
	}
	return Principal{}, Errorf(ErrUnauthorized, "invalid token")
}

// SetTokens replaces the tokens; requests in flight keep the old set. It
// refuses a token without a name, hash or scope and keeps the old set.
func (o *Ops) SetTokens(list []Token) error {
	for i, t := range list {
		if t.Name == "" || t.Hash == "" || t.Scope == "" {
			return fmt.Errorf("admin: token %d (%q): name, hash and scope are required", i, t.Name)
		}
	}
	o.tokens.set(list)
	return nil
}

func (t *tokens) init() {
	t.verifier = passwd.NewVerifier(defaultVerifierCache)
	t.slow = make(chan struct{}, max(1, runtime.NumCPU()/2))
}

// Authenticate returns the principal of an Authorization header's value
// ("Bearer TOKEN") sent from client (an address; "" counts nowhere).
// Every failure counts in outguard_api_auth_failures_total and against
// the client in the sign-in throttle (but a request without the header);
// a client locked out gets a
// *ThrottledError before any check.
func (o *Ops) Authenticate(ctx context.Context, authorization, client string) (Principal, error) {
	keys := throttleKeys(client, "")
	if err := o.throttled(keys); err != nil {
		return Principal{}, err
	}
	p, err := o.tokens.authenticate(ctx, authorization)
	if err != nil {
		o.metrics.authFailures.Inc()
	}
	// A request without credentials guesses nothing: it is not counted.
	if authorization != "" {
		o.afterSignIn(keys, err)
	}
	return p, err
}

// SignIn checks a token typed into the console's sign-in form the way
// Authenticate checks a bearer token (same cache, same bound on slow hash
// checks, same throttle on client) and returns its principal and the
// configured token it matched.
func (o *Ops) SignIn(ctx context.Context, secret, client string) (Principal, Token, error) {
	keys := throttleKeys(client, "")
	if err := o.throttled(keys); err != nil {
		return Principal{}, Token{}, err
	}
	p, tok, err := o.signIn(ctx, secret)
	if err != nil {
		o.metrics.authFailures.Inc()
	}
	o.afterSignIn(keys, err)
	return p, tok, err
}

func (o *Ops) signIn(ctx context.Context, secret string) (Principal, Token, error) {
	secret = strings.TrimSpace(secret)
	if secret == "" || len(secret) > maxTokenLength || strings.ContainsAny(secret, "\r\n") {
		return Principal{}, Token{}, Errorf(ErrUnauthorized, "invalid token")
	}
	p, err := o.tokens.authenticate(ctx, "Bearer "+secret)
	if err != nil {
		return Principal{}, Token{}, err
	}
	tok, ok := o.CurrentToken(p.Name)
	if !ok {
		return Principal{}, Token{}, Errorf(ErrUnauthorized, "invalid token")
	}
	return p, tok, nil
}

// CurrentToken returns the configured token named name, if it is still
// configured. The console calls it on every request so that a session
// ends when its token is removed or changed by a reload.
func (o *Ops) CurrentToken(name string) (Token, bool) {
	for _, t := range o.tokens.list.Load().tokens {
		if t.Name == name {
			return t, true
		}
	}
	return Token{}, false
}
