package console

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/outguard/outguard/admin/ops"
)

// session is one signed-in console user.
type session struct {
	// id is the session's token, the cookie's value: a store keeps only
	// its hash where it keeps sessions outside this process.
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
// account (docs/config-admin.md#accounts), and a hash of its secrets and
// scope then: the session keeps no secret of the credential.
type credential struct {
	account bool
	sum     string
}

func newCredential(account bool, secret, scope string) credential {
	h := sha256.Sum256([]byte(secret + "\x00" + scope))
	return credential{account: account, sum: hex.EncodeToString(h[:])}
}

func tokenCredential(t ops.Token) credential { return newCredential(false, t.Hash, t.Scope) }

// accountCredential covers the account's TOTP secret with its password
// hash: a new secret (a lost phone) ends the account's sessions too.
func accountCredential(a ops.Account) credential {
	return newCredential(true, a.PasswordHash+"\x00"+a.TOTPSecret, a.Scope)
}

// sessionStore keeps the console's sessions: in this process
// (memSessions, one node) or in PostgreSQL, shared by a fleet
// (pgSessions). Both end a session unused for idle or older than maxAge,
// and keep at most a bound of sessions, ending the least recently seen
// one when full, so that a flood of sign-ins cannot grow without end.
type sessionStore interface {
	// create stores x, a new session (its seen time is its creation).
	create(ctx context.Context, x *session) error
	// get returns the live session whose token is id and marks it seen
	// at now; ok is false for none.
	get(ctx context.Context, id string, now time.Time) (s session, ok bool, err error)
	// remove ends the session whose token is id.
	remove(ctx context.Context, id string) error
	// endStale ends every session of the token or account name (account
	// tells which) whose credential is not cur; cur "" ends them all.
	endStale(ctx context.Context, name string, account bool, cur string) error
	// setFlash sets the notice shown on the session's next page.
	setFlash(ctx context.Context, id, msg string, isErr bool) error
	// takeFlash returns and clears the session's notice.
	takeFlash(ctx context.Context, id string) (msg string, isErr bool, err error)
}

var _ sessionStore = (*memSessions)(nil)

// randomToken returns 32 random bytes, base64url-encoded.
func randomToken(r io.Reader) (string, error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("admin console: random source: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// newSession starts a session for p, with a random token and CSRF token,
// and stores it.
func (c *Console) newSession(ctx context.Context, p ops.Principal, cred credential) (*session, error) {
	id, err := randomToken(c.rand)
	if err != nil {
		return nil, err
	}
	csrf, err := randomToken(c.rand)
	if err != nil {
		return nil, err
	}
	now := c.ops.Now()
	x := &session{id: id, csrf: csrf, p: p, cred: cred, created: now, seen: now}
	if err := c.sessions.create(ctx, x); err != nil {
		return nil, fmt.Errorf("admin console: storing the session: %w", err)
	}
	return x, nil
}

// setFlash sets the notice of s's next page; a failure is logged: the
// notice is lost, the action it tells of is done.
func (c *Console) setFlash(ctx context.Context, s *session, msg string, isErr bool) {
	if err := c.sessions.setFlash(ctx, s.id, msg, isErr); err != nil {
		c.log.Error("admin console: keeping a notice", "actor", s.p.Name, "err", err)
	}
}

// memSessions is the in-memory session table of a node on its own: the
// sessions end with the process.
type memSessions struct {
	mu     sync.Mutex
	byID   map[string]*session
	idle   time.Duration
	maxAge time.Duration
	max    int
	lastGC time.Time
}

func newMemSessions(idle, maxAge time.Duration, max int) *memSessions {
	return &memSessions{byID: map[string]*session{}, idle: idle, maxAge: maxAge, max: max}
}

func (s *memSessions) expired(x *session, now time.Time) bool {
	return now.Sub(x.seen) > s.idle || now.Sub(x.created) > s.maxAge
}

func (s *memSessions) create(_ context.Context, x *session) error {
	cp := *x
	x = &cp
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gc(x.created, false)
	if len(s.byID) >= s.max {
		s.gc(x.created, true)
	}
	s.byID[x.id] = x
	return nil
}

// gc drops expired sessions at most once a minute, or when full; when
// still full it evicts the least recently seen one.
func (s *memSessions) gc(now time.Time, full bool) {
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

// get returns a copy: callers change a session only through the store.
func (s *memSessions) get(_ context.Context, id string, now time.Time) (session, bool, error) {
	if id == "" {
		return session{}, false, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	x, ok := s.byID[id]
	if !ok {
		return session{}, false, nil
	}
	if s.expired(x, now) {
		delete(s.byID, id)
		return session{}, false, nil
	}
	x.seen = now
	return *x, true, nil
}

func (s *memSessions) takeFlash(_ context.Context, id string) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, ok := s.byID[id]
	if !ok {
		return "", false, nil
	}
	f, e := x.flash, x.flashError
	x.flash, x.flashError = "", false
	return f, e, nil
}

func (s *memSessions) setFlash(_ context.Context, id, msg string, isErr bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if x, ok := s.byID[id]; ok {
		x.flash, x.flashError = msg, isErr
	}
	return nil
}

func (s *memSessions) remove(_ context.Context, id string) error {
	s.mu.Lock()
	delete(s.byID, id)
	s.mu.Unlock()
	return nil
}

func (s *memSessions) endStale(_ context.Context, name string, account bool, cur string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, x := range s.byID {
		if x.p.Name == name && x.cred.account == account && x.cred.sum != cur {
			delete(s.byID, id)
		}
	}
	return nil
}

func (s *memSessions) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byID)
}

// tokenEqual compares two secrets in constant time.
func tokenEqual(a, b string) bool {
	return a != "" && len(a) == len(b) && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
