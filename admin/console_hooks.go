package admin

import (
	"context"
	"net/http"
	"strings"
)

// Hooks into the API's token table for the console, which shares the
// API's tokens, scoping and audit trail rather than keeping its own.

// signIn checks an API token typed into the console's sign-in form the
// way the API checks a bearer token (same cache, same bound on slow hash
// checks) and returns its principal and the configured token it matched.
func (a *API) signIn(ctx context.Context, secret string) (Principal, Token, error) {
	secret = strings.TrimSpace(secret)
	if secret == "" || len(secret) > maxTokenLength || strings.ContainsAny(secret, "\r\n") {
		return Principal{}, Token{}, errorf(ErrUnauthorized, "invalid token")
	}
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, "/", nil)
	if err != nil {
		return Principal{}, Token{}, err
	}
	r.Header.Set("Authorization", "Bearer "+secret)
	p, err := a.tokens.authenticate(r)
	if err != nil {
		return Principal{}, Token{}, err
	}
	tok, ok := a.currentToken(p.Name)
	if !ok {
		return Principal{}, Token{}, errorf(ErrUnauthorized, "invalid token")
	}
	return p, tok, nil
}

// currentToken returns the configured token named name, if it is still
// configured. The console calls it on every request so that a session
// ends when its token is removed or changed by a reload.
func (a *API) currentToken(name string) (Token, bool) {
	for _, t := range a.tokens.list.Load().tokens {
		if t.Name == name {
			return t, true
		}
	}
	return Token{}, false
}
