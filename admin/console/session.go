package console

import (
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/outguard/outguard/admin/ops"
)

// session is one signed-in console user, kept in memory only.
type session struct {
	id   string
	csrf string
	p    ops.Principal
	// cred is the configured token's or account's at sign-in: a reload
	// that removes or changes it ends the session.
	cred          credential
	created, seen time.Time
	// flash is a one-shot notice shown on the next page.
	flash      string
	flashError bool
}

// credential is what a session was signed in with: a token, or a named
// account (docs/config-admin.md#accounts), and its hash and scope then.
type credential struct {
	account     bool
	hash, scope string
}

func tokenCredential(t ops.Token) credential { return credential{hash: t.Hash, scope: t.Scope} }

// accountCredential holds the account's TOTP secret with its hash: a new
// secret (a lost phone) ends the account's sessions too.
func accountCredential(a ops.Account) credential {
	return credential{account: true, hash: a.PasswordHash + "\x00" + a.TOTPSecret, scope: a.Scope}
}

// sessionStore is the in-memory session table: random ids, idle and
// absolute expiry, and a bound on the number of sessions (the oldest is
// evicted), so a flood of sign-ins cannot grow memory without end.
type sessionStore struct {
	mu     sync.Mutex
	byID   map[string]*session
	idle   time.Duration
	maxAge time.Duration
	max    int
	rand   io.Reader
	lastGC time.Time
}

func newSessionStore(idle, maxAge time.Duration, max int, rnd io.Reader) *sessionStore {
	return &sessionStore{byID: map[string]*session{}, idle: idle, maxAge: maxAge, max: max, rand: rnd}
}

// randomToken returns 32 random bytes, base64url-encoded.
func randomToken(r io.Reader) (string, error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("admin console: random source: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func (s *sessionStore) expired(x *session, now time.Time) bool {
	return now.Sub(x.seen) > s.idle || now.Sub(x.created) > s.maxAge
}

// create starts a session for p.
func (s *sessionStore) create(p ops.Principal, cred credential, now time.Time) (*session, error) {
	id, err := randomToken(s.rand)
	if err != nil {
		return nil, err
	}
	csrf, err := randomToken(s.rand)
	if err != nil {
		return nil, err
	}
	x := &session{id: id, csrf: csrf, p: p, cred: cred, created: now, seen: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gc(now, false)
	if len(s.byID) >= s.max {
		s.gc(now, true)
	}
	s.byID[id] = x
	return x, nil
}

// gc drops expired sessions at most once a minute, or when full; when
// still full it evicts the least recently seen one.
func (s *sessionStore) gc(now time.Time, full bool) {
	if !full && now.Sub(s.lastGC) < time.Minute {
		return
	}
	s.lastGC = now
	var oldest *session
	for id, x := range s.byID {
		if s.expired(x, now) {
			delete(s.byID, id)
			continue
		}
		if oldest == nil || x.seen.Before(oldest.seen) {
			oldest = x
		}
	}
	if full && len(s.byID) >= s.max && oldest != nil {
		delete(s.byID, oldest.id)
	}
}

// get returns the live session with that id and marks it seen. It
// returns a copy: callers change a session only through the store.
func (s *sessionStore) get(id string, now time.Time) (session, bool) {
	if id == "" {
		return session{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	x, ok := s.byID[id]
	if !ok {
		return session{}, false
	}
	if s.expired(x, now) {
		delete(s.byID, id)
		return session{}, false
	}
	x.seen = now
	return *x, true
}

// takeFlash returns and clears the session's notice.
func (s *sessionStore) takeFlash(id string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, ok := s.byID[id]
	if !ok {
		return "", false
	}
	f, e := x.flash, x.flashError
	x.flash, x.flashError = "", false
	return f, e
}

// setFlash sets the notice shown on the session's next page.
func (s *sessionStore) setFlash(id, msg string, isErr bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if x, ok := s.byID[id]; ok {
		x.flash, x.flashError = msg, isErr
	}
}

func (s *sessionStore) remove(id string) {
	s.mu.Lock()
	delete(s.byID, id)
	s.mu.Unlock()
}

func (s *sessionStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byID)
}

// tokenEqual compares two secrets in constant time.
func tokenEqual(a, b string) bool {
	return a != "" && len(a) == len(b) && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
