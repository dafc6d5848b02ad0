package app

import (
	"context"
	"fmt"
	"net/netip"
	"sync/atomic"

	"github.com/outguard/outguard/config"
	"github.com/outguard/outguard/internal/passwd"
	"github.com/outguard/outguard/smtpd"
)

// users is the outgoing-user table built from the configuration; the
// authenticator swaps it atomically on reload.
type users struct {
	byName   map[string]userEntry
	networks []networkEntry
}

type userEntry struct {
	user *smtpd.User
	hash string
}

type networkEntry struct {
	prefix netip.Prefix
	user   *smtpd.User
}

func buildUsers(c *config.Config) *users {
	u := &users{byName: map[string]userEntry{}}
	for _, d := range c.Domains {
		for _, cu := range d.Users {
			su := &smtpd.User{Name: cu.Name, Domain: d.Name}
			u.byName[cu.Name] = userEntry{user: su, hash: cu.PasswordHash}
			for _, p := range cu.Prefixes() {
				u.networks = append(u.networks, networkEntry{prefix: p, user: su})
			}
		}
	}
	return u
}

// authenticator implements smtpd.Authenticator over the configured users.
type authenticator struct {
	table    atomic.Pointer[users]
	verifier *passwd.Verifier
	dummy    string // bcrypt hash of a random string
}

var _ smtpd.Authenticator = (*authenticator)(nil)

func (a *authenticator) Authenticate(ctx context.Context, username, password string) (*smtpd.User, error) {
	e, ok := a.table.Load().byName[username]
	if !ok || e.hash == "" {
		// Spend the same effort as a real check so that timing does not
		// tell which user names exist.
		a.verifier.Verify(a.dummy, password)
		return nil, fmt.Errorf("unknown user %q: %w", username, smtpd.ErrAuthFailed)
	}
	if err := a.verifier.Verify(e.hash, password); err != nil {
		return nil, fmt.Errorf("user %q: %v: %w", username, err, smtpd.ErrAuthFailed)
	}
	return e.user, nil
}

// UserForAddress returns the user with the most specific network covering
// ip.
func (a *authenticator) UserForAddress(ip netip.Addr) (*smtpd.User, bool) {
	var best *smtpd.User
	bits := -1
	for _, n := range a.table.Load().networks {
		if n.prefix.Contains(ip) && n.prefix.Bits() > bits {
			best, bits = n.user, n.prefix.Bits()
		}
	}
	return best, best != nil
}
