package smtpd

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// User is an outgoing user as the relay sees it.
type User struct {
	// Name is the outgoing user's name (the SMTP AUTH name, or the name
	// configured for a network).
	Name string
	// Domain is the user's administrative domain.
	Domain string
}

// Authenticator resolves outgoing users.
type Authenticator interface {
	// Authenticate checks a user name and password. It returns an error
	// wrapping ErrAuthFailed when they do not match.
	Authenticate(ctx context.Context, username, password string) (*User, error)
	// UserForAddress returns the user whose networks cover ip.
	UserForAddress(ip netip.Addr) (*User, bool)
}

// AuthenticatorFunc adapts a password check to Authenticator for users
// with no networks.
type AuthenticatorFunc func(ctx context.Context, username, password string) (*User, error)

// Authenticate calls f.
func (f AuthenticatorFunc) Authenticate(ctx context.Context, u, p string) (*User, error) {
	return f(ctx, u, p)
}

// UserForAddress never finds a user.
func (f AuthenticatorFunc) UserForAddress(netip.Addr) (*User, bool) { return nil, false }

// loginServer is the server side of the LOGIN mechanism
// (draft-murchison-sasl-login): it asks for the user name, then the
// password, each with a base64 prompt. go-sasl has no server for it.
type loginServer struct {
	authenticate func(username, password string) error
	state        int
	username     string
}

func newLoginServer(fn func(username, password string) error) sasl.Server {
	return &loginServer{authenticate: fn}
}

func (s *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	switch s.state {
	case 0:
		s.state = 1
		if len(response) > 0 {
			// Initial response carries the user name (RFC 4954 style
			// "AUTH LOGIN dXNlcg==").
			s.username = string(response)
			s.state = 2
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 1:
		s.username = string(response)
		s.state = 2
		return []byte("Password:"), false, nil
	case 2:
		s.state = 3
		return nil, true, s.authenticate(s.username, string(response))
	}
	return nil, false, errors.New("unexpected client response")
}

// authThrottle counts AUTH failures per client IP in a fixed window.
type authThrottle struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu    sync.Mutex
	fails map[netip.Addr]*failWindow
}

type failWindow struct {
	start time.Time
	count int
}

func newAuthThrottle(max int, window time.Duration, now func() time.Time) *authThrottle {
	return &authThrottle{max: max, window: window, now: now, fails: map[netip.Addr]*failWindow{}}
}

// blocked reports whether ip has used up its failures.
func (t *authThrottle) blocked(ip netip.Addr) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.fails[ip]
	if w == nil {
		return false
	}
	if t.now().Sub(w.start) > t.window {
		delete(t.fails, ip)
		return false
	}
	return w.count >= t.max
}

// fail records a failure and reports whether ip is now blocked.
func (t *authThrottle) fail(ip netip.Addr) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	w := t.fails[ip]
	if w == nil || now.Sub(w.start) > t.window {
		w = &failWindow{start: now}
		t.fails[ip] = w
	}
	w.count++
	// Forget old entries now and then so the map stays small under a
	// scan from many addresses.
	if len(t.fails) > 10000 {
		for k, v := range t.fails {
			if now.Sub(v.start) > t.window {
				delete(t.fails, k)
			}
		}
	}
	return w.count >= t.max
}

// auth returns the SASL server for mech, wired to the session.
func (s *session) Auth(mech string) (sasl.Server, error) {
	if s.conn.guard.hasTripped() {
		return nil, s.reply("AUTH", replyLineTooLong)
	}
	if s.srv.throttle.blocked(s.ip) {
		s.conn.closeAfterWrite()
		return nil, s.reply("AUTH", replyAuthThrottled)
	}
	check := func(username, password string) error {
		u, err := s.srv.opts.Auth.Authenticate(context.Background(), username, password)
		if err != nil {
			s.srv.metrics.authFailure(s.listener.Name)
			s.log.Info("authentication failed", "user", username, "err", err)
			if s.srv.throttle.fail(s.ip) {
				s.conn.closeAfterWrite()
				return s.reply("AUTH", replyAuthThrottled)
			}
			return s.reply("AUTH", toReply(err, s.log))
		}
		s.user = u
		s.authName = username
		s.log = s.log.With("user", u.Name, "domain", u.Domain)
		s.srv.metrics.reply("AUTH", 235)
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, username, password string) error {
			if identity != "" && identity != username {
				return s.reply("AUTH", &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authorization identity must match the user name"})
			}
			return check(username, password)
		}), nil
	case sasl.Login:
		return newLoginServer(check), nil
	}
	return nil, s.reply("AUTH", &smtp.SMTPError{Code: 504, EnhancedCode: smtp.EnhancedCode{5, 5, 4}, Message: "Unsupported authentication mechanism"})
}

// AuthMechanisms lists the mechanisms offered.
func (s *session) AuthMechanisms() []string {
	return []string{sasl.Plain, sasl.Login}
}
