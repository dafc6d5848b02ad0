package smtpd

import (
	"context"
	"errors"
	"net/netip"

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
	// wrapping ErrAuthFailed when they do not match, and one wrapping
	// ErrAuthBusy when the check could not run before ctx ended.
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

// Auth returns the SASL server for mech, wired to the session.
//
// Password checks are bounded twice: per client, the attempts in flight
// count as failures to come (authThrottle), and over all clients the
// Authenticator bounds the memory its verifications use and answers
// ErrAuthBusy when its budget stays full for AuthWait. Either wait ends
// in 454 4.7.0, which a client retries later.
func (s *session) Auth(mech string) (sasl.Server, error) {
	if s.conn.guard.hasTripped() {
		return nil, s.reply("AUTH", replyLineTooLong)
	}
	if s.srv.throttle.blocked(s.ip) {
		s.conn.closeAfterWrite()
		return nil, s.reply("AUTH", replyAuthThrottled)
	}
	check := func(username, password string) error {
		ctx, cancel := context.WithTimeout(context.Background(), s.srv.opts.AuthWait)
		defer cancel()
		end, err := s.srv.throttle.begin(ctx, s.ip)
		switch {
		case errors.Is(err, errThrottled):
			s.conn.closeAfterWrite()
			return s.reply("AUTH", replyAuthThrottled)
		case err != nil:
			s.log.Info("authentication deferred", "user", username, "err", err)
			return s.reply("AUTH", replyAuthBusy)
		}
		u, err := s.srv.opts.Auth.Authenticate(ctx, username, password)
		if errors.Is(err, ErrAuthBusy) {
			end(false)
			s.log.Info("authentication deferred", "user", username, "err", err)
			return s.reply("AUTH", err)
		}
		if err != nil {
			s.srv.metrics.authFailure(s.listener.Name)
			s.log.Info("authentication failed", "user", username, "err", err)
			if end(true) {
				s.conn.closeAfterWrite()
				return s.reply("AUTH", replyAuthThrottled)
			}
			return s.reply("AUTH", toReply(err, s.log))
		}
		end(false)
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
